//! Payer adjudication rules, read from a TOML file (`[prior_auth]
//! rules_file`, or the shipped `default_rules.toml`), and the per-item
//! verdict they give. Pure: no I/O beyond [`Rules::load`].

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use serde::Deserialize;
use serde_json::Value;

use super::config::PriorAuthConfig;

/// The shipped demo rules.
pub const DEFAULT_RULES: &str = include_str!("default_rules.toml");

/// What a rule does with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// No prior authorization needed.
    NoAuth,
    /// Certified when the rule's criteria hold.
    AutoApprove,
    /// Not certified, with the rule's reason.
    AutoDeny,
    /// Pended until documentation (a QuestionnaireResponse) is attached.
    NeedsDoc,
    /// Pended for a human reviewer.
    Pend,
}

/// One rule: a service code and what happens to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Coding system of `Claim.item.productOrService`.
    pub system: String,
    /// Code.
    pub code: String,
    /// The action.
    pub action: Action,
    /// auto-approve: at most this quantity.
    #[serde(default)]
    pub max_quantity: Option<f64>,
    /// auto-approve: one of the Claim's diagnoses (`system|code`) must be here.
    #[serde(default)]
    pub diagnoses: Vec<String>,
    /// auto-approve: the action when the criteria do not hold (default pend).
    #[serde(default)]
    pub otherwise: Option<Action>,
    /// auto-deny: the X12 HCR03 reason code.
    #[serde(default)]
    pub reason: Option<String>,
    /// needs-doc: the Questionnaire canonical the documentation answers.
    #[serde(default)]
    pub questionnaire: Option<String>,
}

/// The whole rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Items no rule matches.
    #[serde(default = "pend")]
    pub default_action: Action,
    /// Days an approval is valid (`preAuthPeriod`).
    #[serde(default = "ninety")]
    pub approval_days: i64,
    /// The rules, first match wins.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

fn pend() -> Action {
    Action::Pend
}
fn ninety() -> i64 {
    90
}

/// The verdict on one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No authorization needed (X12 306 NA).
    NotRequired,
    /// Certified (A1).
    Approve,
    /// Not certified (A3) with an X12 reason code.
    Deny(String),
    /// Pended (A4) awaiting a QuestionnaireResponse to this canonical.
    NeedsDoc(String),
    /// Pended (A4) for a reviewer.
    Pend,
}

/// What the rules look at in one item.
#[derive(Debug, Clone, Default)]
pub struct ItemFacts {
    /// `system|code` of every productOrService coding.
    pub services: Vec<(String, String)>,
    /// `quantity.value`, if any.
    pub quantity: Option<f64>,
    /// The Claim's diagnoses as `system|code`.
    pub diagnoses: Vec<String>,
    /// Canonicals of the QuestionnaireResponses in the request.
    pub answered: Vec<String>,
}

impl Rules {
    /// The configured rules file, or the shipped demo rules, parsed once
    /// and reused until the file's modification time changes (an edited
    /// file applies to the next request without a restart; a file that no
    /// longer parses is an error, the old rules are not kept silently).
    pub fn load(config: &PriorAuthConfig) -> anyhow::Result<Arc<Self>> {
        type Cached = (Option<PathBuf>, Option<SystemTime>, Arc<Rules>);
        static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());
        let path = config.rules_file.clone();
        let stamp = match &path {
            Some(p) => Some(
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .map_err(|e| anyhow::anyhow!("prior_auth rules_file {}: {e}", p.display()))?,
            ),
            None => None,
        };
        if let Ok(cache) = CACHE.lock() {
            if let Some((_, _, r)) = cache.iter().find(|(p, t, _)| *p == path && *t == stamp) {
                return Ok(r.clone());
            }
        }
        let text = match &path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("prior_auth rules_file {}: {e}", p.display()))?,
            None => DEFAULT_RULES.to_owned(),
        };
        let rules = Arc::new(Self::parse(&text)?);
        if let Ok(mut cache) = CACHE.lock() {
            cache.retain(|(p, _, _)| *p != path);
            cache.push((path, stamp, rules.clone()));
        }
        Ok(rules)
    }

    /// Parses rules from TOML text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// The verdict on an item.
    pub fn judge(&self, item: &ItemFacts) -> Verdict {
        let rule = self.rules.iter().find(|r| {
            item.services
                .iter()
                .any(|(s, c)| *s == r.system && *c == r.code)
        });
        let Some(rule) = rule else {
            return self.apply(self.default_action, None, item);
        };
        self.apply(rule.action, Some(rule), item)
    }

    fn apply(&self, action: Action, rule: Option<&Rule>, item: &ItemFacts) -> Verdict {
        match action {
            Action::NoAuth => Verdict::NotRequired,
            Action::Pend => Verdict::Pend,
            Action::AutoDeny => Verdict::Deny(
                rule.and_then(|r| r.reason.clone())
                    .unwrap_or_else(|| "0U".to_owned()),
            ),
            Action::NeedsDoc => {
                let q = rule
                    .and_then(|r| r.questionnaire.clone())
                    .unwrap_or_default();
                let base = q.split('|').next().unwrap_or_default();
                let done = item
                    .answered
                    .iter()
                    .any(|a| *a == q || a.split('|').next() == Some(base));
                if done {
                    Verdict::Pend
                } else {
                    Verdict::NeedsDoc(q)
                }
            }
            Action::AutoApprove => {
                let Some(r) = rule else {
                    return Verdict::Approve;
                };
                let qty_ok = match (r.max_quantity, item.quantity) {
                    (Some(max), Some(q)) => q <= max,
                    (Some(_), None) => true,
                    (None, _) => true,
                };
                let dx_ok = r.diagnoses.is_empty()
                    || item.diagnoses.iter().any(|d| r.diagnoses.contains(d));
                if qty_ok && dx_ok {
                    Verdict::Approve
                } else {
                    match r.otherwise.unwrap_or(Action::Pend) {
                        Action::AutoApprove => Verdict::Pend,
                        other => self.apply(other, Some(r), item),
                    }
                }
            }
        }
    }
}

/// `system|code` pairs of a CodeableConcept.
pub fn codings(cc: &Value) -> Vec<(String, String)> {
    cc["coding"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    Some((
                        c["system"].as_str()?.to_owned(),
                        c["code"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn facts(system: &str, code: &str) -> ItemFacts {
        ItemFacts {
            services: vec![(system.into(), code.into())],
            ..ItemFacts::default()
        }
    }
    const CPT: &str = "http://www.ama-assn.org/go/cpt";

    #[test]
    fn the_demo_rules_give_each_verdict() {
        let r = Rules::parse(DEFAULT_RULES).unwrap();
        assert_eq!(r.judge(&facts(CPT, "99213")), Verdict::NotRequired);
        let mut f = facts(CPT, "97110");
        f.quantity = Some(6.0);
        assert_eq!(r.judge(&f), Verdict::Approve);
        f.quantity = Some(20.0);
        assert_eq!(r.judge(&f), Verdict::Pend);
        assert_eq!(r.judge(&facts(CPT, "0042T")), Verdict::Deny("0U".into()));
        let mut f = facts(CPT, "73722");
        assert!(matches!(r.judge(&f), Verdict::NeedsDoc(_)));
        f.answered = vec!["http://example.org/fhir/Questionnaire/imaging-knee".into()];
        assert_eq!(r.judge(&f), Verdict::Pend);
        assert_eq!(r.judge(&facts(CPT, "11111")), Verdict::Pend);
    }

    #[test]
    fn diagnosis_criteria_gate_auto_approval() {
        let r = Rules::parse(DEFAULT_RULES).unwrap();
        let hcpcs = "https://bluebutton.cms.gov/resources/codesystem/hcpcs";
        let mut f = facts(hcpcs, "E0250");
        assert_eq!(r.judge(&f), Verdict::Pend);
        f.diagnoses = vec!["http://hl7.org/fhir/sid/icd-10-cm|G35".into()];
        assert_eq!(r.judge(&f), Verdict::Approve);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Rules::parse("default_action = \"pend\"\nbogus = 1").is_err());
    }

    #[test]
    fn a_rules_file_is_parsed_once_and_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "default_action = \"pend\"\n").unwrap();
        let cfg = PriorAuthConfig {
            rules_file: Some(path.clone()),
            ..PriorAuthConfig::default()
        };
        let a = Rules::load(&cfg).unwrap();
        let b = Rules::load(&cfg).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "reused while unchanged");
        // a later modification time: parsed again
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::write(&path, "default_action = \"no-auth\"\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let c = Rules::load(&cfg).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        std::fs::write(&path, "not toml [").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(Rules::load(&cfg).is_err(), "a broken file is an error");
    }
}
