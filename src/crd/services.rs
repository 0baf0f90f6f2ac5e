//! The CRD service catalog: one CDS service per supported hook, with its
//! prefetch templates (CRD 2.0.1 "Prefetch"), and the discovery document
//! (`GET /cds-services`, CDS Hooks 2.0 "Discovery").

use serde_json::{json, Map, Value};

/// One CDS service.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The service id (`/cds-services/{id}`).
    pub id: &'static str,
    /// The hook it answers.
    pub hook: &'static str,
    /// Title.
    pub title: &'static str,
    /// Description.
    pub description: &'static str,
    /// Whether the hook carries an encounter (encounter prefetch).
    pub encounter: bool,
    /// Whether the answer always carries coverage-information systemActions.
    pub coverage_actions: bool,
}

/// Every service, in discovery order.
pub const SERVICES: &[Service] = &[
    Service {
        id: "crd-order-sign",
        hook: "order-sign",
        title: "Coverage requirements at order signing",
        description: "Whether signed orders are covered, need prior authorization or documentation (Da Vinci CRD).",
        encounter: true,
        coverage_actions: true,
    },
    Service {
        id: "crd-order-select",
        hook: "order-select",
        title: "Coverage requirements at order selection",
        description: "Early notice of prior authorization or documentation needs for selected orders (Da Vinci CRD).",
        encounter: true,
        coverage_actions: false,
    },
    Service {
        id: "crd-order-dispatch",
        hook: "order-dispatch",
        title: "Coverage requirements at order dispatch",
        description: "Coverage and prior authorization needs of orders dispatched to a performer (Da Vinci CRD).",
        encounter: false,
        coverage_actions: true,
    },
    Service {
        id: "crd-appointment-book",
        hook: "appointment-book",
        title: "Coverage requirements at appointment booking",
        description: "Coverage and prior authorization needs of booked appointments (Da Vinci CRD).",
        encounter: true,
        coverage_actions: true,
    },
    Service {
        id: "crd-encounter-start",
        hook: "encounter-start",
        title: "Coverage reminders at encounter start",
        description: "Coverage notices when an encounter starts (Da Vinci CRD).",
        encounter: true,
        coverage_actions: false,
    },
    Service {
        id: "crd-encounter-discharge",
        hook: "encounter-discharge",
        title: "Coverage reminders at discharge",
        description: "Coverage notices when a patient is discharged (Da Vinci CRD).",
        encounter: true,
        coverage_actions: false,
    },
];

/// The service with id `id`.
pub fn find(id: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.id == id)
}

/// The service's prefetch templates (key → FHIR query relative to the
/// client's FHIR base).
pub fn prefetch(s: &Service) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("patient".into(), json!("Patient/{{context.patientId}}"));
    m.insert(
        "coverage".into(),
        json!("Coverage?patient={{context.patientId}}&status=active"),
    );
    if s.hook != "order-dispatch" {
        m.insert("user".into(), json!("{{context.userId}}"));
    }
    if s.encounter {
        m.insert(
            "encounter".into(),
            json!("Encounter/{{context.encounterId}}"),
        );
    }
    m
}

/// The discovery document.
pub fn discovery() -> Value {
    let services: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            json!({
                "hook": s.hook,
                "id": s.id,
                "title": s.title,
                "description": s.description,
                "prefetch": prefetch(s),
                "usageRequirements": "The CDS client signs every call (ES384 or RS384) as a client allow-listed by the payer; fhirAuthorization is needed when prefetch is incomplete.",
            })
        })
        .collect();
    json!({ "services": services })
}
