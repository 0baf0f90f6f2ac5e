//! The grant form → a FHIR R4 `Consent`.
//!
//! Every Consent the portal writes is `status` active, `scope`
//! patient-privacy (consentscope), `category` LOINC 59284-0 (Patient
//! Consent), `patient` and `performer` = the patient, `dateTime` = now, and
//! `policyRule` v3-ActCode `OPTOUT` (a "deny" choice: the patient opts out
//! of some sharing) or `OPTIN` (an "allow only" choice: the patient opts in
//! to nothing but what is named). The provision tree, read as the consent
//! engine reads it (root `type` = base decision, nested = exceptions):
//!
//! - **deny X**: the root permits and one nested `deny` provision holds the
//!   conditions (actors, security labels, purposes), so only X is taken
//!   away. Under an opt-in deployment policy the root carries no `type`
//!   instead (a typed root `permit` would there grant everything else,
//!   which the patient did not ask for); the nested deny is explicit.
//! - **allow only X**: the root denies and one nested `permit` provision
//!   holds the conditions.
//!
//! The optional end date is the root `provision.period.end` (a date: the
//! Consent applies through the whole of that day). Conditions within one
//! kind are alternatives (any named app or person, any named category, any
//! named purpose); different kinds must all hold.

use serde_json::{json, Value};

use super::{
    vocab::{self, Term, ACT_CODE, ACT_REASON, CONSENT_SCOPE, LOINC, PARTICIPATION},
    words,
};
use crate::http::ui::Fields;

/// One actor the patient named: the reference and its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// `Device/<client_id>`, `Organization/<id>`, `Practitioner/<id>`.
    pub reference: String,
    /// What the patient saw (app name, person or organization name).
    pub display: String,
}

/// What the form asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `true`: "allow only X"; `false`: "deny X".
    pub allow_only: bool,
    /// Who (empty: anyone).
    pub parties: Vec<Party>,
    /// Sensitive categories (empty: every record).
    pub categories: Vec<&'static Term>,
    /// Purposes of use (empty: any purpose).
    pub purposes: Vec<&'static Term>,
    /// Last day (`YYYY-MM-DD`), if any.
    pub end: Option<String>,
}

/// The form's fields as typed, before the parties are looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entered {
    /// `deny` or `allow`.
    pub decision: String,
    /// `Device/<client_id>` from the app list (empty: none).
    pub app: String,
    /// `Organization/x` or `Practitioner/y` from the list (empty: none).
    pub party: String,
    /// A typed reference (empty: none).
    pub reference: String,
    /// Category codes ticked.
    pub categories: Vec<String>,
    /// Purpose codes ticked.
    pub purposes: Vec<String>,
    /// End date typed (empty: none).
    pub end: String,
}

impl Entered {
    /// Reads the posted form.
    pub fn parse(f: &Fields) -> Self {
        let text = |k: &str| f.get(k).unwrap_or("").trim().to_owned();
        Self {
            decision: text("decision"),
            app: text("app"),
            party: text("party"),
            reference: text("reference"),
            categories: f.all("category").map(str::to_owned).collect(),
            purposes: f.all("purpose").map(str::to_owned).collect(),
            end: text("end"),
        }
    }

    /// The references named (app, listed party, typed reference), deduplicated.
    pub fn references(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in [&self.app, &self.party, &self.reference] {
            if !r.is_empty() && !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }

    /// Checks everything but the parties (looked up by the caller);
    /// `today` is `YYYY-MM-DD`. The error is a sentence for the page.
    pub fn check(&self, parties: Vec<Party>, today: &str) -> Result<Grant, String> {
        let allow_only =
            match self.decision.as_str() {
                "deny" => false,
                "allow" => true,
                _ => return Err(
                    "Choose what you want to do: stop sharing something, or share only something."
                        .into(),
                ),
            };
        let mut categories = Vec::new();
        for c in &self.categories {
            let t = vocab::category(c).ok_or("That kind of record is not one offered here.")?;
            if !categories.contains(&t) {
                categories.push(t);
            }
        }
        let mut purposes = Vec::new();
        for p in &self.purposes {
            let t = vocab::purpose(p).ok_or("That purpose is not one offered here.")?;
            if !purposes.contains(&t) {
                purposes.push(t);
            }
        }
        let end = if self.end.is_empty() {
            None
        } else {
            let ok = valid_date(&self.end);
            if !ok {
                return Err("Give the end date as a date, like 2027-01-31.".into());
            }
            if self.end.as_str() < today {
                return Err(format!(
                    "The end date {} has already passed. Pick today or a later day, or leave it empty.",
                    self.end
                ));
            }
            Some(self.end.clone())
        };
        if allow_only && parties.is_empty() && categories.is_empty() && purposes.is_empty() {
            return Err(
                "To share only some of your records, pick at least one app, organization, \
                 practitioner, kind of record or purpose. (To share everything again, revoke \
                 your choices instead.)"
                    .into(),
            );
        }
        Ok(Grant {
            allow_only,
            parties,
            categories,
            purposes,
            end,
        })
    }
}

/// `YYYY-MM-DD` naming a real day.
pub fn valid_date(s: &str) -> bool {
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shape && crate::consent::time::parse_instant(s).is_ok()
}

/// The FHIR R4 Consent for `grant`, by the patient `Patient/<id>`, at
/// `now` (a FHIR dateTime). `opt_in_base`: the deployment's base policy is
/// opt-in (see the module docs).
pub fn consent(patient: &str, grant: &Grant, now: &str, opt_in_base: bool) -> Value {
    let mut condition = json!({
        "type": if grant.allow_only { "permit" } else { "deny" },
    });
    if !grant.parties.is_empty() {
        condition["actor"] = grant
            .parties
            .iter()
            .map(|p| {
                json!({
                    "role": {"coding": [{
                        "system": PARTICIPATION,
                        "code": "IRCP",
                        "display": "information recipient",
                    }]},
                    "reference": {"reference": p.reference, "display": p.display},
                })
            })
            .collect();
    }
    if !grant.categories.is_empty() {
        condition["securityLabel"] = grant
            .categories
            .iter()
            .map(|t| json!({"system": ACT_CODE, "code": t.code, "display": t.display}))
            .collect();
    }
    if !grant.purposes.is_empty() {
        condition["purpose"] = grant
            .purposes
            .iter()
            .map(|t| json!({"system": ACT_REASON, "code": t.code, "display": t.display}))
            .collect();
    }
    let mut root = json!({"provision": [condition]});
    match (grant.allow_only, opt_in_base) {
        (true, _) => root["type"] = json!("deny"),
        (false, false) => root["type"] = json!("permit"),
        (false, true) => {}
    }
    if let Some(end) = &grant.end {
        root["period"] = json!({"end": end});
    }
    let (rule, rule_display) = if grant.allow_only {
        ("OPTIN", "opt-in")
    } else {
        ("OPTOUT", "opt-out")
    };
    let mut c = json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{
            "system": CONSENT_SCOPE,
            "code": "patient-privacy",
            "display": "Privacy Consent",
        }]},
        "category": [{"coding": [{
            "system": LOINC,
            "code": "59284-0",
            "display": "Patient Consent",
        }]}],
        "patient": {"reference": patient},
        "dateTime": now,
        "performer": [{"reference": patient}],
        "policyRule": {"coding": [{"system": ACT_CODE, "code": rule, "display": rule_display}]},
        "provision": root,
    });
    let text = words::describe(&c, &words::Names::new()).join(" ");
    c["text"] = json!({
        "status": "generated",
        "div": format!(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>",
            escape(&text)
        ),
    });
    c
}

/// Escapes text for XHTML narrative.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{
        model::{ConsentStatus, ProvisionType},
        parse_consent,
    };

    fn entered(decision: &str) -> Entered {
        Entered {
            decision: decision.into(),
            ..Entered::default()
        }
    }

    #[test]
    fn a_deny_is_a_permit_root_with_a_nested_deny() {
        let mut e = entered("deny");
        e.categories = vec!["MH".into(), "PSY".into(), "MH".into()];
        e.purposes = vec!["HRESCH".into()];
        e.end = "2027-01-31".into();
        let party = Party {
            reference: "Device/gc".into(),
            display: "Growth Chart".into(),
        };
        let g = e.check(vec![party], "2026-01-01").expect("valid");
        assert_eq!(g.categories.len(), 2, "duplicates dropped");
        let c = consent("Patient/p1", &g, "2026-01-01T10:00:00Z", false);
        assert_eq!(c["policyRule"]["coding"][0]["code"], "OPTOUT");
        assert_eq!(c["provision"]["type"], "permit");
        assert_eq!(c["provision"]["period"]["end"], "2027-01-31");
        let d = &c["provision"]["provision"][0];
        assert_eq!(d["type"], "deny");
        assert_eq!(d["actor"][0]["reference"]["reference"], "Device/gc");
        assert_eq!(d["securityLabel"][0]["system"], ACT_CODE);
        assert_eq!(d["purpose"][0]["system"], ACT_REASON);
        assert_eq!(c["category"][0]["coding"][0]["code"], "59284-0");
        assert_eq!(c["performer"][0]["reference"], "Patient/p1");
        let text = c["text"]["div"].as_str().unwrap_or_default();
        assert!(
            text.contains("may not see your mental-health and psychiatric records for research until 2027-01-31"),
            "{text}"
        );
        let model = parse_consent(&c).expect("the engine reads it");
        assert_eq!(model.status, ConsentStatus::Active);
        let root = model.provision.expect("root");
        assert_eq!(root.kind, Some(ProvisionType::Permit));
        assert_eq!(root.provisions[0].kind, Some(ProvisionType::Deny));
        let opt_in = consent("Patient/p1", &g, "2026-01-01T10:00:00Z", true);
        assert!(opt_in["provision"].get("type").is_none());
        assert!(parse_consent(&opt_in).is_ok());
    }

    #[test]
    fn an_allow_only_is_a_deny_root_with_a_nested_permit() {
        let mut e = entered("allow");
        e.purposes = vec!["TREAT".into()];
        let g = e.check(Vec::new(), "2026-01-01").expect("valid");
        let c = consent("Patient/p1", &g, "2026-01-01T10:00:00Z", false);
        assert_eq!(c["policyRule"]["coding"][0]["code"], "OPTIN");
        assert_eq!(c["provision"]["type"], "deny");
        assert_eq!(c["provision"]["provision"][0]["type"], "permit");
        assert!(c["provision"].get("period").is_none());
        assert!(parse_consent(&c).is_ok());
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(entered("").check(Vec::new(), "2026-01-01").is_err());
        assert!(entered("allow")
            .check(Vec::new(), "2026-01-01")
            .is_err_and(|e| e.contains("pick at least one")));
        let mut e = entered("deny");
        e.categories = vec!["NOPE".into()];
        assert!(e.check(Vec::new(), "2026-01-01").is_err());
        let mut e = entered("deny");
        e.purposes = vec!["ETREAT".into()];
        assert!(e.check(Vec::new(), "2026-01-01").is_err(), "not offered");
        for bad in ["2026-02-30", "31/01/2027", "2027-1-31", "tomorrow"] {
            let mut e = entered("deny");
            e.end = bad.into();
            assert!(e.check(Vec::new(), "2026-01-01").is_err(), "{bad}");
        }
        let mut e = entered("deny");
        e.end = "2025-12-31".into();
        assert!(e
            .check(Vec::new(), "2026-01-01")
            .is_err_and(|m| m.contains("already passed")));
        e.end = "2026-01-01".into();
        assert!(e.check(Vec::new(), "2026-01-01").is_ok(), "today is fine");
        assert!(entered("deny").check(Vec::new(), "2026-01-01").is_ok());
    }

    #[test]
    fn references_are_collected_once() {
        let e = Entered {
            app: "Device/a".into(),
            party: "Practitioner/7".into(),
            reference: "Practitioner/7".into(),
            ..Entered::default()
        };
        assert_eq!(e.references(), ["Device/a", "Practitioner/7"]);
    }
}
