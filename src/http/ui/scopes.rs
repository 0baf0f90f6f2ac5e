//! The app authorization page's logic: requested scopes explained in words
//! (one checkbox per item), the granular narrowings offered for Observation,
//! Condition and wildcard read scopes (SMART App Launch 2.2 §"Finer-grained
//! resource constraints using search parameters"), and the granted scope
//! assembled from the submitted form.
//!
//! The GET page and the POST answer both derive the same [`Plan`] from the
//! pending request's scopes; the form only says which item positions stay
//! ticked and which narrowing key each chose, so the grant can only ever be
//! the requested scopes, fewer of them, or their category-constrained
//! narrowings (never anything not requested).

use smart_launch::scope::{Perms, ResourceScope, ScopeContext, ScopeSet, SmartScope};

use super::{Fields, UiError};

/// FHIR category code systems used for narrowing.
const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const COND_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";

/// A granular narrowing offered on the page.
struct Narrow {
    /// Form value; also the category code.
    key: &'static str,
    /// Resource type it applies to.
    resource_type: &'static str,
    /// Category code system.
    system: &'static str,
    /// What the narrowed scope covers, as a noun.
    noun: &'static str,
    /// The radio button's label.
    label: &'static str,
}

/// The narrowings offered (US Core category codes).
const NARROWINGS: [Narrow; 4] = [
    Narrow {
        key: "laboratory",
        resource_type: "Observation",
        system: OBS_CATEGORY,
        noun: "laboratory results",
        label: "Only laboratory results",
    },
    Narrow {
        key: "vital-signs",
        resource_type: "Observation",
        system: OBS_CATEGORY,
        noun: "vital signs",
        label: "Only vital signs",
    },
    Narrow {
        key: "problem-list-item",
        resource_type: "Condition",
        system: COND_CATEGORY,
        noun: "problem list",
        label: "Only the problem list",
    },
    Narrow {
        key: "encounter-diagnosis",
        resource_type: "Condition",
        system: COND_CATEGORY,
        noun: "encounter diagnoses",
        label: "Only encounter diagnoses",
    },
];

/// One line of the page: scopes granted together, and their narrowings.
#[derive(Debug, Clone)]
pub struct PlanItem {
    /// The requested scopes this checkbox covers.
    pub scopes: Vec<SmartScope>,
    /// The explanation.
    pub words: String,
    /// `(key, label, narrowed scope)`; the first is `all` (as requested).
    pub narrowings: Vec<(String, String, Option<ResourceScope>)>,
}

/// The whole page.
#[derive(Debug, Clone)]
pub struct Plan(pub Vec<PlanItem>);

impl Plan {
    /// Plans the page for `requested`; `is_self` words patient data as "your".
    pub fn new(requested: &str, is_self: bool) -> Result<Self, UiError> {
        let set = ScopeSet::parse(requested).map_err(UiError::internal)?;
        let mut items: Vec<PlanItem> = Vec::new();
        let mut identity: Option<usize> = None;
        for s in set.iter() {
            if is_identity(s) {
                if let Some(i) = identity {
                    items[i].scopes.push(s.clone());
                    continue;
                }
                identity = Some(items.len());
            }
            items.push(PlanItem {
                scopes: vec![s.clone()],
                words: words(s, is_self),
                narrowings: narrowings(s),
            });
        }
        Ok(Self(items))
    }

    /// The template rows.
    pub fn items(&self) -> Vec<ui::ScopeItem> {
        self.0
            .iter()
            .enumerate()
            .map(|(index, item)| ui::ScopeItem {
                index,
                words: item.words.clone(),
                scopes: join(item.scopes.iter().map(ToString::to_string)),
                narrowings: item
                    .narrowings
                    .iter()
                    .map(|(key, label, scope)| ui::Narrowing {
                        key: key.clone(),
                        label: label.clone(),
                        scope: match scope {
                            Some(s) => s.to_string(),
                            None => join(item.scopes.iter().map(ToString::to_string)),
                        },
                    })
                    .collect(),
            })
            .collect()
    }

    /// The granted scope string from the submitted form: ticked items
    /// (`item=<n>`), each with its narrowing (`narrow-<n>=<key>`, default
    /// `all`). Unknown positions or keys are refused (the form was altered).
    pub fn granted(&self, form: &Fields) -> Result<String, UiError> {
        let tampered = || {
            UiError::BadRequest(
                "The authorization form was altered; start again from the app.".into(),
            )
        };
        let mut out = ScopeSet::default();
        for raw in form.all("item") {
            let n: usize = raw.parse().map_err(|_| tampered())?;
            let item = self.0.get(n).ok_or_else(tampered)?;
            let key = form.get(&format!("narrow-{n}")).unwrap_or("all");
            if item.narrowings.is_empty() {
                if key != "all" {
                    return Err(tampered());
                }
                item.scopes.iter().cloned().for_each(|s| out.insert(s));
                continue;
            }
            let (_, _, narrowed) = item
                .narrowings
                .iter()
                .find(|(k, _, _)| k == key)
                .ok_or_else(tampered)?;
            match narrowed {
                Some(r) => out.insert(SmartScope::Resource(r.clone())),
                None => item.scopes.iter().cloned().for_each(|s| out.insert(s)),
            }
        }
        Ok(out.to_string())
    }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(" ")
}

/// The narrowings offered for `s`: read-only (r/s), unconstrained
/// Observation, Condition or wildcard scopes.
fn narrowings(s: &SmartScope) -> Vec<(String, String, Option<ResourceScope>)> {
    let SmartScope::Resource(r) = s else {
        return Vec::new();
    };
    if !r.constraints.is_empty() || !r.perms.is_subset(Perms::READ) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for n in &NARROWINGS {
        if r.resource_type
            .as_deref()
            .is_some_and(|t| t != n.resource_type)
        {
            continue;
        }
        let narrowed = ResourceScope {
            context: r.context,
            resource_type: Some(n.resource_type.to_owned()),
            perms: r.perms,
            constraints: vec![("category".to_owned(), format!("{}|{}", n.system, n.key))],
            v2: true,
        };
        out.push((n.key.to_owned(), n.label.to_owned(), Some(narrowed)));
    }
    if !out.is_empty() {
        let all = match r.resource_type.as_deref() {
            Some(t) => format!("All {}", noun(t)),
            None => "Everything requested".to_owned(),
        };
        out.insert(0, ("all".to_owned(), all, None));
    }
    out
}

/// Whether `s` only tells the app who the user is (`openid`, `fhirUser`,
/// `profile`, and `udap`, a data holder's Tiered OAuth sign-in).
fn is_identity(s: &SmartScope) -> bool {
    match s {
        SmartScope::OpenId | SmartScope::FhirUser | SmartScope::Profile => true,
        SmartScope::Other(t) => t == crate::oauth::authorize::TIERED_SCOPE,
        _ => false,
    }
}

/// One scope in words.
pub fn words(s: &SmartScope, is_self: bool) -> String {
    if is_identity(s) {
        return "Know who you are".to_owned();
    }
    match s {
        SmartScope::Resource(r) => resource_words(r, is_self),
        SmartScope::OpenId | SmartScope::FhirUser | SmartScope::Profile => {
            "Know who you are".to_owned()
        }
        SmartScope::Launch => "Open with the patient and visit chosen in the EHR".to_owned(),
        SmartScope::LaunchPatient => "Know which patient's record it is working with".to_owned(),
        SmartScope::LaunchEncounter => "Know which visit (encounter) it is working with".to_owned(),
        SmartScope::OfflineAccess => "Stay connected when you are not using the app".to_owned(),
        SmartScope::OnlineAccess => "Stay connected while you are using the app".to_owned(),
        SmartScope::Other(t) => format!("Another permission the app asked for: {t}"),
    }
}

fn resource_words(r: &ResourceScope, is_self: bool) -> String {
    let mut verbs: Vec<&str> = Vec::new();
    match (r.perms.r, r.perms.s) {
        (true, true) => verbs.push("read and search"),
        (true, false) => verbs.push("read"),
        (false, true) => verbs.push("search"),
        (false, false) => {}
    }
    if r.perms.c {
        verbs.push("add");
    }
    if r.perms.u {
        verbs.push("change");
    }
    if r.perms.d {
        verbs.push("delete");
    }
    let verb = match verbs.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "use".to_owned(),
    };
    let thing = constrained_noun(r);
    let object = match r.context {
        ScopeContext::Patient if is_self => format!("your {thing}"),
        ScopeContext::Patient => format!("this patient's {thing}"),
        ScopeContext::User => format!("{thing} you have access to"),
        ScopeContext::System => format!("all patients' {thing}"),
    };
    capitalize(&format!("{verb} {object}"))
}

/// The noun for a scope's type, using a known category when constrained.
fn constrained_noun(r: &ResourceScope) -> String {
    let base = r.resource_type.as_deref().map_or_else(
        || "health records (every kind)".to_owned(),
        |t| noun(t).to_owned(),
    );
    if let [(param, value)] = r.constraints.as_slice() {
        let known = NARROWINGS.iter().find(|n| {
            param == "category"
                && r.resource_type.as_deref() == Some(n.resource_type)
                && *value == format!("{}|{}", n.system, n.key)
        });
        if let Some(n) = known {
            return n.noun.to_owned();
        }
    }
    if r.constraints.is_empty() {
        return base;
    }
    let parts: Vec<String> = r
        .constraints
        .iter()
        .map(|(k, v)| format!("{k} is {}", v.rsplit('|').next().unwrap_or(v)))
        .collect();
    format!("{base} where {}", parts.join(" and "))
}

/// Plain-language name of a resource type.
fn noun(t: &str) -> String {
    let known = match t {
        "Observation" => "observations (labs, vitals…)",
        "Condition" => "conditions (problems, diagnoses)",
        "Patient" => "demographics (name, birth date, contact details)",
        "AllergyIntolerance" => "allergies",
        "MedicationRequest" => "medication prescriptions",
        "MedicationStatement" => "medication lists",
        "Medication" => "medication details",
        "Immunization" => "immunizations",
        "Procedure" => "procedures",
        "Encounter" => "visits (encounters)",
        "DiagnosticReport" => "test reports",
        "DocumentReference" => "clinical documents",
        "CarePlan" => "care plans",
        "CareTeam" => "care teams",
        "Goal" => "health goals",
        "Device" => "implanted and used devices",
        "Coverage" => "insurance coverage",
        "ExplanationOfBenefit" => "claims and explanations of benefit",
        "Practitioner" | "PractitionerRole" => "clinicians' details",
        "Organization" => "organizations' details",
        "Location" => "locations",
        "Provenance" => "record sources (provenance)",
        "Consent" => "privacy consents",
        "AuditEvent" => "access logs (audit events)",
        "QuestionnaireResponse" => "questionnaire answers",
        _ => "",
    };
    if known.is_empty() {
        format!("{t} records")
    } else {
        known.to_owned()
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Fields::parse(body.as_bytes())
    }

    #[test]
    fn scopes_are_explained_in_words() {
        let p = Plan::new(
            "openid fhirUser patient/Observation.rs offline_access user/*.cruds",
            true,
        )
        .unwrap();
        let words: Vec<&str> = p.0.iter().map(|i| i.words.as_str()).collect();
        assert_eq!(
            words,
            [
                "Know who you are",
                "Read and search your observations (labs, vitals…)",
                "Stay connected when you are not using the app",
                "Read and search, add, change and delete health records (every kind) you have access to",
            ]
        );
        assert_eq!(p.0[0].scopes.len(), 2, "openid and fhirUser are one line");
        let other = Plan::new("patient/Condition.read", false).unwrap();
        assert_eq!(
            other.0[0].words,
            "Read and search this patient's conditions (problems, diagnoses)"
        );
    }

    #[test]
    fn narrowings_are_offered_for_observation_condition_and_wildcard_reads() {
        let p = Plan::new("patient/Observation.rs patient/Condition.rs patient/*.rs patient/Observation.cruds patient/MedicationRequest.rs", true).unwrap();
        let keys = |i: usize| {
            p.0[i]
                .narrowings
                .iter()
                .map(|n| n.0.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(0), ["all", "laboratory", "vital-signs"]);
        assert_eq!(keys(1), ["all", "problem-list-item", "encounter-diagnosis"]);
        assert_eq!(keys(2).len(), 5);
        assert!(keys(3).is_empty(), "writes are not narrowed");
        assert!(keys(4).is_empty());
    }

    #[test]
    fn the_grant_is_only_what_was_ticked_and_narrowed() {
        let p = Plan::new(
            "openid fhirUser patient/Observation.read patient/Condition.rs offline_access",
            true,
        )
        .unwrap();
        let granted = p
            .granted(&form(&[
                ("item", "0"),
                ("item", "1"),
                ("narrow-1", "laboratory"),
                ("item", "2"),
                ("narrow-2", "all"),
            ]))
            .unwrap();
        assert_eq!(
            granted,
            "openid fhirUser patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory patient/Condition.rs"
        );
        assert_eq!(p.granted(&form(&[])).unwrap(), "", "nothing ticked");
        for bad in [
            vec![("item", "9")],
            vec![("item", "x")],
            vec![("item", "1"), ("narrow-1", "problem-list-item")],
            vec![("item", "0"), ("narrow-0", "laboratory")],
        ] {
            assert!(
                matches!(p.granted(&form(&bad)), Err(UiError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn narrowed_scopes_read_as_their_category() {
        let p = Plan::new("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs", true).unwrap();
        assert_eq!(p.0[0].words, "Read and search your vital signs");
        assert!(p.0[0].narrowings.is_empty(), "already constrained");
    }
}
