//! Da Vinci PAS 2.2 differences behind `[prior_auth] pas_version = "2.2"`
//! (issue 7, item 1; `src/prior_auth/version.rs` lists them with their
//! sources), black-box through HTTP. Each test fails if its 2.2 behaviour
//! were missing; the first ones check that the default stays 2.0.1 and that
//! an unknown setting is refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pas.rs"]
mod pas;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{Method, StatusCode},
    routing::post,
    Router,
};
use common::{TestApp, TestResponse};
use fhirgate::{config::Config, AppState};
use pas::request;
use serde_json::{json, Value};

const SD: &str = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/";
const CLAIM: &str = "Bundle.entry[0].resource.ofType(Claim)";
const SCOPES: &str = "system/Claim.crs system/Subscription.cruds";
const TOPIC: &str = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic";
const FILTER: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";
const CONTENT: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";
const NPI: &str = "http://hl7.org/fhir/sid/us-npi|8189991234";

fn sd(name: &str) -> String {
    format!("{SD}{name}")
}

fn v22(name: &str) -> String {
    format!("{SD}{name}|2.2.1")
}

const PROVIDERS: &str = "[payer]\nprovider_clients = { \"clinic-a\" = \"Organization/org-a\" }\n\
     [subscriptions]\ntimeout_seconds = 2\nattempts = 2\nretry_delay_ms = 50\n";

async fn app_2_2() -> TestApp {
    TestApp::with_config(&format!("{PROVIDERS}[prior_auth]\npas_version = \"2.2\"\n")).await
}

async fn app_default() -> TestApp {
    TestApp::with_config(PROVIDERS).await
}

async fn token(t: &TestApp) -> String {
    t.token_as("clinic-a", SCOPES, None, None, None, None).await
}

async fn call(t: &TestApp, tok: &str, method: Method, path: &str, body: &Value) -> TestResponse {
    t.request_with(tok, method, path, &[], Some(body)).await
}

async fn submit(t: &TestApp, tok: &str, body: &Value) -> TestResponse {
    call(t, tok, Method::POST, "/fhir/Claim/$submit", body).await
}

async fn inquire(t: &TestApp, tok: &str, body: &Value) -> TestResponse {
    call(t, tok, Method::POST, "/fhir/Claim/$inquire", body).await
}

fn ok_cr(r: &TestResponse) -> &Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cr = &r.json["entry"][0]["resource"];
    assert_eq!(cr["resourceType"], "ClaimResponse", "{}", r.text());
    cr
}

fn profile(v: &Value) -> &str {
    v["meta"]["profile"][0].as_str().unwrap_or_default()
}

fn has_entry(bundle: &Value, rtype: &str) -> bool {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["resource"]["resourceType"] == rtype)
}

fn inquiry(claim_id: &str) -> Value {
    let mut b = request(claim_id, "00000", 1, "normal");
    b["entry"][0]["resource"]["meta"] = json!({"profile": [sd("profile-claim-inquiry")]});
    b
}

/// A PAS 2.2 Claim Update of `prior_id`: a new Claim identifier, `related`
/// naming the prior Claim, which is included in the Bundle.
fn update(prior_id: &str, new_id: &str, code: &str) -> Value {
    let prior = request(prior_id, "27447", 1, "normal")["entry"][0].clone();
    let mut b = request(new_id, code, 1, "normal");
    let claim = &mut b["entry"][0];
    claim["fullUrl"] = json!("http://example.org/fhir/Claim/ReferralClaimUpdate");
    claim["resource"]["id"] = json!("ReferralClaimUpdate");
    claim["resource"]["meta"] = json!({"profile": [v22("profile-claim-update")]});
    claim["resource"]["related"] = json!([{
        "claim": {"reference": "Claim/ReferralClaim"},
        "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/related-claim-relationship", "code": "prior"}]}
    }]);
    b["entry"].as_array_mut().unwrap().push(prior);
    b
}

fn review_code(cr: &Value) -> String {
    let ra = cr["item"][0]["adjudication"][0]["extension"][0]["extension"][0].clone();
    ra["valueCodeableConcept"]["coding"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_default_stays_2_0_1() {
    let t = app_default().await;
    let tok = token(&t).await;
    let r = submit(&t, &tok, &request("def-1", "97110", 6, "normal")).await;
    let cr = ok_cr(&r);
    assert_eq!(profile(cr), sd("profile-claimresponse"));
    assert_eq!(profile(&r.json), sd("profile-pas-response-bundle"));
    assert!(!has_entry(&r.json, "Coverage"), "{}", r.text());
    // A 2.2 Claim Update is not understood: it is a new request.
    let r = submit(&t, &tok, &update("def-1", "def-1-upd", "97110")).await;
    assert_eq!(ok_cr(&r)["request"]["identifier"]["value"], "def-1-upd");
    // The inquiry answer keeps the Response Bundle profiles.
    let r = inquire(&t, &tok, &inquiry("def-1")).await;
    assert_eq!(profile(ok_cr(&r)), sd("profile-claimresponse"));
    assert_eq!(t.app.config.prior_auth.pas_version, "2.0.1");
}

#[tokio::test]
async fn an_unknown_pas_version_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![(
        "FHIRGATE_DATA_DIR".to_owned(),
        dir.path().display().to_string(),
    )];
    for bad in ["2.1", "2.2.1", "STU2"] {
        let toml = format!("[prior_auth]\npas_version = \"{bad}\"\n");
        let config = Config::from_parts(&toml, std::path::Path::new("fhirgate.toml"), &env)
            .expect("the file parses");
        let err = match AppState::open(config).await {
            Ok(_) => panic!("pas_version {bad} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("pas_version") && err.contains("\"2.0.1\" or \"2.2\""),
            "{err}"
        );
    }
}

#[tokio::test]
async fn answers_declare_the_2_2_canonicals() {
    let t = app_2_2().await;
    let tok = token(&t).await;
    let r = submit(&t, &tok, &request("v22-1", "97110", 6, "normal")).await;
    let cr = ok_cr(&r);
    assert_eq!(profile(cr), v22("profile-claimresponse"));
    assert_eq!(profile(&r.json), v22("profile-pas-response-bundle"));
    // review actions stay where 2.0.1 had them
    assert_eq!(
        cr["item"][0]["adjudication"][0]["extension"][0]["url"],
        sd("extension-reviewAction")
    );
    assert_eq!(review_code(cr), "A1");
    // a business rejection too
    let mut cancel = request("nothing-here", "97110", 1, "normal");
    cancel["entry"][0]["resource"]["status"] = json!("cancelled");
    let r = submit(&t, &tok, &cancel).await;
    let cr = ok_cr(&r);
    assert_eq!(cr["outcome"], "error");
    assert_eq!(profile(cr), v22("profile-claimresponse"));
}

#[tokio::test]
async fn the_response_bundle_holds_every_resource_the_claim_response_references() {
    let t = app_2_2().await;
    let tok = token(&t).await;
    let r = submit(&t, &tok, &request("v22-cov", "97110", 6, "normal")).await;
    let cr = ok_cr(&r);
    let coverage = cr["insurance"][0]["coverage"]["reference"]
        .as_str()
        .unwrap();
    assert_eq!(coverage, "Coverage/InsuranceExample");
    assert!(has_entry(&r.json, "Coverage"), "{}", r.text());
    // the Claim itself is not required
    assert!(!has_entry(&r.json, "Claim"));
}

#[tokio::test]
async fn requests_declaring_either_version_are_accepted_by_their_rules() {
    let t = app_2_2().await;
    let tok = token(&t).await;
    // PAS 2.2 lets Claim.identifier repeat (1..2); 2.0.1 (as kept in
    // profiles/pas) does not.
    let two_ids = |id: &str, declared: &str| {
        let mut b = request(id, "97110", 6, "normal");
        let claim = &mut b["entry"][0]["resource"];
        claim["identifier"]
            .as_array_mut()
            .unwrap()
            .push(json!({"system": "urn:other", "value": format!("{id}-b")}));
        claim["meta"] = json!({"profile": [format!("{SD}profile-claim{declared}")]});
        b
    };
    let r = submit(&t, &tok, &two_ids("d-22", "|2.2.1")).await;
    assert_eq!(ok_cr(&r)["outcome"], "complete");
    let r = submit(&t, &tok, &two_ids("d-bare", "")).await;
    assert_eq!(ok_cr(&r)["outcome"], "complete");
    // Declaring 2.0.1: checked (and accepted or refused) by 2.0.1's rules.
    let r = submit(&t, &tok, &two_ids("d-201", "|2.0.1")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(
        r.text().contains(&format!("{CLAIM}.identifier")),
        "{}",
        r.text()
    );
    let mut ok_201 = request("d-201-ok", "97110", 6, "normal");
    ok_201["entry"][0]["resource"]["meta"] =
        json!({"profile": [format!("{SD}profile-claim|2.0.1")]});
    let r = submit(&t, &tok, &ok_201).await;
    assert_eq!(ok_cr(&r)["outcome"], "complete");
    // The same two-identifier request under the default (2.0.1) server: 400.
    let d = app_default().await;
    let dtok = token(&d).await;
    let r = submit(&d, &dtok, &two_ids("d-22", "|2.2.1")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
}

#[tokio::test]
async fn a_claim_update_updates_the_request_it_names() {
    let t = app_2_2().await;
    let tok = token(&t).await;
    let r = submit(&t, &tok, &request("upd-1", "27447", 1, "normal")).await;
    assert_eq!(ok_cr(&r)["outcome"], "queued");
    // The update asks for an auto-approved service instead.
    let r = submit(&t, &tok, &update("upd-1", "upd-1-v2", "97110")).await;
    let cr = ok_cr(&r);
    assert_eq!(cr["outcome"], "complete", "{cr}");
    assert_eq!(review_code(cr), "A1");
    // The original request shows the update.
    let r = inquire(&t, &tok, &inquiry("upd-1")).await;
    let cr = ok_cr(&r);
    assert_eq!(cr["outcome"], "complete", "{cr}");
    // An update without `related` is no Claim Update: 400 naming it.
    let mut bad = update("upd-1", "upd-1-v3", "97110");
    bad["entry"][0]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("related");
    let r = submit(&t, &tok, &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(
        r.text().contains(&format!("{CLAIM}.related")),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn certification_type_3_cancels_the_whole_request() {
    let t = app_2_2().await;
    let tok = token(&t).await;
    let r = submit(&t, &tok, &request("cx-1", "27447", 1, "normal")).await;
    assert_eq!(ok_cr(&r)["outcome"], "queued");
    let mut cancel = update("cx-1", "cx-1-cancel", "27447");
    let claim = &mut cancel["entry"][0]["resource"];
    claim.as_object_mut().unwrap().remove("item");
    claim["extension"] = json!([{
        "url": format!("{SD}extension-certificationType"),
        "valueCodeableConcept": {"coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "3"}]}
    }]);
    let r = submit(&t, &tok, &cancel).await;
    let cr = ok_cr(&r);
    assert_eq!(cr["outcome"], "complete", "{cr}");
    assert_eq!(cr["disposition"], "Cancelled by the requestor");
    // Without the extension, an item-less update is refused.
    let mut no_items = update("cx-1", "cx-1-x", "27447");
    no_items["entry"][0]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("item");
    let r = submit(&t, &tok, &no_items).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains(&format!("{CLAIM}.item")), "{}", r.text());
}

#[tokio::test]
async fn inquiries_answer_with_the_inquiry_profiles_and_match_the_mb_member_id() {
    let t = app_2_2().await;
    let tok = token(&t).await;
    // The Patient's member number (type MB) is not its first identifier.
    let mut b = request("iq-mb", "27447", 1, "normal");
    b["entry"][1]["resource"]["identifier"] = json!([
        {"system": "http://hospital.example/mrn", "value": "MRN-1"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]},
         "system": "http://example.org/MIN", "value": "12345678901"}
    ]);
    assert_eq!(ok_cr(&submit(&t, &tok, &b).await)["outcome"], "queued");
    // The inquiry names the member by the MB identifier alone.
    let mut q = inquiry("iq-mb");
    q["entry"][1]["resource"]["identifier"] = json!([
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]},
         "system": "http://example.org/MIN", "value": "12345678901"}
    ]);
    let r = inquire(&t, &tok, &q).await;
    let cr = ok_cr(&r);
    assert_eq!(profile(cr), v22("profile-claiminquiryresponse"));
    assert_eq!(profile(&r.json), v22("profile-pas-inquiry-response-bundle"));
    assert_eq!(cr["outcome"], "queued");
    assert!(has_entry(&r.json, "Coverage"));
}

/// A subscriber on a loopback port recording what is posted to it.
#[derive(Clone)]
struct Subscriber {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
}

async fn hook(State(got): State<Arc<Mutex<Vec<Value>>>>, body: Bytes) -> StatusCode {
    got.lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    StatusCode::OK
}

impl Subscriber {
    async fn start() -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/notify", post(hook))
            .with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, got }
    }

    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|b| status_param(b, "type")["valueCode"] == kind)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, kind: &str, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let got = self.of_kind(kind);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} {kind} notification(s) expected");
    }
}

fn status_param<'a>(bundle: &'a Value, name: &str) -> &'a Value {
    bundle["entry"][0]["resource"]["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

fn subscription(endpoint: &str, content: &str) -> Value {
    json!({
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "PAS 2.2 notifications",
        "criteria": TOPIC,
        "_criteria": {"extension": [{"url": FILTER, "valueString": format!("org-identifier={NPI}")}]},
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": CONTENT, "valueCode": content}]}
        }
    })
}

#[tokio::test]
async fn notifications_carry_the_pas_response_bundle_as_focus() {
    let t = app_2_2().await;
    let tok = token(&t).await;
    let sub = Subscriber::start().await;
    let r = call(
        &t,
        &tok,
        Method::POST,
        "/fhir/Subscription",
        &subscription(&sub.url, "full-resource"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json["status"], "active", "{}", r.text());
    let r = submit(&t, &tok, &request("sub-22", "27447", 1, "normal")).await;
    let cr_id = ok_cr(&r)["id"].as_str().unwrap().to_owned();
    let ev = sub.wait_for("event-notification", 1).await;
    let n = &ev[0];
    let focus = status_param(n, "notification-event")["part"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "focus")
        .unwrap()["valueReference"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(focus.starts_with("urn:uuid:"), "{focus}");
    assert!(!focus.contains("/ClaimResponse/"), "{focus}");
    let entry = &n["entry"][1];
    assert_eq!(entry["fullUrl"], focus.as_str());
    let bundle = &entry["resource"];
    assert_eq!(bundle["resourceType"], "Bundle", "{n}");
    assert_eq!(bundle["type"], "collection");
    assert_eq!(profile(bundle), v22("profile-pas-response-bundle"));
    let cr = &bundle["entry"][0]["resource"];
    assert_eq!(cr["resourceType"], "ClaimResponse");
    assert_eq!(cr["id"], cr_id.as_str());
    assert_eq!(cr["outcome"], "queued");
    assert!(has_entry(bundle, "Patient") && has_entry(bundle, "Coverage"));
}

#[tokio::test]
async fn only_full_resource_subscriptions_are_served() {
    let t = app_2_2().await;
    let tok = token(&t).await;
    let sub = Subscriber::start().await;
    for content in ["id-only", "empty"] {
        let r = call(
            &t,
            &tok,
            Method::POST,
            "/fhir/Subscription",
            &subscription(&sub.url, content),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json["status"], "error", "{}", r.text());
        assert!(r.text().contains("full-resource"), "{}", r.text());
    }
    // no handshake was sent, and a pended request notifies nobody
    submit(&t, &tok, &request("sub-io", "27447", 1, "normal")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sub.got.lock().unwrap().is_empty());
    // under 2.0.1 the same id-only subscription is served
    let d = app_default().await;
    let dtok = token(&d).await;
    let r = call(
        &d,
        &dtok,
        Method::POST,
        "/fhir/Subscription",
        &subscription(&sub.url, "id-only"),
    )
    .await;
    assert_eq!(r.json["status"], "active", "{}", r.text());
}

#[tokio::test]
async fn an_id_only_subscription_made_under_2_0_1_stops_at_the_switch_to_2_2() {
    let t = app_default().await;
    let tok = token(&t).await;
    let sub = Subscriber::start().await;
    let r = call(
        &t,
        &tok,
        Method::POST,
        "/fhir/Subscription",
        &subscription(&sub.url, "id-only"),
    )
    .await;
    assert_eq!(r.json["status"], "active", "{}", r.text());
    let id = r.json["id"].as_str().unwrap().to_owned();
    // The operator restarts with PAS 2.2.
    let t = t
        .reopen_with_config(&format!("{PROVIDERS}[prior_auth]\npas_version = \"2.2\"\n"))
        .await;
    let tok = token(&t).await;
    submit(&t, &tok, &request("sw-1", "27447", 1, "normal")).await;
    let mut status = Value::Null;
    for _ in 0..100 {
        let r = t
            .request_with(
                &tok,
                Method::GET,
                &format!("/fhir/Subscription/{id}"),
                &[],
                None,
            )
            .await;
        status = r.json.clone();
        if r.json["status"] == "error" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "error", "{status}");
    assert!(status.to_string().contains("full-resource"), "{status}");
    assert!(sub.of_kind("event-notification").is_empty());
}
