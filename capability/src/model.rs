//! The `rest` part of an R4 CapabilityStatement (R4 capabilitystatement.html
//! §"Resource Content"), typed just enough to intersect, add to and render:
//! resources with their interactions, search parameters, includes and
//! operations; system interactions and operations. Parsing keeps only the
//! standard R4 elements named here, so nothing an upstream adds
//! (extensions, vendor fields) reaches a client unchecked.

use serde_json::{json, Map, Value};

/// The per-resource flags copied as they are (R4 `CapabilityStatement.rest.resource`).
pub const RESOURCE_FLAGS: &[&str] = &[
    "versioning",
    "readHistory",
    "updateCreate",
    "conditionalCreate",
    "conditionalRead",
    "conditionalUpdate",
    "conditionalDelete",
    "referencePolicy",
];

/// One `searchParam` (R4 `rest.resource.searchParam`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParam {
    /// Name as clients send it (`patient`, `_id`).
    pub name: String,
    /// The SearchParameter canonical, when known.
    pub definition: Option<String>,
    /// The search type code (`token`, `reference`, …).
    pub kind: String,
}

/// One `operation` (R4 `rest.operation` / `rest.resource.operation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Name without `$` (`export`, `submit`).
    pub name: String,
    /// The OperationDefinition canonical.
    pub definition: String,
}

/// The Subscriptions R5 Backport extension naming a topic a server offers
/// on `rest.resource` (type `Subscription`).
pub const TOPIC_CANONICAL_EXT: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical";

/// One `rest.resource`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resource {
    /// Resource type.
    pub rtype: String,
    /// `profile` (the base profile), if any.
    pub profile: Option<String>,
    /// `supportedProfile` canonicals.
    pub supported_profiles: Vec<String>,
    /// `interaction.code`s (`read`, `search-type`, …).
    pub interactions: Vec<String>,
    /// The standard flags of [`RESOURCE_FLAGS`], as given.
    pub flags: Map<String, Value>,
    /// `searchInclude` values.
    pub includes: Vec<String>,
    /// `searchRevInclude` values.
    pub revincludes: Vec<String>,
    /// `searchParam`s.
    pub search: Vec<SearchParam>,
    /// Type- and instance-level operations.
    pub operations: Vec<Operation>,
    /// SubscriptionTopic canonicals offered (Subscriptions R5 Backport
    /// `capabilitystatement-subscriptiontopic-canonical` extensions).
    pub topics: Vec<String>,
}

/// The server `rest` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rest {
    /// Resources, in order.
    pub resources: Vec<Resource>,
    /// System interactions (`transaction`, `batch`, `search-system`, `history-system`).
    pub interactions: Vec<String>,
    /// Parameters for system search (`rest.searchParam`).
    pub search: Vec<SearchParam>,
    /// System-level operations.
    pub operations: Vec<Operation>,
    /// CompartmentDefinition canonicals whose compartment searches work.
    pub compartments: Vec<String>,
}

impl Resource {
    /// An empty entry for `rtype`.
    pub fn new(rtype: &str) -> Self {
        Self {
            rtype: rtype.to_owned(),
            ..Self::default()
        }
    }

    /// Adds `op` unless one of that name is there (the first definition wins).
    pub fn add_operation(&mut self, op: Operation) {
        if !self.operations.iter().any(|o| o.name == op.name) {
            self.operations.push(op);
        }
    }

    /// Adds a supported profile once.
    pub fn add_profile(&mut self, canonical: &str) {
        if !self.supported_profiles.iter().any(|p| p == canonical) {
            self.supported_profiles.push(canonical.to_owned());
        }
    }
}

impl Rest {
    /// The entry for `rtype`, created (at the end) when missing.
    pub fn resource_mut(&mut self, rtype: &str) -> &mut Resource {
        let at = match self.resources.iter().position(|r| r.rtype == rtype) {
            Some(i) => i,
            None => {
                self.resources.push(Resource::new(rtype));
                self.resources.len() - 1
            }
        };
        &mut self.resources[at]
    }

    /// The entry for `rtype`, if declared.
    pub fn resource(&self, rtype: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.rtype == rtype)
    }

    /// Parses the first `rest` of mode `server` of a CapabilityStatement.
    pub fn from_statement(statement: &Value) -> Self {
        let Some(rest) = statement["rest"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["mode"] == "server"))
        else {
            return Self::default();
        };
        Self {
            resources: rest["resource"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(parse_resource)
                .collect(),
            interactions: codes(&rest["interaction"]),
            search: search_params(&rest["searchParam"]),
            operations: operations(&rest["operation"]),
            compartments: strings(&rest["compartment"]),
        }
    }

    /// The `rest` element.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("mode".into(), json!("server"));
        out.insert(
            "resource".into(),
            Value::Array(self.resources.iter().map(Resource::to_json).collect()),
        );
        put_codes(&mut out, "interaction", &self.interactions);
        put_search(&mut out, &self.search);
        put_operations(&mut out, &self.operations);
        if !self.compartments.is_empty() {
            out.insert("compartment".into(), json!(self.compartments));
        }
        Value::Object(out)
    }
}

impl Resource {
    /// The `rest.resource` element, in R4 element order.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        if !self.topics.is_empty() {
            let ext: Vec<Value> = self
                .topics
                .iter()
                .map(|t| json!({"url": TOPIC_CANONICAL_EXT, "valueCanonical": t}))
                .collect();
            out.insert("extension".into(), Value::Array(ext));
        }
        out.insert("type".into(), json!(self.rtype));
        if let Some(p) = &self.profile {
            out.insert("profile".into(), json!(p));
        }
        if !self.supported_profiles.is_empty() {
            out.insert("supportedProfile".into(), json!(self.supported_profiles));
        }
        put_codes(&mut out, "interaction", &self.interactions);
        for k in RESOURCE_FLAGS {
            if let Some(v) = self.flags.get(*k) {
                out.insert((*k).into(), v.clone());
            }
        }
        if !self.includes.is_empty() {
            out.insert("searchInclude".into(), json!(self.includes));
        }
        if !self.revincludes.is_empty() {
            out.insert("searchRevInclude".into(), json!(self.revincludes));
        }
        put_search(&mut out, &self.search);
        put_operations(&mut out, &self.operations);
        Value::Object(out)
    }
}

fn parse_resource(r: &Value) -> Option<Resource> {
    let rtype = r["type"].as_str()?;
    let flags = RESOURCE_FLAGS
        .iter()
        .filter_map(|k| r.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    Some(Resource {
        rtype: rtype.to_owned(),
        profile: r["profile"].as_str().map(str::to_owned),
        supported_profiles: strings(&r["supportedProfile"]),
        interactions: codes(&r["interaction"]),
        flags,
        includes: strings(&r["searchInclude"]),
        revincludes: strings(&r["searchRevInclude"]),
        search: search_params(&r["searchParam"]),
        operations: operations(&r["operation"]),
        // fhirgate answers Subscription itself: an upstream's topics are
        // never forwarded
        topics: Vec::new(),
    })
}

/// The string values of a JSON array (e.g. a statement's lists): the
/// elements themselves when `field` is empty (`searchInclude`,
/// `supportedProfile`), else each element's `field` (`interaction` →
/// `"code"`, `searchParam` → `"name"`); anything else is skipped. What
/// parsing reads lists with, and what tests read a statement with.
pub fn strings_of(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| {
            if field.is_empty() {
                x.as_str()
            } else {
                x[field].as_str()
            }
        })
        .map(str::to_owned)
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    strings_of(v, "")
}

fn codes(v: &Value) -> Vec<String> {
    strings_of(v, "code")
}

fn search_params(v: &Value) -> Vec<SearchParam> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(SearchParam {
                name: p["name"].as_str()?.to_owned(),
                definition: p["definition"].as_str().map(str::to_owned),
                kind: p["type"].as_str()?.to_owned(),
            })
        })
        .collect()
}

fn operations(v: &Value) -> Vec<Operation> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some(Operation {
                name: o["name"].as_str()?.trim_start_matches('$').to_owned(),
                definition: o["definition"].as_str()?.to_owned(),
            })
        })
        .collect()
}

fn put_codes(out: &mut Map<String, Value>, key: &str, codes: &[String]) {
    if !codes.is_empty() {
        let v: Vec<Value> = codes.iter().map(|c| json!({ "code": c })).collect();
        out.insert(key.into(), Value::Array(v));
    }
}

fn put_search(out: &mut Map<String, Value>, params: &[SearchParam]) {
    if params.is_empty() {
        return;
    }
    let v: Vec<Value> = params
        .iter()
        .map(|p| {
            let mut m = Map::new();
            m.insert("name".into(), json!(p.name));
            if let Some(d) = &p.definition {
                m.insert("definition".into(), json!(d));
            }
            m.insert("type".into(), json!(p.kind));
            Value::Object(m)
        })
        .collect();
    out.insert("searchParam".into(), Value::Array(v));
}

fn put_operations(out: &mut Map<String, Value>, ops: &[Operation]) {
    if !ops.is_empty() {
        let v: Vec<Value> = ops
            .iter()
            .map(|o| json!({ "name": o.name, "definition": o.definition }))
            .collect();
        out.insert("operation".into(), Value::Array(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_keeps_standard_elements_only() {
        let s = json!({"rest": [
            {"mode": "client", "resource": [{"type": "Nope"}]},
            {"mode": "server",
             "interaction": [{"code": "batch"}],
             "resource": [{"type": "Patient", "extension": [{"url": "x"}], "vendor": 1,
                 "interaction": [{"code": "read"}], "versioning": "versioned",
                 "searchParam": [{"name": "name", "type": "string"}, {"name": "broken"}],
                 "operation": [{"name": "$everything", "definition": "http://d"}]}]}
        ]});
        let rest = Rest::from_statement(&s);
        assert_eq!(rest.interactions, vec!["batch"]);
        let p = rest.resource("Patient").cloned().unwrap_or_default();
        assert_eq!(p.search.len(), 1, "a parameter without a type is dropped");
        assert_eq!(p.operations[0].name, "everything");
        let out = p.to_json();
        assert!(out.get("extension").is_none() && out.get("vendor").is_none());
        assert_eq!(out["versioning"], "versioned");
    }
}
