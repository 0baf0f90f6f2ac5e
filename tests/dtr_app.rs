//! The DTR SMART app fhirgate serves (`/dtr/launch`, `/dtr/app`,
//! `/dtr/app.js`), driven with `oneshot`: the seeded public client, the
//! launch redirect (PKCE S256, `state`, `aud`, `launch`) accepted by the
//! authorization endpoint, readable refusals, and the pages' security
//! headers. The browser half is `conformance-tests/browser/dtr_app.test.mjs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::{TestApp, TestResponse, BASE};
use fhirgate::{
    http::ui::dtr_app::{self, CLIENT_ID, LAUNCH_COOKIE},
    state::users::User,
};
use serde_json::Value;

const REDIRECT: &str = "http://fhirgate.test/dtr/app";

async fn get_raw(t: &TestApp, path: &str) -> TestResponse {
    t.request_raw(Method::GET, path, &[], None).await
}

/// Path and query pairs of a `Location`.
fn location(r: &TestResponse) -> (String, HashMap<String, String>) {
    let loc = r.header("location").expect("a Location");
    let url = url::Url::parse(&loc)
        .or_else(|_| url::Url::parse("http://fhirgate.test").unwrap().join(&loc))
        .unwrap();
    let q = url.query_pairs().into_owned().collect();
    (url.path().to_owned(), q)
}

/// The launch cookie's `Set-Cookie` line and its decoded JSON.
fn launch_cookie(r: &TestResponse) -> (String, Value) {
    let line = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{LAUNCH_COOKIE}=")))
        .expect("the launch cookie")
        .to_owned();
    let value = line[LAUNCH_COOKIE.len() + 1..].split(';').next().unwrap();
    let json = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(value).unwrap()).unwrap();
    (line, json)
}

fn clinician() -> User {
    User {
        username: "dr.test".into(),
        role: "clinician".into(),
        fhir_user: "Practitioner/dr-test".into(),
        display_name: "Dr. Test".into(),
        organization: None,
    }
}

#[tokio::test]
async fn the_seeded_client_is_public_with_the_app_urls_and_kept_on_restart() {
    let t = TestApp::new().await;
    dtr_app::ensure_client(&t.app).await.unwrap();
    dtr_app::ensure_client(&t.app).await.unwrap();
    let c = t.app.state.client_get(CLIENT_ID).await.unwrap().unwrap();
    assert_eq!(c.client_type, "public");
    assert!(c.secret_hash.is_none());
    assert_eq!(c.metadata["redirect_uris"], serde_json::json!([REDIRECT]));
    assert_eq!(c.metadata["launch_url"], "http://fhirgate.test/dtr/launch");
    assert_eq!(c.metadata["token_endpoint_auth_method"], "none");
    let scope = c.metadata["scope"].as_str().unwrap();
    for s in [
        "launch",
        "launch/patient",
        "openid",
        "fhirUser",
        "user/Coverage.rs",
        "user/Questionnaire.rs",
        "user/QuestionnaireResponse.cru",
    ] {
        assert!(scope.split(' ').any(|x| x == s), "{s} in {scope}");
    }
    let all = t.app.state.client_list().await.unwrap();
    assert_eq!(all.iter().filter(|c| c.client_id == CLIENT_ID).count(), 1);
}

#[tokio::test]
async fn the_demo_start_registers_the_dtr_app() {
    let t = TestApp::new().await;
    fhirgate::demo::ensure(&t.app, None, 1).await.unwrap();
    let c = t.app.state.client_get(CLIENT_ID).await.unwrap();
    assert!(c.is_some_and(|c| c.metadata["launch_url"] == "http://fhirgate.test/dtr/launch"));
}

#[tokio::test]
async fn an_ehr_launch_redirects_to_authorize_with_pkce_state_aud_and_launch() {
    let t = TestApp::new().await;
    dtr_app::ensure_client(&t.app).await.unwrap();
    // The EHR launcher's side: a launch context for the app.
    let to = fhirgate::oauth::authorize::ehr_launch(&t.app, CLIENT_ID, &clinician(), "p1", None)
        .await
        .unwrap();
    let to = url::Url::parse(&to).unwrap();
    assert_eq!(to.path(), "/dtr/launch");
    let sent: HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(sent["iss"], BASE);

    let r = get_raw(&t, &format!("/dtr/launch?{}", to.query().unwrap())).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let (path, q) = location(&r);
    assert_eq!(path, "/auth/authorize");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["aud"], BASE, "aud is the FHIR base (iss)");
    assert_eq!(q["launch"], sent["launch"]);
    assert_eq!(q["code_challenge_method"], "S256");
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert_eq!(scopes[0], "launch");
    assert!(!scopes.contains(&"launch/patient"));
    assert!(scopes.contains(&"user/Questionnaire.rs"));
    assert!(q["state"].len() >= 32, "an unguessable state");

    // The browser gets state and verifier (and where to go back) once.
    let (line, c) = launch_cookie(&r);
    assert!(line.contains("Path=/dtr"), "{line}");
    assert!(line.contains("SameSite=Lax"), "{line}");
    assert!(line.contains("Max-Age="), "{line}");
    assert!(!line.contains("Secure"), "plain http public URL: {line}");
    assert_eq!(c["state"].as_str(), Some(q["state"].as_str()));
    assert_eq!(c["iss"], BASE);
    assert_eq!(c["redirect_uri"], REDIRECT);
    assert_eq!(c["client_id"], CLIENT_ID);
    let verifier = c["verifier"].as_str().unwrap();
    assert!((43..=128).contains(&verifier.len()));
    assert_eq!(
        q["code_challenge"],
        smart_launch::pkce::challenge_of(verifier)
    );

    // The authorization endpoint accepts it all: on to the user's part.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q.iter())
        .finish();
    let a = get_raw(&t, &format!("/auth/authorize?{query}")).await;
    let loc = a.header("location").unwrap_or_default();
    assert!(
        loc.starts_with("/auth/continue?req="),
        "authorize answered {} {loc} {}",
        a.status,
        a.text()
    );

    // Each launch gets its own state and verifier.
    let again = get_raw(&t, &format!("/dtr/launch?iss={BASE}&launch=x")).await;
    assert_ne!(location(&again).1["state"], q["state"]);
    assert_ne!(launch_cookie(&again).1["verifier"], c["verifier"]);
}

#[tokio::test]
async fn a_standalone_launch_asks_for_a_patient_instead() {
    let t = TestApp::new().await;
    dtr_app::ensure_client(&t.app).await.unwrap();
    let r = get_raw(&t, &format!("/dtr/launch?iss={BASE}/")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let (_, q) = location(&r);
    assert!(!q.contains_key("launch"));
    assert_eq!(q["aud"], BASE);
    assert!(q["scope"].starts_with("launch/patient "), "{}", q["scope"]);
}

#[tokio::test]
async fn launch_problems_are_readable_pages() {
    let t = TestApp::new().await;
    // Not registered (no demo start): a 404 page saying so.
    let r = get_raw(&t, &format!("/dtr/launch?iss={BASE}&launch=x")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("not registered"), "{}", r.text());
    dtr_app::ensure_client(&t.app).await.unwrap();
    // No iss, or another server's: 400, nothing redirected, no cookie.
    for (path, words) in [
        ("/dtr/launch?launch=x".to_owned(), "without an iss"),
        (
            "/dtr/launch?iss=https%3A%2F%2Fevil.example%2Ffhir&launch=x".to_owned(),
            "works only with the FHIR server",
        ),
    ] {
        let r = get_raw(&t, &path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(r.header("location").is_none());
        assert!(r.header("set-cookie").is_none());
        assert!(r.text().contains(words), "{path}: {}", r.text());
        assert!(r.header("content-security-policy").is_some());
    }
}

#[tokio::test]
async fn the_page_and_script_are_served_with_a_same_origin_csp() {
    let t = TestApp::new().await;
    let page = get_raw(&t, "/dtr/app").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    assert!(html.contains(r#"<script src="/dtr/app.js" defer></script>"#));
    assert_eq!(html.matches("<script").count(), 1, "no inline script");
    let js = get_raw(&t, "/dtr/app.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.text().contains("$questionnaire-package"));
    for r in [&page, &js] {
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
    }
}
