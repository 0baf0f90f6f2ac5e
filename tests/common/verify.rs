//! A local server speaking the Twilio Verify v2 API's request and response
//! shapes (for `tests/twilio_verify.rs` and `tests/mfa_sms.rs`, included by
//! `#[path]`): form-encoded `To`/`Channel` and `To`/`Code` under
//! `/v2/Services/{sid}/…`, HTTP Basic with the account SID and token, JSON
//! verification resources, and the API's error bodies (20003 unauthorized,
//! 20404 no pending verification, 60200 invalid parameter, 60203 max send
//! attempts, or any error injected with `fail_next`). No SMS is sent: the
//! code "sent" is read back with [`sent_code`].
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
use serde_json::{json, Value};

pub const SERVICE: &str = "VA0123456789abcdef0123456789abcdef";
pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "test-auth-token";

/// What the fake phone received, and the open verifications.
#[derive(Default)]
pub struct Verify {
    /// Open verification per destination: (code, wrong checks so far).
    pub pending: HashMap<String, (String, u32)>,
    /// Sends per destination.
    pub sends: HashMap<String, u32>,
    /// Every request's form, for the assertions on the wire.
    pub seen: Vec<(String, HashMap<String, String>)>,
    pub next_code: u32,
    /// The next request (after authentication) is answered with this
    /// error: HTTP status, API error code, message.
    pub fail_next: Option<(u16, i64, &'static str)>,
}

pub type Shared = Arc<Mutex<Verify>>;

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

/// The error `fail_next` asks for, once.
fn injected(v: &mut Verify) -> Option<Response> {
    let (status, code, message) = v.fail_next.take()?;
    Some(error(StatusCode::from_u16(status).unwrap(), code, message))
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
    if let Some(r) = injected(&mut v) {
        return r;
    }
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
    if let Some(r) = injected(&mut v) {
        return r;
    }
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

pub async fn serve() -> (String, Shared) {
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

/// The code "sent" to `to` and not yet approved.
pub fn sent_code(s: &Shared, to: &str) -> String {
    s.lock().unwrap().pending[to].0.clone()
}

/// The verification open for `to` expires (the API then answers 404).
pub fn expire(s: &Shared, to: &str) {
    s.lock().unwrap().pending.remove(to);
}
