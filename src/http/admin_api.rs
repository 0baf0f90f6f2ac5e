//! The audit ledger through an admin API (issue 5 item 6), JSON in the
//! shapes the `fhirgate ledger` commands print:
//!
//! - `GET /admin/api/ledger/verify`: recompute the chain, the tree and every
//!   checkpoint; `{"ok", "entries", "checkpoints", "root_hash", "problem"}`
//!   (200 whether or not the ledger verifies; `problem` names the first bad
//!   entry or checkpoint).
//! - `GET /admin/api/ledger/proof/{seq}[?tree_size=N]`: RFC 9162 inclusion
//!   proof (`leaf_index`, `tree_size`, `leaf_hash`, `audit_path`,
//!   `root_hash`, `leaf_data`, `checkpoint`), against the latest checkpoint
//!   covering `seq` unless `tree_size` is given.
//! - `GET /admin/api/ledger/consistency?first=&second=`: RFC 9162
//!   consistency proof (`first`, `second`, `first_hash`, `second_hash`,
//!   `consistency_path`).
//! - `GET /admin/api/ledger/checkpoints`: every signed checkpoint with its
//!   Azure Confidential Ledger anchor (transaction id, receipt), if any.
//!
//! Who may call: a signed-in administrator (the admin console's session
//! cookie, role `admin`), or a bearer access token of this server whose
//! scopes cover `system/AuditEvent.rs` (the auditor role) or that was issued
//! to a user with the `admin` role (as for `POST
//! /admin/api/ledger/erase-patient`), validated by the pipeline's
//! `authenticate` stage (signature, audience, expiry, revocation).
//! Errors are `{"error", "error_description"}` (RFC 6749 §5.2 / RFC 6750
//! §3.1 codes where they fit) with the matching status; every answer is
//! `Cache-Control: no-store`. No CORS: browser apps on other origins cannot
//! read these answers with the admin's cookie.

use std::collections::HashMap;

use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use smart_launch::scope::ScopeSet;

use crate::{
    audit::{anchor, proof::proof_json, Ledger, LedgerError, Problem},
    http::ui::session,
    pipeline::authenticate::authenticate,
    AppState,
};

/// The scope that makes a token an auditor's.
pub const AUDITOR_SCOPE: &str = "system/AuditEvent.rs";

/// The admin API routes (merged into the app by `http::app`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/api/ledger/verify", get(verify))
        .route("/admin/api/ledger/proof/{seq}", get(proof))
        .route("/admin/api/ledger/consistency", get(consistency))
        .route("/admin/api/ledger/checkpoints", get(checkpoints))
        .route(
            "/admin/api/prior-auth/metrics",
            get(crate::prior_auth::metrics::endpoint),
        )
}

/// An error answer: `{"error", "error_description"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    pub(crate) fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            // A seq or tree size beyond the ledger.
            LedgerError::Range(m) => Self::new(StatusCode::NOT_FOUND, "not_found", m),
            LedgerError::Corrupt(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                format!("{e}; run GET /admin/api/ledger/verify"),
            ),
            LedgerError::Db(_) | LedgerError::Sqlite(_) | LedgerError::Key(_) => {
                tracing::error!(error = %e, "admin API: ledger unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the ledger store is unavailable; try again",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let challenge = match (self.status, self.error) {
            (StatusCode::UNAUTHORIZED, "invalid_token") => {
                Some(r#"Bearer realm="fhirgate", error="invalid_token""#.to_owned())
            }
            (StatusCode::UNAUTHORIZED, _) => Some(r#"Bearer realm="fhirgate""#.to_owned()),
            (StatusCode::FORBIDDEN, "insufficient_scope") => Some(format!(
                r#"Bearer realm="fhirgate", error="insufficient_scope", scope="{AUDITOR_SCOPE}""#
            )),
            _ => None,
        };
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut r = no_store(Json(body).into_response());
        *r.status_mut() = self.status;
        if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) fn ok(body: Value) -> Response {
    no_store(Json(body).into_response())
}

/// Lets in an administrator's session or an auditor's token; names the
/// caller for the log (`admin:<user>` or `client:<client_id>`).
pub(crate) async fn caller(app: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the Authorization header is not valid text",
            )
        })?;
        let access = authenticate(app, Some(value)).await.map_err(|e| {
            if e.status == StatusCode::UNAUTHORIZED {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.message)
            } else {
                tracing::warn!(error = %e, "admin API: token check failed");
                ApiError::new(e.status, "temporarily_unavailable", e.message)
            }
        })?;
        let needed = ScopeSet::parse(AUDITOR_SCOPE).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "scope table",
            )
        })?;
        return if needed.covered_by(&access.scopes) {
            Ok(format!("client:{}", access.client_id))
        } else if access.role.as_deref() == Some("admin") {
            Ok(format!("admin-token:{}", access.client_id))
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("the ledger API needs a token with {AUDITOR_SCOPE} (the auditor role) or an administrator's token"),
            ))
        };
    }
    match session::current(app, headers).await {
        Ok(Some(s)) if s.user.role == "admin" => Ok(format!("admin:{}", s.user.username)),
        Ok(Some(_)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "the ledger API is for administrators and auditors",
        )),
        Ok(None) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("sign in to the admin console, or send an access token with {AUDITOR_SCOPE}"),
        )),
        Err(e) => {
            tracing::error!(error = ?e, "admin API: session look-up failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the session store is unavailable; try again",
            ))
        }
    }
}

/// The process's ledger (its clones share the Merkle tile cache, so a
/// proof reads only the leaves since the last complete tile it knows).
fn ledger(app: &AppState) -> Ledger {
    app.audit.ledger().clone()
}

/// A non-negative integer parameter.
fn number(name: &str, raw: Option<&str>) -> Result<u64, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::bad_request(format!("`{name}` is required")))?;
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("`{name}` must be a non-negative integer")))
}

/// `GET /admin/api/ledger/verify`.
async fn verify(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let who = caller(&app, &headers).await?;
    let report = ledger(&app).verify(&app.keys).await?;
    tracing::info!(caller = %who, ok = report.ok(), entries = report.entries, "ledger verified through the admin API");
    let problem = report.problem.as_ref().map(|p| {
        let mut v = match p {
            Problem::Entry { seq, reason } => {
                json!({ "kind": "entry", "seq": seq, "reason": reason })
            }
            Problem::Head(reason) => json!({ "kind": "head", "reason": reason }),
            Problem::Checkpoint {
                tree_size,
                from_seq,
                reason,
            } => json!({
                "kind": "checkpoint", "tree_size": tree_size, "from_seq": from_seq, "reason": reason
            }),
        };
        v["message"] = json!(p.to_string());
        v
    });
    Ok(ok(json!({
        "ok": report.ok(),
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "root_hash": report.root_hash,
        "problem": problem,
    })))
}

/// Query of the proof route.
#[derive(Debug, Deserialize)]
struct ProofQuery {
    tree_size: Option<String>,
}

/// `GET /admin/api/ledger/proof/{seq}`.
async fn proof(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(seq): Path<String>,
    Query(q): Query<ProofQuery>,
) -> Result<Response, ApiError> {
    caller(&app, &headers).await?;
    let seq = number("seq", Some(&seq))?;
    let ledger = ledger(&app);
    let (proof, checkpoint) = match q.tree_size.as_deref() {
        None => ledger.proof_against_latest(seq).await?,
        Some(raw) => {
            let size = number("tree_size", Some(raw))?;
            if size <= seq {
                return Err(ApiError::bad_request(
                    "`tree_size` must be greater than `seq`",
                ));
            }
            let checkpoint = ledger
                .checkpoints()
                .await?
                .into_iter()
                .find(|c| c.tree_size as u64 == size);
            (ledger.inclusion_proof(seq, size).await?, checkpoint)
        }
    };
    Ok(ok(proof_json(&proof, checkpoint.as_ref())))
}

/// Query of the consistency route.
#[derive(Debug, Deserialize)]
struct ConsistencyQuery {
    first: Option<String>,
    second: Option<String>,
}

/// `GET /admin/api/ledger/consistency?first=&second=`.
async fn consistency(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Response, ApiError> {
    caller(&app, &headers).await?;
    let first = number("first", q.first.as_deref())?;
    let second = number("second", q.second.as_deref())?;
    if first == 0 || first > second {
        return Err(ApiError::bad_request(
            "need 0 < `first` <= `second` (tree sizes)",
        ));
    }
    let proof = ledger(&app).consistency_proof(first, second).await?;
    Ok(ok(serde_json::to_value(&proof).unwrap_or(Value::Null)))
}

/// `GET /admin/api/ledger/checkpoints`.
async fn checkpoints(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller(&app, &headers).await?;
    let ledger = ledger(&app);
    let size = ledger.size().await?;
    let mut anchors: HashMap<i64, anchor::AnchorRecord> = anchor::records(&ledger)
        .await?
        .into_iter()
        .map(|a| (a.tree_size, a))
        .collect();
    let list: Vec<Value> = ledger
        .checkpoints()
        .await?
        .into_iter()
        .map(|c| {
            let anchored = anchors.remove(&c.tree_size).map(|a| {
                json!({
                    "contents": a.contents,
                    "transaction_id": a.transaction_id,
                    "collection_id": a.collection_id,
                    "receipt": a.receipt.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
                    "attempts": a.attempts,
                    "last_error": a.last_error,
                })
            });
            json!({
                "tree_size": c.tree_size,
                "root_hash": c.root_hash,
                "created_at": c.created_at,
                "signature": c.signature,
                "anchor": anchored,
            })
        })
        .collect();
    Ok(ok(json!({ "tree_size": size, "checkpoints": list })))
}
