//! Da Vinci CRD over CDS Hooks 2.0 (issue 7, item 4), driven over HTTP in
//! process: discovery, order-sign answers (coverage-information
//! systemActions, cards, DTR links), coverage-assertion ids, prefetch
//! fetched through `fhirServer`, CDS client JWT refusals, audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pas.rs"]
mod pas;

use std::sync::OnceLock;

use axum::http::{Method, StatusCode};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::{TestApp, TestResponse};
use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts, RsaPrivateKey};
use serde_json::{json, Value};

const ISS: &str = "https://ehr.test";
const EXT: &str = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information";
const SIGN_URL: &str = "http://fhirgate.test/cds-services/crd-order-sign";
const QUESTIONNAIRE: &str = "http://fhirgate.test/fhir/Questionnaire/lumbar-mri";
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";

/// A P-384 test key of the CDS client (generated for this test file only).
const EC_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAxrWKd+uzbSiUnrSdQ
zh9wVbGLxi8Sl0EobFL8w/fqMyiMWiwn8V9VJjUKMIXdumShZANiAAQenVqWHPnl
yT7//cCmiCOU6vKS9jNgR/s7fiwi21JIUHW/IrqWlep/aaniCoCkvl0EkHP4ZFX+
A5nJyyillXfF+wLJx0ndFbyg2y+IX1UljUhJZdgm6UR8oQ6r1JGPoAE=
-----END PRIVATE KEY-----
";
const EC_X: &str = "Hp1alhz55ck-__3ApogjlOrykvYzYEf7O34sIttSSFB1vyK6lpXqf2mp4gqApL5d";
const EC_Y: &str = "BJBz-GRV_gOZycsopZV3xfsCycdJ3RW8oNsviF9VJY1ISWXYJulEfKEOq9SRj6AB";

/// The CDS client's RSA key (slow to generate: once per binary), as PEM.
fn key_pem() -> &'static (String, Value) {
    static KEY: OnceLock<(String, Value)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let jwk = json!({"kty": "RSA", "kid": "ehr-1", "use": "sig", "alg": "RS384",
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())});
        let pem = key
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .unwrap()
            .to_string();
        let ec = json!({"kty": "EC", "crv": "P-384", "kid": "ehr-ec", "use": "sig",
            "x": EC_X, "y": EC_Y});
        (pem, json!({"keys": [jwk, ec]}))
    })
}

/// Serves `router` on a loopback port; returns `http://addr`.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// The payer rules file (PAS's format, `[prior_auth] rules_file`), once per binary.
fn rules_file() -> std::path::PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cpt = "http://www.ama-assn.org/go/cpt";
        let rules = format!(
            r#"
default_action = "pend"
[[rule]]
system = "{cpt}"
code = "72148"
action = "needs-doc"
questionnaire = "{QUESTIONNAIRE}"
[[rule]]
system = "{cpt}"
code = "97110"
action = "no-auth"
[[rule]]
system = "{cpt}"
code = "0042T"
action = "auto-deny"
reason = "0U"
[[rule]]
system = "{cpt}"
code = "73721"
action = "auto-approve"
[[rule]]
system = "{cpt}"
code = "97530"
action = "auto-approve"
diagnoses = ["{ICD10}|M62.81"]
otherwise = "auto-deny"
"#
        );
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        dir
    });
    dir.path().join("rules.toml")
}

/// An app trusting the CDS client `ISS` whose JWKS a loopback server serves.
async fn crd_app() -> (TestApp, String) {
    crd_app_with("").await
}

/// A CRD app whose own router also serves on a loopback port, allowed as
/// a `fhirServer` (`[crd] fhir_servers`); `(app, jku, fhir base)`.
async fn crd_app_serving_fhir() -> (TestApp, String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fhir = format!("http://{}/fhir", listener.local_addr().unwrap());
    let (t, jku) = crd_app_with(&format!("fhir_servers = [\"{fhir}\"]")).await;
    let router = t.router.clone();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (t, jku, fhir)
}

async fn crd_app_with(crd_extra: &str) -> (TestApp, String) {
    let jwks = key_pem().1.clone();
    let base = serve(axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || async move { axum::Json(jwks) }),
    ))
    .await;
    let jku = format!("{base}/jwks.json");
    let toml = format!(
        r#"
[crd]
clients = [{{ iss = "{ISS}", jku = ["{jku}"] }}]
{crd_extra}
[prior_auth]
rules_file = "{rules}"
"#,
        rules = rules_file().display()
    );
    (TestApp::with_config(&toml).await, jku)
}

/// A CDS client JWT with `claims` merged over good defaults.
fn jwt(jku: &str, aud: &str, over: Value) -> String {
    let now = fhirgate::oauth::now();
    let mut claims = json!({"iss": ISS, "sub": "ehr-client", "aud": aud, "iat": now,
        "exp": now + 120, "jti": uuid::Uuid::new_v4().to_string()});
    for (k, v) in over.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384);
    header.kid = Some("ehr-1".into());
    header.jku = Some(jku.into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem().0.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// A CDS client JWT signed with the P-384 key (ES384).
fn jwt_es384(jku: &str, aud: &str) -> String {
    let now = fhirgate::oauth::now();
    let claims = json!({"iss": ISS, "sub": "ehr-client", "aud": aud, "iat": now,
        "exp": now + 120, "jti": uuid::Uuid::new_v4().to_string()});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
    header.kid = Some("ehr-ec".into());
    header.jku = Some(jku.into());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(EC_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn service_request(id: &str, code: &str, display: &str) -> Value {
    json!({"resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "order",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code, "display": display}]},
        "subject": {"reference": "Patient/p1"}})
}

fn coverage(id: &str) -> Value {
    json!({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource":
        {"resourceType": "Coverage", "id": id, "status": "active", "beneficiary": {"reference": "Patient/p1"},
         "payor": [{"reference": "Organization/payer"}]}}]})
}

fn order_sign(orders: &[Value], prefetch: Value) -> Value {
    let entries: Vec<Value> = orders.iter().map(|o| json!({"resource": o})).collect();
    json!({"hook": "order-sign", "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": entries}},
        "prefetch": prefetch})
}

async fn call(t: &TestApp, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b.as_str()));
    }
    t.request_raw(
        Method::POST,
        path,
        &headers,
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

/// The sub-extensions of the coverage-information extension on `resource`.
fn coverage_info(resource: &Value) -> Value {
    let ext = resource["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == EXT)
        .unwrap();
    let mut out = serde_json::Map::new();
    for part in ext["extension"].as_array().unwrap() {
        let value = part
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("value"))
            .map(|(_, v)| v.clone())
            .unwrap();
        out.insert(part["url"].as_str().unwrap().to_owned(), value);
    }
    Value::Object(out)
}

#[tokio::test]
async fn discovery_lists_the_crd_hooks_with_prefetch_and_is_public() {
    let (t, _) = crd_app().await;
    let r = t.request_raw(Method::GET, "/cds-services", &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let services = r.json["services"].as_array().unwrap();
    let hooks: Vec<&str> = services
        .iter()
        .map(|s| s["hook"].as_str().unwrap())
        .collect();
    for h in [
        "order-sign",
        "order-select",
        "order-dispatch",
        "appointment-book",
        "encounter-start",
        "encounter-discharge",
    ] {
        assert!(hooks.contains(&h), "{h} missing: {hooks:?}");
    }
    let sign = services.iter().find(|s| s["hook"] == "order-sign").unwrap();
    assert_eq!(sign["id"], "crd-order-sign");
    assert!(sign["title"].is_string() && sign["description"].is_string());
    assert_eq!(
        sign["prefetch"]["coverage"],
        "Coverage?patient={{context.patientId}}&status=active"
    );
    assert_eq!(sign["prefetch"]["patient"], "Patient/{{context.patientId}}");
    assert_eq!(
        sign["prefetch"]["encounter"],
        "Encounter/{{context.encounterId}}"
    );
}

#[tokio::test]
async fn order_sign_needing_prior_auth_gets_coverage_information_and_a_dtr_card() {
    let (t, jku) = crd_app().await;
    let mri = service_request("sr-mri", "72148", "MRI lumbar spine without contrast");
    let body = order_sign(&[mri], json!({"coverage": coverage("cov-a")}));
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let actions = r.json["systemActions"].as_array().unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["type"], "update");
    assert_eq!(actions[0]["resource"]["id"], "sr-mri");
    let info = coverage_info(&actions[0]["resource"]);
    assert_eq!(info["coverage"]["reference"], "Coverage/cov-a");
    assert_eq!(info["covered"], "covered");
    assert_eq!(info["pa-needed"], "auth-needed");
    assert_eq!(info["doc-needed"], "clinical");
    assert_eq!(info["questionnaire"], QUESTIONNAIRE);
    assert_eq!(info["billingCode"]["code"], "72148");
    assert!(info["coverage-assertion-id"].as_str().unwrap().len() >= 16);
    assert!(info["date"].is_string());

    let card = &r.json["cards"][0];
    assert!(card["summary"].as_str().unwrap().chars().count() < 140);
    assert_eq!(card["indicator"], "warning");
    assert!(card["source"]["label"].is_string());
    assert_eq!(
        card["source"]["topic"]["system"],
        "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
    );
    assert_eq!(card["source"]["topic"]["code"], "coverage-info");
    assert!(uuid::Uuid::parse_str(card["suggestions"][0]["uuid"].as_str().unwrap()).is_ok());
    let link = &card["links"][0];
    assert_eq!(link["type"], "smart");
    let app_context: Value = serde_json::from_str(link["appContext"].as_str().unwrap()).unwrap();
    assert_eq!(app_context["order"], "ServiceRequest/sr-mri");
    assert_eq!(app_context["questionnaire"][0], QUESTIONNAIRE);
}

#[tokio::test]
async fn order_sign_for_a_code_needing_no_auth_is_covered_without_cards() {
    let (t, jku) = crd_app().await;
    let pt = service_request("sr-pt", "97110", "Therapeutic exercises");
    let body = order_sign(&[pt], json!({"coverage": coverage("cov-a")}));
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let info = coverage_info(&r.json["systemActions"][0]["resource"]);
    assert_eq!(info["covered"], "covered");
    assert_eq!(info["pa-needed"], "no-auth");
    assert!(info.get("doc-needed").is_none());
    assert_eq!(r.json["cards"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn coverage_assertion_ids_are_stable_per_coverage_and_distinct_across() {
    let (t, jku) = crd_app().await;
    let mut ids = Vec::new();
    for cov in ["cov-a", "cov-a", "cov-b"] {
        let mri = service_request("sr-mri", "72148", "MRI");
        let body = order_sign(&[mri], json!({"coverage": coverage(cov)}));
        let r = call(
            &t,
            "/cds-services/crd-order-sign",
            Some(&jwt(&jku, SIGN_URL, json!({}))),
            &body,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let info = coverage_info(&r.json["systemActions"][0]["resource"]);
        ids.push(info["coverage-assertion-id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[0], ids[1], "same coverage, order code and patient");
    assert_ne!(ids[0], ids[2], "another coverage");
}

#[tokio::test]
async fn missing_prefetch_is_fetched_from_the_fhir_server_with_the_token() {
    let (t, jku, fhir) = crd_app_serving_fhir().await;
    t.put(
        "/fhir/Patient/p1",
        &json!({"resourceType": "Patient", "id": "p1"}),
    )
    .await;
    let cov = t
        .create(json!({"resourceType": "Coverage", "status": "active",
            "beneficiary": {"reference": "Patient/p1"}, "payor": [{"reference": "Organization/payer"}]}))
        .await;
    let mri = service_request("sr-mri", "72148", "MRI");
    let mut body = order_sign(&[mri], json!({}));
    body.as_object_mut().unwrap().remove("prefetch");
    body["fhirServer"] = json!(fhir);
    body["fhirAuthorization"] = json!({"access_token": t.token, "token_type": "Bearer",
        "expires_in": 300, "scope": "system/*.rs", "subject": "fhirgate-crd"});
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let info = coverage_info(&r.json["systemActions"][0]["resource"]);
    assert_eq!(info["coverage"]["reference"], format!("Coverage/{cov}"));

    // With a token the FHIR server refuses, nothing is fetched: no coverage.
    body["fhirAuthorization"]["access_token"] = json!("not-a-token");
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json["systemActions"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0),
        0
    );
    assert!(r.json["cards"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("Coverage unknown"));

    // A search that found no active Coverage is told apart.
    let none = json!({"resourceType": "Bundle", "type": "searchset", "entry": []});
    let body = order_sign(
        &[service_request("sr-mri", "72148", "MRI")],
        json!({ "coverage": none }),
    );
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json["cards"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("No active coverage"));
}

#[tokio::test]
async fn bad_hook_requests_are_refused_with_400() {
    let (t, jku) = crd_app().await;
    let mut body = order_sign(&[], json!({}));
    body["hook"] = json!("order-select");
    body["hookInstance"] = json!("not-a-uuid");
    body["context"].as_object_mut().unwrap().remove("patientId");
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let msg = r.json["message"].as_str().unwrap();
    assert!(
        msg.contains("hook") && msg.contains("hookInstance") && msg.contains("context.patientId"),
        "{msg}"
    );
}

#[tokio::test]
async fn cds_client_jwts_that_fail_any_check_are_refused_with_401() {
    let (t, jku) = crd_app().await;
    let body = order_sign(
        &[service_request("sr-pt", "97110", "PT")],
        json!({"coverage": coverage("cov-a")}),
    );
    let path = "/cds-services/crd-order-sign";
    let now = fhirgate::oauth::now();
    let good = jwt(&jku, SIGN_URL, json!({}));
    let mut bad_sig = good.clone().into_bytes();
    let at = bad_sig.len() - 20;
    bad_sig[at] = if bad_sig[at] == b'A' { b'B' } else { b'A' };
    let bad_sig = String::from_utf8(bad_sig).unwrap();
    let (h, p) = good
        .rsplit_once('.')
        .map(|(hp, _)| hp.split_once('.').unwrap())
        .unwrap();
    let forged_claims = {
        let mut c: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        c["jti"] = json!("forged");
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
    };
    let forged = format!("{h}.{forged_claims}.{}", good.rsplit_once('.').unwrap().1);
    let cases: Vec<(&str, &str, Option<String>)> = vec![
        ("missing", "required", None),
        ("bad signature", "signature", Some(bad_sig)),
        ("claims changed after signing", "signature", Some(forged)),
        (
            "wrong aud",
            "aud",
            Some(jwt(
                &jku,
                "http://fhirgate.test/cds-services/crd-order-select",
                json!({}),
            )),
        ),
        (
            "expired",
            "expired",
            Some(jwt(
                &jku,
                SIGN_URL,
                json!({"iat": now - 900, "exp": now - 600}),
            )),
        ),
        (
            "exp too far ahead",
            "ahead",
            Some(jwt(&jku, SIGN_URL, json!({"exp": now + 3600}))),
        ),
        (
            "unknown iss",
            "trusted",
            Some(jwt(&jku, SIGN_URL, json!({"iss": "https://stranger.test"}))),
        ),
        (
            "jku not allow-listed",
            "jku",
            Some(jwt("http://127.0.0.1:9/other.json", SIGN_URL, json!({}))),
        ),
    ];
    for (what, why, token) in cases {
        let r = call(&t, path, token.as_deref(), &body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text());
        let msg = r.json["message"].as_str().unwrap_or_default();
        assert!(msg.contains(why), "{what}: {msg}");
        assert!(r.header("www-authenticate").is_some(), "{what}");
    }
    // The good one passes once; its replay is refused.
    let r = call(&t, path, Some(&good), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = call(&t, path, Some(&good), &body).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "replay: {}", r.text());
    assert!(r.json["message"].as_str().unwrap().contains("replay"));
}

#[tokio::test]
async fn hook_calls_are_audited_with_the_cds_client_and_patient() {
    let (t, jku) = crd_app().await;
    let body = order_sign(
        &[service_request("sr-mri", "72148", "MRI")],
        json!({"coverage": coverage("cov-a")}),
    );
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.header("x-ledger-seq").is_some(), "audited before release");
    let found = t.get("/fhir/AuditEvent?patient=Patient/p1").await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text());
    let text = found.text();
    assert!(text.contains(ISS), "CDS client named: {text}");
    assert!(
        text.contains("72148=covered/auth-needed"),
        "answer recorded: {text}"
    );
}

#[tokio::test]
async fn order_select_and_encounter_hooks_answer_cards_only() {
    let (t, jku) = crd_app().await;
    let url = "http://fhirgate.test/cds-services/crd-order-select";
    let mut body = order_sign(
        &[service_request("sr-mri", "72148", "MRI")],
        json!({"coverage": coverage("cov-a")}),
    );
    body["hook"] = json!("order-select");
    body["context"]["selections"] = json!(["ServiceRequest/sr-mri"]);
    let r = call(
        &t,
        "/cds-services/crd-order-select",
        Some(&jwt(&jku, url, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json.get("systemActions").is_none());
    assert_eq!(r.json["cards"][0]["links"][0]["type"], "smart");

    let url = "http://fhirgate.test/cds-services/crd-encounter-start";
    let body = json!({"hook": "encounter-start", "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1", "encounterId": "e1"},
        "prefetch": {"coverage": coverage("cov-a")}});
    let r = call(
        &t,
        "/cds-services/crd-encounter-start",
        Some(&jwt(&jku, url, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["cards"], json!([]));
}

#[tokio::test]
async fn order_sign_for_a_denied_code_is_not_covered_without_pa_needed() {
    let (t, jku) = crd_app().await;
    let body = order_sign(
        &[service_request("sr-x", "0042T", "Experimental imaging")],
        json!({"coverage": coverage("cov-a")}),
    );
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let info = coverage_info(&r.json["systemActions"][0]["resource"]);
    assert_eq!(info["covered"], "not-covered");
    assert!(info.get("pa-needed").is_none(), "crd-ci-q2");
    let card = &r.json["cards"][0];
    assert!(card["summary"].as_str().unwrap().starts_with("Not covered"));
    assert!(card["detail"].as_str().unwrap().contains("0U"));
}

#[tokio::test]
async fn appointment_book_signed_with_es384_gets_coverage_information() {
    let (t, jku) = crd_app().await;
    let url = "http://fhirgate.test/cds-services/crd-appointment-book";
    let appt = json!({"resourceType": "Appointment", "id": "ap1", "status": "proposed",
        "serviceType": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]}],
        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "needs-action"}]});
    let body = json!({"hook": "appointment-book", "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1",
            "appointments": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": appt}]}},
        "prefetch": {"coverage": coverage("cov-a")}});
    let r = call(
        &t,
        "/cds-services/crd-appointment-book",
        Some(&jwt_es384(&jku, url)),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let action = &r.json["systemActions"][0];
    assert_eq!(action["resource"]["resourceType"], "Appointment");
    assert_eq!(
        coverage_info(&action["resource"])["pa-needed"],
        "auth-needed"
    );

    // An RS384 JWT naming the EC key is refused (alg and key must fit).
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384);
    header.kid = Some("ehr-ec".into());
    header.jku = Some(jku.clone());
    let now = fhirgate::oauth::now();
    let claims = json!({"iss": ISS, "aud": url, "iat": now, "exp": now + 60, "jti": "x1"});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem().0.as_bytes()).unwrap();
    let mixed = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let r = call(
        &t,
        "/cds-services/crd-appointment-book",
        Some(&mixed),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

#[tokio::test]
async fn order_dispatch_reads_the_dispatched_orders_through_the_fhir_server() {
    let (t, jku, fhir) = crd_app_serving_fhir().await;
    let mut order = service_request("ignored", "72148", "MRI");
    order.as_object_mut().unwrap().remove("id");
    order["status"] = json!("active");
    let id = t.create(order).await;
    let url = "http://fhirgate.test/cds-services/crd-order-dispatch";
    let body = json!({"hook": "order-dispatch", "hookInstance": uuid::Uuid::new_v4().to_string(),
        "fhirServer": fhir,
        "fhirAuthorization": {"access_token": t.token, "token_type": "Bearer",
            "expires_in": 300, "scope": "system/*.rs", "subject": "fhirgate-crd"},
        "context": {"patientId": "p1", "dispatchedOrders": [format!("ServiceRequest/{id}")],
            "performer": "Organization/imaging-center"},
        "prefetch": {"coverage": coverage("cov-a")}});
    let r = call(
        &t,
        "/cds-services/crd-order-dispatch",
        Some(&jwt(&jku, url, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let action = &r.json["systemActions"][0];
    assert_eq!(action["resource"]["id"], id.as_str());
    assert_eq!(coverage_info(&action["resource"])["doc-needed"], "clinical");
}

#[tokio::test]
async fn a_fhir_server_not_allowed_is_refused_and_never_fetched() {
    let (t, jku) = crd_app().await;
    // a real FHIR server, but not fhirgate's own base nor listed in `[crd] fhir_servers`
    let elsewhere = format!("{}/fhir", serve(t.router.clone()).await);
    let mri = service_request("sr-mri", "72148", "MRI");
    let mut body = order_sign(&[mri], json!({}));
    body.as_object_mut().unwrap().remove("prefetch");
    body["fhirServer"] = json!(elsewhere);
    body["fhirAuthorization"] = json!({"access_token": t.token, "token_type": "Bearer",
        "expires_in": 300, "scope": "system/*.rs", "subject": "fhirgate-crd"});
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("fhirServer"), "{}", r.text());
}

/// The member of the PAS request builder (`tests/common/pas.rs`) as the
/// EHR knows them: Patient `p1` with the member id, and their Coverage.
fn member_prefetch(subscriber: &str) -> Value {
    json!({
        "patient": {"resourceType": "Patient", "id": "p1",
            "identifier": [{"system": "http://example.org/MIN", "value": "12345678901"}]},
        "coverage": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource":
            {"resourceType": "Coverage", "id": "cov-m", "status": "active", "subscriberId": subscriber,
             "beneficiary": {"reference": "Patient/p1"}, "payor": [{"reference": "Organization/payer"}]}}]}
    })
}

/// Submits a PAS request as clinic `clinic-a`; returns the ClaimResponse.
async fn pas_submit(t: &TestApp, body: &Value) -> Value {
    let tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    let r = t
        .request_with(&tok, Method::POST, "/fhir/Claim/$submit", &[], Some(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json["entry"][0]["resource"].clone()
}

/// order-sign for one CPT code with `prefetch`; the coverage information
/// and the cards.
async fn sign_info(t: &TestApp, jku: &str, order: Value, prefetch: Value) -> (Value, Value) {
    let r = call(
        t,
        "/cds-services/crd-order-sign",
        Some(&jwt(jku, SIGN_URL, json!({}))),
        &order_sign(&[order], prefetch),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    (
        coverage_info(&r.json["systemActions"][0]["resource"]),
        r.json["cards"].clone(),
    )
}

#[tokio::test]
async fn an_approved_pas_authorization_satisfies_prior_auth_with_its_number() {
    let (t, jku) = crd_app().await;
    let mri = || service_request("sr-knee", "73721", "MRI knee without contrast");
    // Before any request: prior authorization is needed.
    let (info, _) = sign_info(&t, &jku, mri(), member_prefetch("12345678901")).await;
    assert_eq!(info["pa-needed"], "auth-needed");
    assert!(info.get("satisfied-pa-id").is_none(), "crd-ci-q5");

    let cr = pas_submit(&t, &pas::request("crd-sat-1", "73721", 1, "normal")).await;
    let number = cr["preAuthRef"].as_str().expect("auto-approved").to_owned();
    let (info, cards) = sign_info(&t, &jku, mri(), member_prefetch("12345678901")).await;
    assert_eq!(info["covered"], "covered");
    assert_eq!(info["pa-needed"], "satisfied");
    assert_eq!(info["satisfied-pa-id"], number.as_str());
    assert!(info.get("doc-purpose").is_none(), "crd-ci-q4");
    assert!(info.get("info-needed").is_none());
    assert_eq!(cards, json!([]), "nothing left to do");

    // Under another coverage, or for a patient the payer cannot identify,
    // the authorization does not count.
    let (info, _) = sign_info(&t, &jku, mri(), member_prefetch("99999999999")).await;
    assert_eq!(info["pa-needed"], "auth-needed");
    let mut anonymous = member_prefetch("12345678901");
    anonymous.as_object_mut().unwrap().remove("patient");
    let (info, _) = sign_info(&t, &jku, mri(), anonymous).await;
    assert_eq!(info["pa-needed"], "auth-needed");

    // A pended request a reviewer approves counts from then on.
    let cr = pas_submit(&t, &pas::request("crd-sat-2", "27447", 1, "normal")).await;
    let id = cr["id"].as_str().unwrap().to_owned();
    let tka = || service_request("sr-tka", "27447", "Total knee arthroplasty");
    let (info, _) = sign_info(&t, &jku, tka(), member_prefetch("12345678901")).await;
    assert_eq!(info["pa-needed"], "auth-needed", "pended");
    use fhirgate::prior_auth::decide::{decide, Decision};
    let rec = decide(&t.app, &id, "reviewer", 1, Decision::Approve, None)
        .await
        .unwrap();
    let number = rec.items[0].auth_number.clone().unwrap();
    let (info, _) = sign_info(&t, &jku, tka(), member_prefetch("12345678901")).await;
    assert_eq!(info["pa-needed"], "satisfied");
    assert_eq!(info["satisfied-pa-id"], number.as_str());
}

#[tokio::test]
async fn expired_denied_or_cancelled_authorizations_do_not_count() {
    let (t, jku) = crd_app().await;
    let knee = || service_request("sr-knee", "73721", "MRI knee");
    // Approved, then its period lies in the past.
    let cr = pas_submit(&t, &pas::request("crd-exp-1", "73721", 1, "normal")).await;
    assert!(cr["preAuthRef"].is_string());
    let mut rec = t
        .app
        .state
        .pa_by_claim("urn:trnorg:9012345678", "crd-exp-1")
        .await
        .unwrap()
        .remove(0);
    rec.items[0].auth_start = Some("2025-01-01".into());
    rec.items[0].auth_end = Some("2025-03-31".into());
    t.app.state.pa_save(&rec, 1).await.unwrap();
    let (info, _) = sign_info(&t, &jku, knee(), member_prefetch("12345678901")).await;
    assert_eq!(info["pa-needed"], "auth-needed", "expired");

    // Pended, then denied by a reviewer.
    let cr = pas_submit(&t, &pas::request("crd-den-1", "27447", 1, "normal")).await;
    let id = cr["id"].as_str().unwrap().to_owned();
    let tka = || service_request("sr-tka", "27447", "Total knee arthroplasty");
    let (info, _) = sign_info(&t, &jku, tka(), member_prefetch("12345678901")).await;
    assert_eq!(info["pa-needed"], "auth-needed", "pended");
    use fhirgate::prior_auth::decide::{decide, Decision};
    decide(&t.app, &id, "reviewer", 1, Decision::Deny, Some("0U"))
        .await
        .unwrap();
    let (info, _) = sign_info(&t, &jku, tka(), member_prefetch("12345678901")).await;
    assert_eq!(info["pa-needed"], "auth-needed", "denied");

    // Approved, then cancelled by the provider.
    let body = pas::request("crd-can-1", "73721", 1, "normal");
    pas_submit(&t, &body).await;
    let (info, _) = sign_info(&t, &jku, knee(), member_prefetch("12345678901")).await;
    assert_eq!(info["pa-needed"], "satisfied");
    let mut cancel = body.clone();
    cancel["entry"][0]["resource"]["status"] = json!("cancelled");
    pas_submit(&t, &cancel).await;
    let (info, _) = sign_info(&t, &jku, knee(), member_prefetch("12345678901")).await;
    assert_eq!(info["pa-needed"], "auth-needed", "cancelled");
    assert!(info.get("satisfied-pa-id").is_none());
}

#[tokio::test]
async fn information_the_order_lacks_is_asked_for_with_info_needed() {
    let cpt = "http://www.ama-assn.org/go/cpt";
    let (t, jku) = crd_app_with(&format!(
        r#"info_needed = [{{ system = "{cpt}", code = "27447", needs = ["performer", "location"] }}]"#
    ))
    .await;
    let bare = service_request("sr-tka", "27447", "Total knee arthroplasty");
    let (info, cards) = sign_info(
        &t,
        &jku,
        bare.clone(),
        json!({"coverage": coverage("cov-a")}),
    )
    .await;
    assert_eq!(info["covered"], "conditional", "crd-ci-q3");
    assert_eq!(info["pa-needed"], "auth-needed");
    let r = call(
        &t,
        "/cds-services/crd-order-sign",
        Some(&jwt(&jku, SIGN_URL, json!({}))),
        &order_sign(
            std::slice::from_ref(&bare),
            json!({"coverage": coverage("cov-a")}),
        ),
    )
    .await;
    let ext = r.json["systemActions"][0]["resource"]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == EXT)
        .unwrap()
        .clone();
    let needed: Vec<&str> = ext["extension"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["url"] == "info-needed")
        .map(|p| p["valueCode"].as_str().unwrap())
        .collect();
    assert_eq!(needed, ["performer", "location"]);
    assert!(info["reason"]["text"]
        .as_str()
        .unwrap()
        .contains("performer"));
    assert!(cards[0]["summary"]
        .as_str()
        .unwrap()
        .starts_with("More information needed"));

    // Location given, performer not: only the performer is asked for.
    let mut located = bare.clone();
    located["locationReference"] = json!([{"reference": "Location/or-1"}]);
    let (info, _) = sign_info(
        &t,
        &jku,
        located.clone(),
        json!({"coverage": coverage("cov-a")}),
    )
    .await;
    assert_eq!(info["info-needed"], "performer");
    // Both given: decided by the rules alone.
    let mut full = located;
    full["performer"] = json!([{"reference": "Practitioner/surgeon"}]);
    let (info, _) = sign_info(&t, &jku, full, json!({"coverage": coverage("cov-a")})).await;
    assert_eq!(info["covered"], "covered");
    assert_eq!(info["pa-needed"], "auth-needed");
    assert!(info.get("info-needed").is_none());
}

#[tokio::test]
async fn a_diagnosis_that_decides_coverage_is_asked_for_not_guessed() {
    let (t, jku) = crd_app().await;
    let order = service_request("sr-ther", "97530", "Therapeutic activities");
    let (info, cards) = sign_info(
        &t,
        &jku,
        order.clone(),
        json!({"coverage": coverage("cov-a")}),
    )
    .await;
    assert_eq!(info["covered"], "conditional");
    assert_eq!(
        info["pa-needed"], "auth-needed",
        "if covered, with authorization"
    );
    assert_eq!(info["info-needed"], "OTH");
    assert!(info["reason"]["text"]
        .as_str()
        .unwrap()
        .contains("diagnosis"));
    assert!(!cards[0]["summary"]
        .as_str()
        .unwrap()
        .starts_with("Not covered"));

    let mut dx = order;
    dx["reasonCode"] = json!([{"coding": [{"system": ICD10, "code": "M62.81"}]}]);
    let (info, _) = sign_info(&t, &jku, dx.clone(), json!({"coverage": coverage("cov-a")})).await;
    assert_eq!(
        (info["covered"].as_str(), info["pa-needed"].as_str()),
        (Some("covered"), Some("auth-needed"))
    );
    assert!(info.get("info-needed").is_none());
    dx["reasonCode"] = json!([{"coding": [{"system": ICD10, "code": "Z00.00"}]}]);
    let (info, _) = sign_info(&t, &jku, dx, json!({"coverage": coverage("cov-a")})).await;
    assert_eq!(
        info["covered"], "not-covered",
        "decided by the diagnosis given"
    );
    assert!(info.get("pa-needed").is_none());
}
