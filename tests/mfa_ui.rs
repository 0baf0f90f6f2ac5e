//! Step-up authentication through the pages, driven with `oneshot`: TOTP
//! enrollment (QR code, secret, first code, recovery codes shown once), the
//! step-up page (TOTP within the window, a replayed code refused, recovery
//! codes single use, wrong codes throttled) and the gate in front of a
//! sensitive operation (registering an OAuth client in the admin pages).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{
    forms::{csrf_of, get_with, post_form, sign_in_with},
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

/// The admin's client registration, as the admin page posts it.
async fn register_client(t: &TestApp, cookie: &str) -> common::TestResponse {
    let page = get_with(t, "/admin", cookie).await;
    let csrf = csrf_of(&page.text());
    post_form(
        t,
        "/admin/clients",
        cookie,
        &[
            ("csrf", &csrf),
            ("client_name", "Step-up test app"),
            ("redirect_uris", "https://app.example/cb"),
            ("scope", "launch openid patient/*.rs"),
        ],
    )
    .await
}

fn is_stepup_redirect(r: &common::TestResponse) -> bool {
    r.status == StatusCode::SEE_OTHER
        && r.header("location")
            .is_some_and(|l| l.starts_with("/stepup?next=%2Fadmin"))
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
