//! Step-up by SMS and voice call through the pages, with `[mfa.twilio]`
//! pointed at the local Verify server (`tests/common/verify.rs`): a phone
//! number confirmed on `/account/security` with a code sent to it (stored
//! sealed, shown masked, never on the ledger), the step-up page's "send a
//! code by SMS / by voice call", the code checked through VerificationCheck
//! and recorded as a step-up (`sms` / `call`) the gate accepts, wrong codes
//! counted with the TOTP ones, and the provider's refusals (too many
//! attempts, an expired code, a refused number, an outage) as pages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/verify.rs"]
mod verify;

use axum::http::StatusCode;
use common::{
    forms::{csrf_of, get_with, is_stepup_redirect, post_form, register_client, sign_in_with},
    TestApp, TestResponse,
};
use fhirgate::{mfa::store, state::users::User};
use verify::{expire, sent_code, serve, Shared, ACCOUNT, SERVICE, TOKEN};

const NUMBER: &str = "+15555550100";

async fn app(base: &str) -> TestApp {
    let t = TestApp::with_config(&format!(
        "[mfa]\nstepup = \"required\"\ncode_failure_limit = 4\n\
         [mfa.twilio]\nservice_sid = \"{SERVICE}\"\naccount_sid = \"{ACCOUNT}\"\n\
         auth_token = \"{TOKEN}\"\nbase_url = \"{base}\"\n"
    ))
    .await;
    for username in ["adm", "adm2", "adm3"] {
        let u = User {
            username: username.into(),
            role: "admin".into(),
            fhir_user: "Practitioner/admin".into(),
            display_name: format!("Name of {username}"),
            organization: None,
        };
        t.app.state.upsert_user(&u, "pw").await.unwrap();
    }
    t
}

/// POSTs `pairs` (and the page's form token) to the phone form.
async fn phone_form(t: &TestApp, cookie: &str, pairs: &[(&str, &str)]) -> TestResponse {
    let csrf = csrf_of(&get_with(t, "/account/security", cookie).await.text());
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(pairs);
    post_form(t, "/account/security/phone", cookie, &all).await
}

/// Confirms `number` as the phone of the signed-in user.
async fn enroll_phone(t: &TestApp, v: &Shared, cookie: &str, number: &str) {
    let r = phone_form(t, cookie, &[("phone", number), ("send", "sms")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = phone_form(t, cookie, &[("code", &sent_code(v, number))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// POSTs `pairs` (and the form token, `next=/admin`) to the step-up page.
async fn stepup_form(t: &TestApp, cookie: &str, pairs: &[(&str, &str)]) -> TestResponse {
    let csrf = csrf_of(&get_with(t, "/stepup?next=%2Fadmin", cookie).await.text());
    let mut all = vec![("csrf", csrf.as_str()), ("next", "/admin")];
    all.extend_from_slice(pairs);
    post_form(t, "/stepup", cookie, &all).await
}

fn last_request(v: &Shared) -> (String, std::collections::HashMap<String, String>) {
    v.lock().unwrap().seen.last().unwrap().clone()
}

#[tokio::test]
async fn a_confirmed_phone_steps_up_by_sms_and_by_voice_call() {
    let (base, v) = serve().await;
    let t = app(&base).await;
    let s1 = sign_in_with(&t, "adm", "pw").await;

    // no factor yet: nothing to send to
    let page = get_with(&t, "/stepup?next=%2Fadmin", &s1).await.text();
    assert!(page.contains("Set up an authenticator app"), "{page}");
    assert!(!page.contains("Send a code by SMS"));
    let page = get_with(&t, "/account/security", &s1).await.text();
    assert!(page.contains("No phone number is set up"), "{page}");

    // a number that is not E.164 is refused before any send
    let r = phone_form(&t, &s1, &[("phone", "555 0100"), ("send", "sms")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("country code"));
    assert!(v.lock().unwrap().seen.is_empty());

    // the number gets a code; a wrong one does not confirm it
    let r = phone_form(&t, &s1, &[("phone", "+1 (555) 555-0100"), ("send", "sms")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r
        .text()
        .contains("We sent a code to the number ending •••• 00"));
    assert!(!r.text().contains("5550100"));
    let (what, form) = last_request(&v);
    assert_eq!(
        (what.as_str(), form["To"].as_str()),
        ("Verifications", NUMBER)
    );
    assert_eq!(form["Channel"], "sms");
    let r = phone_form(&t, &s1, &[("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(store::phone_get(&t.app.state, "adm").await.unwrap(), None);
    let code = sent_code(&v, NUMBER);
    let r = phone_form(&t, &s1, &[("code", &code)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("Your phone ending •••• 00 is confirmed"));
    // stored sealed
    let sealed = store::phone_get(&t.app.state, "adm")
        .await
        .unwrap()
        .unwrap();
    assert!(!sealed.contains("5550100"));
    // confirming the number was a step-up of this session
    assert!(!is_stepup_redirect(&register_client(&t, &s1).await));

    // a new session: the step-up page offers SMS and voice (no app form)
    let s2 = sign_in_with(&t, "adm", "pw").await;
    assert!(is_stepup_redirect(&register_client(&t, &s2).await));
    let page = get_with(&t, "/stepup?next=%2Fadmin", &s2).await.text();
    assert!(page.contains("Send a code by SMS"), "{page}");
    assert!(page.contains("Send a code by voice call"));
    assert!(page.contains("phone ending •••• 00") && !page.contains("5550100"));
    assert!(!page.contains(r#"name="code""#));
    let r = stepup_form(&t, &s2, &[("send", "sms")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("We sent a code by text message"));
    assert!(r.text().contains(r#"name="factor" value="phone""#));
    let (what, form) = last_request(&v);
    assert_eq!(
        (what.as_str(), form["Channel"].as_str()),
        ("Verifications", "sms")
    );
    // a wrong code: the form again
    let r = stepup_form(&t, &s2, &[("factor", "phone"), ("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().contains("That code is not right"));
    assert!(r.text().contains(r#"name="factor" value="phone""#));
    let code = sent_code(&v, NUMBER);
    let r = stepup_form(&t, &s2, &[("factor", "phone"), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location").as_deref(), Some("/admin"));
    let (what, form) = last_request(&v);
    assert_eq!(
        (what.as_str(), form["Code"].as_str()),
        ("VerificationCheck", code.as_str())
    );
    assert!(!is_stepup_redirect(&register_client(&t, &s2).await));
    // the code was used: once
    let r = stepup_form(&t, &s2, &[("factor", "phone"), ("code", &code)]).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text());

    // by voice call
    let s3 = sign_in_with(&t, "adm", "pw").await;
    let r = stepup_form(&t, &s3, &[("send", "call")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("We sent a code by voice call"));
    assert_eq!(last_request(&v).1["Channel"], "call");
    let r = stepup_form(
        &t,
        &s3,
        &[("factor", "phone"), ("code", &sent_code(&v, NUMBER))],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(!is_stepup_redirect(&register_client(&t, &s3).await));

    // the ledger: each step-up with its method, never the number or a code
    let audit = t.get("/fhir/AuditEvent?_count=300").await.text();
    assert!(audit.contains("phone enrolled"), "{audit}");
    assert!(audit.contains("step-up with sms"));
    assert!(audit.contains("step-up with call"));
    assert!(audit.contains("step-up code sent by call"));
    assert!(!audit.contains("5550100") && !audit.contains(&code));

    // wrong codes count with the app's and recovery codes (limit 4)
    let s4 = sign_in_with(&t, "adm", "pw").await;
    let r = stepup_form(&t, &s4, &[("send", "sms")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for _ in 0..2 {
        let r = stepup_form(&t, &s4, &[("factor", "phone"), ("code", "000000")]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = stepup_form(&t, &s4, &[("code", "ABCDE-FGHJK")]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = stepup_form(
        &t,
        &s4,
        &[("factor", "phone"), ("code", &sent_code(&v, NUMBER))],
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.text().contains("Too many wrong codes"));
    assert!(r.header("retry-after").is_some());
    // and sends are limited too (four sent in the window)
    let r = stepup_form(&t, &s4, &[("send", "sms")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.text().contains("Too many codes were sent"));
}

#[tokio::test]
async fn provider_refusals_are_pages() {
    let (base, v) = serve().await;
    let t = app(&base).await;

    // adm2: too many checks (60202), an expired code (404), too many sends
    let s = sign_in_with(&t, "adm2", "pw").await;
    enroll_phone(&t, &v, &s, "+15555550102").await;
    let s = sign_in_with(&t, "adm2", "pw").await;
    assert_eq!(
        stepup_form(&t, &s, &[("send", "sms")]).await.status,
        StatusCode::OK
    );
    v.lock().unwrap().fail_next = Some((429, 60202, "Max check attempts reached"));
    let r = stepup_form(&t, &s, &[("factor", "phone"), ("code", "123456")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(
        r.text().contains("Too many codes were sent to or tried"),
        "{}",
        r.text()
    );
    // the other ways are still offered
    assert!(r.text().contains("Send a code by SMS"));

    assert_eq!(
        stepup_form(&t, &s, &[("send", "call")]).await.status,
        StatusCode::OK
    );
    expire(&v, "+15555550102");
    let r = stepup_form(&t, &s, &[("factor", "phone"), ("code", "123456")]).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text());
    assert!(r.text().contains("That code has expired"));

    v.lock().unwrap().fail_next = Some((429, 60203, "Max send attempts reached"));
    let r = stepup_form(&t, &s, &[("send", "sms")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.text().contains("Too many codes were sent to or tried"));

    // adm3: an outage, and a number the provider refuses, while enrolling
    let s = sign_in_with(&t, "adm3", "pw").await;
    v.lock().unwrap().fail_next = Some((503, 20500, "Internal error"));
    let r = phone_form(&t, &s, &[("phone", "+15555550103"), ("send", "sms")]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.text().contains("unavailable right now"));
    v.lock().unwrap().fail_next = Some((400, 60200, "Invalid parameter `To`: +15555550103"));
    let r = phone_form(&t, &s, &[("phone", "+15555550103"), ("send", "call")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("was not accepted"));
    assert!(!r.text().contains("5550103"));
    // nothing is pending: a code now is answered, not checked
    let r = phone_form(&t, &s, &[("code", "123456")]).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text());
    assert_eq!(store::phone_get(&t.app.state, "adm3").await.unwrap(), None);
    // a step-up without a phone: the page says so
    let r = stepup_form(&t, &s, &[("send", "sms")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("not set up for your account"));
}

#[tokio::test]
async fn without_twilio_no_phone_is_offered() {
    let t = TestApp::with_config("[mfa]\nstepup = \"required\"\n").await;
    let u = User {
        username: "adm".into(),
        role: "admin".into(),
        fhir_user: "Practitioner/admin".into(),
        display_name: "Name of adm".into(),
        organization: None,
    };
    t.app.state.upsert_user(&u, "pw").await.unwrap();
    let s = sign_in_with(&t, "adm", "pw").await;
    let page = get_with(&t, "/account/security", &s).await.text();
    assert!(!page.contains("Mobile number"), "{page}");
    let csrf = csrf_of(&page);
    let r = post_form(
        &t,
        "/account/security/phone",
        &s,
        &[("csrf", &csrf), ("phone", NUMBER), ("send", "sms")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
