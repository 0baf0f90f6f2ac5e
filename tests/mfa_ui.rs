//! Step-up authentication through the pages, driven with `oneshot`: TOTP
//! enrollment (QR code, secret, first code, recovery codes shown once), the
//! step-up page (TOTP within the window, a replayed code refused, recovery
//! codes single use, wrong codes throttled), replacing the authenticator
//! (the old one and its recovery codes work until the new one is
//! confirmed) and the gate in front of a sensitive operation (registering
//! an OAuth client in the admin pages).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{
    forms::{csrf_of, get_with, is_stepup_redirect, post_form, register_client, sign_in_with},
    TestApp,
};
use fhirgate::{mfa::totp, state::users::User};

const CONFIG: &str = "[mfa]\nstepup = \"required\"\ncode_failure_limit = 3\n";

async fn add_admin(t: &TestApp, username: &str) {
    let u = User {
        username: username.into(),
        role: "admin".into(),
        fhir_user: "Practitioner/admin".into(),
        display_name: format!("Name of {username}"),
        organization: None,
    };
    t.app.state.upsert_user(&u, "pw").await.unwrap();
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// RFC 4648 base32 (no padding) back to bytes.
fn unbase32(s: &str) -> Vec<u8> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes().filter(|c| *c != b' ') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {c}"),
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    &html[i..i + html[i..].find(end).unwrap()]
}

#[tokio::test]
async fn enrollment_step_up_and_the_gate() {
    let t = TestApp::with_config(CONFIG).await;
    add_admin(&t, "adm").await;
    let s1 = sign_in_with(&t, "adm", "pw").await;

    // without a step-up the sensitive form sends the user to /stepup
    let r = register_client(&t, &s1).await;
    assert!(is_stepup_redirect(&r), "{:?} {}", r.status, r.text());
    let r = get_with(&t, "/stepup?next=%2Fadmin", &s1).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text().contains("Set up an authenticator app"),
        "{}",
        r.text()
    );

    // enrollment: QR code and key, then the first code confirms
    let page = get_with(&t, "/account/security", &s1).await;
    assert!(page.text().contains("No authenticator app is set up yet"));
    let csrf = csrf_of(&page.text());
    let r = post_form(&t, "/account/security/totp", &s1, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert!(html.contains("<svg") && !html.contains("<?xml"), "{html}");
    let secret = unbase32(between(&html, r#"<code id="totp-secret">"#, "</code>"));
    assert_eq!(secret.len(), totp::SECRET_LEN);
    let r = post_form(
        &t,
        "/account/security/totp/confirm",
        &s1,
        &[("csrf", &csrf), ("code", "000000")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let code = totp::code_at(&secret, now());
    let r = post_form(
        &t,
        "/account/security/totp/confirm",
        &s1,
        &[("csrf", &csrf), ("code", &code)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    let codes: Vec<String> = html
        .match_indices("<li><code>")
        .map(|(i, m)| html[i + m.len()..i + m.len() + 11].to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{html}");
    // the codes are shown once
    let again = get_with(&t, "/account/security", &s1).await.text();
    assert!(again.contains("Recovery codes left: 10"));
    assert!(!again.contains(&codes[0]));

    // enrolling was a step-up: the gate lets this session through
    let r = register_client(&t, &s1).await;
    assert!(!is_stepup_redirect(&r), "{}", r.text());

    // a new session needs its own step-up
    let s2 = sign_in_with(&t, "adm", "pw").await;
    assert!(is_stepup_redirect(&register_client(&t, &s2).await));
    let csrf2 = csrf_of(&get_with(&t, "/stepup?next=%2Fadmin", &s2).await.text());
    let step = |code: String| {
        let (t, s2, csrf2) = (&t, s2.clone(), csrf2.clone());
        async move {
            post_form(
                t,
                "/stepup",
                &s2,
                &[("csrf", &csrf2), ("code", &code), ("next", "/admin")],
            )
            .await
        }
    };
    // the enrollment code again: a replay
    let r = step(code.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    // the next step's code (within the window) is accepted
    let r = step(totp::code_at(&secret, now() + totp::STEP_SECS)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location").as_deref(), Some("/admin"));
    assert!(!is_stepup_redirect(&register_client(&t, &s2).await));

    // a recovery code works once, in any session
    let s3 = sign_in_with(&t, "adm", "pw").await;
    let csrf3 = csrf_of(&get_with(&t, "/stepup?next=%2Fadmin", &s3).await.text());
    let rec = |code: &str| {
        let (t, s3, csrf3, code) = (&t, s3.clone(), csrf3.clone(), code.to_owned());
        async move {
            post_form(
                t,
                "/stepup",
                &s3,
                &[("csrf", &csrf3), ("code", &code), ("next", "/admin")],
            )
            .await
        }
    };
    assert_eq!(
        rec(&codes[2].to_lowercase()).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(rec(&codes[2]).await.status, StatusCode::UNAUTHORIZED);
    assert!(get_with(&t, "/account/security", &s3)
        .await
        .text()
        .contains("Recovery codes left: 9"));

    // wrong codes are throttled per user: the limit is 3 in this config
    // (one wrong recovery code above already counts)
    for _ in 0..2 {
        assert_eq!(rec("ABCDE-FGHJK").await.status, StatusCode::UNAUTHORIZED);
    }
    let r = rec(&codes[5]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.header("retry-after").is_some());

    // every step-up is on the ledger, with the factor and no code
    let audit = t.get("/fhir/AuditEvent?_count=300").await.text();
    assert!(audit.contains("step-up with totp"), "{audit}");
    assert!(audit.contains("step-up with recovery code"));
    assert!(audit.contains("authenticator enrolled"));
    assert!(!audit.contains(&codes[2]) && !audit.contains(&code));
}

#[tokio::test]
async fn with_stepup_off_the_gate_is_open_and_pages_need_a_session() {
    let t = TestApp::new().await;
    add_admin(&t, "adm").await;
    let s = sign_in_with(&t, "adm", "pw").await;
    assert!(!is_stepup_redirect(&register_client(&t, &s).await));
    // signed out: the pages send the user to sign in
    for path in ["/account/security", "/stepup?next=%2Fadmin"] {
        let r = t.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert!(r.header("location").unwrap().starts_with("/login?next="));
    }
    // a form without the session's token is refused
    let r = post_form(&t, "/account/security/totp", &s, &[("csrf", "x")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// Waits, if need be, until at least 12 seconds remain of the current
/// 30-second step, so codes computed now stay within the window while the
/// test runs.
async fn early_in_a_step() {
    let into = now() % totp::STEP_SECS;
    if into > totp::STEP_SECS - 12 {
        tokio::time::sleep(std::time::Duration::from_secs(totp::STEP_SECS - into + 1)).await;
    }
}

/// Starts an enrollment on the security page; the secret shown.
async fn begin_enrollment(t: &TestApp, cookie: &str) -> Vec<u8> {
    let csrf = csrf_of(&get_with(t, "/account/security", cookie).await.text());
    let r = post_form(t, "/account/security/totp", cookie, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    unbase32(between(&r.text(), r#"<code id="totp-secret">"#, "</code>"))
}

/// Confirms the pending enrollment with `code`; the page.
async fn confirm_enrollment(t: &TestApp, cookie: &str, code: &str) -> common::TestResponse {
    let csrf = csrf_of(&get_with(t, "/account/security", cookie).await.text());
    post_form(
        t,
        "/account/security/totp/confirm",
        cookie,
        &[("csrf", &csrf), ("code", code)],
    )
    .await
}

/// A step-up in a new session of `adm` with `code`: its status.
async fn step_up_anew(t: &TestApp, code: &str) -> StatusCode {
    let s = sign_in_with(t, "adm", "pw").await;
    let csrf = csrf_of(&get_with(t, "/stepup?next=%2Fadmin", &s).await.text());
    post_form(
        t,
        "/stepup",
        &s,
        &[("csrf", &csrf), ("code", code), ("next", "/admin")],
    )
    .await
    .status
}

fn recovery_codes_of(html: &str) -> Vec<String> {
    html.match_indices("<li><code>")
        .map(|(i, m)| html[i + m.len()..i + m.len() + 11].to_owned())
        .collect()
}

#[tokio::test]
async fn a_replacement_not_confirmed_leaves_the_old_authenticator_working() {
    let t = TestApp::with_config(CONFIG).await;
    add_admin(&t, "adm").await;
    early_in_a_step().await;
    let t0 = now();
    let s1 = sign_in_with(&t, "adm", "pw").await;

    // the first authenticator, confirmed with the previous step's code
    let old = begin_enrollment(&t, &s1).await;
    let r = confirm_enrollment(&t, &s1, &totp::code_at(&old, t0 - totp::STEP_SECS)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let old_codes = recovery_codes_of(&r.text());
    assert_eq!(old_codes.len(), 10);

    // a replacement is started (this session stepped up by enrolling),
    // and not confirmed
    let new = begin_enrollment(&t, &s1).await;
    assert_ne!(new, old);
    let page = get_with(&t, "/account/security", &s1).await.text();
    assert!(page.contains("An authenticator app is set up"), "{page}");

    // the old authenticator and its recovery codes still step up
    assert_eq!(
        step_up_anew(&t, &totp::code_at(&old, t0)).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(step_up_anew(&t, &old_codes[0]).await, StatusCode::SEE_OTHER);
    // the new one does not yet
    assert_eq!(
        step_up_anew(&t, &totp::code_at(&new, t0)).await,
        StatusCode::UNAUTHORIZED
    );

    // a wrong code does not confirm it; the new secret's code does
    let r = confirm_enrollment(&t, &s1, &totp::code_at(&old, t0 + totp::STEP_SECS)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let r = confirm_enrollment(&t, &s1, &totp::code_at(&new, t0 - totp::STEP_SECS)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let new_codes = recovery_codes_of(&r.text());
    assert_eq!(new_codes.len(), 10);

    // now the old secret's codes and recovery codes are refused
    assert_eq!(
        step_up_anew(&t, &totp::code_at(&old, t0 + totp::STEP_SECS)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        step_up_anew(&t, &old_codes[1]).await,
        StatusCode::UNAUTHORIZED
    );
    // and the new ones work (the limit of wrong codes is 3: a right one
    // clears the count); the enrollment's step again is a replay
    assert_eq!(
        step_up_anew(&t, &totp::code_at(&new, t0)).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        step_up_anew(&t, &totp::code_at(&new, t0 - totp::STEP_SECS)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(step_up_anew(&t, &new_codes[0]).await, StatusCode::SEE_OTHER);
    assert!(get_with(&t, "/account/security", &s1)
        .await
        .text()
        .contains("Recovery codes left: 9"));
}

/// Identity assurance with a local account (issue 11): a password sign-in
/// carries the account's acr and `amr` `pwd`; when the policy wants a
/// second factor (`clinician_mfa`) the authorization page sends the user to
/// the step-up page first, and the token then carries `otp` and `mfa`.
#[tokio::test]
async fn a_clinician_authorizing_an_app_is_stepped_up_and_the_token_says_so() {
    let t = TestApp::with_config(
        "[assurance]\nclinician_mfa = true\nusers = { \"doc\" = \"urn:x:ial2\" }\n",
    )
    .await;
    let u = User {
        username: "doc".into(),
        role: "clinician".into(),
        fhir_user: "Practitioner/doc".into(),
        display_name: "Doc".into(),
        organization: None,
    };
    t.app.state.upsert_user(&u, "pw").await.unwrap();
    let cookie = sign_in_with(&t, "doc", "pw").await;
    early_in_a_step().await;
    let secret = begin_enrollment(&t, &cookie).await;
    let r = confirm_enrollment(&t, &cookie, &totp::code_at(&secret, now())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // a new session: password only
    let cookie = sign_in_with(&t, "doc", "pw").await;
    let redirect = "https://app.example/cb";
    let meta = serde_json::json!({"client_name": "App", "redirect_uris": [redirect],
        "grant_types": ["authorization_code"], "scope": "openid fhirUser user/*.rs"});
    let (client, _) = fhirgate::oauth::clients::register(&t.app, &meta)
        .await
        .unwrap();
    let verifier = "a-verifier-that-is-long-enough-for-pkce-0123456789";
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid fhirUser user/*.rs")
        .append_pair("aud", &t.app.config.fhir_base())
        .append_pair("state", "s")
        .append_pair(
            "code_challenge",
            &smart_launch::pkce::challenge_of(verifier),
        )
        .append_pair("code_challenge_method", "S256");
    let r = get_with(&t, &format!("/auth/authorize?{}", q.finish()), &cookie).await;
    let cont = r.header("location").unwrap();
    assert!(cont.starts_with("/auth/continue?req="), "{cont}");
    // the approval page is not shown yet: the step-up page first
    let r = get_with(&t, &cont, &cookie).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to_stepup = r.header("location").unwrap();
    assert!(to_stepup.starts_with("/stepup?next="), "{to_stepup}");
    let csrf = csrf_of(&get_with(&t, &to_stepup, &cookie).await.text());
    early_in_a_step().await;
    let code = totp::code_at(&secret, now() + totp::STEP_SECS);
    let r = post_form(
        &t,
        "/stepup",
        &cookie,
        &[("csrf", &csrf), ("code", &code), ("next", &cont)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location").as_deref(), Some(cont.as_str()));
    // now the approval page
    let page = get_with(&t, &cont, &cookie).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    let req = between(&html, r#"name="req" value=""#, "\"").to_owned();
    let mut form = vec![
        ("csrf".to_owned(), csrf_of(&html)),
        ("req".to_owned(), req),
        ("patient".to_owned(), String::new()),
        ("decision".to_owned(), "allow".to_owned()),
    ];
    for (i, m) in html.match_indices(r#"name="item" value=""#) {
        let v = &html[i + m.len()..];
        form.push(("item".to_owned(), v[..v.find('"').unwrap()].to_owned()));
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = post_form(&t, "/auth/continue", &cookie, &pairs).await;
    let back = r.header("location").unwrap();
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let pairs: Vec<(String, String)> = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("client_id", client.client_id.as_str()),
        ("code_verifier", verifier),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let tokens = fhirgate::oauth::token::token(&t.app, &pairs, None)
        .await
        .unwrap();
    let base = t.app.config.fhir_base();
    let claims = smart_launch::token::validate_access(
        &t.app.keys,
        tokens["access_token"].as_str().unwrap(),
        &base,
        &base,
        fhirgate::oauth::now(),
    )
    .unwrap();
    assert_eq!(claims.acr.as_deref(), Some("urn:x:ial2"));
    assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);
    assert!(claims.auth_time.unwrap() >= fhirgate::oauth::now() - 60);
    // and the resource server lets it in
    let r = t
        .request_with(
            tokens["access_token"].as_str().unwrap(),
            axum::http::Method::GET,
            "/fhir/Practitioner?_count=1",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
