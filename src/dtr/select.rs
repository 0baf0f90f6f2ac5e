//! Which Questionnaires a `$questionnaire-package` call gets: those named
//! in `questionnaire`, and those the payer rules (`prior_auth::rules`, the
//! file PAS adjudicates and CRD announces with) ask for the ordered
//! services: a `needs-doc` rule names a Questionnaire canonical. The union,
//! each version once. What cannot be found or derived becomes a warning.

use serde_json::Value;

use super::{
    catalog::{canonical_of, Catalog},
    params::PackageInput,
};
use crate::prior_auth::rules::{codings, ItemFacts, Rules, Verdict};

/// A Questionnaire asked for that the catalog does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// Its canonical.
    pub canonical: String,
    /// Named by the caller (else derived from an order).
    pub explicit: bool,
}

/// The outcome of the selection.
#[derive(Debug, Default)]
pub struct Selection<'a> {
    /// The Questionnaires to package, in order, each version once.
    pub found: Vec<&'a Value>,
    /// What was asked for and is not held.
    pub missing: Vec<Missing>,
    /// Other warnings (orders without codes, an unresolvable context).
    pub notes: Vec<String>,
}

/// The coded service of an order, by resource type.
fn order_codes(order: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for field in [
        "code",
        "codeCodeableConcept",
        "medicationCodeableConcept",
        "itemCodeableConcept",
    ] {
        out.extend(codings(&order[field]));
    }
    for field in ["serviceType", "type"] {
        for cc in order[field].as_array().into_iter().flatten() {
            out.extend(codings(cc));
        }
    }
    out
}

/// The facts the payer rules judge for one order.
fn facts(order: &Value) -> ItemFacts {
    let diagnoses = order["reasonCode"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(codings)
        .map(|(s, c)| format!("{s}|{c}"))
        .collect();
    ItemFacts {
        services: order_codes(order),
        quantity: order["quantityQuantity"]["value"]
            .as_f64()
            .or_else(|| order["dispenseRequest"]["quantity"]["value"].as_f64()),
        diagnoses,
        answered: Vec::new(),
    }
}

/// Chooses the Questionnaires for `input`.
pub fn select<'a>(input: &PackageInput, rules: &Rules, catalog: &'a Catalog) -> Selection<'a> {
    let mut sel = Selection::default();
    let mut wanted: Vec<(String, bool)> = input
        .questionnaires
        .iter()
        .map(|q| (q.clone(), true))
        .collect();
    for (i, order) in input.orders.iter().enumerate() {
        let f = facts(order);
        if f.services.is_empty() {
            sel.notes.push(format!(
                "order {i} ({}) has no coded service; no Questionnaire was derived from it",
                order["resourceType"].as_str().unwrap_or_default()
            ));
            continue;
        }
        if let Verdict::NeedsDoc(q) = rules.judge(&f) {
            if !q.is_empty() {
                wanted.push((q, false));
            }
        }
    }
    if input.context.is_some() && input.orders.is_empty() && input.questionnaires.is_empty() {
        sel.notes.push(
            "this payer cannot tell the needed documentation from a context id alone; \
             send the order(s), or the Questionnaire canonical(s) from the CRD coverage-information extension"
                .into(),
        );
    }
    for (canonical, explicit) in wanted {
        match catalog.questionnaire(&canonical) {
            Some(q) => {
                let c = canonical_of(q);
                if !sel.found.iter().any(|f| canonical_of(f) == c) {
                    sel.found.push(q);
                }
            }
            None => {
                if !sel.missing.iter().any(|m| m.canonical == canonical) {
                    sel.missing.push(Missing {
                        canonical,
                        explicit,
                    });
                }
            }
        }
    }
    sel
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{dtr::catalog::catalog, prior_auth::rules::DEFAULT_RULES};
    use serde_json::json;

    const CPT: &str = "http://www.ama-assn.org/go/cpt";
    const KNEE: &str = "http://example.org/fhir/Questionnaire/imaging-knee|1.0";

    fn order(code: &str) -> Value {
        json!({"resourceType": "ServiceRequest", "id": "o", "code": {"coding": [{"system": CPT, "code": code}]}})
    }

    #[test]
    fn an_ordered_service_needing_documentation_derives_its_questionnaire() {
        let rules = Rules::parse(DEFAULT_RULES).unwrap();
        let input = PackageInput {
            orders: vec![order("73722"), order("99213")],
            ..PackageInput::default()
        };
        let s = select(&input, &rules, catalog().unwrap());
        assert_eq!(s.found.len(), 1);
        assert_eq!(canonical_of(s.found[0]), KNEE);
        assert!(s.missing.is_empty());
    }

    #[test]
    fn named_and_derived_questionnaires_are_packaged_once() {
        let rules = Rules::parse(DEFAULT_RULES).unwrap();
        let input = PackageInput {
            orders: vec![order("73722")],
            questionnaires: vec![
                KNEE.into(),
                "http://example.org/fhir/Questionnaire/nope".into(),
            ],
            ..PackageInput::default()
        };
        let s = select(&input, &rules, catalog().unwrap());
        assert_eq!(s.found.len(), 1);
        assert_eq!(
            s.missing,
            [Missing {
                canonical: "http://example.org/fhir/Questionnaire/nope".into(),
                explicit: true
            }]
        );
    }

    #[test]
    fn orders_without_codes_and_bare_contexts_are_noted() {
        let rules = Rules::parse(DEFAULT_RULES).unwrap();
        let input = PackageInput {
            orders: vec![json!({"resourceType": "ServiceRequest"})],
            ..PackageInput::default()
        };
        let s = select(&input, &rules, catalog().unwrap());
        assert!(s.found.is_empty());
        assert_eq!(s.notes.len(), 1);
        let input = PackageInput {
            context: Some("abc".into()),
            ..PackageInput::default()
        };
        assert_eq!(select(&input, &rules, catalog().unwrap()).notes.len(), 1);
    }
}
