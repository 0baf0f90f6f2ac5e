//! The whole CapabilityStatement (R4 capabilitystatement.html), built from
//! what is enabled: the store's capability as fhirgate forwards it
//! ([`crate::forwarding`]), the types and operations fhirgate answers
//! itself ([`crate::local`], [`crate::operations`]), the profiles it
//! advertises, the security services, and the IG statements it meets
//! ([`crate::conformance`]).
//!
//! Only standard R4 elements are emitted, so a client (or a test) can walk
//! `rest[0].resource[*]` and try every interaction, `searchParam`,
//! `searchInclude`/`searchRevInclude` and `operation` it finds.
//!
//! `mode` (R4 http.html §3.1.0.12 "capabilities"): `full` (the default) is
//! the statement as built; `normative` is the same statement without any
//! `extension` (the SMART `oauth-uris` extension is the only one we emit,
//! and extensions are not normative content: every other element used here
//! is an element of the normative CapabilityStatement resource);
//! `terminology` is not supported ([`Mode::parse`] refuses it, as it does
//! any other value).

use serde_json::{json, Map, Value};

use crate::{
    conformance, forwarding,
    forwarding::Forwarding,
    local,
    model::{Operation, Rest},
    operations::{self, At, Features},
    smart,
};

/// The `mode` of the capabilities interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The whole statement.
    #[default]
    Full,
    /// Only normative content: the statement without extensions.
    Normative,
}

impl Mode {
    /// Parses `?mode=`; `Err` is the message of a 400 `not-supported`.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("full") => Ok(Self::Full),
            Some("normative") => Ok(Self::Normative),
            Some("terminology") => Err(
                "mode=terminology is not supported: this server has no terminology capabilities \
                 (no TerminologyCapabilities resource)"
                    .into(),
            ),
            Some(other) => Err(format!(
                "mode must be full, normative or terminology, not {other:?}"
            )),
        }
    }
}

/// Everything the statement is built from.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The FHIR base URL (`implementation.url`).
    pub base: &'a str,
    /// `software.version`.
    pub software_version: &'a str,
    /// `date` (when this build or this process started; never a constant).
    pub date: &'a str,
    /// What serves the data (`implementation.description`), e.g. "embedded store".
    pub store_name: &'a str,
    /// The store's own capability (the embedded store's, or the HTTP upstream's statement parsed).
    pub store: &'a Rest,
    /// What fhirgate forwards to the store.
    pub forwarding: &'a Forwarding<'a>,
    /// What is switched on.
    pub features: Features,
    /// The PAS IG version answered (`2.0.1`, `2.2.1`), for `instantiates`.
    pub pas_version: &'a str,
    /// `(resource type, profile canonical)` pairs advertised as `supportedProfile`.
    pub profiles: &'a [(String, String)],
    /// The SMART `rest.security` block ([`smart::security`]).
    pub security: Value,
    /// `full` or `normative`.
    pub mode: Mode,
}

/// The `rest` fhirgate serves: forwarded store capability plus its own.
pub fn rest(i: &Inputs<'_>) -> Rest {
    let local_types = local::types(&i.features);
    let local_ops = operations::local_names(&i.features);
    let mut rest = forwarding::intersect(i.store, i.forwarding, &local_types, &local_ops);
    rest.resources.extend(local::resources(&i.features));
    let enabled: Vec<_> = operations::enabled(&i.features).collect();
    for op in &enabled {
        let o = Operation {
            name: op.name.into(),
            definition: op.definition.into(),
        };
        match op.at {
            At::System => {
                if !rest.operations.iter().any(|x| x.name == o.name) {
                    rest.operations.push(o);
                }
            }
            At::Type(t) => rest.resource_mut(t).add_operation(o),
            At::EveryType => {}
        }
    }
    // Every type the pipeline can route such an operation for.
    for op in enabled.iter().filter(|o| o.at == At::EveryType) {
        for r in rest.resources.iter_mut().filter(|r| {
            !(local_types.contains(&r.rtype.as_str())
                && local::CLOSED_TYPES.contains(&r.rtype.as_str()))
        }) {
            r.add_operation(Operation {
                name: op.name.into(),
                definition: op.definition.into(),
            });
        }
    }
    for (t, canonical) in i.profiles {
        if let Some(r) = rest.resources.iter_mut().find(|r| &r.rtype == t) {
            r.add_profile(canonical);
        }
    }
    rest.resources.sort_by(|a, b| a.rtype.cmp(&b.rtype));
    rest
}

/// The CapabilityStatement.
pub fn build(i: &Inputs<'_>) -> Value {
    let rest = rest(i);
    let (instantiates, guides) = conformance::claims(&rest, &i.features, i.pas_version);
    let mut security = i.security.clone();
    if i.features.udap {
        if let Some(services) = security["service"].as_array_mut() {
            services.push(smart::udap_service());
        }
    }
    let mut rest_json = rest.to_json();
    if let Some(m) = rest_json.as_object_mut() {
        // R4 order: mode, documentation, security, resource, …
        let mut ordered = Map::new();
        ordered.insert("mode".into(), json!("server"));
        ordered.insert("security".into(), security);
        for (k, v) in std::mem::take(m) {
            ordered.entry(k).or_insert(v);
        }
        *m = ordered;
    }
    let mut out = Map::new();
    out.insert("resourceType".into(), json!("CapabilityStatement"));
    out.insert("name".into(), json!("FhirgateCapabilityStatement"));
    out.insert("title".into(), json!("fhirgate FHIR R4 server"));
    out.insert("status".into(), json!("active"));
    out.insert("experimental".into(), json!(false));
    out.insert("date".into(), json!(i.date));
    out.insert("publisher".into(), json!("fhirgate"));
    out.insert(
        "description".into(),
        json!("What this fhirgate instance serves, built from its configuration and its store"),
    );
    out.insert("kind".into(), json!("instance"));
    if !instantiates.is_empty() {
        out.insert("instantiates".into(), json!(instantiates));
    }
    out.insert(
        "software".into(),
        json!({"name": "fhirgate", "version": i.software_version}),
    );
    out.insert(
        "implementation".into(),
        json!({
            "description": format!("fhirgate SMART-on-FHIR gateway and FHIR R4 facade ({})", i.store_name),
            "url": i.base,
        }),
    );
    out.insert("fhirVersion".into(), json!("4.0.1"));
    out.insert("format".into(), json!(["json", "xml"]));
    out.insert("implementationGuide".into(), json!(guides));
    out.insert("rest".into(), json!([rest_json]));
    let mut v = Value::Object(out);
    if i.mode == Mode::Normative {
        strip_extensions(&mut v);
    }
    v
}

/// Removes every `extension` and `modifierExtension`, at any depth.
fn strip_extensions(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("extension");
            m.remove("modifierExtension");
            m.values_mut().for_each(strip_extensions);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_extensions),
        _ => {}
    }
}

#[cfg(test)]
#[path = "statement_tests.rs"]
mod tests;
