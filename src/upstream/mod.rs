//! The one `Upstream` trait behind the facade and its two implementations:
//! the embedded SQLite FHIR store (default) and any HTTP FHIR R4 server.
//! Both must look the same from outside: answers carry the facade's own URLs.
//! An HTTP upstream is wrapped in [`deletion_log::Logged`], which remembers
//! deletions made through fhirgate for Bulk Data `_since` exports.

use async_trait::async_trait;

use crate::{
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse},
};

pub mod deletion_log;
pub mod embedded;
pub mod http;

/// What an upstream needs to know about the request besides the request itself.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The facade's FHIR base URL (`{public}/fhir`), for every URL in answers.
    pub base: String,
    /// The request id (also in logs and the `X-Request-Id` header).
    pub request_id: String,
    /// Page size when a search has no `_count`.
    pub default_page_size: u32,
    /// Largest page size; the facade caps `_count` to it before calling.
    pub max_page_size: u32,
}

/// A FHIR R4 server fhirgate stands in front of.
#[async_trait]
pub trait Upstream: Send + Sync {
    /// Executes one interaction. Errors are `FhirError`s with the right status;
    /// URLs in the answer (Bundle links, `fullUrl`, `Location`, `Content-Location`)
    /// are the facade's (`ctx.base`), never the upstream's own.
    async fn execute(&self, req: &FhirRequest, ctx: &RequestContext) -> FhirResult<FhirResponse>;

    /// Short name for logs and readiness (`embedded` or `http`).
    fn name(&self) -> &'static str;

    /// The embedded store itself, when this is it (direct paths such as the
    /// bulk export's keyset scan); `None` for other upstreams.
    fn embedded(&self) -> Option<&embedded::EmbeddedStore> {
        None
    }
}
