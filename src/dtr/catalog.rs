//! The DTR content this payer ships, as data (`content/`, compiled in with
//! `include_str!`): Questionnaires, their CQL Libraries (CQL text and ELM
//! JSON, attached as base64 `Library.content` when loaded), the ValueSets
//! they bind and the rule tables of adaptive forms. Parsed once; looked up
//! by canonical (`url` or `url|version`).

use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{json, Value};

use super::adaptive::Form;

/// One shipped file: its name (for error messages) and text.
type Source = (&'static str, &'static str);

const QUESTIONNAIRES: &[Source] = &[
    (
        "imaging-knee-questionnaire.json",
        include_str!("content/imaging-knee-questionnaire.json"),
    ),
    (
        "knee-arthroplasty-adaptive-questionnaire.json",
        include_str!("content/knee-arthroplasty-adaptive-questionnaire.json"),
    ),
];

/// Library resource, CQL text, ELM JSON.
const LIBRARIES: &[(Source, &str, &str)] = &[(
    (
        "imaging-knee-library.json",
        include_str!("content/imaging-knee-library.json"),
    ),
    include_str!("content/imaging-knee-library.cql"),
    include_str!("content/imaging-knee-library.elm.json"),
)];

const VALUE_SETS: &[Source] = &[(
    "knee-imaging-indications-valueset.json",
    include_str!("content/knee-imaging-indications-valueset.json"),
)];

const ADAPTIVE: &[Source] = &[(
    "knee-arthroplasty-adaptive-rules.json",
    include_str!("content/knee-arthroplasty-adaptive-rules.json"),
)];

/// The parsed content.
#[derive(Debug)]
pub struct Catalog {
    /// Questionnaire resources.
    pub questionnaires: Vec<Value>,
    /// Library resources with their `content` attached.
    pub libraries: Vec<Value>,
    /// ValueSet resources (definitions; expanded when packaged).
    pub value_sets: Vec<Value>,
    /// Adaptive forms' rule tables.
    pub adaptive: Vec<Form>,
}

/// The shipped catalog, parsed on first use. A file that does not parse
/// is an error of the build, reported as such (the unit tests load it).
pub fn catalog() -> Result<&'static Catalog, String> {
    static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
    CATALOG.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn parse(src: &Source) -> Result<Value, String> {
    serde_json::from_str(src.1).map_err(|e| format!("DTR content {}: {e}", src.0))
}

fn load() -> Result<Catalog, String> {
    let questionnaires = QUESTIONNAIRES.iter().map(parse).collect::<Result<_, _>>()?;
    let value_sets = VALUE_SETS.iter().map(parse).collect::<Result<_, _>>()?;
    let libraries = LIBRARIES
        .iter()
        .map(|(src, cql, elm)| {
            let mut lib = parse(src)?;
            serde_json::from_str::<Value>(elm)
                .map_err(|e| format!("DTR content {} (ELM): {e}", src.0))?;
            let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
            lib["content"] = json!([
                {"contentType": "text/cql", "data": b64(cql)},
                {"contentType": "application/elm+json", "data": b64(elm)},
            ]);
            Ok(lib)
        })
        .collect::<Result<_, String>>()?;
    let adaptive = ADAPTIVE
        .iter()
        .map(|src| {
            let form: Form =
                serde_json::from_str(src.1).map_err(|e| format!("DTR content {}: {e}", src.0))?;
            form.check()
                .map_err(|e| format!("DTR content {}: {e}", src.0))?;
            Ok(form)
        })
        .collect::<Result<_, String>>()?;
    Ok(Catalog {
        questionnaires,
        libraries,
        value_sets,
        adaptive,
    })
}

/// `url|version` split into its parts.
pub fn split(canonical: &str) -> (&str, Option<&str>) {
    match canonical.split_once('|') {
        Some((url, version)) if !version.is_empty() => (url, Some(version)),
        Some((url, _)) => (url, None),
        None => (canonical, None),
    }
}

/// The version-specific canonical of a resource (`url|version`).
pub fn canonical_of(resource: &Value) -> String {
    let url = resource["url"].as_str().unwrap_or_default();
    match resource["version"].as_str() {
        Some(v) => format!("{url}|{v}"),
        None => url.to_owned(),
    }
}

/// The resource of `items` a canonical names: that version, or without a
/// version the last one listed (the current version).
fn find<'a>(items: &'a [Value], canonical: &str) -> Option<&'a Value> {
    let (url, version) = split(canonical.trim());
    items
        .iter()
        .rev()
        .filter(|r| r["url"].as_str() == Some(url))
        .find(|r| version.is_none_or(|v| r["version"].as_str() == Some(v)))
}

impl Catalog {
    /// A Questionnaire by canonical.
    pub fn questionnaire(&self, canonical: &str) -> Option<&Value> {
        find(&self.questionnaires, canonical)
    }

    /// A Library by canonical.
    pub fn library(&self, canonical: &str) -> Option<&Value> {
        find(&self.libraries, canonical)
    }

    /// A ValueSet by canonical.
    pub fn value_set(&self, canonical: &str) -> Option<&Value> {
        find(&self.value_sets, canonical)
    }

    /// The adaptive form whose Questionnaire a canonical names.
    pub fn adaptive(&self, canonical: &str) -> Option<&Form> {
        let (url, version) = split(canonical.trim());
        self.adaptive
            .iter()
            .rev()
            .filter(|f| f.questionnaire == url)
            .find(|f| version.is_none_or(|v| f.version == v))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_shipped_content_parses_and_is_found_by_canonical() {
        let c = catalog().unwrap();
        let q = c
            .questionnaire("http://example.org/fhir/Questionnaire/imaging-knee|1.0")
            .unwrap();
        assert_eq!(q["resourceType"], "Questionnaire");
        assert!(c
            .questionnaire("http://example.org/fhir/Questionnaire/imaging-knee")
            .is_some());
        assert!(c
            .questionnaire("http://example.org/fhir/Questionnaire/imaging-knee|9.9")
            .is_none());
        let lib = c
            .library("http://example.org/fhir/Library/ImagingKneePrepopulation|1.0")
            .unwrap();
        let types: Vec<&str> = lib["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["contentType"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["text/cql", "application/elm+json"]);
        assert!(c
            .value_set("http://example.org/fhir/ValueSet/knee-imaging-indications|1.0")
            .is_some());
        assert!(c
            .adaptive("http://example.org/fhir/Questionnaire/knee-arthroplasty-adaptive|1.0")
            .is_some());
    }

    #[test]
    fn every_shipped_reference_resolves_in_the_catalog() {
        let c = catalog().unwrap();
        let text = serde_json::to_string(&c.questionnaires).unwrap()
            + &serde_json::to_string(&c.libraries).unwrap();
        for canonical in [
            "http://example.org/fhir/Library/ImagingKneePrepopulation|1.0",
            "http://example.org/fhir/ValueSet/knee-imaging-indications|1.0",
        ] {
            assert!(text.contains(canonical), "{canonical} is referenced");
        }
        // every library the questionnaires name is shipped
        for q in &c.questionnaires {
            for e in q["extension"].as_array().into_iter().flatten() {
                if e["url"] == "http://hl7.org/fhir/StructureDefinition/cqf-library" {
                    let lib = e["valueCanonical"].as_str().unwrap();
                    assert!(c.library(lib).is_some(), "{lib}");
                }
            }
        }
    }

    #[test]
    fn canonicals_split_into_url_and_version() {
        assert_eq!(split("http://x/Q/a|1.0"), ("http://x/Q/a", Some("1.0")));
        assert_eq!(split("http://x/Q/a"), ("http://x/Q/a", None));
        assert_eq!(split("http://x/Q/a|"), ("http://x/Q/a", None));
    }
}
