//! Builds fhirgate's CapabilityStatement from what is actually enabled.
//!
//! The embedded store's search-parameter table is described with
//! [`SearchParamDef`] (defined here so this crate needs nothing from the
//! server); the statement lists exactly those parameters per resource type.
//! Later capabilities (SMART, operations, profiles) add their parts here.

pub mod smart;

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

/// Statement for the embedded store at `base`, listing `params`.
pub fn embedded_statement(base: &str, params: &[SearchParamDef]) -> Value {
    let mut types: Vec<&str> = params.iter().map(|p| p.resource).collect();
    types.sort_unstable();
    types.dedup();
    let resources: Vec<Value> = types
        .iter()
        .map(|t| {
            let search: Vec<Value> = params
                .iter()
                .filter(|p| p.resource == *t)
                .map(|p| {
                    json!({
                        "name": p.name,
                        "definition": format!("http://hl7.org/fhir/SearchParameter/{}-{}", p.resource, p.name),
                        "type": p.kind.code(),
                    })
                })
                .collect();
            let includes: Vec<String> = params
                .iter()
                .filter(|p| p.resource == *t && p.kind == ParamType::Reference)
                .map(|p| format!("{}:{}", p.resource, p.name))
                .collect();
            let revincludes: Vec<String> = params
                .iter()
                .filter(|p| p.kind == ParamType::Reference && p.targets.contains(t))
                .map(|p| format!("{}:{}", p.resource, p.name))
                .collect();
            json!({
                "type": t,
                "interaction": [
                    {"code": "read"}, {"code": "vread"}, {"code": "update"}, {"code": "delete"},
                    {"code": "history-instance"}, {"code": "history-type"}, {"code": "create"},
                    {"code": "search-type"}
                ],
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "searchInclude": includes,
                "searchRevInclude": revincludes,
                "searchParam": search,
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-22",
        "publisher": "fhirgate",
        "kind": "instance",
        "software": {"name": "fhirgate", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "fhirgate FHIR R4 facade (embedded store)", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "search-system"}, {"code": "history-system"}],
            "operation": [{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}],
        }]
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
        let s = embedded_statement("http://x/fhir", &params);
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
