//! The CRD answer of one hook call: for each order (or appointment) under
//! the patient's active coverage, the payer's decision as a coverage-
//! information `systemAction` (order-sign, order-dispatch,
//! appointment-book: always) and cards where the provider must act (prior
//! authorization, documentation via a DTR `smart` link, not covered, more
//! information needed).
//!
//! The decision per order ([`assess`]): the payer rules on the order's
//! code; `satisfied` with the authorization number when fhirgate's PAS
//! store holds an approved, in-period authorization for the same member,
//! coverage and code (`prior_auth::lookup`); `conditional` with
//! `info-needed` when the answer depends on what the order does not say
//! (a performer, location or timeframe `[crd] info_needed` names, or the
//! diagnosis a rule decides by), never a guess.

use serde_json::{json, Value};

use super::config::{Info, InfoRule};
use super::coverage::{self, Assertion, Assessment};
use super::prefetch::{self, resources};
use super::request::HookRequest;
use super::rules::{Decision, OrderFacts, PayerRules, Requirement};
use super::services::Service;
use crate::prior_auth::lookup;
use crate::state::StateStore;

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
    /// Services whose coverage needs more than their code (`[crd] info_needed`).
    pub info_rules: &'a [InfoRule],
    /// The state store (authorizations already granted, read only).
    pub state: &'a StateStore,
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

/// Who the orders are for: the member's identifiers and the Coverage's
/// keys, to find authorizations already granted.
struct Member {
    identifiers: Vec<String>,
    coverage_keys: Vec<String>,
}

/// Builds the answer.
pub async fn answer(i: &Inputs<'_>) -> Answer {
    let patient = format!("Patient/{}", i.req.patient_id().unwrap_or_default());
    let sent = i.prefetch.get("coverage");
    let coverage_resource = sent
        .into_iter()
        .flat_map(resources)
        .find(|r| r["resourceType"] == "Coverage");
    let coverage = coverage_resource
        .and_then(|r| r["id"].as_str())
        .map(|id| format!("Coverage/{id}"));
    let orders = orders(i).await;
    let mut cards = Vec::new();
    let mut actions = Vec::new();
    let mut notes = Vec::new();
    let (Some(coverage), Some(coverage_resource)) = (coverage, coverage_resource) else {
        // The extension needs a Coverage (`coverage` 1..1): without one,
        // say which way it is missing instead of asserting anything.
        let (summary, note) = match sent {
            None => (
                "Coverage unknown: the patient's Coverage was not in prefetch and could not be fetched",
                "coverage not sent and not fetchable",
            ),
            Some(_) => (
                "No active coverage with this payer was found for the patient",
                "no active coverage",
            ),
        };
        if !orders.is_empty() {
            cards.push(card(summary, "warning", Vec::new(), Vec::new()));
        }
        return Answer {
            body: json!({"cards": cards}),
            summary: format!("{}: {note}", i.service.hook),
        };
    };
    let member = Member {
        identifiers: i
            .prefetch
            .get("patient")
            .into_iter()
            .flat_map(resources)
            .find(|r| r["resourceType"] == "Patient")
            .map(lookup::identifier_keys)
            .unwrap_or_default(),
        coverage_keys: lookup::coverage_keys(coverage_resource),
    };
    for order in &orders {
        let Some(coding) = order_coding(order) else {
            continue;
        };
        let code = coding["code"].as_str().unwrap_or_default();
        let facts = order_facts(order, &coding);
        let decision = i.rules.decide(&facts);
        let assessment = assess(i, order, &facts, &decision, &member).await;
        let id = coverage::assertion_id(i.secret, &coverage, &patient, code);
        let ext = coverage::extension(&Assertion {
            coverage: &coverage,
            coding: &coding,
            assessment: &assessment,
            id: &id,
            date: i.today,
        });
        let annotated = coverage::annotate(order, ext, &coverage);
        notes.push(format!(
            "{code}={}/{}",
            assessment.covered,
            assessment.pa_needed.unwrap_or("-")
        ));
        let label = coding["display"].as_str().unwrap_or(code);
        let c = order_card(i, &decision, &assessment, label, &annotated, &coverage, &id);
        if let Some(c) = c {
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

/// The payer's assertion about one order (see the module docs).
async fn assess(
    i: &Inputs<'_>,
    order: &Value,
    facts: &OrderFacts,
    decision: &Decision,
    member: &Member,
) -> Assessment {
    let mut a = Assessment::of(decision);
    if a.pa_needed == Some("auth-needed") {
        let service = format!("{}|{}", facts.system, facts.code);
        let q = lookup::Query {
            members: &member.identifiers,
            service: &service,
            coverage: &member.coverage_keys,
            today: i.today,
        };
        match lookup::satisfied(i.state, &q).await {
            Ok(Some(granted)) => return a.satisfied_by(granted.auth_number),
            Ok(None) => {}
            // Not knowing of an authorization answers as if there were
            // none (auth-needed): never a false `satisfied`.
            Err(e) => tracing::warn!(error = %e, "CRD: authorization lookup failed"),
        }
    }
    if let Some(alt) = i.rules.if_diagnosed(facts) {
        let merged = a.clone().either(Assessment::of(&alt));
        if merged.conditional() {
            a = merged;
            a.info_needed.push("OTH");
            a.reason = Some("the payer decides by the order's diagnosis: add a reasonCode".into());
        }
    }
    let missing = missing_info(i, order, facts);
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|m| m.code()).collect();
        let why = format!("coverage depends on the order's {}", names.join(", "));
        a = a.needing(names, why);
    }
    a
}

/// What `[crd] info_needed` asks of this service that the order lacks.
fn missing_info(i: &Inputs<'_>, order: &Value, facts: &OrderFacts) -> Vec<Info> {
    let Some(rule) = i
        .info_rules
        .iter()
        .find(|r| r.system == facts.system && r.code == facts.code)
    else {
        return Vec::new();
    };
    let mut out: Vec<Info> = Vec::new();
    for need in &rule.needs {
        if !out.contains(need) && !has_info(i, order, *need) {
            out.push(*need);
        }
    }
    out
}

/// Whether `v` holds something (not null, empty string, array or object).
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(present),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Whether the order (or the hook context) says `what`.
fn has_info(i: &Inputs<'_>, order: &Value, what: Info) -> bool {
    let participant_is = |types: &[&str]| {
        order["participant"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| {
                p["actor"]["reference"]
                    .as_str()
                    .and_then(|r| r.split('/').next())
                    .is_some_and(|t| types.contains(&t))
            })
    };
    match what {
        Info::Performer => {
            present(&order["performer"])
                || present(&order["dispenseRequest"]["performer"])
                || participant_is(&["Practitioner", "PractitionerRole", "Organization"])
                || i.req.context.get("performer").is_some_and(present)
        }
        Info::Location => {
            present(&order["locationReference"])
                || present(&order["locationCode"])
                || participant_is(&["Location", "HealthcareService"])
        }
        Info::Timeframe => {
            [
                "occurrenceDateTime",
                "occurrencePeriod",
                "occurrenceTiming",
                "start",
                "requestedPeriod",
            ]
            .iter()
            .any(|k| present(&order[*k]))
                || present(&order["dispenseRequest"]["validityPeriod"])
        }
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
    a: &Assessment,
    label: &str,
    annotated: &Value,
    coverage: &str,
    assertion_id: &str,
) -> Option<Value> {
    if a.pa_needed == Some("satisfied") {
        return None;
    }
    let (summary, indicator, detail) = if a.conditional() {
        (
            format!("More information needed to decide coverage: {label}"),
            "info",
            a.reason.clone(),
        )
    } else {
        let reason = d
            .reason
            .as_ref()
            .map(|r| format!("Payer reason code (X12 HCR03): {r}"));
        match d.requirement {
            Requirement::NoAuth => return None,
            Requirement::AutoDeny => (format!("Not covered: {label}"), "warning", reason),
            Requirement::NeedsDocumentation => (
                format!("Prior authorization and documentation needed: {label}"),
                "warning",
                reason,
            ),
            Requirement::AutoApprove | Requirement::Pend => (
                format!("Prior authorization needed: {label}"),
                "info",
                reason,
            ),
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
    if a.doc_needed.is_some() {
        let order_ref = format!(
            "{}/{}",
            annotated["resourceType"].as_str().unwrap_or_default(),
            annotated["id"].as_str().unwrap_or_default()
        );
        let app_context = json!({
            "coverage-assertion-id": assertion_id,
            "coverage": coverage,
            "order": order_ref,
            "questionnaire": a.questionnaire.iter().collect::<Vec<_>>(),
        });
        links.push(json!({
            "label": "Complete the documentation (DTR)",
            "url": i.dtr_launch_url,
            "type": "smart",
            "appContext": app_context.to_string(),
        }));
    }
    let mut c = card(&summary, indicator, suggestions, links);
    if let Some(detail) = detail {
        c["detail"] = json!(detail);
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
