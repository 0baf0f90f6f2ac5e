//! The authorization server end to end through the router: discovery,
//! registration, the authorization-code flow with PKCE (approval through
//! the same function the UI calls), refresh with rotation, Backend Services
//! `client_credentials`, introspection, revocation, and the negative cases
//! of issue 3 with their exact status and OAuth error code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::{TestApp, TestResponse};
use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts, RsaPrivateKey};
use serde_json::{json, Value};
use smart_launch::pkce::challenge_of;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-entropy";
const REDIRECT: &str = "https://app.example.org/callback";
const BASE: &str = "http://fhirgate.test/fhir";
const TOKEN_ENDPOINT: &str = "http://fhirgate.test/auth/token";

async fn form(
    t: &TestApp,
    path: &str,
    pairs: &[(&str, &str)],
    basic: Option<&str>,
) -> TestResponse {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    let auth;
    if let Some(b) = basic {
        auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(b)
        );
        headers.push(("authorization", auth.as_str()));
    }
    t.request_raw(Method::POST, path, &headers, Some(body.into_bytes()))
        .await
}

async fn register(t: &TestApp, meta: Value) -> Value {
    let r = t
        .request_raw(
            Method::POST,
            "/auth/register",
            &[("content-type", "application/json")],
            Some(meta.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json
}

async fn demo_app() -> TestApp {
    TestApp::with_config("[demo]\nenabled = true\n").await
}

fn oauth_error(r: &TestResponse, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    assert_eq!(r.json["error"], code, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}

/// Starts an authorize request and returns the pending id (or the redirect on error).
async fn authorize(t: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> TestResponse {
    let challenge = challenge_of(VERIFIER);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        (
            "scope",
            "openid fhirUser launch/patient patient/*.rs offline_access",
        ),
        ("state", "st-1"),
        ("aud", BASE),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let mut url = format!("/auth/authorize?{}", q.finish());
    for (k, v) in extra {
        // Later pairs win in our parser only when they replace: rebuild instead.
        url = replace_param(&url, k, v);
    }
    t.request_raw(Method::GET, &url, &[], None).await
}

fn replace_param(url: &str, k: &str, v: &str) -> String {
    let (path, q) = url.split_once('?').unwrap();
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .filter(|(n, _)| n != k)
        .collect();
    if v != "<absent>" {
        pairs.push((k.to_owned(), v.to_owned()));
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.extend_pairs(pairs);
    format!("{path}?{}", s.finish())
}

fn location(r: &TestResponse) -> String {
    r.header("location")
        .unwrap_or_else(|| panic!("no redirect: {} {}", r.status, r.text()))
}

fn query_of(url: &str) -> Vec<(String, String)> {
    url.split_once('?')
        .map(|(_, q)| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn q<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// Runs authorize + approval as pat.jones and returns the code.
async fn code_for(t: &TestApp, client_id: &str) -> String {
    let r = authorize(t, client_id, &[]).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER.min(r.status),
        "{}",
        r.text()
    );
    let loc = location(&r);
    assert!(loc.starts_with("/auth/continue?req="), "{loc}");
    let pending = loc.trim_start_matches("/auth/continue?req=");
    let user = fhirgate::state::users::User {
        username: "pat.jones".into(),
        role: "patient".into(),
        fhir_user: "Patient/pj".into(),
        display_name: "Pat Jones".into(),
        organization: None,
    };
    let url = fhirgate::oauth::authorize::approve(
        &t.app,
        pending,
        &user,
        &Default::default(),
        "openid fhirUser launch/patient patient/*.rs offline_access",
        None,
    )
    .await
    .unwrap();
    let pairs = query_of(&url);
    assert!(url.starts_with(REDIRECT));
    assert_eq!(q(&pairs, "state"), Some("st-1"));
    q(&pairs, "code").unwrap().to_owned()
}

async fn public_client(t: &TestApp) -> String {
    let reg = register(t, json!({"client_name": "Test app", "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid fhirUser launch launch/patient patient/*.rs offline_access online_access"})).await;
    reg["client_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn discovery_documents_and_capability_security() {
    let t = TestApp::new().await;
    let d = t
        .request_raw(
            Method::GET,
            "/fhir/.well-known/smart-configuration",
            &[],
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.json["token_endpoint"], TOKEN_ENDPOINT);
    assert_eq!(d.json["code_challenge_methods_supported"], json!(["S256"]));
    let o = t
        .request_raw(Method::GET, "/.well-known/openid-configuration", &[], None)
        .await;
    assert_eq!(o.json["issuer"], BASE);
    let jwks = t.request_raw(Method::GET, "/auth/jwks", &[], None).await;
    assert_eq!(jwks.json["keys"][0]["kty"], "RSA");
    assert!(
        jwks.json["keys"][0].get("d").is_none(),
        "never the private key"
    );
    let m = t
        .request_raw(Method::GET, "/fhir/metadata", &[], None)
        .await;
    assert_eq!(m.status, StatusCode::OK, "metadata is public");
    let sec = &m.json["rest"][0]["security"];
    assert_eq!(sec["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert_eq!(
        sec["extension"][0]["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
}

#[tokio::test]
async fn fhir_requests_need_a_valid_unrevoked_token() {
    let t = TestApp::new().await;
    let none = t.request_raw(Method::GET, "/fhir/Patient", &[], None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let bad = t
        .request_raw(
            Method::GET,
            "/fhir/Patient",
            &[("authorization", "Bearer not.a.jwt")],
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.get("/fhir/Patient").await.status, StatusCode::OK);
}

#[tokio::test]
async fn code_flow_with_pkce_refresh_rotation_introspection_and_revocation() {
    let t = demo_app().await;
    let client = public_client(&t).await;
    let code = code_for(&t, &client).await;
    let ok = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let tok = ok.json.clone();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["patient"], "pj");
    assert!(tok["expires_in"].as_i64().unwrap() > 0);
    assert!(tok["scope"].as_str().unwrap().contains("patient/*.rs"));
    let id_token = tok["id_token"].as_str().unwrap();
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["fhirUser"], format!("{BASE}/Patient/pj"));
    assert_eq!(payload["aud"], client.as_str());
    let access = tok["access_token"].as_str().unwrap().to_owned();
    let refresh = tok["refresh_token"].as_str().unwrap().to_owned();

    // Reusing the code fails and revokes what it issued.
    let again = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    oauth_error(&again, 400, "invalid_grant");
    let intro = form(
        &t,
        "/auth/introspect",
        &[("token", &access), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(
        intro.json["active"], false,
        "tokens of a reused code are revoked"
    );
    let r = t
        .request_raw(
            Method::GET,
            "/fhir/Patient/pj",
            &[("authorization", &format!("Bearer {access}"))],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let refreshed = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client),
        ],
        None,
    )
    .await;
    oauth_error(&refreshed, 400, "invalid_grant");

    // A fresh flow: refresh rotates, never widens, may narrow.
    let code = code_for(&t, &client).await;
    let tok = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await
    .json;
    let refresh = tok["refresh_token"].as_str().unwrap().to_owned();
    let wider = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client),
            ("scope", "patient/*.cruds"),
        ],
        None,
    )
    .await;
    oauth_error(&wider, 400, "invalid_scope");
    let narrower = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client),
            ("scope", "patient/Observation.rs offline_access"),
        ],
        None,
    )
    .await;
    assert_eq!(narrower.status, StatusCode::OK, "{}", narrower.text());
    assert_eq!(
        narrower.json["scope"],
        "patient/Observation.rs offline_access"
    );
    let rotated = narrower.json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, refresh);
    let old = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client),
        ],
        None,
    )
    .await;
    oauth_error(&old, 400, "invalid_grant");

    // Introspection and revocation of an access token.
    let access = narrower.json["access_token"].as_str().unwrap().to_owned();
    let intro = form(
        &t,
        "/auth/introspect",
        &[("token", &access), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(intro.json["active"], true, "{}", intro.text());
    assert_eq!(intro.json["client_id"], client.as_str());
    let rev = form(
        &t,
        "/auth/revoke",
        &[("token", &access), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(rev.status, StatusCode::OK);
    let used = t
        .request_raw(Method::GET, "/fhir/metadata", &[], None)
        .await;
    assert_eq!(used.status, StatusCode::OK);
    let after = t
        .request_raw(
            Method::GET,
            "/fhir/Observation",
            &[("authorization", &format!("Bearer {access}"))],
            None,
        )
        .await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "a revoked token fails on the next request"
    );
    let intro = form(
        &t,
        "/auth/introspect",
        &[("token", &rotated), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(intro.json["active"], true);
    form(
        &t,
        "/auth/revoke",
        &[("token", &rotated), ("client_id", &client)],
        None,
    )
    .await;
    let gone = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rotated),
            ("client_id", &client),
        ],
        None,
    )
    .await;
    oauth_error(&gone, 400, "invalid_grant");
}

#[tokio::test]
async fn authorize_negative_cases() {
    let t = demo_app().await;
    let client = public_client(&t).await;
    // Unknown client and redirect_uri mismatch: a page, never a redirect.
    let r = authorize(&t, "no-such-client", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.header("location").is_none());
    let r = authorize(&t, &client, &[("redirect_uri", "https://evil.example/cb")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.header("location").is_none());
    // Errors that go back to the app, each with state and no code.
    for (k, v, code) in [
        ("aud", "https://other.example/fhir", "invalid_request"),
        ("aud", "<absent>", "invalid_request"),
        ("code_challenge_method", "plain", "invalid_request"),
        ("code_challenge", "<absent>", "invalid_request"),
        ("response_type", "token", "unsupported_response_type"),
        ("scope", "patient/*.cruds", "invalid_scope"),
        ("launch", "not-a-launch", "invalid_request"),
    ] {
        let r = authorize(&t, &client, &[(k, v)]).await;
        let loc = location(&r);
        let pairs = query_of(&loc);
        assert!(loc.starts_with(REDIRECT), "{k}={v}: {loc}");
        assert_eq!(q(&pairs, "error"), Some(code), "{k}={v}");
        assert_eq!(q(&pairs, "state"), Some("st-1"));
        assert!(q(&pairs, "code").is_none());
    }
}

/// A request for identity alone (OpenID Connect, as a data holder's Tiered
/// OAuth sign-in sends it) is for no FHIR server: `aud` may be absent. With
/// a resource scope it may not (`authorize_negative_cases`).
#[tokio::test]
async fn an_identity_only_request_needs_no_aud() {
    let t = demo_app().await;
    let client = public_client(&t).await;
    let r = authorize(
        &t,
        &client,
        &[("aud", "<absent>"), ("scope", "openid fhirUser")],
    )
    .await;
    let loc = location(&r);
    assert!(loc.starts_with("/auth/continue?req="), "{loc}");
}

#[tokio::test]
async fn token_negative_cases() {
    let t = demo_app().await;
    let client = public_client(&t).await;
    let code = code_for(&t, &client).await;
    let challenge = challenge_of(VERIFIER);
    let long = "x".repeat(50);
    let mut code = code;
    for (verifier, why) in [
        (None, "missing"),
        (Some(""), "blank"),
        (Some(long.as_str()), "wrong"),
        (Some(challenge.as_str()), "equal to the challenge"),
    ] {
        code = code_for(&t, &client).await;
        let mut p = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", client.as_str()),
        ];
        if let Some(v) = verifier {
            p.push(("code_verifier", v));
        }
        let r = form(&t, "/auth/token", &p, None).await;
        assert_eq!(
            r.json["error"],
            "invalid_grant",
            "verifier {why}: {}",
            r.text()
        );
        oauth_error(&r, 400, "invalid_grant");
        assert!(
            !r.json["error_description"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "{why}"
        );
    }
    // A failed attempt consumed the code (single use).
    let r = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    oauth_error(&r, 400, "invalid_grant");
    let r = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", "nobody"),
        ],
        None,
    )
    .await;
    oauth_error(&r, 401, "invalid_client");
    let r = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "garbage"),
            ("client_id", &client),
        ],
        None,
    )
    .await;
    oauth_error(&r, 400, "invalid_grant");
    let r = form(
        &t,
        "/auth/token",
        &[("grant_type", "password"), ("client_id", &client)],
        None,
    )
    .await;
    oauth_error(&r, 400, "unsupported_grant_type");
    let r = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:wrong"),
            ("client_assertion", "x.y.z"),
        ],
        None,
    )
    .await;
    oauth_error(&r, 400, "invalid_request");
    let r = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ],
        None,
    )
    .await;
    oauth_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn confidential_symmetric_client_authenticates_with_basic() {
    let t = demo_app().await;
    let reg = register(&t, json!({"client_name": "Confidential", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid fhirUser launch/patient patient/*.rs offline_access"})).await;
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    let code = code_for(&t, &id).await;
    let wrong = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some(&format!("{id}:nope")),
    )
    .await;
    oauth_error(&wrong, 401, "invalid_client");
    let code = code_for(&t, &id).await;
    let ok = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some(&format!("{id}:{secret}")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let public = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", &id),
        ],
        None,
    )
    .await;
    oauth_error(&public, 401, "invalid_client");
}

struct Backend {
    id: String,
    pem: String,
}

async fn backend(t: &TestApp, scope: &str) -> Backend {
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let jwk = json!({"kty": "RSA", "kid": "k1", "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())});
    let reg = register(t, json!({"client_name": "Backend", "token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"],
        "scope": scope, "jwks": {"keys": [jwk]}})).await;
    Backend {
        id: reg["client_id"].as_str().unwrap().to_owned(),
        pem: key
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .unwrap()
            .to_string(),
    }
}

fn assertion(b: &Backend, alg: jsonwebtoken::Algorithm, claims: Value) -> String {
    let mut h = jsonwebtoken::Header::new(alg);
    h.kid = Some("k1".into());
    jsonwebtoken::encode(
        &h,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(b.pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn claims(b: &Backend, jti: &str, exp_in: i64) -> Value {
    let now = fhirgate::oauth::now();
    json!({"iss": b.id, "sub": b.id, "aud": TOKEN_ENDPOINT, "exp": now + exp_in, "iat": now, "jti": jti})
}

async fn cc(t: &TestApp, a: &str, scope: &str) -> TestResponse {
    form(
        t,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", a),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn backend_services_client_credentials() {
    let t = demo_app().await;
    let b = backend(&t, "system/*.rs").await;
    let ok = cc(
        &t,
        &assertion(&b, jsonwebtoken::Algorithm::RS384, claims(&b, "j1", 240)),
        "system/Patient.rs",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert!(ok.json.get("refresh_token").is_none());
    let token = ok.json["access_token"].as_str().unwrap().to_owned();
    // the issuance is audited, naming the client and the scope, never the token
    let seq = ok.header("x-ledger-seq").unwrap();
    let ev = t.get(&format!("/fhir/AuditEvent/{seq}")).await;
    assert_eq!(ev.status, StatusCode::OK, "{}", ev.text());
    let text = ev.text();
    assert!(text.contains(&b.id), "{text}");
    assert!(text.contains("access token issued"), "{text}");
    assert!(!text.contains(&token));
    let r = t
        .request_raw(
            Method::GET,
            "/fhir/Patient",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let rs256 = cc(
        &t,
        &assertion(&b, jsonwebtoken::Algorithm::RS256, claims(&b, "j2", 240)),
        "system/Patient.rs",
    )
    .await;
    assert_eq!(
        rs256.status,
        StatusCode::OK,
        "RS256 is accepted (UDAP needs it)"
    );

    let replay = cc(
        &t,
        &assertion(&b, jsonwebtoken::Algorithm::RS384, claims(&b, "j1", 240)),
        "system/Patient.rs",
    )
    .await;
    oauth_error(&replay, 401, "invalid_client");
    let expired = cc(
        &t,
        &assertion(&b, jsonwebtoken::Algorithm::RS384, claims(&b, "j3", -120)),
        "system/Patient.rs",
    )
    .await;
    oauth_error(&expired, 401, "invalid_client");
    let far = cc(
        &t,
        &assertion(&b, jsonwebtoken::Algorithm::RS384, claims(&b, "j4", 3600)),
        "system/Patient.rs",
    )
    .await;
    oauth_error(&far, 401, "invalid_client");
    let mut wrong_aud = claims(&b, "j5", 240);
    wrong_aud["aud"] = json!("https://elsewhere/token");
    oauth_error(
        &cc(
            &t,
            &assertion(&b, jsonwebtoken::Algorithm::RS384, wrong_aud),
            "system/Patient.rs",
        )
        .await,
        401,
        "invalid_client",
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(&b, "j6", 240).to_string())
    );
    oauth_error(
        &cc(&t, &none, "system/Patient.rs").await,
        401,
        "invalid_client",
    );
    let outside = cc(
        &t,
        &assertion(&b, jsonwebtoken::Algorithm::RS384, claims(&b, "j7", 240)),
        "system/Patient.cruds",
    )
    .await;
    oauth_error(&outside, 400, "invalid_scope");
    let user_scope = cc(
        &t,
        &assertion(&b, jsonwebtoken::Algorithm::RS384, claims(&b, "j8", 240)),
        "user/Patient.rs",
    )
    .await;
    oauth_error(&user_scope, 400, "invalid_scope");
}

/// The payload of a JWT, unverified (the tests read what was issued).
fn jwt_payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn with_b2b(mut claims: Value, b2b: Value) -> Value {
    claims["extensions"] = json!({ "hl7-b2b": b2b });
    claims
}

#[tokio::test]
async fn udap_b2b_extension_states_the_tokens_organization_and_purpose() {
    let t = demo_app().await;
    let b = backend(&t, "system/*.rs").await;
    let b2b = json!({"version": "1",
        "organization_id": format!("{BASE}/Organization/org-b2b"),
        "organization_name": "B2B Clinic",
        "purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#HPAYMT", "urn:oid:2.16.840.1.113883.5.8#TREAT"]});
    let ok = cc(
        &t,
        &assertion(
            &b,
            jsonwebtoken::Algorithm::RS384,
            with_b2b(claims(&b, "b1", 240), b2b.clone()),
        ),
        "system/Patient.rs",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let p = jwt_payload(ok.json["access_token"].as_str().unwrap());
    assert_eq!(p["organization"], "Organization/org-b2b", "{p}");
    assert_eq!(
        p["purpose_of_use"], "HPAYMT",
        "the first stated purpose: {p}"
    );

    // TEFCA exchange purposes map to ActReason; an organization elsewhere
    // stays the URI it is
    let tefca = json!({"version": "1", "organization_id": "urn:oid:1.2.3.4.5",
        "purpose_of_use": ["urn:oid:2.16.840.1.113883.3.7204.1.5.2.1#T-TREAT"]});
    let ok = cc(
        &t,
        &assertion(
            &b,
            jsonwebtoken::Algorithm::RS384,
            with_b2b(claims(&b, "b2", 240), tefca),
        ),
        "system/Patient.rs",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let p = jwt_payload(ok.json["access_token"].as_str().unwrap());
    assert_eq!(p["organization"], "urn:oid:1.2.3.4.5", "{p}");
    assert_eq!(p["purpose_of_use"], "TREAT", "{p}");

    // without the extension: neither claim
    let plain = cc(
        &t,
        &assertion(&b, jsonwebtoken::Algorithm::RS384, claims(&b, "b3", 240)),
        "system/Patient.rs",
    )
    .await;
    let p = jwt_payload(plain.json["access_token"].as_str().unwrap());
    assert!(
        p.get("organization").is_none() && p.get("purpose_of_use").is_none(),
        "{p}"
    );

    // malformed: invalid_grant naming the key, no token
    for (jti, bad) in [
        (
            "b4",
            json!({"version": "1", "purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#TREAT"]}),
        ),
        (
            "b5",
            json!({"version": "1", "organization_id": "urn:oid:1.2.3", "purpose_of_use": ["urn:other#TREAT"]}),
        ),
        (
            "b6",
            json!({"version": "2", "organization_id": "urn:oid:1.2.3", "purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#TREAT"]}),
        ),
    ] {
        let r = cc(
            &t,
            &assertion(
                &b,
                jsonwebtoken::Algorithm::RS384,
                with_b2b(claims(&b, jti, 240), bad),
            ),
            "system/Patient.rs",
        )
        .await;
        oauth_error(&r, 400, "invalid_grant");
        assert!(
            r.json["error_description"]
                .as_str()
                .unwrap()
                .contains("hl7-b2b"),
            "{}",
            r.text()
        );
    }
}

#[tokio::test]
async fn a_client_bound_to_an_organization_cannot_state_another() {
    let t = demo_app().await;
    let b = backend(&t, "system/*.rs").await;
    let t = t
        .reopen_with_config(&format!(
            "[demo]\nenabled = true\n[payer]\nprovider_clients = {{ \"{}\" = \"Organization/org-bound\" }}\n",
            b.id
        ))
        .await;
    let stated = |org: &str| {
        json!({"version": "1", "organization_id": format!("{BASE}/Organization/{org}"),
            "purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#TREAT"]})
    };
    let other = cc(
        &t,
        &assertion(
            &b,
            jsonwebtoken::Algorithm::RS384,
            with_b2b(claims(&b, "c1", 240), stated("org-other")),
        ),
        "system/Patient.rs",
    )
    .await;
    oauth_error(&other, 400, "invalid_grant");
    let own = cc(
        &t,
        &assertion(
            &b,
            jsonwebtoken::Algorithm::RS384,
            with_b2b(claims(&b, "c2", 240), stated("org-bound")),
        ),
        "system/Patient.rs",
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
    let p = jwt_payload(own.json["access_token"].as_str().unwrap());
    assert_eq!(p["organization"], "Organization/org-bound");
}

#[tokio::test]
async fn browser_apps_on_other_origins_may_call_the_api() {
    let t = TestApp::new().await;
    let pre = t
        .request_raw(
            Method::OPTIONS,
            "/auth/token",
            &[
                ("origin", "https://app.example.org"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            None,
        )
        .await;
    assert!(pre.status.is_success(), "{}", pre.status);
    assert_eq!(
        pre.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let r = t
        .request(
            Method::GET,
            "/fhir/Patient",
            &[("origin", "https://app.example.org")],
            None,
        )
        .await;
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(r
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_lowercase()
        .contains("location"));
}

#[tokio::test]
async fn ehr_launch_context_reaches_the_token_response() {
    let t = demo_app().await;
    let reg = register(&t, json!({"client_name": "EHR app", "redirect_uris": [REDIRECT], "launch_url": "https://app.example.org/launch",
        "scope": "launch openid fhirUser patient/*.rs user/*.rs"})).await;
    let client = reg["client_id"].as_str().unwrap().to_owned();
    let lee = fhirgate::state::users::User {
        username: "dr.lee".into(),
        role: "clinician".into(),
        fhir_user: "Practitioner/lee".into(),
        display_name: "Dr. Lee".into(),
        organization: None,
    };
    let url = fhirgate::oauth::authorize::ehr_launch(&t.app, &client, &lee, "p1", Some("e1"))
        .await
        .unwrap();
    let pairs = query_of(&url);
    assert!(url.starts_with("https://app.example.org/launch?"));
    assert_eq!(
        q(&pairs, "iss"),
        Some(BASE),
        "iss is exactly the published FHIR base"
    );
    let launch = q(&pairs, "launch").unwrap().to_owned();

    let r = authorize(
        &t,
        &client,
        &[
            ("scope", "launch openid fhirUser patient/*.rs"),
            ("launch", &launch),
        ],
    )
    .await;
    let pending = location(&r)
        .trim_start_matches("/auth/continue?req=")
        .to_owned();
    let p = fhirgate::oauth::authorize::load_pending(&t.app, &pending)
        .await
        .unwrap();
    assert_eq!(p.launch_patient.as_deref(), Some("p1"));
    assert!(!p.needs_patient);
    let other = fhirgate::state::users::User {
        username: "dr.other".into(),
        ..lee.clone()
    };
    assert!(
        fhirgate::oauth::authorize::approve(
            &t.app,
            &pending,
            &other,
            &Default::default(),
            "launch openid fhirUser patient/*.rs",
            None
        )
        .await
        .is_err(),
        "only the launching user approves"
    );
    let wider = fhirgate::oauth::authorize::approve(
        &t.app,
        &pending,
        &lee,
        &Default::default(),
        "launch openid fhirUser patient/*.cruds",
        None,
    )
    .await;
    assert!(wider.is_err(), "never more than requested");
    let back = fhirgate::oauth::authorize::approve(
        &t.app,
        &pending,
        &lee,
        &Default::default(),
        "launch openid fhirUser patient/Observation.rs",
        Some("ignored"),
    )
    .await
    .unwrap();
    let code = q(&query_of(&back), "code").unwrap().to_owned();
    let tok = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!(tok.status, StatusCode::OK, "{}", tok.text());
    assert_eq!(
        tok.json["patient"], "p1",
        "the launch patient, not a picked one"
    );
    assert_eq!(tok.json["encounter"], "e1");
    assert_eq!(tok.json["fhirContext"][0]["reference"], "Encounter/e1");
    assert_eq!(tok.json["need_patient_banner"], true);
    assert_eq!(
        tok.json["scope"], "launch openid fhirUser patient/Observation.rs",
        "granted may be narrower than requested"
    );
    let style = tok.json["smart_style_url"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://fhirgate.test")
        .to_owned();
    assert_eq!(
        t.request_raw(Method::GET, &style, &[], None).await.json["color_background"],
        "#f7f8fa"
    );
    assert!(
        tok.json.get("refresh_token").is_none(),
        "no offline/online access asked"
    );

    // The launch is single use.
    let again = authorize(
        &t,
        &client,
        &[
            ("scope", "launch openid fhirUser patient/*.rs"),
            ("launch", &launch),
        ],
    )
    .await;
    assert_eq!(
        q(&query_of(&location(&again)), "error"),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let t = demo_app().await;
    let client = public_client(&t).await;
    let code = "expired-code-value";
    let grant = json!({"client_id": client, "redirect_uri": REDIRECT, "code_challenge": challenge_of(VERIFIER), "scope": "patient/*.rs", "patient": "p"});
    t.app
        .state
        .code_put(
            &smart_launch::token::hash_token(code),
            &client,
            &grant,
            fhirgate::oauth::now() - 1,
        )
        .await
        .unwrap();
    let r = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    oauth_error(&r, 400, "invalid_grant");
    assert!(r.json["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[tokio::test]
async fn public_clients_refresh_without_client_authentication_confidential_ones_cannot() {
    let t = demo_app().await;
    let client = public_client(&t).await;
    let code = code_for(&t, &client).await;
    let tok = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await
    .json;
    let refresh = tok["refresh_token"].as_str().unwrap();
    let r = form(
        &t,
        "/auth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let reg = register(&t, json!({"client_name": "Confidential", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid fhirUser launch/patient patient/*.rs offline_access"})).await;
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    let code = code_for(&t, &id).await;
    let tok = form(
        &t,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some(&format!("{id}:{secret}")),
    )
    .await
    .json;
    let refresh = tok["refresh_token"].as_str().unwrap();
    let r = form(
        &t,
        "/auth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        None,
    )
    .await;
    oauth_error(&r, 401, "invalid_client");
}

#[tokio::test]
async fn backend_keys_can_come_from_a_jwks_uri() {
    let t = demo_app().await;
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())}]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = jwks.clone();
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || async move { axum::Json(served) }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let reg = register(&t, json!({"client_name": "Backend by URI", "token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"],
        "scope": "system/*.rs", "jwks_uri": format!("http://{addr}/jwks.json")})).await;
    let b = Backend {
        id: reg["client_id"].as_str().unwrap().to_owned(),
        pem: key
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .unwrap()
            .to_string(),
    };
    let ok = cc(
        &t,
        &assertion(&b, jsonwebtoken::Algorithm::RS384, claims(&b, "u1", 240)),
        "system/Patient.rs",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}
