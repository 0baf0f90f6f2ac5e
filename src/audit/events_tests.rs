//! Unit tests of [`super::events`]: patients named by a request, the shape
//! of route and erasure events, and what never reaches the chain.
#![allow(clippy::unwrap_used)]

use serde_json::Value;

use super::events::{Builder, FhirFacts, HttpFacts, RouteNote};
use super::pseudonym::Pseudonymizer;
use crate::{
    fhir::{FhirRequest, Interaction},
    pipeline::disclosure::Disclosure,
};

fn builder() -> Builder {
    Builder {
        public_url: "https://gw.example".into(),
        fhir_base: "https://gw.example/fhir".into(),
        pz: Pseudonymizer::new([9; 32]),
    }
}

fn payload(e: &super::events::Event) -> Value {
    serde_json::from_slice(&e.payload).unwrap()
}

#[test]
fn requests_name_patients_by_target_compartment_and_parameters() {
    let mut r = FhirRequest::new(Interaction::Read);
    r.resource_type = Some("Patient".into());
    r.id = Some("p1".into());
    assert_eq!(FhirFacts::of(&r).named_patients(), vec!["Patient/p1"]);
    let mut r = FhirRequest::new(Interaction::SearchCompartment);
    r.compartment = Some(("Patient".into(), "p2".into()));
    assert_eq!(FhirFacts::of(&r).named_patients(), vec!["Patient/p2"]);
    let mut r = FhirRequest::new(Interaction::SearchType);
    r.resource_type = Some("Observation".into());
    r.params = vec![
        ("patient".into(), "p3,Patient/p4".into()),
        ("subject".into(), "Group/g1".into()),
        ("subject:Patient".into(), "p5".into()),
        ("subject".into(), "http://x/fhir/Patient/p6".into()),
        ("code".into(), "Patient/not-a-param".into()),
    ];
    assert_eq!(
        FhirFacts::of(&r).named_patients(),
        vec!["Patient/p3", "Patient/p4", "Patient/p5", "Patient/p6"]
    );
}

#[test]
fn a_request_touching_no_patient_gets_one_event_naming_its_target() {
    let mut r = FhirRequest::new(Interaction::Read);
    r.resource_type = Some("Practitioner".into());
    r.id = Some("7".into());
    let http = HttpFacts {
        method: "GET".into(),
        path: "/fhir/Practitioner/7".into(),
        ..HttpFacts::default()
    };
    let events = builder().fhir(
        "r",
        &http,
        Some(&FhirFacts::of(&r)),
        &Disclosure::default(),
        200,
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].pseudonym, super::vault::DEPLOYMENT);
    let p = payload(&events[0]);
    assert_eq!(p["entity"][1]["what"]["reference"], "Practitioner/7");
    assert!(p["entity"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["role"]["code"] != "1"));
    assert!(events[0].entry.get("patient").is_none());
    assert_eq!(events[0].entry["refs"]["n"], 1);
    assert!(!events[0].entry.to_string().contains("Practitioner/7"));
}

#[test]
fn route_events_carry_the_template_and_who_but_never_the_path() {
    let http = HttpFacts {
        method: "POST".into(),
        path: "/portal/consents/Patient-secret-id".into(),
        query: Some("x=secret".into()),
        client_addr: Some("192.0.2.1".into()),
        recorded: 0,
    };
    let note = RouteNote {
        user: Some("Patient/p1".into()),
        role: Some("patient".into()),
        patient: Some("Patient/p1".into()),
        what: Some("consent updated".into()),
        ..RouteNote::default()
    };
    let e = builder().route("r", &http, "/portal/consents/{id}", 303, &note);
    let text = e.entry.to_string();
    assert!(
        !text.contains("secret") && !text.contains("Patient/p1") && !text.contains("192.0.2.1")
    );
    assert_eq!(e.entry["route"], "/portal/consents/{id}");
    assert_eq!(
        e.pseudonym,
        Pseudonymizer::new([9; 32]).patient("Patient/p1")
    );
    let p = payload(&e);
    assert!(!p.to_string().contains("secret"));
    assert_eq!(p["outcomeDesc"], "consent updated");
    assert_eq!(p["agent"][2]["who"]["reference"], "Patient/p1");
    assert_eq!(p["agent"][0]["network"]["address"], "192.0.2.1");
    let login = builder().route("r", &http, "/login", 303, &RouteNote::default());
    assert_eq!(payload(&login)["subtype"][0]["code"], "110122");
}

#[test]
fn erasure_events_name_the_pseudonym_only() {
    let e = builder().erasure("r", "abc123", 0, "operator");
    assert_eq!(e.entry["kind"], "erasure");
    assert_eq!(e.entry["erased"], "abc123");
    assert_eq!(e.pseudonym, super::vault::DEPLOYMENT);
    let p = payload(&e);
    assert_eq!(p["entity"][1]["what"]["identifier"]["value"], "abc123");
    // The payload digest on the chain is the keyed digest of the plaintext.
    assert_eq!(
        e.entry["payload"],
        Pseudonymizer::new([9; 32]).payload(&e.payload)
    );
}
