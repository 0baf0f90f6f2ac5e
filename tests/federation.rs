//! Federated sign-in against a real OpenID Provider: panva's `oidc-provider`
//! (OpenID Certified), run by `node conformance-tests/oidc/server.mjs`.
//!
//! Each test starts its own provider and its own fhirgate (in process, on a
//! real socket), then plays the browser with a cookie-keeping client that
//! follows redirects by hand and posts the provider's login form. The
//! negative cases are produced by the real provider:
//! - bad nonce: provider `MODE=bad-nonce` (its authorization endpoint sees an
//!   altered nonce, so it signs an id_token with a nonce we never sent);
//! - wrong issuer: provider `MODE=wrong-issuer` (its discovery document says
//!   `http://127.0.0.1:<port>`, its id_tokens say `…/other-tenant`);
//! - expired: a normal provider's id_token (one-hour `exp`), checked by a
//!   fhirgate whose injected clock runs two hours ahead;
//! - bad state: the provider's genuine callback with `state` altered, and the
//!   genuine callback opened in a browser that did not start the sign-in.
//!
//! Fhirgate's own log (captured per test) must name the reason, and never
//! carry the code or a JWT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "federation/browser.rs"]
mod browser;
#[path = "federation/harness.rs"]
mod harness;

use harness::{Browser, Gate, Mode, Provider};

/// A full sign-in up to (not including) the provider's redirect back to
/// fhirgate; returns the callback URL the provider sent the browser to.
async fn through_provider(b: &mut Browser, gate: &Gate, provider: &Provider, next: &str) -> String {
    let start = format!("{}/login/federated?next={next}", gate.base);
    harness::until_callback(b, &start, gate, provider).await
}

#[tokio::test]
async fn a_federated_user_gets_a_session_and_reaches_the_launcher() {
    let (gate, provider) = harness::start(Mode::Normal, harness::Clock::Real, true).await;
    let mut b = Browser::new();

    // The sign-in page offers the configured provider.
    let login = b
        .get(&format!("{}/login?next=%2Flauncher", gate.base))
        .await;
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("Sign in with Test OP"),
        "{}",
        login.body
    );
    assert!(login.body.contains("/login/federated?next=%2Flauncher"));

    let callback = through_provider(&mut b, &gate, &provider, "%2Flauncher").await;
    let r = b.get(&callback).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/launcher"));
    assert!(r
        .set_cookies
        .iter()
        .any(|c| c.starts_with("fhirgate_session=")));

    let launcher = b.get(&format!("{}/launcher", gate.base)).await;
    assert_eq!(launcher.status, 200, "{}", launcher.body);
    assert!(
        launcher.body.contains("Dr Lee (local)"),
        "signed in as dr.lee"
    );
    assert!(gate.log().contains("federated sign-in"));

    // The callback is single use: replaying it starts nothing.
    let mut other = Browser::new();
    other.jar = b.jar.clone();
    other.forget("fhirgate_session");
    let again = other.get(&callback).await;
    assert_eq!(again.status, 400);
    harness::assert_no_session(&mut other, &gate, &again).await;
    gate.assert_clean_log(&callback);
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    let (gate, provider) = harness::start(Mode::BadNonce, harness::Clock::Real, true).await;
    let mut b = Browser::new();
    let callback = through_provider(&mut b, &gate, &provider, "%2F").await;
    let r = b.get(&callback).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("could not be verified"), "{}", r.body);
    harness::assert_no_session(&mut b, &gate, &r).await;
    assert!(gate.log().contains("Invalid nonce"), "{}", gate.log());
    gate.assert_clean_log(&callback);
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let (gate, provider) = harness::start(Mode::WrongIssuer, harness::Clock::Real, true).await;
    let mut b = Browser::new();
    let callback = through_provider(&mut b, &gate, &provider, "%2F").await;
    let r = b.get(&callback).await;
    assert_eq!(r.status, 403, "{}", r.body);
    harness::assert_no_session(&mut b, &gate, &r).await;
    let log = gate.log();
    assert!(
        log.contains("Invalid issuer") && log.contains("other-tenant"),
        "{log}"
    );
    gate.assert_clean_log(&callback);
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let (gate, provider) =
        harness::start(Mode::Normal, harness::Clock::AheadSecs(2 * 3600), true).await;
    let mut b = Browser::new();
    let callback = through_provider(&mut b, &gate, &provider, "%2F").await;
    let r = b.get(&callback).await;
    assert_eq!(r.status, 403, "{}", r.body);
    harness::assert_no_session(&mut b, &gate, &r).await;
    assert!(gate.log().contains("Expired"), "{}", gate.log());
    gate.assert_clean_log(&callback);
}

#[tokio::test]
async fn a_bad_state_is_refused() {
    let (gate, provider) = harness::start(Mode::Normal, harness::Clock::Real, true).await;

    // The provider's genuine answer, with the state altered.
    let mut b = Browser::new();
    let callback = through_provider(&mut b, &gate, &provider, "%2F").await;
    let mut url = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{v}x")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let r = b.get(url.as_str()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    harness::assert_no_session(&mut b, &gate, &r).await;
    assert!(gate.log().contains("state mismatch"), "{}", gate.log());

    // The provider's genuine answer, opened in a browser that never started
    // a sign-in (login CSRF / a stolen callback URL).
    let mut victim = Browser::new();
    let mut attacker = Browser::new();
    let callback = through_provider(&mut attacker, &gate, &provider, "%2F").await;
    let r = victim.get(&callback).await;
    assert_eq!(r.status, 400, "{}", r.body);
    harness::assert_no_session(&mut victim, &gate, &r).await;
    gate.assert_clean_log(&callback);
}

#[tokio::test]
async fn a_provider_user_without_a_local_account_is_refused() {
    let (gate, provider) = harness::start(Mode::Normal, harness::Clock::Real, false).await;
    let mut b = Browser::new();
    let callback = through_provider(&mut b, &gate, &provider, "%2F").await;
    let r = b.get(&callback).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("no account for you"), "{}", r.body);
    harness::assert_no_session(&mut b, &gate, &r).await;
}

#[tokio::test]
async fn without_federation_there_is_no_button_and_no_route() {
    let gate = harness::start_without_federation().await;
    let mut b = Browser::new();
    let login = b.get(&format!("{}/login", gate.base)).await;
    assert_eq!(login.status, 200);
    assert!(!login.body.contains("/login/federated"), "{}", login.body);
    let start = b
        .get(&format!("{}/login/federated?next=%2F", gate.base))
        .await;
    assert_eq!(start.status, 404);
    let callback = b
        .get(&format!(
            "{}/login/federated/callback?code=x&state=y",
            gate.base
        ))
        .await;
    assert_eq!(callback.status, 404);
}

#[tokio::test]
async fn the_organization_claim_becomes_the_users_organization_in_their_tokens() {
    use fhirgate::oauth::{authorize, clients, token};
    // The test provider's id_token carries `sub` = `acct-7f3a9c`: named as
    // the organization claim, it is read as `Organization/acct-7f3a9c`.
    let (gate, provider) = harness::start_with(
        Mode::Normal,
        harness::Clock::Real,
        true,
        "organization_claim = \"sub\"\n",
    )
    .await;
    let mut b = Browser::new();
    let callback = through_provider(&mut b, &gate, &provider, "%2Flauncher").await;
    let r = b.get(&callback).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let user = gate.app.state.user_get("dr.lee").await.unwrap().unwrap();
    assert_eq!(
        user.organization.as_deref(),
        Some("Organization/acct-7f3a9c")
    );

    // An app the user then approves gets it in the access token.
    let redirect = "https://app.example.org/cb";
    let meta = serde_json::json!({"client_name": "App", "redirect_uris": [redirect],
        "grant_types": ["authorization_code"], "scope": "openid fhirUser user/*.rs"});
    let (client, _) = clients::register(&gate.app, &meta).await.unwrap();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-entropy";
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let aud = gate.app.config.fhir_base();
    let challenge = smart_launch::pkce::challenge_of(verifier);
    let started = authorize::start(
        &gate.app,
        &pairs(&[
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", redirect),
            ("scope", "openid fhirUser user/*.rs"),
            ("aud", &aud),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]),
    )
    .await;
    let authorize::Start::Redirect(next) = started else {
        panic!("{started:?}");
    };
    let pending = next.trim_start_matches("/auth/continue?req=");
    let back = authorize::approve(&gate.app, pending, &user, "openid fhirUser user/*.rs", None)
        .await
        .unwrap();
    let code = url::form_urlencoded::parse(back.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let answer = token::token(
        &gate.app,
        &pairs(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", &client.client_id),
            ("code_verifier", verifier),
        ]),
        None,
    )
    .await
    .unwrap();
    let access = answer["access_token"].as_str().unwrap();
    let claims = smart_launch::token::validate_access(
        &gate.app.keys,
        access,
        &aud,
        &aud,
        fhirgate::oauth::now(),
    )
    .unwrap();
    assert_eq!(
        claims.organization.as_deref(),
        Some("Organization/acct-7f3a9c")
    );
    // and introspection says so
    let seen = token::introspect(
        &gate.app,
        &pairs(&[("token", access), ("client_id", &client.client_id)]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["organization"], "Organization/acct-7f3a9c", "{seen}");
}
