//! `GET /admin/api/consent/explain`: the admin API face of `fhirgate consent
//! explain` (issue 4 item 8): the decision a caller would get on one
//! resource and the provision or policy rule that produced it.
//!
//! Query: `resource` (`Type/id`, required), `client` (required), `user`,
//! `role`, `purpose`, `organization` (`Organization/x`, as a token would
//! carry it), `reason`, `patient` (checked against the resource).
//! Who may call: a signed-in administrator, or a bearer token with
//! `system/Consent.rs` (consent administrators) or issued to an `admin`
//! user. Errors are `{"error", "error_description"}`.

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, StatusCode},
    response::Response,
    routing::get,
    Router,
};
use smart_launch::scope::ScopeSet;

use super::admin_api::{ok, ApiError};
use crate::{
    http::ui::session,
    pipeline::{authenticate::authenticate, consent::explain},
    AppState,
};

/// The scope that makes a token a consent administrator's.
pub const CONSENT_ADMIN_SCOPE: &str = "system/Consent.rs";

/// The route (merged into the app by `http::app`).
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/api/consent/explain", get(explain_route))
}

async fn allowed(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok();
        let access = authenticate(app, value)
            .await
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.message))?;
        let covered = ScopeSet::parse(CONSENT_ADMIN_SCOPE)
            .map(|n| n.covered_by(&access.scopes))
            .unwrap_or(false);
        return if covered || access.role.as_deref() == Some("admin") {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("consent explanations need {CONSENT_ADMIN_SCOPE} or an administrator"),
            ))
        };
    }
    match session::current(app, headers).await {
        Ok(Some(s)) if s.user.role == "admin" => Ok(()),
        Ok(Some(_)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "consent explanations are for administrators",
        )),
        Ok(None) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in to the admin console, or send an access token",
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the session store is unavailable; try again",
        )),
    }
}

async fn explain_route(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(input): Query<explain::ExplainInput>,
) -> Result<Response, ApiError> {
    allowed(&app, &headers).await?;
    if input.resource.is_empty() || input.client.is_empty() {
        return Err(ApiError::bad_request("resource and client are required"));
    }
    let out = explain::explain(&app, &input).await.map_err(|e| {
        let code = match e.status.as_u16() {
            400 => "invalid_request",
            404 => "not_found",
            _ => "temporarily_unavailable",
        };
        ApiError::new(e.status, code, e.message)
    })?;
    Ok(ok(out))
}
