//! `[validation]`: profile validation of writes on the way in (`$validate`
//! is always offered).
//!
//! ```toml
//! [validation]
//! on_write = "off"        # off | warn | reject
//! # profiles every write of a type must meet, besides those its meta.profile claims
//! required_profiles = ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]
//! ```
//!
//! `warn` logs the problems and lets the write through; `reject` answers
//! 422 with an OperationOutcome naming every problem by path, and nothing
//! is written (a transaction or batch with one bad entry is refused whole).

use serde::Deserialize;

/// What happens to a write whose resource breaks a profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnWrite {
    /// Writes are not validated.
    #[default]
    Off,
    /// Problems are logged; the write goes through.
    Warn,
    /// Problems refuse the write (422).
    Reject,
}

/// The `[validation]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    /// Validation of creates and updates.
    #[serde(default)]
    pub on_write: OnWrite,
    /// Canonicals of profiles every written resource of their type must
    /// meet (each must be a profile fhirgate knows; checked at start).
    #[serde(default)]
    pub required_profiles: Vec<String>,
}
