//! The HTTP side of UDAP Tiered OAuth (the protocol is in
//! [`crate::udap::tiered`]): the authorization endpoint hands a request
//! with the `udap` scope and an `idp` to [`start`]; the identity provider
//! sends the browser back to `GET /auth/udap/callback` ([`callback`]).
//!
//! As in federated sign-in, the round-trip record is kept server-side in
//! the state store's `oauth_pending` table under `tiered:` + SHA-256 of a
//! random id, and the browser holds only that id in the `fhirgate_tiered`
//! cookie (HttpOnly, SameSite=Lax so it comes back on the IdP's top-level
//! redirect, Path=/auth/udap, 10 minutes). The record is deleted when the
//! callback arrives, whatever the outcome, so each attempt is answered once.
//!
//! Outcomes: a failure the client can be told of goes to its redirect URI
//! (`invalid_idp`, `server_error` for a wrong `state`, `access_denied`);
//! success starts a session for the linked local user (a fresh session id,
//! as every sign-in) and continues at `/auth/continue`, where that user
//! approves the client's scopes. Without the cookie (unknown or expired
//! attempt) no client is known: a readable page.

use axum::{
    extract::{RawQuery, State},
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use smart_launch::OAuthError;

use super::{see_other, session, Fields, UiError};
use crate::{
    oauth::{authorize as oauth, now},
    udap::tiered::{self, Pending},
    AppState,
};

/// The cookie naming this browser's Tiered OAuth attempt.
pub const TIERED_COOKIE: &str = "fhirgate_tiered";
/// The cookie's path (the callback lives under it).
const COOKIE_PATH: &str = "/auth/udap";
/// How long the user may take at the identity provider, seconds.
pub const PENDING_TTL: i64 = 600;

/// The state-store key of the attempt named by cookie value `id`.
fn pending_key(id: &str) -> String {
    format!("tiered:{}", ui::secrets::sha256_hex(id))
}

fn tiered_cookie(app: &AppState, value: &str, max_age: i64) -> Result<HeaderValue, UiError> {
    session::set_cookie(app, TIERED_COOKIE, value, COOKIE_PATH, Some(max_age))
}

/// Ends the client's pending request `request` with `e` (a redirect to
/// the client), or a page when even that fails.
async fn to_client(app: &AppState, request: &str, e: &OAuthError) -> Response {
    tracing::info!(
        error = e.code.as_str(),
        "Tiered OAuth: answering the client with an error"
    );
    match oauth::fail(app, request, e).await {
        Ok(url) => see_other(&url).unwrap_or_else(IntoResponse::into_response),
        Err(err) => UiError::from(err).into_response(),
    }
}

/// `/auth/authorize` with `udap` and `idp`: to the identity provider, or
/// back to the client with `invalid_idp`.
pub async fn start(app: &AppState, request: &str, idp: &str) -> Response {
    let Some(udap) = app.udap.clone() else {
        return UiError::NotFound("UDAP is not offered by this server.".into()).into_response();
    };
    let (url, pending) = match tiered::begin(app, &udap, request, idp, now()).await {
        Ok(v) => v,
        Err(e) => return to_client(app, request, &e).await,
    };
    match remember(app, &pending).await {
        Ok(cookie) => match see_other(&url) {
            Ok(mut res) => {
                res.headers_mut().append(header::SET_COOKIE, cookie);
                res
            }
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Stores `pending` under a fresh id; the cookie naming it.
async fn remember(app: &AppState, pending: &Pending) -> Result<HeaderValue, UiError> {
    let id = session::new_secret();
    let record = serde_json::to_value(pending).map_err(UiError::internal)?;
    app.state
        .pending_put(&pending_key(&id), &record, now() + PENDING_TTL)
        .await
        .map_err(UiError::internal)?;
    tiered_cookie(app, &id, PENDING_TTL)
}

/// The attempt named by this browser's cookie, removed (single use).
async fn take(app: &AppState, headers: &HeaderMap) -> Result<Option<Pending>, UiError> {
    let Some(id) = session::cookie(headers, TIERED_COOKIE).filter(|c| session::well_formed(c))
    else {
        return Ok(None);
    };
    let key = pending_key(&id);
    let Some(record) = app
        .state
        .pending_get(&key, now())
        .await
        .map_err(UiError::internal)?
    else {
        return Ok(None);
    };
    app.state
        .pending_delete(&key)
        .await
        .map_err(UiError::internal)?;
    serde_json::from_value(record)
        .map(Some)
        .map_err(UiError::internal)
}

/// `GET /auth/udap/callback?code&state` (or `?error&state`).
pub async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let clear = tiered_cookie(&app, "", 0);
    let mut res = answer(&app, &headers, query.as_deref().unwrap_or("")).await;
    if let Ok(c) = clear {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

async fn answer(app: &AppState, headers: &HeaderMap, query: &str) -> Response {
    let pending = match take(app, headers).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return UiError::BadRequest(
                "This sign-in attempt is unknown or has expired. Start again from the app.".into(),
            )
            .into_response()
        }
        Err(e) => return e.into_response(),
    };
    let Some(udap) = app.udap.clone() else {
        return UiError::NotFound("UDAP is not offered by this server.".into()).into_response();
    };
    let q = Fields::parse(query.as_bytes());
    let (user, assurance) = match tiered::complete(
        app,
        &udap,
        &pending,
        q.get("state"),
        q.get("code"),
        q.get("error"),
        now(),
    )
    .await
    {
        Ok(u) => u,
        Err(e) => return to_client(app, &pending.request, &e).await,
    };
    match signed_in(app, headers, &user, &assurance, &pending).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Starts `user`'s session (ending any other) and continues the client's
/// authorization.
async fn signed_in(
    app: &AppState,
    headers: &HeaderMap,
    user: &crate::state::users::User,
    assurance: &smart_launch::assurance::Assurance,
    pending: &Pending,
) -> Result<Response, UiError> {
    if let Some(old) = session::current(app, headers).await? {
        app.state
            .session_delete(&old.id_hash())
            .await
            .map_err(UiError::internal)?;
    }
    // The identity provider's acr, amr and auth_time, as its id_token says
    let cookie = session::start(
        app,
        user,
        crate::assurance::session::SOURCE_TIERED,
        assurance,
    )
    .await?;
    tracing::info!(
        role = %user.role,
        idp = %pending.idp,
        acr = assurance.acr.as_deref().unwrap_or("-"),
        amr = %assurance.amr.join(" "),
        "Tiered OAuth sign-in"
    );
    let req: String = url::form_urlencoded::byte_serialize(pending.request.as_bytes()).collect();
    let mut res = see_other(&format!("/auth/continue?req={req}"))?;
    res.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(res)
}
