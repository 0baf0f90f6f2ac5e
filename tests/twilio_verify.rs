//! The Twilio Verify adapter (`mfa::twilio`) against a local server that
//! speaks the Verify v2 API's request and response shapes: form-encoded
//! `To`/`Channel` and `To`/`Code` under `/v2/Services/{sid}/…`, HTTP Basic
//! with the account SID and token, JSON verification resources, and the
//! API's error bodies (20003 unauthorized, 20404 no pending verification,
//! 60200 invalid parameter, 60203 max send attempts). No SMS is sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use base64::Engine;
use fhirgate::mfa::twilio::{Channel, Check, Verifier, VerifyError};
use serde_json::{json, Value};

const SERVICE: &str = "VA0123456789abcdef0123456789abcdef";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "test-auth-token";

/// What the fake phone received, and the open verifications.
#[derive(Default)]
struct Verify {
    /// Open verification per destination: (code, wrong checks so far).
    pending: HashMap<String, (String, u32)>,
    /// Sends per destination.
    sends: HashMap<String, u32>,
    /// Every request's form, for the assertions on the wire.
    seen: Vec<(String, HashMap<String, String>)>,
    next_code: u32,
}

type Shared = Arc<Mutex<Verify>>;

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        Json(json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16()
        })),
    )
        .into_response()
}

fn resource(to: &str, channel: &str, status: &str) -> Value {
    json!({
        "sid": "VE0123456789abcdef0123456789abcdef",
        "service_sid": SERVICE,
        "account_sid": ACCOUNT,
        "to": to,
        "channel": channel,
        "status": status,
        "valid": status == "approved",
        "amount": null,
        "payee": null,
        "date_created": "2026-11-23T08:00:00Z",
        "date_updated": "2026-11-23T08:00:00Z"
    })
}

/// Checks Basic auth and the form; `Err` is the API's answer.
#[allow(clippy::result_large_err)] // a test server's answer, built once
fn admit(headers: &HeaderMap, sid: &str, body: &[u8]) -> Result<HashMap<String, String>, Response> {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        return Err(error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"));
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/x-www-form-urlencoded")
    {
        return Err(error(StatusCode::BAD_REQUEST, 60200, "Invalid parameter"));
    }
    if sid != SERVICE {
        return Err(error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        ));
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

async fn verifications(
    State(s): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match admit(&headers, &sid, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut v = s.lock().unwrap();
    v.seen.push(("Verifications".into(), form.clone()));
    let (Some(to), Some(channel)) = (form.get("To"), form.get("Channel")) else {
        return error(StatusCode::BAD_REQUEST, 60200, "Invalid parameter: To");
    };
    if !to.starts_with('+') || !matches!(channel.as_str(), "sms" | "call") {
        return error(StatusCode::BAD_REQUEST, 60200, "Invalid parameter");
    }
    let sends = v.sends.entry(to.clone()).or_default();
    *sends += 1;
    if *sends > 5 {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            60203,
            "Max send attempts reached",
        );
    }
    v.next_code += 1;
    let code = format!("{:06}", 314_159 + v.next_code);
    v.pending.insert(to.clone(), (code, 0));
    (StatusCode::CREATED, Json(resource(to, channel, "pending"))).into_response()
}

async fn check(
    State(s): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match admit(&headers, &sid, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut v = s.lock().unwrap();
    v.seen.push(("VerificationCheck".into(), form.clone()));
    let (Some(to), Some(code)) = (form.get("To"), form.get("Code")) else {
        return error(StatusCode::BAD_REQUEST, 60200, "Invalid parameter: Code");
    };
    let Some((want, wrong)) = v.pending.get_mut(to) else {
        return error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    };
    if want == code {
        v.pending.remove(to);
        return Json(resource(to, "sms", "approved")).into_response();
    }
    *wrong += 1;
    if *wrong >= 5 {
        v.pending.remove(to);
    }
    Json(resource(to, "sms", "pending")).into_response()
}

async fn serve() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let app = Router::new()
        .route("/v2/Services/{sid}/Verifications", post(verifications))
        .route("/v2/Services/{sid}/VerificationCheck", post(check))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), shared)
}

fn verifier(base: &str, token: &str) -> Verifier {
    Verifier::new(reqwest::Client::new(), base, SERVICE, ACCOUNT, token)
}

fn sent_code(s: &Shared, to: &str) -> String {
    s.lock().unwrap().pending[to].0.clone()
}

#[tokio::test]
async fn a_code_is_sent_then_approved_once() {
    let (base, s) = serve().await;
    let v = verifier(&format!("{base}/"), TOKEN);
    v.start("+15555550100", Channel::Sms).await.unwrap();
    let code = sent_code(&s, "+15555550100");
    assert_eq!(
        v.check("+15555550100", "000000").await.unwrap(),
        Check::Wrong
    );
    assert_eq!(
        v.check("+15555550100", &code).await.unwrap(),
        Check::Approved
    );
    // used: no pending verification any more (the API's 404)
    assert_eq!(
        v.check("+15555550100", &code).await.unwrap(),
        Check::NoPending
    );
    // the wire: the fields the API takes, nothing else
    let seen = &s.lock().unwrap().seen;
    assert_eq!(seen[0].0, "Verifications");
    assert_eq!(
        seen[0].1,
        HashMap::from([
            ("To".to_owned(), "+15555550100".to_owned()),
            ("Channel".to_owned(), "sms".to_owned())
        ])
    );
    assert_eq!(seen[1].0, "VerificationCheck");
    assert_eq!(
        seen[1].1,
        HashMap::from([
            ("To".to_owned(), "+15555550100".to_owned()),
            ("Code".to_owned(), "000000".to_owned())
        ])
    );
}

#[tokio::test]
async fn voice_channel_exhausted_checks_and_sends_and_bad_input() {
    let (base, s) = serve().await;
    let v = verifier(&base, TOKEN);
    v.start("+15555550101", Channel::Call).await.unwrap();
    assert_eq!(s.lock().unwrap().seen[0].1["Channel"], "call");
    // five wrong checks close the verification
    for _ in 0..5 {
        assert_eq!(
            v.check("+15555550101", "999999").await.unwrap(),
            Check::Wrong
        );
    }
    assert_eq!(
        v.check("+15555550101", "999999").await.unwrap(),
        Check::NoPending
    );
    // sends are limited by the provider: 429 is TooMany
    for _ in 0..4 {
        v.start("+15555550101", Channel::Sms).await.unwrap();
    }
    assert!(matches!(
        v.start("+15555550101", Channel::Sms).await,
        Err(VerifyError::TooMany)
    ));
    // a number the API refuses: its code and message come through
    match v.start("5550100", Channel::Sms).await {
        Err(VerifyError::Refused { status, code, .. }) => {
            assert_eq!((status, code), (400, 60200));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_credentials_and_an_unreachable_provider_are_errors() {
    let (base, _) = serve().await;
    match verifier(&base, "wrong")
        .start("+15555550102", Channel::Sms)
        .await
    {
        Err(VerifyError::Refused {
            status,
            code,
            message,
        }) => {
            assert_eq!((status, code), (401, 20003));
            assert!(!message.contains("wrong"));
        }
        other => panic!("{other:?}"),
    }
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert!(matches!(
        verifier(&format!("http://{closed}"), TOKEN)
            .check("+15555550102", "123456")
            .await,
        Err(VerifyError::Unavailable(_))
    ));
}
