//! Builds fhirgate's CapabilityStatement from what is actually enabled:
//! pure functions, every input passed in, no server types.
//!
//! Module map (in the order a statement is built):
//! - [`model`]: the `rest` part, typed just enough (standard R4 elements only);
//! - [`embedded`]: the embedded store's own capability, from its
//!   search-parameter table ([`SearchParamDef`], defined here so this crate
//!   needs nothing from the server);
//! - [`forwarding`]: the intersection of a store's capability (embedded or
//!   an HTTP upstream's statement) and what fhirgate forwards;
//! - [`local`], [`operations`]: the types and operations fhirgate answers
//!   itself, each gated on its feature;
//! - [`conformance`]: `instantiates` / `implementationGuide`, claimed only
//!   when the statement meets each claim's checklist;
//! - [`smart`]: SMART discovery and the `rest.security` block (SMART, UDAP);
//! - [`statement`]: [`statement::build`] puts it together (and `mode`).

pub mod conformance;
pub mod embedded;
pub mod forwarding;
pub mod local;
pub mod model;
pub mod operations;
pub mod smart;
pub mod statement;

pub use forwarding::Forwarding;
pub use model::Rest;
pub use operations::Features;
pub use statement::{build, Inputs, Mode};

use serde_json::{json, Value};

/// FHIR search parameter types (R4 search.html §3.1.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Code / Coding / CodeableConcept / Identifier / ContactPoint / boolean.
    Token,
    /// Text (prefix, `:exact`, `:contains`).
    String,
    /// Date, dateTime, instant, Period, Timing.
    Date,
    /// A Reference.
    Reference,
    /// A URI or canonical.
    Uri,
    /// A Quantity.
    Quantity,
    /// A number.
    Number,
}

impl ParamType {
    /// The code used in CapabilityStatement `searchParam.type`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::String => "string",
            Self::Date => "date",
            Self::Reference => "reference",
            Self::Uri => "uri",
            Self::Quantity => "quantity",
            Self::Number => "number",
        }
    }
}

/// One search parameter the embedded store indexes.
#[derive(Debug, Clone, Copy)]
pub struct SearchParamDef {
    /// Resource type it applies to.
    pub resource: &'static str,
    /// Parameter name as sent by clients (`patient`, `code`, `birthdate`).
    pub name: &'static str,
    /// Parameter type.
    pub kind: ParamType,
    /// Element paths, FHIRPath-like (`subject`, `effectiveDateTime`, `telecom[system=email]`).
    pub paths: &'static [&'static str],
    /// Target resource types for reference parameters.
    pub targets: &'static [&'static str],
}

/// The embedded store's own statement at `base` (what `GET metadata` on
/// the store itself would say), listing `params` and the `common` ones;
/// the facade's statement is [`statement::build`] on its `rest`.
pub fn embedded_statement(
    base: &str,
    params: &[SearchParamDef],
    common: &[SearchParamDef],
) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "software": {"name": "fhirgate embedded store"},
        "implementation": {"description": "fhirgate embedded FHIR R4 store", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [embedded::rest(params, common).to_json()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_lists_each_parameter_under_its_type() {
        let params = [
            SearchParamDef {
                resource: "Observation",
                name: "patient",
                kind: ParamType::Reference,
                paths: &["subject"],
                targets: &["Patient"],
            },
            SearchParamDef {
                resource: "Patient",
                name: "birthdate",
                kind: ParamType::Date,
                paths: &["birthDate"],
                targets: &[],
            },
        ];
        let s = embedded_statement("http://x/fhir", &params, &[]);
        assert_eq!(s["fhirVersion"], "4.0.1");
        let res = s["rest"][0]["resource"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(res.len(), 2);
        assert_eq!(res[0]["type"], "Observation");
        assert_eq!(res[0]["searchParam"][0]["type"], "reference");
        assert_eq!(res[0]["searchInclude"][0], "Observation:patient");
        assert_eq!(res[1]["searchRevInclude"][0], "Observation:patient");
    }
}
