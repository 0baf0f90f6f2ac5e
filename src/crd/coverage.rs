//! The CRD coverage-information extension (`ext-coverage-information`,
//! CRD 2.0.1) on an order, and its coverage-assertion id: an HMAC-SHA256,
//! under the server's secret, of coverage + patient + order code, so the
//! same question gets the same id and different coverages different ids.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::rules::{Decision, Requirement};

/// The extension's canonical URL.
pub const EXT_COVERAGE_INFORMATION: &str =
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information";

/// The coverage-assertion id of (coverage, patient, code).
pub fn assertion_id(secret: &str, coverage: &str, patient: &str, code: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    for part in [coverage, patient, code] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The payer's assertion about one order in the extension's codes (CRD
/// 2.0.1 value sets coverageInfo, coveragePaDetail, AdditionalDocumentation,
/// informationNeeded), kept consistent with invariants crd-ci-q1..q5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// `covered`: covered | not-covered | conditional.
    pub covered: &'static str,
    /// `pa-needed`: no-auth | auth-needed | satisfied | performpa | conditional.
    pub pa_needed: Option<&'static str>,
    /// `doc-needed`: no-doc | clinical | admin | both | conditional.
    pub doc_needed: Option<&'static str>,
    /// The DTR Questionnaire canonical (only with `doc-needed`, crd-ci-q1).
    pub questionnaire: Option<String>,
    /// `info-needed`: performer | location | timeframe | OTH (only when
    /// something is `conditional`, crd-ci-q3).
    pub info_needed: Vec<&'static str>,
    /// Why, in words (`reason.text`), when the codes alone do not say.
    pub reason: Option<String>,
    /// The authorization number that satisfies prior authorization (only
    /// with `pa-needed = satisfied`, crd-ci-q5).
    pub satisfied_pa_id: Option<String>,
}

impl Assessment {
    /// What the payer rules' decision says.
    pub fn of(d: &Decision) -> Self {
        let (covered, pa_needed, doc_needed) = match d.requirement {
            Requirement::NoAuth => ("covered", Some("no-auth"), None),
            Requirement::AutoApprove | Requirement::Pend => ("covered", Some("auth-needed"), None),
            Requirement::NeedsDocumentation => ("covered", Some("auth-needed"), Some("clinical")),
            // crd-ci-q2: no pa-needed when not covered.
            Requirement::AutoDeny => ("not-covered", None, None),
        };
        Self {
            covered,
            pa_needed,
            doc_needed,
            questionnaire: doc_needed.and(d.questionnaire.clone()),
            info_needed: Vec::new(),
            reason: None,
            satisfied_pa_id: None,
        }
    }

    /// Prior authorization already granted (`auth_number`): covered, PA
    /// satisfied, no documentation for it (crd-ci-q4, q5).
    pub fn satisfied_by(self, auth_number: String) -> Self {
        Self {
            covered: "covered",
            pa_needed: Some("satisfied"),
            doc_needed: None,
            questionnaire: None,
            satisfied_pa_id: Some(auth_number),
            ..self
        }
    }

    /// Coverage depends on `info` the order lacks: `covered` becomes
    /// `conditional` (what the code alone implies for PA and documentation
    /// is kept, crd-ci-q2) and `info-needed` names it (crd-ci-q3).
    pub fn needing(self, info: Vec<&'static str>, why: String) -> Self {
        if info.is_empty() || self.covered == "not-covered" {
            return self;
        }
        let mut info_needed = self.info_needed;
        info_needed.extend(info);
        let reason = match self.reason {
            Some(r) => format!("{r}; {why}"),
            None => why,
        };
        Self {
            covered: "conditional",
            pa_needed: self.pa_needed.or(Some("conditional")),
            info_needed,
            reason: Some(reason),
            ..self
        }
    }

    /// Two possible answers (which one holds depends on information the
    /// order lacks): each code the same in both stays, one that differs
    /// becomes `conditional`, one given in only one is taken from it.
    pub fn either(self, other: Self) -> Self {
        fn pick(a: Option<&'static str>, b: Option<&'static str>) -> Option<&'static str> {
            match (a, b) {
                (Some(x), Some(y)) if x == y => Some(x),
                (Some(_), Some(_)) => Some("conditional"),
                (x, y) => x.or(y),
            }
        }
        let covered = pick(Some(self.covered), Some(other.covered)).unwrap_or("conditional");
        let doc_needed = pick(self.doc_needed, other.doc_needed);
        Self {
            covered,
            pa_needed: pick(self.pa_needed, other.pa_needed),
            doc_needed,
            questionnaire: doc_needed.and(self.questionnaire.or(other.questionnaire)),
            info_needed: self.info_needed,
            reason: self.reason,
            satisfied_pa_id: None,
        }
    }

    /// Whether anything is `conditional` (then `info-needed` must be given).
    pub fn conditional(&self) -> bool {
        [Some(self.covered), self.pa_needed, self.doc_needed].contains(&Some("conditional"))
    }
}

/// One assertion about one order under one coverage.
pub struct Assertion<'a> {
    /// `Coverage/<id>`.
    pub coverage: &'a str,
    /// The order's code, echoed as `billingCode`.
    pub coding: &'a Value,
    /// The payer's answer.
    pub assessment: &'a Assessment,
    /// The coverage-assertion id.
    pub id: &'a str,
    /// Today (`YYYY-MM-DD`).
    pub date: &'a str,
}

/// The `ext-coverage-information` extension of `a`.
pub fn extension(a: &Assertion) -> Value {
    let c = a.assessment;
    let mut parts = vec![
        json!({"url": "coverage", "valueReference": {"reference": a.coverage}}),
        json!({"url": "covered", "valueCode": c.covered}),
    ];
    if let Some(pa) = c.pa_needed {
        parts.push(json!({"url": "pa-needed", "valueCode": pa}));
    }
    if let Some(doc) = c.doc_needed {
        parts.push(json!({"url": "doc-needed", "valueCode": doc}));
        if c.pa_needed != Some("satisfied") {
            parts.push(json!({"url": "doc-purpose", "valueCode": "withpa"}));
        }
    }
    for info in &c.info_needed {
        parts.push(json!({"url": "info-needed", "valueCode": info}));
    }
    if a.coding.get("code").is_some() {
        parts.push(json!({"url": "billingCode", "valueCoding": a.coding}));
    }
    if let Some(why) = &c.reason {
        parts.push(json!({"url": "reason", "valueCodeableConcept": {"text": why}}));
    }
    if let (Some(_), Some(q)) = (c.doc_needed, &c.questionnaire) {
        parts.push(json!({"url": "questionnaire", "valueCanonical": q}));
    }
    parts.push(json!({"url": "date", "valueDate": a.date}));
    parts.push(json!({"url": "coverage-assertion-id", "valueString": a.id}));
    if let (Some("satisfied"), Some(id)) = (c.pa_needed, &c.satisfied_pa_id) {
        parts.push(json!({"url": "satisfied-pa-id", "valueString": id}));
    }
    json!({"url": EXT_COVERAGE_INFORMATION, "extension": parts})
}

/// `order` with `ext` added (replacing an earlier assertion for the same
/// coverage, so re-signing does not pile them up).
pub fn annotate(order: &Value, ext: Value, coverage: &str) -> Value {
    let mut out = order.clone();
    if let Some(obj) = out.as_object_mut() {
        let list = obj.entry("extension").or_insert_with(|| json!([]));
        if let Some(arr) = list.as_array_mut() {
            arr.retain(|e| {
                e["url"] != EXT_COVERAGE_INFORMATION
                    || e["extension"]
                        .as_array()
                        .and_then(|p| p.iter().find(|x| x["url"] == "coverage"))
                        .map(|x| x["valueReference"]["reference"] != coverage)
                        .unwrap_or(true)
            });
            arr.push(ext);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertion_ids_are_stable_and_distinct() {
        let a = assertion_id("s", "Coverage/1", "Patient/p", "72148");
        assert_eq!(a, assertion_id("s", "Coverage/1", "Patient/p", "72148"));
        assert_ne!(a, assertion_id("s", "Coverage/2", "Patient/p", "72148"));
        assert_ne!(a, assertion_id("s", "Coverage/1", "Patient/p", "97110"));
        assert_ne!(a, assertion_id("t", "Coverage/1", "Patient/p", "72148"));
        assert_eq!(a.len(), 32);
    }

    fn decision(requirement: Requirement, questionnaire: Option<&str>) -> Decision {
        Decision {
            requirement,
            questionnaire: questionnaire.map(str::to_owned),
            reason: None,
        }
    }

    /// The sub-extension urls and values of `e`.
    fn parts(e: &Value) -> Vec<(String, Value)> {
        e["extension"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let v = p
                    .as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value")))
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Null);
                (p["url"].as_str().unwrap_or_default().to_owned(), v)
            })
            .collect()
    }

    fn ext(a: &Assessment) -> Vec<(String, Value)> {
        let coding = json!({"code": "x"});
        parts(&extension(&Assertion {
            coverage: "Coverage/1",
            coding: &coding,
            assessment: a,
            id: "i",
            date: "2026-01-01",
        }))
    }

    fn has(p: &[(String, Value)], url: &str) -> bool {
        p.iter().any(|(u, _)| u == url)
    }

    fn value<'a>(p: &'a [(String, Value)], url: &str) -> Option<&'a Value> {
        p.iter().find(|(u, _)| u == url).map(|(_, v)| v)
    }

    #[test]
    fn not_covered_has_no_pa_needed() {
        let p = ext(&Assessment::of(&decision(Requirement::AutoDeny, None)));
        assert!(has(&p, "covered") && !has(&p, "pa-needed"), "crd-ci-q2");
    }

    #[test]
    fn questionnaires_only_come_with_doc_needed() {
        let q = Some("http://q|1");
        let p = ext(&Assessment::of(&decision(
            Requirement::NeedsDocumentation,
            q,
        )));
        assert_eq!(value(&p, "doc-needed"), Some(&json!("clinical")));
        assert_eq!(value(&p, "doc-purpose"), Some(&json!("withpa")));
        assert_eq!(value(&p, "questionnaire"), Some(&json!("http://q|1")));
        let p = ext(&Assessment::of(&decision(Requirement::Pend, q)));
        assert!(
            !has(&p, "questionnaire") && !has(&p, "doc-needed"),
            "crd-ci-q1"
        );
    }

    #[test]
    fn satisfied_carries_the_authorization_and_no_pa_documentation() {
        let a = Assessment::of(&decision(Requirement::NeedsDocumentation, Some("http://q")))
            .satisfied_by("PA-1".into());
        let p = ext(&a);
        assert_eq!(value(&p, "pa-needed"), Some(&json!("satisfied")));
        assert_eq!(value(&p, "satisfied-pa-id"), Some(&json!("PA-1")));
        assert!(
            !has(&p, "doc-purpose") && !has(&p, "questionnaire"),
            "crd-ci-q4"
        );
        let p = ext(&Assessment::of(&decision(Requirement::Pend, None)));
        assert!(!has(&p, "satisfied-pa-id"), "crd-ci-q5");
    }

    #[test]
    fn missing_information_makes_coverage_conditional() {
        let a = Assessment::of(&decision(Requirement::Pend, None))
            .needing(vec!["performer", "location"], "who and where".into());
        assert!(a.conditional());
        let p = ext(&a);
        assert_eq!(value(&p, "covered"), Some(&json!("conditional")));
        assert_eq!(value(&p, "pa-needed"), Some(&json!("auth-needed")));
        let infos: Vec<&Value> = p
            .iter()
            .filter(|(u, _)| u == "info-needed")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(infos, [&json!("performer"), &json!("location")]);
        assert_eq!(value(&p, "reason"), Some(&json!({"text": "who and where"})));
        // not covered by code alone: nothing to ask
        let deny = Assessment::of(&decision(Requirement::AutoDeny, None));
        assert_eq!(deny.clone().needing(vec!["performer"], "x".into()), deny);
    }

    #[test]
    fn two_possible_answers_merge_into_conditional_codes() {
        let approve = Assessment::of(&decision(Requirement::AutoApprove, None));
        let deny = Assessment::of(&decision(Requirement::AutoDeny, None));
        let a = deny.either(approve.clone());
        assert_eq!(
            (a.covered, a.pa_needed),
            ("conditional", Some("auth-needed"))
        );
        let pend = Assessment::of(&decision(Requirement::Pend, None));
        assert_eq!(
            pend.either(approve.clone()),
            approve,
            "same codes either way"
        );
        let none = Assessment::of(&decision(Requirement::NoAuth, None));
        let a = none.either(approve);
        assert_eq!((a.covered, a.pa_needed), ("covered", Some("conditional")));
    }
}
