//! Request-side rules of the authorize stage, with hand-built AccessContexts.

use axum::http::Method;
use serde_json::json;
use smart_launch::{context::AccessContext, scope::ScopeSet};

use super::*;
use crate::fhir::FhirRequest;

pub(super) const LAB: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
pub(super) const VITALS: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";

pub(super) fn caller(scopes: &str, patient: Option<&str>) -> AccessContext {
    AccessContext {
        client_id: "app".into(),
        scopes: ScopeSet::parse(scopes).unwrap(),
        patient: patient.map(str::to_owned),
        encounter: None,
        fhir_user: None,
        role: None,
        jti: "j".into(),
        expires_at: 0,
        purpose_of_use: None,
        organization: None,
        assurance: Default::default(),
    }
}

pub(super) fn user(scopes: &str, role: &str, fhir_user: &str) -> AccessContext {
    AccessContext {
        role: Some(role.into()),
        fhir_user: Some(fhir_user.into()),
        ..caller(scopes, None)
    }
}

pub(super) fn req(method: Method, path_query: &str) -> FhirRequest {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut r = FhirRequest::route(&method, &segs).unwrap();
    r.params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    r
}

fn get(p: &str) -> FhirRequest {
    req(Method::GET, p)
}

fn status(r: FhirResult<Authorized>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(e) => {
            if e.status == StatusCode::FORBIDDEN {
                assert_eq!(e.code, IssueType::Forbidden);
            }
            e.status.as_u16()
        }
    }
}

fn compartment(r: &FhirRequest) -> Option<(&str, &str)> {
    r.compartment
        .as_ref()
        .map(|(a, b)| (a.as_str(), b.as_str()))
}

fn p(r: &FhirRequest, name: &str) -> Vec<String> {
    r.params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

#[test]
fn type_not_granted_is_403_with_forbidden() {
    let c = caller("patient/Observation.rs", Some("A"));
    let e = authorize(&c, &mut get("Condition?patient=A")).unwrap_err();
    assert_eq!(e.status, StatusCode::FORBIDDEN);
    assert_eq!(e.outcome(None)["issue"][0]["code"], "forbidden");
    assert_eq!(status(authorize(&c, &mut get("Condition/1"))), 403);
    assert_eq!(
        status(authorize(
            &caller("openid fhirUser", Some("A")),
            &mut get("Patient/A")
        )),
        403
    );
    assert_eq!(status(authorize(&c, &mut get("metadata"))), 200);
}

#[test]
fn interactions_map_to_letters() {
    let r_only = caller("system/Observation.r", None);
    assert_eq!(status(authorize(&r_only, &mut get("Observation/1"))), 200);
    assert_eq!(
        status(authorize(&r_only, &mut get("Observation/1/_history/2"))),
        200
    );
    assert_eq!(
        status(authorize(&r_only, &mut get("Observation/1/_history"))),
        200
    );
    assert_eq!(status(authorize(&r_only, &mut get("Observation"))), 403);
    assert_eq!(
        status(authorize(&r_only, &mut get("Observation/_history"))),
        403
    );
    let mut post = req(Method::POST, "Observation/_search");
    assert_eq!(
        status(authorize(&r_only, &mut post)),
        403,
        "POST _search is a search"
    );
    let s_only = caller("system/Observation.s", None);
    assert_eq!(status(authorize(&s_only, &mut get("Observation/1"))), 403);
    assert_eq!(
        status(authorize(
            &s_only,
            &mut req(Method::POST, "Observation/_search")
        )),
        200
    );
    let cud = caller("system/Observation.cud", None);
    assert_eq!(
        status(authorize(&cud, &mut req(Method::POST, "Observation"))),
        200
    );
    assert_eq!(
        status(authorize(&cud, &mut req(Method::PUT, "Observation/1"))),
        200
    );
    assert_eq!(
        status(authorize(&cud, &mut req(Method::DELETE, "Observation/1"))),
        200
    );
    // conditional forms also need s
    assert_eq!(
        status(authorize(&cud, &mut req(Method::PUT, "Observation?code=x"))),
        403
    );
    assert_eq!(
        status(authorize(
            &cud,
            &mut req(Method::DELETE, "Observation?code=x")
        )),
        403
    );
    let mut cc = req(Method::POST, "Observation");
    cc.if_none_exist = Some("code=x".into());
    assert_eq!(status(authorize(&cud, &mut cc)), 403);
    let all = caller("system/Observation.cruds", None);
    assert_eq!(
        status(authorize(&all, &mut req(Method::PUT, "Observation?code=x"))),
        200
    );
    assert_eq!(
        status(authorize(
            &all,
            &mut req(Method::DELETE, "Observation?code=x")
        )),
        200
    );
}

#[test]
fn v1_and_v2_scopes_authorize_alike() {
    for scopes in [
        "patient/Observation.read",
        "patient/Observation.rs",
        "patient/*.read",
    ] {
        let c = caller(scopes, Some("A"));
        let mut r = get("Observation?code=x");
        authorize(&c, &mut r).unwrap();
        assert_eq!(compartment(&r), Some(("Patient", "A")), "{scopes}");
        assert_eq!(
            status(authorize(&c, &mut req(Method::POST, "Observation"))),
            403
        );
    }
    let w = caller("user/Observation.write", None);
    assert_eq!(status(authorize(&w, &mut get("Observation/1"))), 403);
}

#[test]
fn patient_scopes_confine_every_search_to_the_compartment() {
    let c = caller("patient/*.rs", Some("A"));
    let mut r = get("Observation?code=x");
    let a = authorize(&c, &mut r).unwrap();
    assert_eq!(r.interaction, Interaction::SearchCompartment);
    assert_eq!(compartment(&r), Some(("Patient", "A")));
    assert!(!a.answer_empty);
    // naming another patient: still confined to A, so nothing of B comes back
    let mut r = get("Observation?patient=B");
    authorize(&c, &mut r).unwrap();
    assert_eq!(compartment(&r), Some(("Patient", "A")));
    assert_eq!(p(&r, "patient"), ["B"]);
    let mut r = get("Patient/B/Observation");
    assert!(authorize(&c, &mut r).unwrap().answer_empty);
    let mut r = get("Patient/A/Observation");
    assert!(!authorize(&c, &mut r).unwrap().answer_empty);
    // Patient itself
    let mut r = get("Patient?name=Bob");
    authorize(&c, &mut r).unwrap();
    assert_eq!(compartment(&r), Some(("Patient", "A")));
    // shared types are not patient data: not confined
    let mut r = get("Organization?name=x");
    authorize(&c, &mut r).unwrap();
    assert_eq!(r.interaction, Interaction::SearchType);
    // no launch patient: patient/ scopes give nothing
    let none = caller("patient/*.rs", None);
    assert_eq!(status(authorize(&none, &mut get("Observation"))), 403);
    // types R4 puts in the compartment that fhirgate cannot confine
    assert_eq!(status(authorize(&c, &mut get("Flag"))), 403);
}

#[test]
fn chains_and_has_stay_confined_and_need_their_own_grants() {
    let c = caller("patient/Observation.rs patient/Patient.rs", Some("A"));
    let mut r = get("Observation?patient.name=Bob");
    authorize(&c, &mut r).unwrap();
    assert_eq!(compartment(&r), Some(("Patient", "A")));
    let mut r = get("Patient?_has:Observation:patient:code=x");
    authorize(&c, &mut r).unwrap();
    assert_eq!(compartment(&r), Some(("Patient", "A")));
    let obs_only = caller("patient/Observation.rs", Some("A"));
    assert_eq!(
        status(authorize(
            &obs_only,
            &mut get("Observation?patient.name=Bob")
        )),
        403
    );
    assert_eq!(
        status(authorize(
            &obs_only,
            &mut get("Observation?subject:Patient.name=Bob")
        )),
        403
    );
    let pat_only = caller("patient/Patient.rs", Some("A"));
    assert_eq!(
        status(authorize(
            &pat_only,
            &mut get("Patient?_has:Observation:patient:code=x")
        )),
        403
    );
    // deeper chains the facade does not parse are refused, never forwarded
    assert_eq!(
        status(authorize(
            &c,
            &mut get("Observation?patient.organization.name=x")
        )),
        403
    );
    // a chain into a granular-only type cannot honour the constraint
    let g = caller(
        &format!("patient/Observation.rs?category={LAB} patient/Patient.rs"),
        Some("A"),
    );
    assert_eq!(
        status(authorize(
            &g,
            &mut get("Patient?_has:Observation:patient:code=x")
        )),
        403
    );
}

#[test]
fn granular_scopes_become_search_parameters() {
    let one = caller(&format!("patient/Observation.rs?category={LAB}"), Some("A"));
    let mut r = get("Observation?code=x");
    let a = authorize(&one, &mut r).unwrap();
    assert_eq!(p(&r, "category"), [LAB]);
    assert!(matches!(a.check, Check::Bundle { exact: true, .. }));
    let two = caller(
        &format!("patient/Observation.rs?category={LAB} patient/Observation.rs?category={VITALS}"),
        Some("A"),
    );
    let mut r = get("Observation");
    authorize(&two, &mut r).unwrap();
    assert_eq!(p(&r, "category"), [format!("{LAB},{VITALS}")]);
    // the request already asks for one granted subset: left alone
    let mut r = get(&format!("Observation?category={}", urlenc(LAB)));
    authorize(&two, &mut r).unwrap();
    assert_eq!(p(&r, "category"), [LAB]);
    // an unconstrained grant wins
    let wide = caller(
        &format!("patient/Observation.rs?category={LAB} patient/Observation.rs"),
        Some("A"),
    );
    let mut r = get("Observation");
    authorize(&wide, &mut r).unwrap();
    assert!(p(&r, "category").is_empty());
    // different parameters cannot be OR-ed in a query: filtered per page
    let mixed = caller(
        &format!("patient/Observation.rs?category={LAB} patient/Observation.rs?code=1234-5"),
        Some("A"),
    );
    let mut r = get("Observation");
    let a = authorize(&mixed, &mut r).unwrap();
    assert!(matches!(a.check, Check::Bundle { exact: false, .. }));
    assert_eq!(compartment(&r), Some(("Patient", "A")));
    assert_eq!(
        status(authorize(&mixed, &mut get("Observation?_elements=id"))),
        403
    );
    assert_eq!(
        status(authorize(&mixed, &mut get("Observation?_summary=count"))),
        403
    );
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn user_scopes_follow_the_role() {
    let clin = user("user/*.cruds", "clinician", "Practitioner/1");
    let mut r = get("Observation?code=x");
    authorize(&clin, &mut r).unwrap();
    assert_eq!(r.interaction, Interaction::SearchType);
    let pat = user("user/*.rs", "patient", "Patient/A");
    let mut r = get("Observation?code=x");
    authorize(&pat, &mut r).unwrap();
    assert_eq!(compartment(&r), Some(("Patient", "A")));
    let odd = user("user/*.rs", "visitor", "Practitioner/1");
    assert_eq!(status(authorize(&odd, &mut get("Observation"))), 403);
    let no_patient = user("user/*.rs", "patient", "Practitioner/1");
    assert_eq!(status(authorize(&no_patient, &mut get("Observation"))), 403);
}

#[test]
fn writes_are_judged_on_the_body_and_the_current_version() {
    let c = caller("patient/Observation.cruds", Some("A"));
    let obs = |p: &str| json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{p}")}});
    let mut r = req(Method::POST, "Observation");
    r.body = Some(obs("A"));
    assert_eq!(status(authorize(&c, &mut r)), 200);
    r.body = Some(obs("B"));
    assert_eq!(status(authorize(&c, &mut r)), 403);
    r.body = Some(json!({"resourceType": "Observation", "subject": {"reference": "urn:uuid:1"}}));
    assert_eq!(status(authorize(&c, &mut r)), 403);
    let mut u = req(Method::PUT, "Observation/o1");
    u.body = Some(obs("A"));
    let a = authorize(&c, &mut u).unwrap();
    assert_eq!(
        a.verify_existing,
        vec![Existing {
            resource_type: "Observation".into(),
            id: "o1".into(),
            op: Op::Update
        }]
    );
    let a = authorize(&c, &mut req(Method::DELETE, "Observation/o1")).unwrap();
    assert_eq!(a.verify_existing[0].op, Op::Delete);
    // conditional writes cannot be confined
    assert_eq!(
        status(authorize(&c, &mut req(Method::PUT, "Observation?code=x"))),
        403
    );
    let open = caller("system/Observation.cruds", None);
    assert!(authorize(&open, &mut u).unwrap().verify_existing.is_empty());
}

#[test]
fn operations() {
    let c = caller("patient/Patient.rs patient/Observation.rs", Some("A"));
    assert_eq!(
        status(authorize(&c, &mut get("Patient/B/$everything"))),
        404
    );
    let mut r = get("Patient/A/$everything");
    authorize(&c, &mut r).unwrap();
    assert_eq!(p(&r, "_type"), ["Patient,Observation"]);
    let mut r = get("Patient/A/$everything?_type=Observation,Condition");
    authorize(&c, &mut r).unwrap();
    assert_eq!(p(&r, "_type"), ["Observation"]);
    assert_eq!(
        status(authorize(
            &c,
            &mut get("Patient/A/$everything?_type=Condition")
        )),
        403
    );
    assert_eq!(status(authorize(&c, &mut get("Patient/A/$whatever"))), 403);
    assert_eq!(status(authorize(&c, &mut get("$export"))), 403);
    let sys = caller("system/*.cruds", None);
    assert_eq!(status(authorize(&sys, &mut get("$whatever"))), 200);
    let clin = user("user/*.rs", "clinician", "Practitioner/1");
    let mut r = get("Patient/B/$everything");
    authorize(&clin, &mut r).unwrap();
    assert!(p(&r, "_type").is_empty());
}

#[test]
fn system_search_needs_unrestricted_types() {
    let clin = user("user/*.rs", "clinician", "Practitioner/1");
    assert_eq!(
        status(authorize(&clin, &mut get("?_type=Observation,Patient"))),
        200
    );
    assert_eq!(status(authorize(&clin, &mut get("?_id=1"))), 200);
    let c = caller("patient/*.rs", Some("A"));
    assert_eq!(status(authorize(&c, &mut get("?_type=Observation"))), 403);
    assert_eq!(status(authorize(&c, &mut get("?_id=1"))), 403);
    let o = caller("system/Observation.rs", None);
    assert_eq!(status(authorize(&o, &mut get("?_type=Observation"))), 200);
    assert_eq!(
        status(authorize(&o, &mut get("?_type=Observation,Patient"))),
        403
    );
}
