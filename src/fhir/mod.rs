//! Our seam over FHIR R4 content: resource type names, ids, references,
//! instants, OperationOutcomes and the typed request/response that every
//! pipeline stage and upstream speaks. Resource bodies are `serde_json::Value`
//! kept in document order, so nothing a client sent is silently dropped.

pub mod request;
pub mod response;
pub mod subset;
pub mod types;
pub mod xml;

pub use request::{FhirRequest, Interaction, Prefer, PreferHandling, PreferReturn};
pub use response::FhirResponse;
pub use types::{is_resource_type, is_valid_id, now_instant, Reference};
