//! The prior-authorization review queue `/admin/prior-auth` (issue 7
//! item 2), driven with `oneshot`: a pended `Claim/$submit` is listed with
//! its deadline, an admin approves it through the form and `$inquire`
//! answers A1; a denial without a reason, a non-admin session and a post
//! without the form token are refused; the decision is audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pas.rs"]
mod pas;

use axum::http::{Method, StatusCode};
use common::{
    forms::{csrf_of, get_with, post_form, sign_in_with},
    TestApp, TestResponse,
};
use fhirgate::state::users::User;
use serde_json::{json, Value};

const REVIEW_ACTION_CODE: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewActionCode";

/// The matching PAS Inquiry Request Bundle.
fn inquiry(claim_id: &str) -> Value {
    let mut b = pas::request(claim_id, "00000", 1, "normal");
    b["entry"][0]["resource"]["meta"] = json!({"profile": ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim-inquiry"]});
    b
}

async fn claim_op(t: &TestApp, tok: &str, op: &str, body: &Value) -> Value {
    let r = t
        .request_with(
            tok,
            Method::POST,
            &format!("/fhir/Claim/{op}"),
            &[],
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cr = r.json["entry"][0]["resource"].clone();
    assert_eq!(cr["resourceType"], "ClaimResponse", "{}", r.text());
    cr
}

/// The X12 306 review action code of the first item.
fn action_code(cr: &Value) -> String {
    let text = cr["item"][0]["adjudication"].to_string();
    assert!(text.contains(REVIEW_ACTION_CODE), "{cr}");
    for code in ["A1", "A3", "A4"] {
        if text.contains(&format!("\"code\":\"{code}\"")) {
            return code.to_owned();
        }
    }
    panic!("no review action code in {cr}");
}

/// Submits a request pended for review (CPT 27447); returns its id.
async fn pended(t: &TestApp, tok: &str, claim_id: &str, priority: &str) -> String {
    let cr = claim_op(
        t,
        tok,
        "$submit",
        &pas::request(claim_id, "27447", 1, priority),
    )
    .await;
    assert_eq!(action_code(&cr), "A4");
    cr["id"].as_str().unwrap().to_owned()
}

/// Adds a user and signs in through the form; returns the session cookie.
async fn sign_in(t: &TestApp, username: &str, role: &str) -> String {
    let u = User {
        username: username.into(),
        role: role.into(),
        fhir_user: format!("Practitioner/{username}"),
        display_name: format!("Name of {username}"),
        organization: None,
    };
    t.app.state.upsert_user(&u, "pw").await.unwrap();
    sign_in_with(t, username, "pw").await
}

/// Posts the Deny form for item 1 of `id`.
async fn deny(t: &TestApp, cookie: &str, id: &str, csrf: &str, reason: &str) -> TestResponse {
    let mut pairs = vec![
        ("id", id),
        ("sequence", "1"),
        ("decision", "deny"),
        ("reason", reason),
    ];
    if !csrf.is_empty() {
        pairs.push(("csrf", csrf));
    }
    post_form(t, "/admin/prior-auth/decide", cookie, &pairs).await
}

async fn setup() -> (TestApp, String) {
    let t = TestApp::new().await;
    let tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    (t, tok)
}

#[tokio::test]
async fn a_pended_request_is_listed_and_approving_it_answers_a1() {
    let (t, tok) = setup().await;
    let standard = pended(&t, &tok, "q-std", "normal").await;
    let expedited = pended(&t, &tok, "q-exp", "stat").await;
    let cookie = sign_in(&t, "rev1", "admin").await;

    // The console links the queue.
    let admin = get_with(&t, "/admin", &cookie).await;
    assert!(admin.text().contains(r#"href="/admin/prior-auth""#));

    let r = get_with(&t, "/admin/prior-auth", &cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    let rec = t.app.state.pa_get(&standard).await.unwrap().unwrap();
    let deadline = fhirgate::prior_auth::adjudicate::instant(rec.deadline_ms);
    assert!(html.contains(&deadline), "{html}");
    assert!(html.contains("12345678901") && html.contains("clinic-a"));
    assert!(html.contains("27447") && html.contains("expedited"));
    // Oldest deadline first: the expedited (72 h) before the standard (7 days).
    let (e_at, s_at) = (
        html.find(&expedited).unwrap(),
        html.find(&standard).unwrap(),
    );
    assert!(e_at < s_at, "{html}");
    assert!(!html.contains("OVERDUE"));

    let csrf = csrf_of(&html);
    let r = post_form(
        &t,
        "/admin/prior-auth/decide",
        &cookie,
        &[
            ("csrf", &csrf),
            ("id", &standard),
            ("sequence", "1"),
            ("decision", "approve"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert!(html.contains("approve recorded"), "{html}");
    assert!(
        !html.contains(&format!("Request <code>{standard}")),
        "gone from the queue"
    );
    let cr = claim_op(&t, &tok, "$inquire", &inquiry("q-std")).await;
    assert_eq!(action_code(&cr), "A1");
    assert!(cr["preAuthRef"].is_string());

    // Deciding it again is a readable 409, an unknown request a 404 page.
    for (id, status) in [
        (standard.as_str(), StatusCode::CONFLICT),
        ("nope", StatusCode::NOT_FOUND),
    ] {
        let r = post_form(
            &t,
            "/admin/prior-auth/decide",
            &cookie,
            &[
                ("csrf", &csrf),
                ("id", id),
                ("sequence", "1"),
                ("decision", "deny"),
                ("reason", "0U"),
            ],
        )
        .await;
        assert_eq!(r.status, status, "{}", r.text());
        assert!(r.text().contains("<html"), "{}", r.text());
    }

    // The decision is audited with the request id and the decision.
    let auditor = t
        .token_as("auditor", "system/AuditEvent.rs", None, None, None, None)
        .await;
    let r = t
        .request_with(
            &auditor,
            Method::GET,
            "/fhir/AuditEvent?_count=500",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains(&format!(
            "decided prior authorization request {standard} item 1: approve"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_denial_needs_a_reason_and_strangers_are_refused() {
    let (t, tok) = setup().await;
    let id = pended(&t, &tok, "q-deny", "normal").await;
    let admin = sign_in(&t, "rev2", "admin").await;
    let csrf = csrf_of(&get_with(&t, "/admin/prior-auth", &admin).await.text());

    // No reason: refused with a readable message, still pended.
    let r = deny(&t, &admin, &id, &csrf, "  ").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("A denial needs a reason"), "{}", r.text());
    // No form token: refused.
    let r = deny(&t, &admin, &id, "", "0U").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("Form expired"), "{}", r.text());
    // A non-admin session: refused, page and post alike.
    let clinician = sign_in(&t, "dr1", "clinician").await;
    let r = get_with(&t, "/admin/prior-auth", &clinician).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let their_csrf = csrf_of(&get_with(&t, "/launcher", &clinician).await.text());
    let r = deny(&t, &clinician, &id, &their_csrf, "0U").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // No session at all: sent to sign in.
    let r = t.get("/admin/prior-auth").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let rec = t.app.state.pa_get(&id).await.unwrap().unwrap();
    assert_eq!(rec.state.as_str(), "pended");

    // With a reason the admin's denial goes through: A3.
    let r = deny(&t, &admin, &id, &csrf, "0U").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cr = claim_op(&t, &tok, "$inquire", &inquiry("q-deny")).await;
    assert_eq!(action_code(&cr), "A3");
}

#[tokio::test]
async fn the_queue_extends_a_timeframe_once_and_records_appeals() {
    let (t, tok) = setup().await;
    let id = pended(&t, &tok, "q-ext", "normal").await;
    let cookie = sign_in(&t, "rev3", "admin").await;
    let page = get_with(&t, "/admin/prior-auth", &cookie).await;
    let html = page.text();
    assert!(
        html.contains(r#"action="/admin/prior-auth/extend""#),
        "{html}"
    );
    assert!(html.contains(r#"max="14""#), "{html}");
    let csrf = csrf_of(&html);
    let before = t.app.state.pa_get(&id).await.unwrap().unwrap().deadline_ms;

    // no reason: refused with the form re-shown, nothing changed
    let r = post_form(
        &t,
        "/admin/prior-auth/extend",
        &cookie,
        &[("csrf", &csrf), ("id", &id), ("days", "5"), ("reason", " ")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("needs a reason"), "{}", r.text());
    // too long: 409 with the rule
    let r = post_form(
        &t,
        "/admin/prior-auth/extend",
        &cookie,
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("days", "30"),
            ("reason", "x"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // without the form token: refused
    let r = post_form(
        &t,
        "/admin/prior-auth/extend",
        &cookie,
        &[("id", &id), ("days", "5"), ("reason", "x")],
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let r = post_form(
        &t,
        "/admin/prior-auth/extend",
        &cookie,
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("days", "5"),
            ("reason", "clinical records requested"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text().contains("timeframe extended by 5 days"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("(timeframe extended)"), "{}", r.text());
    let after = t.app.state.pa_get(&id).await.unwrap().unwrap().deadline_ms;
    assert_eq!(after - before, 5 * 86_400_000);
    // once only
    let r = post_form(
        &t,
        "/admin/prior-auth/extend",
        &cookie,
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("days", "2"),
            ("reason", "again"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());

    // deny it, then the appeal form appears under "Decided with a denial"
    let r = deny(&t, &cookie, &id, &csrf, "0U").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = get_with(&t, "/admin/prior-auth", &cookie).await.text();
    assert!(
        html.contains(r#"action="/admin/prior-auth/appeal""#),
        "{html}"
    );
    let r = post_form(
        &t,
        "/admin/prior-auth/appeal",
        &cookie,
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("sequence", "1"),
            ("reason", "provider appeal with new imaging"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text().contains("appeal of item 1 recorded"),
        "{}",
        r.text()
    );
    let cr = claim_op(&t, &tok, "$inquire", &inquiry("q-ext")).await;
    assert_eq!(action_code(&cr), "A4", "pended again after the appeal");
    // an unknown request is a 404 page; a second appeal of the pended item a 409
    let r = post_form(
        &t,
        "/admin/prior-auth/appeal",
        &cookie,
        &[
            ("csrf", &csrf),
            ("id", "nope"),
            ("sequence", "1"),
            ("reason", "x"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = post_form(
        &t,
        "/admin/prior-auth/appeal",
        &cookie,
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("sequence", "1"),
            ("reason", "x"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // a non-admin may do neither
    let clerk = sign_in(&t, "clerk3", "clinician").await;
    let r = post_form(
        &t,
        "/admin/prior-auth/extend",
        &clerk,
        &[("csrf", &csrf), ("id", &id), ("days", "2"), ("reason", "x")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

/// A reviewer's decision is a sensitive operation (issue 11): with step-up
/// required, the form without a fresh step-up in the session is sent to
/// `/stepup` and decides nothing; after one, it goes through.
#[tokio::test]
async fn a_decision_needs_a_fresh_step_up_when_step_up_is_required() {
    let t = TestApp::with_config("[mfa]\nstepup = \"required\"\n").await;
    let tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    let id = pended(&t, &tok, "q-su", "normal").await;
    let cookie = sign_in(&t, "rev2", "admin").await;
    let csrf = csrf_of(&get_with(&t, "/admin/prior-auth", &cookie).await.text());
    let form = [
        ("csrf", csrf.as_str()),
        ("id", id.as_str()),
        ("sequence", "1"),
        ("decision", "approve"),
    ];
    let r = post_form(&t, "/admin/prior-auth/decide", &cookie, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(
        r.header("location")
            .is_some_and(|l| l.starts_with("/stepup?next=")),
        "{:?}",
        r.header("location")
    );
    let cr = claim_op(&t, &tok, "$inquire", &inquiry("q-su")).await;
    assert_eq!(action_code(&cr), "A4", "still pended");
    // a step-up in this session, as the step-up page records it
    let session = cookie.trim_start_matches("fhirgate_session=");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(session.as_bytes()));
    fhirgate::mfa::store::stepup_record(&t.app.state, &hash, "totp")
        .await
        .unwrap();
    let r = post_form(&t, "/admin/prior-auth/decide", &cookie, &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("approve recorded"));
    let cr = claim_op(&t, &tok, "$inquire", &inquiry("q-su")).await;
    assert_eq!(action_code(&cr), "A1");
}
