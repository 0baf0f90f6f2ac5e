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
    let back = authorize::approve(
        &gate.app,
        pending,
        &user,
        &Default::default(),
        "openid fhirUser user/*.rs",
        None,
    )
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

// ---- Identity assurance (issue 11): the provider's acr/amr, RFC 9470 ----

/// The app's redirect URI (never opened: the code is read from the Location).
const APP_REDIRECT: &str = "https://app.example.org/cb";
/// The PKCE verifier of the app's requests.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-assurance";

/// A local patient `pat.jones` (Patient/pat-1, stored) and a public app
/// allowed `openid fhirUser launch/patient patient/*.rs`; returns its id.
async fn patient_and_app(gate: &Gate) -> String {
    use fhirgate::state::users::User;
    let user = User {
        username: "pat.jones".into(),
        role: "patient".into(),
        fhir_user: "Patient/pat-1".into(),
        display_name: "Pat Jones (local)".into(),
        organization: None,
    };
    gate.app.state.upsert_user(&user, "x").await.unwrap();
    // the record, written with a system token
    let base = gate.app.config.fhir_base();
    let now = fhirgate::oauth::now();
    let jti = smart_launch::token::random_token(16);
    let claims = smart_launch::token::AccessClaims {
        iss: base.clone(),
        sub: "seed".into(),
        aud: base.clone(),
        exp: now + 600,
        iat: now,
        jti: jti.clone(),
        client_id: "seed".into(),
        scope: "system/*.cruds".into(),
        patient: None,
        encounter: None,
        fhir_user: None,
        role: None,
        purpose_of_use: None,
        organization: None,
        acr: None,
        amr: Vec::new(),
        auth_time: None,
    };
    gate.app
        .state
        .access_put(&jti, "seed", None, now + 600)
        .await
        .unwrap();
    let token = smart_launch::token::mint_access(&gate.app.keys, &claims).unwrap();
    let put = reqwest::Client::new()
        .put(format!("{base}/Patient/pat-1"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Patient","id":"pat-1","name":[{"family":"Jones","given":["Pat"]}]}"#)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    let meta = serde_json::json!({"client_name": "Patient app", "redirect_uris": [APP_REDIRECT],
        "grant_types": ["authorization_code"], "scope": "openid fhirUser launch/patient patient/*.rs"});
    let (client, _) = fhirgate::oauth::clients::register(&gate.app, &meta)
        .await
        .unwrap();
    client.client_id
}

/// What one authorization request ended with.
struct Authorized {
    /// The code the app got.
    code: String,
    /// What the provider was asked for, each time the user was sent there.
    asked: Vec<String>,
}

/// Plays the app and the user through `/auth/authorize` (with `extra`
/// parameters): sign-in at the provider as `who` whenever fhirgate sends
/// the browser there (the local sign-in page is skipped for the
/// provider's), every scope allowed on the approval page.
async fn authorize_as(
    b: &mut Browser,
    gate: &Gate,
    provider: &Provider,
    client_id: &str,
    scope: &str,
    extra: &[(&str, &str)],
    who: harness::SignIn<'_>,
) -> Authorized {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", APP_REDIRECT)
        .append_pair("scope", scope)
        .append_pair("aud", &gate.app.config.fhir_base())
        .append_pair("state", "s1")
        .append_pair(
            "code_challenge",
            &smart_launch::pkce::challenge_of(VERIFIER),
        )
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    let mut url = format!("{}/auth/authorize?{}", gate.base, q.finish());
    let mut asked = Vec::new();
    for _ in 0..30 {
        if let Some(query) = url.strip_prefix(&format!("{APP_REDIRECT}?")) {
            let code = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "code")
                .unwrap_or_else(|| panic!("no code: {url}"))
                .1
                .into_owned();
            return Authorized { code, asked };
        }
        let page = b.get(&url).await;
        if page.status / 100 == 3 {
            let to = page.location.clone().unwrap();
            if to.starts_with(APP_REDIRECT) {
                url = to;
                continue;
            }
            if let Some(rest) = to.strip_prefix("/login?") {
                url = format!("{}/login/federated?{rest}", gate.base);
                continue;
            }
            if to.starts_with(&provider.base) {
                let (callback, a) = harness::until_callback_as(b, &to, gate, provider, who).await;
                asked.push(a);
                url = callback;
                continue;
            }
            url = url::Url::parse(&url)
                .unwrap()
                .join(&to)
                .unwrap()
                .to_string();
            continue;
        }
        assert_eq!(page.status, 200, "at {url}: {}", page.body);
        assert!(
            page.body.contains(r#"action="/auth/continue""#),
            "{}",
            page.body
        );
        let field = |name: &str| {
            let key = format!(r#"name="{name}" value=""#);
            let at = page.body.find(&key).unwrap() + key.len();
            page.body[at..at + page.body[at..].find('"').unwrap()].to_owned()
        };
        let (csrf, req, patient) = (field("csrf"), field("req"), field("patient"));
        let items: Vec<String> = page
            .body
            .match_indices(r#"name="item" value=""#)
            .map(|(at, k)| {
                let v = &page.body[at + k.len()..];
                v[..v.find('"').unwrap()].to_owned()
            })
            .collect();
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("req", req.as_str()),
            ("patient", patient.as_str()),
            ("decision", "allow"),
        ];
        form.extend(items.iter().map(|i| ("item", i.as_str())));
        let res = b
            .post_form(&format!("{}/auth/continue", gate.base), &form)
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        url = res.location.unwrap();
    }
    panic!("no code after 30 steps");
}

/// Redeems `code`; returns the token response.
async fn redeem(gate: &Gate, client_id: &str, code: &str) -> serde_json::Value {
    let pairs: Vec<(String, String)> = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", APP_REDIRECT),
        ("client_id", client_id),
        ("code_verifier", VERIFIER),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    fhirgate::oauth::token::token(&gate.app, &pairs, None)
        .await
        .unwrap()
}

/// The claims of a JWT (not verified: the test reads what was issued).
fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn ial1_is_refused_for_patient_access_with_rfc_9470_and_an_ial2_step_up_is_honoured() {
    let policy = format!(
        "\n[assurance]\npatient_acr_values = [\"{}\"]\n",
        harness::IAL2
    );
    let (gate, provider) =
        harness::start_with(Mode::Normal, harness::Clock::Real, false, &policy).await;
    let client_id = patient_and_app(&gate).await;
    let scope = "openid fhirUser launch/patient patient/*.rs";
    let ial1 = harness::SignIn {
        login: "pat.jones",
        acr: harness::IAL1,
        amr: "pwd",
    };
    let ial2 = harness::SignIn {
        acr: harness::IAL2,
        ..ial1
    };
    let mut b = Browser::new();

    // 1. The patient signs in at IAL1. Before the approval page fhirgate
    //    asks the provider once for IAL2 (acr_values, prompt=login); the
    //    patient declines the identity verification again (IAL1), so the
    //    app gets a code carrying IAL1.
    let first = authorize_as(&mut b, &gate, &provider, &client_id, scope, &[], ial1).await;
    assert_eq!(first.asked.len(), 2, "{:?}", first.asked);
    assert_eq!(first.asked[0], "acr_values=;prompt=;max_age=");
    assert_eq!(
        first.asked[1],
        format!("acr_values={};prompt=login;max_age=", harness::IAL2)
    );
    let tokens = redeem(&gate, &client_id, &first.code).await;
    let access = tokens["access_token"].as_str().unwrap();
    let claims = jwt_claims(access);
    assert_eq!(claims["acr"], harness::IAL1, "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims["auth_time"].as_i64().is_some());
    let id_claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_claims["acr"], harness::IAL1, "{id_claims}");

    // 2. The resource server refuses it: 401 and RFC 9470's challenge.
    let http = reqwest::Client::new();
    let read = |token: String| {
        let url = format!("{}/Patient/pat-1", gate.app.config.fhir_base());
        let http = http.clone();
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let refused = read(access.to_owned()).await;
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(r#"error="insufficient_user_authentication""#)
            && challenge.contains(&format!(r#"acr_values="{}""#, harness::IAL2)),
        "{challenge}"
    );
    let outcome: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "security");

    // 3. The app asks again with the acr_values of the challenge; fhirgate
    //    sends the user to the provider with them; this time the identity
    //    verification is done (IAL2), and the new token is let in.
    let second = authorize_as(
        &mut b,
        &gate,
        &provider,
        &client_id,
        scope,
        &[("acr_values", harness::IAL2)],
        ial2,
    )
    .await;
    assert_eq!(
        second.asked,
        [format!(
            "acr_values={};prompt=login;max_age=",
            harness::IAL2
        )]
    );
    let tokens = redeem(&gate, &client_id, &second.code).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(access)["acr"], harness::IAL2);
    let allowed = read(access.to_owned()).await;
    assert_eq!(allowed.status(), 200, "{}", allowed.text().await.unwrap());

    // 4. The portal, at IAL1, offers the verification instead of the page.
    let mut low = Browser::new();
    let start = format!("{}/login/federated?next=%2Fportal", gate.base);
    let (callback, _) = harness::until_callback_as(&mut low, &start, &gate, &provider, ial1).await;
    assert_eq!(low.get(&callback).await.status, 303);
    let portal = low.get(&format!("{}/portal", gate.base)).await;
    assert_eq!(portal.status, 403, "{}", portal.body);
    assert!(
        portal.body.contains("Verify your identity"),
        "{}",
        portal.body
    );
    assert!(
        portal.body.contains("/login/federated?next=%2Fportal&#38;acr_values=http%3A%2F%2Fidmanagement.gov%2Fns%2Fassurance%2Fial%2F2&#38;prompt=login"),
        "{}",
        portal.body
    );
    gate.assert_clean_log(&callback);
}

#[tokio::test]
async fn a_clinician_without_a_second_factor_is_sent_back_for_one_and_max_age_is_passed_on() {
    let policy = "\n[assurance]\nclinician_mfa = true\n";
    let (gate, provider) =
        harness::start_with(Mode::Normal, harness::Clock::Real, true, policy).await;
    let meta = serde_json::json!({"client_name": "Clinician app", "redirect_uris": [APP_REDIRECT],
        "grant_types": ["authorization_code"], "scope": "openid fhirUser user/*.rs"});
    let (client, _) = fhirgate::oauth::clients::register(&gate.app, &meta)
        .await
        .unwrap();
    let scope = "openid fhirUser user/*.rs";
    let mut b = Browser::new();
    // The provider asserts a second factor only when asked for it.
    let with_otp = harness::SignIn {
        amr: "pwd,otp",
        ..harness::DR_LEE
    };
    let first = authorize_as(
        &mut b,
        &gate,
        &provider,
        &client.client_id,
        scope,
        &[("max_age", "600")],
        with_otp,
    )
    .await;
    // the first sign-in (the app's max_age is not the provider's business
    // until more is needed) already had otp: no second trip
    assert_eq!(first.asked, ["acr_values=;prompt=;max_age="]);
    let claims = jwt_claims(
        redeem(&gate, &client.client_id, &first.code).await["access_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]), "{claims}");

    // A password-only sign-in is sent back once, with the MFA acr and the app's max_age.
    let mut b = Browser::new();
    let second = authorize_as(
        &mut b,
        &gate,
        &provider,
        &client.client_id,
        scope,
        &[("max_age", "600")],
        harness::DR_LEE,
    )
    .await;
    assert_eq!(second.asked.len(), 2, "{:?}", second.asked);
    assert_eq!(
        second.asked[1],
        format!("acr_values={};prompt=login;max_age=600", harness::MFA)
    );
    // Still password only: the token says so and the resource server refuses it.
    let access = redeem(&gate, &client.client_id, &second.code).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = reqwest::Client::new()
        .get(format!("{}/Patient?_count=1", gate.app.config.fhir_base()))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(&format!(r#"acr_values="{}""#, harness::MFA)),
        "{challenge}"
    );
}

#[tokio::test]
async fn with_max_age_asked_a_sign_in_older_than_that_is_refused() {
    // fhirgate's clock runs 10 minutes ahead: the provider's auth_time (now)
    // is 600 s old to it, the id_token (one hour) still unexpired.
    let (gate, provider) = harness::start(Mode::Normal, harness::Clock::AheadSecs(600), true).await;
    let mut b = Browser::new();
    let stale = format!("{}/login/federated?next=%2Flauncher&max_age=60", gate.base);
    let (callback, asked) =
        harness::until_callback_as(&mut b, &stale, &gate, &provider, harness::DR_LEE).await;
    assert_eq!(asked, "acr_values=;prompt=;max_age=60");
    let r = b.get(&callback).await;
    assert_eq!(r.status, 403, "{}", r.body);
    harness::assert_no_session(&mut b, &gate, &r).await;
    assert!(gate.log().contains("auth_time is older than the max_age"));
    // without max_age the same provider and clock sign in
    let mut b = Browser::new();
    let start = format!("{}/login/federated?next=%2Flauncher", gate.base);
    let (callback, _) =
        harness::until_callback_as(&mut b, &start, &gate, &provider, harness::DR_LEE).await;
    assert_eq!(b.get(&callback).await.status, 303);
}
