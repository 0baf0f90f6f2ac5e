//! The payer-rules seam of the hooks: what an ordered service needs. It is
//! answered by the PAS adjudication rules (`prior_auth::rules`, the same
//! file `Claim/$submit` adjudicates with), so what CRD announces is what
//! PAS will do with the request.

use crate::prior_auth::rules::{Action, ItemFacts, Rules, Verdict};

/// What an order needs, in CRD's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Covered, no prior authorization.
    NoAuth,
    /// Prior authorization needed; the PAS request would be certified
    /// automatically.
    AutoApprove,
    /// Not covered (the PAS request would be denied).
    AutoDeny,
    /// Prior authorization needed with documentation (a DTR Questionnaire).
    NeedsDocumentation,
    /// Prior authorization needed; the PAS request is pended for a reviewer.
    Pend,
}

/// The payer's answer for one ordered service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What the service needs.
    pub requirement: Requirement,
    /// The DTR Questionnaire canonical, when documentation is needed.
    pub questionnaire: Option<String>,
    /// A reason code to show (denials: X12 HCR03).
    pub reason: Option<String>,
}

/// What the rules look at in one order.
#[derive(Debug, Clone, Default)]
pub struct OrderFacts {
    /// The coding system of the ordered service.
    pub system: String,
    /// Its code.
    pub code: String,
    /// The ordered quantity, if any.
    pub quantity: Option<f64>,
    /// The order's reasons as `system|code`.
    pub diagnoses: Vec<String>,
}

/// Where the hooks get payer rules from.
pub trait PayerRules {
    /// What `order` needs.
    fn decide(&self, order: &OrderFacts) -> Decision;

    /// When the order names no diagnosis (`reasonCode`) but the service's
    /// rule decides by one: what the rules would answer with a qualifying
    /// diagnosis (the answer without one is [`PayerRules::decide`]'s).
    fn if_diagnosed(&self, _order: &OrderFacts) -> Option<Decision> {
        None
    }
}

impl PayerRules for Rules {
    fn decide(&self, order: &OrderFacts) -> Decision {
        let facts = ItemFacts {
            services: vec![(order.system.clone(), order.code.clone())],
            quantity: order.quantity,
            diagnoses: order.diagnoses.clone(),
            answered: Vec::new(),
        };
        let (requirement, questionnaire, reason) = match self.judge(&facts) {
            Verdict::NotRequired => (Requirement::NoAuth, None, None),
            Verdict::Approve => (Requirement::AutoApprove, None, None),
            Verdict::Deny(code) => (Requirement::AutoDeny, None, Some(code)),
            Verdict::NeedsDoc(q) => (
                Requirement::NeedsDocumentation,
                Some(q).filter(|q| !q.is_empty()),
                None,
            ),
            Verdict::Pend => (Requirement::Pend, None, None),
        };
        Decision {
            requirement,
            questionnaire,
            reason,
        }
    }

    fn if_diagnosed(&self, order: &OrderFacts) -> Option<Decision> {
        if !order.diagnoses.is_empty() {
            return None;
        }
        let rule = self
            .rules
            .iter()
            .find(|r| r.system == order.system && r.code == order.code)?;
        if rule.action != Action::AutoApprove || rule.diagnoses.is_empty() {
            return None;
        }
        Some(self.decide(&OrderFacts {
            diagnoses: rule.diagnoses.clone(),
            ..order.clone()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPT: &str = "http://www.ama-assn.org/go/cpt";

    fn facts(code: &str) -> OrderFacts {
        OrderFacts {
            system: CPT.into(),
            code: code.into(),
            ..OrderFacts::default()
        }
    }

    #[test]
    fn pas_verdicts_map_to_crd_requirements() {
        let rules = Rules::parse(
            r#"
default_action = "pend"
[[rule]]
system = "http://www.ama-assn.org/go/cpt"
code = "1"
action = "no-auth"
[[rule]]
system = "http://www.ama-assn.org/go/cpt"
code = "2"
action = "needs-doc"
questionnaire = "http://q"
[[rule]]
system = "http://www.ama-assn.org/go/cpt"
code = "3"
action = "auto-deny"
reason = "0U"
"#,
        );
        let Ok(rules) = rules else {
            panic!("rules parse");
        };
        assert_eq!(rules.decide(&facts("1")).requirement, Requirement::NoAuth);
        let doc = rules.decide(&facts("2"));
        assert_eq!(doc.requirement, Requirement::NeedsDocumentation);
        assert_eq!(doc.questionnaire.as_deref(), Some("http://q"));
        let deny = rules.decide(&facts("3"));
        assert_eq!(deny.requirement, Requirement::AutoDeny);
        assert_eq!(deny.reason.as_deref(), Some("0U"));
        assert_eq!(rules.decide(&facts("9")).requirement, Requirement::Pend);
        assert!(rules.if_diagnosed(&facts("3")).is_none());
    }

    #[test]
    fn a_diagnosis_rule_tells_what_a_qualifying_diagnosis_would_change() {
        let Ok(rules) = Rules::parse(
            r#"
[[rule]]
system = "http://www.ama-assn.org/go/cpt"
code = "5"
action = "auto-approve"
diagnoses = ["icd|A"]
otherwise = "auto-deny"
"#,
        ) else {
            panic!("rules parse");
        };
        let bare = facts("5");
        assert_eq!(rules.decide(&bare).requirement, Requirement::AutoDeny);
        let alt = rules.if_diagnosed(&bare).map(|d| d.requirement);
        assert_eq!(alt, Some(Requirement::AutoApprove));
        let given = OrderFacts {
            diagnoses: vec!["icd|B".into()],
            ..facts("5")
        };
        assert!(rules.if_diagnosed(&given).is_none(), "decidable as given");
    }
}
