//! The CRD answer of one hook call: for each order (or appointment) under
//! the patient's active coverage, the payer's decision as a coverage-
//! information `systemAction` (order-sign, order-dispatch,
//! appointment-book: always) and cards where the provider must act (prior
//! authorization, documentation via a DTR `smart` link, not covered).

use serde_json::{json, Value};

use super::coverage::{self, Assertion};
use super::prefetch::{self, resources};
use super::request::HookRequest;
use super::rules::{Decision, OrderFacts, PayerRules, Requirement};
use super::services::Service;

/// The CRD card-type code system (CRD 2.0.1 temporary codes).
pub const CARD_TYPE_SYSTEM: &str = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp";

/// Longest card summary (CDS Hooks: fewer than 140 characters).
const MAX_SUMMARY: usize = 139;

/// What the answer needs besides the request.
pub struct Inputs<'a> {
    /// The service called.
    pub service: &'a Service,
    /// The validated request.
    pub req: &'a HookRequest,
    /// Resolved prefetch.
    pub prefetch: &'a serde_json::Map<String, Value>,
    /// The payer rules.
    pub rules: &'a (dyn PayerRules + Sync),
    /// The coverage-assertion secret.
    pub secret: &'a str,
    /// The DTR SMART app's launch URL.
    pub dtr_launch_url: &'a str,
    /// Today, `YYYY-MM-DD`.
    pub today: &'a str,
}

/// The answer and a one-line account of it for the audit trail.
pub struct Answer {
    /// The CDS Hooks response body.
    pub body: Value,
    /// What was answered, in words (no PHI beyond codes).
    pub summary: String,
}

/// Builds the answer.
pub async fn answer(i: &Inputs<'_>) -> Answer {
    let patient = format!("Patient/{}", i.req.patient_id().unwrap_or_default());
    let coverage = i
        .prefetch
        .get("coverage")
        .into_iter()
        .flat_map(resources)
        .find(|r| r["resourceType"] == "Coverage")
        .and_then(|r| r["id"].as_str())
        .map(|id| format!("Coverage/{id}"));
    let orders = orders(i).await;
    let mut cards = Vec::new();
    let mut actions = Vec::new();
    let mut notes = Vec::new();
    let Some(coverage) = coverage else {
        if !orders.is_empty() {
            cards.push(card(
                "No active coverage with this payer was found for the patient",
                "warning",
                Vec::new(),
                Vec::new(),
            ));
        }
        return Answer {
            body: json!({"cards": cards}),
            summary: format!("{}: no active coverage", i.service.hook),
        };
    };
    for order in &orders {
        let Some(coding) = order_coding(order) else {
            continue;
        };
        let code = coding["code"].as_str().unwrap_or_default();
        let decision = i.rules.decide(&order_facts(order, &coding));
        let id = coverage::assertion_id(i.secret, &coverage, &patient, code);
        let ext = coverage::extension(&Assertion {
            coverage: &coverage,
            coding: &coding,
            decision: &decision,
            id: &id,
            date: i.today,
        });
        let annotated = coverage::annotate(order, ext, &coverage);
        let codes = coverage::codes(&decision);
        notes.push(format!(
            "{code}={}/{}",
            codes.covered,
            codes.pa_needed.unwrap_or("-")
        ));
        let label = coding["display"].as_str().unwrap_or(code);
        if let Some(c) = order_card(i, &decision, label, &annotated, &coverage, &id) {
            cards.push(c);
        }
        if i.service.coverage_actions {
            actions.push(json!({
                "type": "update",
                "description": format!("Coverage information for {label}"),
                "resource": annotated,
            }));
        }
    }
    let mut body = json!({"cards": cards});
    if i.service.coverage_actions {
        body["systemActions"] = Value::Array(actions);
    }
    Answer {
        body,
        summary: format!("{} under {coverage}: {}", i.service.hook, notes.join(", ")),
    }
}

/// The orders (or appointments) the hook is about.
async fn orders(i: &Inputs<'_>) -> Vec<Value> {
    let ctx = &i.req.context;
    let from_bundle = |key: &str| -> Vec<Value> {
        ctx.get(key)
            .map(|b| resources(b).into_iter().cloned().collect())
            .unwrap_or_default()
    };
    match i.service.hook {
        "order-sign" => from_bundle("draftOrders"),
        "appointment-book" => from_bundle("appointments"),
        "order-select" => {
            let selected: Vec<&str> = ctx
                .get("selections")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            from_bundle("draftOrders")
                .into_iter()
                .filter(|o| {
                    let r = format!(
                        "{}/{}",
                        o["resourceType"].as_str().unwrap_or_default(),
                        o["id"].as_str().unwrap_or_default()
                    );
                    selected.contains(&r.as_str())
                })
                .collect()
        }
        "order-dispatch" => {
            let refs: Vec<String> = ctx
                .get("dispatchedOrders")
                .and_then(Value::as_array)
                .map(|s| {
                    s.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let mut out = Vec::new();
            for r in refs {
                if let Some(v) = prefetch::fetch(i.req, &r).await {
                    out.push(v);
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The coded service of an order: ServiceRequest.code,
/// DeviceRequest.codeCodeableConcept, MedicationRequest.
/// medicationCodeableConcept, Appointment.serviceType; first coding with a code.
fn order_coding(order: &Value) -> Option<Value> {
    let concept = match order["resourceType"].as_str()? {
        "ServiceRequest" => &order["code"],
        "DeviceRequest" => &order["codeCodeableConcept"],
        "MedicationRequest" => &order["medicationCodeableConcept"],
        "Appointment" => &order["serviceType"][0],
        _ => return None,
    };
    concept["coding"]
        .as_array()?
        .iter()
        .find(|c| c["code"].is_string())
        .cloned()
}

/// What the payer rules look at in an order: the coded service, the
/// quantity (`quantityQuantity`, `dispenseRequest.quantity`) and the
/// reasons (`reasonCode`) as `system|code`.
fn order_facts(order: &Value, coding: &Value) -> OrderFacts {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let quantity = order["quantityQuantity"]["value"]
        .as_f64()
        .or_else(|| order["dispenseRequest"]["quantity"]["value"].as_f64());
    let diagnoses = order["reasonCode"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|cc| cc["coding"].as_array().into_iter().flatten())
        .filter_map(|c| Some(format!("{}|{}", c["system"].as_str()?, c["code"].as_str()?)))
        .collect();
    OrderFacts {
        system: text(&coding["system"]),
        code: text(&coding["code"]),
        quantity,
        diagnoses,
    }
}

/// The card an order gets, if the provider must act.
fn order_card(
    i: &Inputs<'_>,
    d: &Decision,
    label: &str,
    annotated: &Value,
    coverage: &str,
    assertion_id: &str,
) -> Option<Value> {
    let (summary, indicator) = match d.requirement {
        Requirement::NoAuth => return None,
        Requirement::AutoDeny => (format!("Not covered: {label}"), "warning"),
        Requirement::NeedsDocumentation => (
            format!("Prior authorization and documentation needed: {label}"),
            "warning",
        ),
        Requirement::AutoApprove | Requirement::Pend => {
            (format!("Prior authorization needed: {label}"), "info")
        }
    };
    let suggestions = if i.service.coverage_actions || i.service.hook == "order-select" {
        vec![json!({
            "label": "Record the payer's coverage information on the order",
            "uuid": uuid::Uuid::new_v4().to_string(),
            "actions": [{"type": "update", "description": "Add coverage information", "resource": annotated}],
        })]
    } else {
        Vec::new()
    };
    let mut links = Vec::new();
    if d.requirement == Requirement::NeedsDocumentation {
        let order_ref = format!(
            "{}/{}",
            annotated["resourceType"].as_str().unwrap_or_default(),
            annotated["id"].as_str().unwrap_or_default()
        );
        let app_context = json!({
            "coverage-assertion-id": assertion_id,
            "coverage": coverage,
            "order": order_ref,
            "questionnaire": d.questionnaire.iter().collect::<Vec<_>>(),
        });
        links.push(json!({
            "label": "Complete the documentation (DTR)",
            "url": i.dtr_launch_url,
            "type": "smart",
            "appContext": app_context.to_string(),
        }));
    }
    let mut c = card(&summary, indicator, suggestions, links);
    if let Some(reason) = &d.reason {
        c["detail"] = json!(format!("Payer reason code (X12 HCR03): {reason}"));
    }
    Some(c)
}

/// A CRD coverage-information card.
fn card(summary: &str, indicator: &str, suggestions: Vec<Value>, links: Vec<Value>) -> Value {
    let summary: String = summary.chars().take(MAX_SUMMARY).collect();
    let mut c = json!({
        "uuid": uuid::Uuid::new_v4().to_string(),
        "summary": summary,
        "indicator": indicator,
        "source": {
            "label": "fhirgate payer coverage requirements",
            "topic": {"system": CARD_TYPE_SYSTEM, "code": "coverage-info", "display": "Coverage Information"},
        },
    });
    if !suggestions.is_empty() {
        c["suggestions"] = Value::Array(suggestions);
        c["selectionBehavior"] = json!("at-most-one");
    }
    if !links.is_empty() {
        c["links"] = Value::Array(links);
    }
    c
}
