//! FHIR JSON post-filter: `fhirgate::pipeline::authorize::filter_response`
//! over an arbitrary upstream answer (resource or Bundle), for the checks
//! `authorize` sets up for reads, searches, history and `$everything` under
//! patient, user and system scopes; then `_elements`/`_summary`
//! (`fhirgate::fhir::subset::apply`) on what is left. Input: JSON.
#![no_main]

use fhirgate::{
    fhir::{subset, FhirRequest, FhirResponse},
    pipeline::authorize::{authorize, filter_response},
    search::query::Summary,
};
use http::Method;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use smart_launch::{context::AccessContext, scope::ScopeSet};

fn caller(
    scopes: &str,
    patient: Option<&str>,
    user: Option<(&str, &str)>,
) -> Option<AccessContext> {
    Some(AccessContext {
        client_id: "app".into(),
        scopes: ScopeSet::parse(scopes).ok()?,
        patient: patient.map(str::to_owned),
        encounter: None,
        fhir_user: user.map(|(u, _)| u.to_owned()),
        role: user.map(|(_, r)| r.to_owned()),
        jti: "j".into(),
        expires_at: 0,
        purpose_of_use: None,
        organization: None,
        assurance: Default::default(),
    })
}

fn callers() -> Vec<AccessContext> {
    [
        caller("patient/Observation.rs patient/Patient.r", Some("1"), None),
        caller(
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory patient/*.r",
            Some("1"),
            None,
        ),
        caller("user/*.cruds", None, Some(("Practitioner/7", "clinician"))),
        caller("patient/*.rs", None, Some(("Patient/1", "patient"))),
        caller("system/Patient.rs system/Observation.r", None, None),
    ]
    .into_iter()
    .flatten()
    .collect()
}

const PATHS: &[&str] = &[
    "Observation/1",
    "Observation?patient=1",
    "Observation?_include=Observation:subject",
    "Patient/1/$everything",
    "Patient/1/_history",
    "Observation/_history",
    "Patient/1",
];

fn request(path_query: &str) -> Option<FhirRequest> {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut r = FhirRequest::route(&Method::GET, &segs).ok()?;
    r.params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Some(r)
}

fn subset_all(body: &mut Value) {
    let elements = ["code".to_owned(), "subject".to_owned(), "value".to_owned()];
    let one = |r: &mut Value, i: usize| match i % 4 {
        0 => subset::apply(r, Some(&elements), Summary::False),
        1 => subset::apply(r, None, Summary::True),
        2 => subset::apply(r, None, Summary::Text),
        _ => subset::apply(r, None, Summary::Data),
    };
    if let Some(entries) = body.get_mut("entry").and_then(Value::as_array_mut) {
        for (i, e) in entries.iter_mut().enumerate() {
            if let Some(r) = e.get_mut("resource") {
                one(r, i);
            }
        }
    } else {
        one(body, 0);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for ctx in callers() {
        for path in PATHS {
            let Some(mut req) = request(path) else {
                continue;
            };
            let Ok(auth) = authorize(&ctx, &mut req) else {
                continue;
            };
            let mut resp = FhirResponse::ok(body.clone());
            if filter_response(&ctx, &auth, &mut resp).is_ok() {
                if let Some(b) = resp.body.as_mut() {
                    subset_all(b);
                }
            }
        }
    }
});
