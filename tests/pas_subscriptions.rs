//! PAS subscriptions (issue 7, item 2): R4 topic-based Subscriptions
//! (Subscriptions R5 Backport IG) on the PAS topic, black-box. A real HTTP
//! listener on a loopback port plays the subscriber: it receives the
//! handshake on create and an event notification when a pended request is
//! decided by a reviewer (`prior_auth::decide::decide`, what the admin
//! review queue calls). Another organization neither sees the subscription
//! nor gets the notification; bad subscriptions get an OperationOutcome; a
//! failing endpoint puts the subscription in `error`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pas.rs"]
mod pas;

use std::{
    sync::{
        atomic::{AtomicU16, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode},
    routing::post,
    Router,
};
use common::{TestApp, TestResponse};
use fhirgate::prior_auth::decide::{decide, Decision};
use serde_json::{json, Value};

const TOPIC: &str = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic";
const FILTER: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";
const CONTENT: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";
/// The requestor identifier of `pas::request` (its `Organization/UMOExample`).
const NPI: &str = "http://hl7.org/fhir/sid/us-npi|8189991234";
const SCOPES: &str = "system/Claim.crs system/Subscription.cruds";

/// One notification as the subscriber received it.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Value,
}

/// A subscriber endpoint on a loopback port; answers `status` (200 unless
/// changed) and records everything posted to it.
#[derive(Clone)]
struct Subscriber {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Subscriber {
    async fn start() -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let state = (got.clone(), status.clone());
        let app = Router::new().route("/notify", post(hook)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, got, status }
    }

    fn fail_with(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Notifications of `kind` received so far.
    fn of_kind(&self, kind: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| status_param(&r.body, "type")["valueCode"] == kind)
            .collect()
    }

    /// Waits (up to 10 s) until `n` notifications of `kind` have arrived.
    async fn wait_for(&self, kind: &str, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.of_kind(kind);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} {kind} notification(s) expected, got {:?}", self.all());
    }
}

type HookState = (Arc<Mutex<Vec<Received>>>, Arc<AtomicU16>);

async fn hook(
    State((got, status)): State<HookState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    got.lock().unwrap().push(Received { headers, body });
    StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
}

/// A parameter of a notification's SubscriptionStatus (entry 0).
fn status_param<'a>(bundle: &'a Value, name: &str) -> &'a Value {
    bundle["entry"][0]["resource"]["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

fn event_part<'a>(bundle: &'a Value, name: &str) -> &'a Value {
    status_param(bundle, "notification-event")["part"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Two provider organizations' Backend Services clients; fast retries.
async fn app() -> TestApp {
    TestApp::with_config(
        "[payer]\nprovider_clients = { \"clinic-a\" = \"Organization/org-a\", \"clinic-b\" = \"Organization/org-b\" }\n\
         [subscriptions]\ntimeout_seconds = 2\nattempts = 2\nretry_delay_ms = 50\n",
    )
    .await
}

async fn token(t: &TestApp, client: &str) -> String {
    t.token_as(client, SCOPES, None, None, None, None).await
}

/// A PAS Subscription (shaped like the IG's `PASSubscriptionExample`).
fn subscription(endpoint: &str, content: &str) -> Value {
    json!({
        "resourceType": "Subscription",
        "meta": {"profile": ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-subscription"]},
        "status": "requested",
        "reason": "Receive notifications about claim responses for my organization.",
        "criteria": TOPIC,
        "_criteria": {"extension": [{"url": FILTER, "valueString": format!("orgIdentifier={NPI}")}]},
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": CONTENT, "valueCode": content}]},
            "header": ["Authorization: Bearer subscriber-secret"]
        }
    })
}

async fn call(
    t: &TestApp,
    tok: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> TestResponse {
    t.request_with(tok, method, path, &[], body).await
}

async fn create(t: &TestApp, tok: &str, body: &Value) -> Value {
    let r = call(t, tok, Method::POST, "/fhir/Subscription", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json["resourceType"], "Subscription");
    r.json
}

async fn read(t: &TestApp, tok: &str, id: &str) -> TestResponse {
    call(
        t,
        tok,
        Method::GET,
        &format!("/fhir/Subscription/{id}"),
        None,
    )
    .await
}

/// Submits a request pended for review (CPT 27447); its ClaimResponse id.
async fn pended(t: &TestApp, tok: &str, claim_id: &str) -> String {
    let body = pas::request(claim_id, "27447", 1, "normal");
    let r = call(t, tok, Method::POST, "/fhir/Claim/$submit", Some(&body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cr = &r.json["entry"][0]["resource"];
    assert_eq!(cr["outcome"], "queued", "{cr}");
    cr["id"].as_str().unwrap().to_owned()
}

/// Waits (up to 10 s) until the subscription's status is `want`.
async fn wait_status(t: &TestApp, tok: &str, id: &str, want: &str) -> Value {
    for _ in 0..200 {
        let r = read(t, tok, id).await;
        if r.json["status"] == want {
            return r.json;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "Subscription/{id} never became {want}: {}",
        read(t, tok, id).await.text()
    );
}

#[tokio::test]
async fn create_sends_a_handshake_and_activates() {
    let t = app().await;
    let tok = token(&t, "clinic-a").await;
    let hook = Subscriber::start().await;
    let sub = create(&t, &tok, &subscription(&hook.url, "full-resource")).await;
    assert_eq!(sub["status"], "active", "{sub}");
    assert_eq!(sub["criteria"], TOPIC);
    let id = sub["id"].as_str().unwrap();
    // The handshake: a history Bundle led by a SubscriptionStatus.
    let hs = hook.wait_for("handshake", 1).await;
    assert_eq!(hs.len(), 1);
    let b = &hs[0].body;
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "history");
    assert_eq!(b["entry"][0]["resource"]["resourceType"], "Parameters");
    assert_eq!(status_param(b, "topic")["valueCanonical"], TOPIC);
    assert_eq!(status_param(b, "status")["valueCode"], "requested");
    assert_eq!(
        status_param(b, "events-since-subscription-start")["valueString"],
        "0"
    );
    let subscription_ref = status_param(b, "subscription")["valueReference"]["reference"]
        .as_str()
        .unwrap();
    assert!(
        subscription_ref.ends_with(&format!("/Subscription/{id}")),
        "{subscription_ref}"
    );
    assert_eq!(hs[0].headers["content-type"], "application/fhir+json");
    assert_eq!(hs[0].headers["authorization"], "Bearer subscriber-secret");
    // Read, search and $status see it, from the facade (not the upstream).
    let r = read(&t, &tok, id).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["status"], "active");
    let r = call(&t, &tok, Method::GET, "/fhir/Subscription", None).await;
    assert_eq!(r.json["total"], 1, "{}", r.text());
    assert_eq!(r.json["entry"][0]["resource"]["id"], id);
    let r = call(
        &t,
        &tok,
        Method::GET,
        &format!("/fhir/Subscription/{id}/$status"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let st = &r.json["entry"][0]["resource"];
    assert_eq!(st["resourceType"], "Parameters");
    let p = |n: &str| {
        st["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(p("type")["valueCode"], "query-status");
    assert_eq!(p("status")["valueCode"], "active");
}

#[tokio::test]
async fn a_reviewer_decision_notifies_the_submitting_organization_only() {
    let t = app().await;
    let (a, b) = (token(&t, "clinic-a").await, token(&t, "clinic-b").await);
    let (hook_a, hook_b) = (Subscriber::start().await, Subscriber::start().await);
    let sub_a = create(&t, &a, &subscription(&hook_a.url, "full-resource")).await;
    // Organization B subscribes with the same requestor filter: the filter
    // alone never reaches another organization's requests.
    let sub_b = create(&t, &b, &subscription(&hook_b.url, "full-resource")).await;
    assert_eq!(sub_b["status"], "active");
    let id_a = sub_a["id"].as_str().unwrap();

    let cr_id = pended(&t, &a, "sub-decide-1").await;
    // Pended by $submit: event 1.
    let ev = hook_a.wait_for("event-notification", 1).await;
    assert_eq!(event_part(&ev[0].body, "event-number")["valueString"], "1");
    // The reviewer approves (what the admin queue's form does).
    let rec = decide(&t.app, &cr_id, "reviewer", 1, Decision::Approve, None)
        .await
        .unwrap();
    assert_eq!(rec.state.as_str(), "approved");
    let ev = hook_a.wait_for("event-notification", 2).await;
    let approved = ev
        .iter()
        .find(|r| event_part(&r.body, "event-number")["valueString"] == "2")
        .expect("event 2");
    let b2 = &approved.body;
    assert_eq!(b2["type"], "history");
    assert_eq!(status_param(b2, "status")["valueCode"], "active");
    assert_eq!(
        status_param(b2, "events-since-subscription-start")["valueString"],
        "2"
    );
    let focus = event_part(b2, "focus")["valueReference"]["reference"]
        .as_str()
        .unwrap();
    assert!(
        focus.ends_with(&format!("/ClaimResponse/{cr_id}")),
        "{focus}"
    );
    // full-resource: the ClaimResponse itself follows, now certified.
    let cr = &b2["entry"][1]["resource"];
    assert_eq!(cr["resourceType"], "ClaimResponse");
    assert_eq!(cr["id"], cr_id.as_str());
    assert_eq!(cr["outcome"], "complete");
    assert!(cr["item"][0].to_string().contains("\"A1\""), "{cr}");
    assert_eq!(b2["entry"][1]["fullUrl"], focus);

    // Organization B got its handshake and nothing else.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook_b.all().len(), 1, "{:?}", hook_b.all());
    assert!(hook_b.of_kind("event-notification").is_empty());
    // … and cannot see, change or delete A's subscription: not found.
    assert_eq!(read(&t, &b, id_a).await.status, StatusCode::NOT_FOUND);
    let mut upd = subscription(&hook_b.url, "full-resource");
    upd["id"] = json!(id_a);
    let r = call(
        &t,
        &b,
        Method::PUT,
        &format!("/fhir/Subscription/{id_a}"),
        Some(&upd),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    let r = call(
        &t,
        &b,
        Method::DELETE,
        &format!("/fhir/Subscription/{id_a}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &t,
        &b,
        Method::GET,
        &format!("/fhir/Subscription/{id_a}/$status"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&t, &b, Method::GET, "/fhir/Subscription", None).await;
    assert_eq!(r.json["total"], 1);
    assert_eq!(r.json["entry"][0]["resource"]["id"], sub_b["id"]);
    // A's subscription is intact and counted both events.
    let r = read(&t, &a, id_a).await;
    assert_eq!(r.json["status"], "active");
}

#[tokio::test]
async fn id_only_notifications_reference_the_claim_response() {
    let t = app().await;
    let a = token(&t, "clinic-a").await;
    let hook = Subscriber::start().await;
    create(&t, &a, &subscription(&hook.url, "id-only")).await;
    let cr_id = pended(&t, &a, "sub-idonly-1").await;
    decide(&t.app, &cr_id, "reviewer", 1, Decision::Deny, Some("A3"))
        .await
        .unwrap();
    let ev = hook.wait_for("event-notification", 2).await;
    for r in &ev {
        assert_eq!(r.body["entry"].as_array().unwrap().len(), 1, "{}", r.body);
        let focus = event_part(&r.body, "focus")["valueReference"]["reference"]
            .as_str()
            .unwrap();
        assert!(focus.ends_with(&format!("/ClaimResponse/{cr_id}")));
    }
}

#[tokio::test]
async fn a_filter_on_another_requestor_gets_nothing() {
    let t = app().await;
    let a = token(&t, "clinic-a").await;
    let hook = Subscriber::start().await;
    let mut s = subscription(&hook.url, "id-only");
    s["_criteria"]["extension"][0]["valueString"] =
        json!("orgIdentifier=http://hl7.org/fhir/sid/us-npi|9999999999");
    create(&t, &a, &s).await;
    let cr_id = pended(&t, &a, "sub-other-1").await;
    decide(&t.app, &cr_id, "reviewer", 1, Decision::Approve, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.all().len(), 1, "only the handshake: {:?}", hook.all());
}

#[tokio::test]
async fn bad_subscriptions_are_refused_with_an_operation_outcome() {
    let t = app().await;
    let a = token(&t, "clinic-a").await;
    let hook = Subscriber::start().await;
    let diag = |r: &TestResponse| r.json["issue"].to_string();
    // Another topic: 422, naming the supported one.
    let mut s = subscription(&hook.url, "id-only");
    s["criteria"] = json!("http://hl7.org/SubscriptionTopic/admission");
    let r = call(&t, &a, Method::POST, "/fhir/Subscription", Some(&s)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    assert!(diag(&r).contains(TOPIC), "{}", r.text());
    assert!(diag(&r).contains("Subscription.criteria"));
    // Plain http to a non-loopback host, and a non-http scheme.
    for bad in [
        "http://ehr.example.org/notify",
        "ftp://ehr.example.org/notify",
    ] {
        let s = subscription(bad, "id-only");
        let r = call(&t, &a, Method::POST, "/fhir/Subscription", Some(&s)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(
            diag(&r).contains("Subscription.channel.endpoint"),
            "{}",
            r.text()
        );
    }
    // No channel at all: 400.
    let mut s = subscription(&hook.url, "id-only");
    s.as_object_mut().unwrap().remove("channel");
    let r = call(&t, &a, Method::POST, "/fhir/Subscription", Some(&s)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(diag(&r).contains("Subscription.channel"), "{}", r.text());
    // A websocket channel: 422 (PAS: rest-hook only).
    let mut s = subscription(&hook.url, "id-only");
    s["channel"]["type"] = json!("websocket");
    let r = call(&t, &a, Method::POST, "/fhir/Subscription", Some(&s)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    // No organization filter: 400.
    let mut s = subscription(&hook.url, "id-only");
    s.as_object_mut().unwrap().remove("_criteria");
    let r = call(&t, &a, Method::POST, "/fhir/Subscription", Some(&s)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(
        diag(&r).contains("backport-filter-criteria"),
        "{}",
        r.text()
    );
    // A client acting for no organization cannot subscribe.
    let lone = token(&t, "lone-client").await;
    let r = call(
        &t,
        &lone,
        Method::POST,
        "/fhir/Subscription",
        Some(&subscription(&hook.url, "id-only")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    // Without a Subscription scope: 403.
    let claims_only = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    let r = call(
        &t,
        &claims_only,
        Method::POST,
        "/fhir/Subscription",
        Some(&subscription(&hook.url, "id-only")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // Nothing was sent or stored.
    assert!(hook.all().is_empty(), "{:?}", hook.all());
    let r = call(&t, &a, Method::GET, "/fhir/Subscription", None).await;
    assert_eq!(r.json["total"], 0, "{}", r.text());
}

#[tokio::test]
async fn a_failing_endpoint_puts_the_subscription_in_error_until_updated() {
    let t = app().await;
    let a = token(&t, "clinic-a").await;
    let hook = Subscriber::start().await;
    // requested → error: the handshake is refused; the create still answers 201.
    hook.fail_with(500);
    let sub = create(&t, &a, &subscription(&hook.url, "id-only")).await;
    assert_eq!(sub["status"], "error", "{sub}");
    assert!(
        sub["error"].as_str().unwrap().contains("handshake"),
        "{sub}"
    );
    let id = sub["id"].as_str().unwrap().to_owned();
    // Error subscriptions get no events.
    let cr = pended(&t, &a, "sub-fail-1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.of_kind("event-notification").is_empty());
    // error → requested → active: the owner updates, a new handshake succeeds.
    hook.fail_with(200);
    let mut upd = subscription(&hook.url, "id-only");
    upd["id"] = json!(id);
    let r = call(
        &t,
        &a,
        Method::PUT,
        &format!("/fhir/Subscription/{id}"),
        Some(&upd),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["status"], "active", "{}", r.text());
    assert!(r.json["error"].is_null());
    assert_eq!(hook.of_kind("handshake").len(), 2);
    // active → error: every delivery attempt of an event fails.
    hook.fail_with(503);
    decide(&t.app, &cr, "reviewer", 1, Decision::Approve, None)
        .await
        .unwrap();
    let errored = wait_status(&t, &a, &id, "error").await;
    assert!(
        errored["error"].as_str().unwrap().contains("503"),
        "{errored}"
    );
    assert_eq!(hook.of_kind("event-notification").len(), 2, "two attempts");
    // active → off by update: nothing more is sent.
    hook.fail_with(200);
    upd["status"] = json!("off");
    let r = call(
        &t,
        &a,
        Method::PUT,
        &format!("/fhir/Subscription/{id}"),
        Some(&upd),
    )
    .await;
    assert_eq!(r.json["status"], "off", "{}", r.text());
    let before = hook.all().len();
    pended(&t, &a, "sub-fail-2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.all().len(), before);
    // The server alone sets error.
    upd["status"] = json!("error");
    let r = call(
        &t,
        &a,
        Method::PUT,
        &format!("/fhir/Subscription/{id}"),
        Some(&upd),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    // Deleted: gone for good.
    let r = call(
        &t,
        &a,
        Method::DELETE,
        &format!("/fhir/Subscription/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(read(&t, &a, &id).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn internal_endpoints_are_not_posted_to() {
    let t = app().await;
    let tok = token(&t, "clinic-a").await;
    // cloud metadata, private networks, and a name resolving to loopback
    for endpoint in [
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/hook",
        "https://[fd00::1]/hook",
        "https://localtest.me/hook",
    ] {
        let s = create(&t, &tok, &subscription(endpoint, "id-only")).await;
        assert_eq!(s["status"], "error", "{endpoint}: {s}");
        let why = s["error"].to_string();
        assert!(
            why.contains("not public")
                || why.contains("no public address")
                || why.contains("could not be reached"),
            "{endpoint}: {why}"
        );
    }
}

#[tokio::test]
async fn subscriptions_cannot_be_reached_through_batches_or_system_search() {
    let t = app().await;
    let tok = token(&t, "clinic-a").await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "Subscription"},
         "resource": subscription("https://ehr.example.org/hook", "id-only")}]});
    let r = call(&t, &tok, Method::POST, "/fhir", Some(&batch)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    let read_in_batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Subscription?status=active"}}]});
    let r = call(&t, &tok, Method::POST, "/fhir", Some(&read_in_batch)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = call(
        &t,
        &tok,
        Method::GET,
        "/fhir?_type=Patient,Subscription",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
}

#[tokio::test]
async fn header_secrets_are_sent_but_never_shown_again() {
    let t = app().await;
    let tok = token(&t, "clinic-a").await;
    let hook = Subscriber::start().await;
    let sub = create(&t, &tok, &subscription(&hook.url, "id-only")).await;
    assert!(!sub.to_string().contains("subscriber-secret"), "{sub}");
    assert_eq!(
        sub["channel"]["header"],
        json!(["Authorization: [redacted]"])
    );
    let id = sub["id"].as_str().unwrap().to_owned();
    let read_back = read(&t, &tok, &id).await;
    assert!(
        !read_back.text().contains("subscriber-secret"),
        "{}",
        read_back.text()
    );
    // the owner sends back what it read, asking for a new handshake: the
    // stored secret is still what the subscriber receives
    let mut again = read_back.json.clone();
    again["status"] = json!("requested");
    let r = call(
        &t,
        &tok,
        Method::PUT,
        &format!("/fhir/Subscription/{id}"),
        Some(&again),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(!r.text().contains("subscriber-secret"));
    let hs = hook.wait_for("handshake", 2).await;
    for h in &hs {
        assert_eq!(
            h.headers.get("authorization").unwrap(),
            "Bearer subscriber-secret"
        );
    }
}
