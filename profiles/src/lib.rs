//! Profile constraints kept as data, and a small checker for them.
//!
//! A [`Profile`] is a list of element constraints (path, cardinality,
//! must-support, fixed value or pattern, required binding to a small value
//! set) read from JSON. The Da Vinci PAS 2.0.1 profiles fhirgate enforces
//! live in `profiles/pas/*.json` and are embedded by [`pas`]; other IGs
//! (US Core, CARIN, HRex for `$validate`) can add their own directory of
//! the same shape and reuse [`Profile::check`].
//!
//! Paths are dotted element names relative to the resource; each step walks
//! every repetition. Issues name the element FHIRPath-style from a caller
//! supplied root, e.g. `Bundle.entry[0].resource.ofType(Claim).insurance[0].coverage`.

use serde::Deserialize;
use serde_json::Value;

/// One profile: the resource type it applies to and its constraints.
#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    /// Canonical URL of the StructureDefinition.
    pub url: String,
    /// Computable name.
    pub name: String,
    /// The resource type constrained.
    #[serde(rename = "resourceType")]
    pub resource_type: String,
    /// Element constraints, parents before children.
    pub elements: Vec<Element>,
}

/// The constraints on one element.
#[derive(Debug, Clone, Deserialize)]
pub struct Element {
    /// Dotted path relative to the resource (`insurance.coverage`).
    pub path: String,
    /// Minimum occurrences per parent instance.
    #[serde(default)]
    pub min: u32,
    /// Maximum occurrences per parent instance (`*` for unbounded).
    #[serde(default = "star")]
    pub max: String,
    /// Must-support in the IG (reported, not enforced beyond `min`).
    #[serde(default, rename = "mustSupport")]
    pub must_support: bool,
    /// Every value must equal this.
    #[serde(default)]
    pub fixed: Option<Value>,
    /// Every value must contain this (JSON subset).
    #[serde(default)]
    pub pattern: Option<Value>,
    /// A required binding to a small value set.
    #[serde(default)]
    pub binding: Option<Binding>,
}

/// A required binding to an enumerated value set.
#[derive(Debug, Clone, Deserialize)]
pub struct Binding {
    /// Canonical of the value set (for messages).
    #[serde(rename = "valueSet")]
    pub value_set: String,
    /// Allowed codes: `system|code`, or a bare `code` for `code` elements.
    pub codes: Vec<String>,
}

/// What is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// FHIR IssueType code: `required`, `structure`, `value`, `code-invalid`.
    pub code: &'static str,
    /// FHIRPath-like element path.
    pub path: String,
    /// Human-readable text.
    pub message: String,
}

fn star() -> String {
    "*".to_owned()
}

impl Profile {
    /// Parses a profile from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Checks `resource` against every constraint; `root` names the
    /// resource in issue paths (e.g. `Bundle.entry[0].resource.ofType(Claim)`).
    pub fn check(&self, resource: &Value, root: &str) -> Vec<Issue> {
        let mut issues = Vec::new();
        if resource["resourceType"] != self.resource_type.as_str() {
            issues.push(Issue {
                code: "structure",
                path: root.to_owned(),
                message: format!("{} expects a {} resource", self.name, self.resource_type),
            });
            return issues;
        }
        for e in &self.elements {
            e.check(resource, root, &self.name, &mut issues);
        }
        issues
    }
}

impl Element {
    fn check(&self, resource: &Value, root: &str, profile: &str, issues: &mut Vec<Issue>) {
        let (parent, name) = match self.path.rsplit_once('.') {
            Some((p, n)) => (Some(p), n),
            None => (None, self.path.as_str()),
        };
        let parents = match parent {
            Some(p) => walk(resource, root, p),
            None => vec![(root.to_owned(), resource)],
        };
        for (ppath, pval) in parents {
            let values = children(pval, &ppath, name);
            let n = values.len() as u32;
            if n < self.min {
                issues.push(Issue {
                    code: "required",
                    path: format!("{ppath}.{name}"),
                    message: format!(
                        "{profile}: {name} is required (min {}), found {n}",
                        self.min
                    ),
                });
            }
            if let Ok(max) = self.max.parse::<u32>() {
                if n > max {
                    issues.push(Issue {
                        code: "structure",
                        path: format!("{ppath}.{name}"),
                        message: format!("{profile}: {name} allows at most {max}, found {n}"),
                    });
                }
            }
            for (vpath, v) in values {
                self.check_value(v, &vpath, profile, issues);
            }
        }
    }

    fn check_value(&self, v: &Value, path: &str, profile: &str, issues: &mut Vec<Issue>) {
        if let Some(fixed) = &self.fixed {
            if v != fixed {
                issues.push(Issue {
                    code: "value",
                    path: path.to_owned(),
                    message: format!("{profile}: must be {fixed}, found {v}"),
                });
            }
        }
        if let Some(pattern) = &self.pattern {
            if !contains(v, pattern) {
                issues.push(Issue {
                    code: "value",
                    path: path.to_owned(),
                    message: format!("{profile}: must match the pattern {pattern}"),
                });
            }
        }
        if let Some(b) = &self.binding {
            let found = codes_of(v);
            if !found.iter().any(|c| b.codes.iter().any(|a| a == c)) {
                issues.push(Issue {
                    code: "code-invalid",
                    path: path.to_owned(),
                    message: format!(
                        "{profile}: the code is not in the required value set {}",
                        b.value_set
                    ),
                });
            }
        }
    }
}

/// Every value at a dotted `path` under `v`, with its FHIRPath-like name.
pub fn walk<'a>(v: &'a Value, root: &str, path: &str) -> Vec<(String, &'a Value)> {
    let mut current = vec![(root.to_owned(), v)];
    for step in path.split('.') {
        current = current
            .into_iter()
            .flat_map(|(p, v)| children(v, &p, step))
            .collect();
    }
    current
}

/// The values of element `name` of `v` (arrays as indexed repetitions).
fn children<'a>(v: &'a Value, path: &str, name: &str) -> Vec<(String, &'a Value)> {
    match v.get(name) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, x)| (format!("{path}.{name}[{i}]"), x))
            .collect(),
        Some(x) => vec![(format!("{path}.{name}"), x)],
    }
}

/// Whether `v` has everything `pattern` has (arrays: each pattern item
/// matched by some item).
fn contains(v: &Value, pattern: &Value) -> bool {
    match (v, pattern) {
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(k, pv)| a.get(k).is_some_and(|av| contains(av, pv))),
        (Value::Array(a), Value::Array(b)) => {
            b.iter().all(|pv| a.iter().any(|av| contains(av, pv)))
        }
        _ => v == pattern,
    }
}

/// The codes a value carries: a `code` string, a Coding's `system|code`,
/// or every coding of a CodeableConcept.
fn codes_of(v: &Value) -> Vec<String> {
    let coding = |c: &Value| match (c["system"].as_str(), c["code"].as_str()) {
        (Some(s), Some(k)) => Some(format!("{s}|{k}")),
        (None, Some(k)) => Some(k.to_owned()),
        _ => None,
    };
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Object(_) if v.get("coding").is_some() => v["coding"]
            .as_array()
            .map(|cs| cs.iter().filter_map(coding).collect())
            .unwrap_or_default(),
        Value::Object(_) => coding(v).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The embedded profile texts of Da Vinci PAS 2.0.1.
const PAS_SOURCES: &[&str] = &[
    include_str!("../pas/request-bundle.json"),
    include_str!("../pas/claim.json"),
    include_str!("../pas/claim-inquiry.json"),
    include_str!("../pas/beneficiary.json"),
    include_str!("../pas/coverage.json"),
    include_str!("../pas/insurer.json"),
    include_str!("../pas/requestor.json"),
    include_str!("../pas/practitionerrole.json"),
    include_str!("../pas/servicerequest.json"),
    include_str!("../pas/devicerequest.json"),
    include_str!("../pas/medicationrequest.json"),
];

/// The embedded profile texts of Da Vinci PAS 2.2 that differ from 2.0.1
/// (`profiles/pas-2.2/README.md` says what and where from).
const PAS_2_2_SOURCES: &[&str] = &[
    include_str!("../pas-2.2/claim.json"),
    include_str!("../pas-2.2/claim-update.json"),
];

/// A set of profiles, looked up by computable name.
#[derive(Debug, Clone)]
pub struct Profiles(Vec<Profile>);

impl Profiles {
    /// The profile named `name` (e.g. `PASClaim`).
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.0.iter().find(|p| p.name == name)
    }
    /// All profiles.
    pub fn all(&self) -> &[Profile] {
        &self.0
    }
}

/// The Da Vinci PAS 2.0.1 profiles (parsed once; a file that does not
/// parse is a build defect caught by this crate's tests, and skipped).
pub fn pas() -> &'static Profiles {
    static PAS: std::sync::OnceLock<Profiles> = std::sync::OnceLock::new();
    PAS.get_or_init(|| {
        Profiles(
            PAS_SOURCES
                .iter()
                .filter_map(|t| Profile::from_json(t).ok())
                .collect(),
        )
    })
}

/// The Da Vinci PAS 2.2 profiles: the 2.0.1 set with the 2.2 files
/// replacing profiles of the same name (or adding new ones).
pub fn pas_2_2() -> &'static Profiles {
    static PAS_2_2: std::sync::OnceLock<Profiles> = std::sync::OnceLock::new();
    PAS_2_2.get_or_init(|| {
        let newer: Vec<Profile> = PAS_2_2_SOURCES
            .iter()
            .filter_map(|t| Profile::from_json(t).ok())
            .collect();
        let mut all: Vec<Profile> = pas()
            .all()
            .iter()
            .filter(|p| newer.iter().all(|n| n.name != p.name))
            .cloned()
            .collect();
        all.extend(newer);
        Profiles(all)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn every_pas_profile_parses() {
        assert_eq!(pas().all().len(), PAS_SOURCES.len());
        assert!(pas().get("PASClaim").is_some());
    }

    #[test]
    fn pas_2_2_replaces_and_adds_profiles() {
        assert_eq!(
            pas_2_2().all().len(),
            PAS_SOURCES.len() + 1,
            "claim replaced, claim-update added"
        );
        let update = pas_2_2().get("PASClaimUpdate").unwrap();
        let issues = update.check(&json!({"resourceType": "Claim"}), "Claim");
        assert!(
            issues.iter().any(|i| i.path == "Claim.related"),
            "{issues:?}"
        );
        let two_ids =
            json!({"resourceType": "Claim", "identifier": [{"value": "a"}, {"value": "b"}]});
        let max = |p: &Profile| {
            p.check(&two_ids, "Claim")
                .iter()
                .any(|i| i.path == "Claim.identifier" && i.code == "structure")
        };
        assert!(
            max(pas().get("PASClaim").unwrap()),
            "2.0.1: identifier 1..1"
        );
        assert!(
            !max(pas_2_2().get("PASClaim").unwrap()),
            "2.2: identifier 1..2"
        );
        assert!(pas().get("PASClaimUpdate").is_none());
    }

    #[test]
    fn cardinality_fixed_and_binding_name_the_path() {
        let p = pas().get("PASClaim").unwrap();
        let claim = json!({"resourceType": "Claim", "use": "claim", "status": "bogus",
            "insurance": [{"sequence": 1, "focal": true}], "item": [{"sequence": 1}]});
        let issues = p.check(&claim, "Claim");
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"Claim.identifier"), "{paths:?}");
        assert!(paths.contains(&"Claim.use"), "{paths:?}");
        assert!(paths.contains(&"Claim.status"), "{paths:?}");
        assert!(paths.contains(&"Claim.insurance[0].coverage"), "{paths:?}");
        assert!(
            paths.contains(&"Claim.item[0].productOrService"),
            "{paths:?}"
        );
    }

    #[test]
    fn max_and_pattern_are_checked() {
        let p = Profile::from_json(
            r#"{"url":"u","name":"T","resourceType":"Patient","elements":[
              {"path":"gender","max":"1"},
              {"path":"identifier","max":"1","pattern":{"system":"s"}}]}"#,
        )
        .unwrap();
        let issues = p.check(
            &json!({"resourceType":"Patient","identifier":[{"system":"x"},{"system":"s"}]}),
            "Patient",
        );
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert_eq!(issues[0].path, "Patient.identifier");
        assert_eq!(issues[1].path, "Patient.identifier[0]");
        assert!(p.check(&json!({"resourceType":"Claim"}), "X")[0].code == "structure");
    }
}
