//! Authorization endpoint (RFC 6749 §4.1, SMART App Launch 2.2
//! "Obtain authorization code"): a validated request waits as a *pending*
//! authorization while the user signs in, picks a patient and approves
//! scopes in the UI; approving issues a single-use, short-lived code bound
//! to the client, redirect URI and PKCE challenge.
//!
//! Errors about the client or its redirect URI are shown to the user and
//! never redirected (RFC 6749 §4.1.2.1); every other error goes back to the
//! registered redirect URI with `error` and `state`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use smart_launch::{
    assurance::Assurance,
    pkce,
    scope::{ScopeSet, SmartScope},
    token::{hash_token, random_token},
    OAuthError, OAuthErrorCode,
};

use super::{clients, now};
use crate::{state::users::User, AppState};

/// How long a pending request waits for the user, seconds.
pub const PENDING_TTL: i64 = 600;
/// Authorization code lifetime, seconds.
pub const CODE_TTL: i64 = 60;
/// EHR launch context lifetime, seconds.
pub const LAUNCH_TTL: i64 = 300;
/// The scope that, with an `idp` parameter, asks for Tiered OAuth.
pub const TIERED_SCOPE: &str = "udap";

/// A validated authorize request waiting for the user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// Opaque id (in the UI's URLs).
    pub id: String,
    /// Requesting client.
    pub client_id: String,
    /// Its display name.
    pub client_name: String,
    /// Exact registered redirect URI the answer goes to.
    pub redirect_uri: String,
    /// The client's `state`, echoed back.
    pub state: Option<String>,
    /// Requested scopes (already checked against the client's registration).
    pub scope: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// OpenID Connect nonce.
    pub nonce: Option<String>,
    /// Patient from an EHR launch context.
    pub launch_patient: Option<String>,
    /// Encounter from an EHR launch context.
    pub launch_encounter: Option<String>,
    /// User who started the EHR launch (must be the one who approves).
    pub launch_user: Option<String>,
    /// Whether the user must pick a patient (`launch/patient` in a standalone launch).
    pub needs_patient: bool,
    /// The client's `acr_values` (OpenID Connect Core §3.1.2.1, RFC 9470 §4), any of which would do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    /// The client's `max_age`, seconds: the user must have authenticated
    /// (or stepped up) at most this long ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// Whether the user was already sent to authenticate again for this
    /// request (asked once; then the token carries what there is).
    #[serde(default)]
    pub reauth_asked: bool,
}

/// Why a pending request cannot be continued (shown as a readable page).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PendingError {
    /// Unknown or expired request.
    #[error("this authorization request is unknown or has expired; start again from the app")]
    Gone,
    /// The approving user is not allowed (e.g. not the launching user).
    #[error("{0}")]
    Forbidden(String),
    /// The state store failed.
    #[error("internal error")]
    Internal(String),
}

impl From<sqlx::Error> for PendingError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The outcome of `start`: where the browser goes next, or a page to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// 302 to this URL (the UI's continue page, or the client with an error).
    Redirect(String),
    /// A readable error page (no redirect is safe), with the HTTP status.
    Page(u16, String),
    /// UDAP Tiered OAuth: the pending request (id) waits while the user
    /// signs in at identity provider `idp` (`crate::udap::tiered`).
    Tiered {
        /// The pending request's id.
        request: String,
        /// The identity provider's base URL, as the client sent it.
        idp: String,
    },
}

/// Validates an authorize request (GET query or POST form parameters).
pub async fn start(app: &AppState, params: &[(String, String)]) -> Start {
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(client_id) = get("client_id") else {
        return Start::Page(400, "The request has no client_id.".into());
    };
    let client = match app.state.client_get(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Start::Page(
                400,
                "The application is not registered with this server (unknown client_id).".into(),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            return Start::Page(500, "The server could not process the request.".into());
        }
    };
    let registered = clients::redirect_uris(&client.metadata);
    let redirect_uri = match (get("redirect_uri"), registered.as_slice()) {
        (Some(r), list) if list.iter().any(|x| x == r) => r.to_owned(),
        (None, [only]) => only.clone(),
        _ => {
            return Start::Page(
                400,
                "The redirect_uri does not exactly match one registered for this application; no redirect was made.".into(),
            )
        }
    };
    let state = get("state").map(str::to_owned);
    let fail = |e: OAuthError| Start::Redirect(error_redirect(&redirect_uri, &e, state.as_deref()));
    if get("response_type") != Some("code") {
        return fail(OAuthError::new(
            OAuthErrorCode::UnsupportedResponseType,
            "response_type must be code",
        ));
    }
    // UDAP clients (HL7 FAST Security STU2) send PKCE and `state`; a
    // community may let STU1 clients send neither
    let stu1 = crate::udap::authn::stu1_without_pkce(app, &client);
    if crate::udap::authn::is_udap(&client) && !stu1 && state.is_none() {
        return fail(OAuthError::invalid_request(
            "state is required for UDAP clients (HL7 FAST Security STU2)",
        ));
    }
    let challenge = if stu1 && get("code_challenge").is_none() {
        String::new()
    } else {
        match pkce::check_challenge(get("code_challenge"), get("code_challenge_method")) {
            Ok(c) => c,
            Err(e) => return fail(e),
        }
    };
    let Some(scope_text) = get("scope") else {
        return fail(OAuthError::invalid_scope("scope is required"));
    };
    let requested = match ScopeSet::parse(scope_text) {
        Ok(s) => s,
        Err(e) => return fail(OAuthError::invalid_scope(format!("malformed scope: {e}"))),
    };
    let allowed = match ScopeSet::parse(clients::registered_scope(&client.metadata)) {
        Ok(s) => s,
        Err(_) => {
            return fail(OAuthError::invalid_scope(
                "the client's registered scope is malformed",
            ))
        }
    };
    if !requested.covered_by(&allowed) {
        return fail(OAuthError::invalid_scope(
            "the requested scope is outside what this client is registered for",
        ));
    }
    // `aud` names the FHIR server the token is for (SMART App Launch 2.2);
    // a request for identity alone (OpenID Connect, e.g. another data
    // holder's Tiered OAuth sign-in) is for no FHIR server and may omit it
    let base = app.config.fhir_base();
    let for_fhir = requested
        .iter()
        .any(|s| matches!(s, SmartScope::Resource(_)));
    match get("aud") {
        Some(aud) if aud.trim_end_matches('/') == base => {}
        Some(_) => {
            return fail(OAuthError::invalid_request(format!(
                "aud must be this FHIR server's base URL, {base}"
            )))
        }
        None if for_fhir => {
            return fail(OAuthError::invalid_request(
                "aud (the FHIR base URL) is required",
            ))
        }
        None => {}
    }
    let max_age = match get("max_age") {
        Some(m) => match m.parse::<i64>() {
            Ok(m) if m >= 0 => Some(m),
            _ => {
                return fail(OAuthError::invalid_request(
                    "max_age must be a non-negative number of seconds",
                ))
            }
        },
        None => None,
    };
    let acr_values: Vec<String> = get("acr_values")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if acr_values.len() > 8 || acr_values.iter().any(|v| v.contains(['"', '\\'])) {
        return fail(OAuthError::invalid_request(
            "acr_values must be at most 8 space-separated values without quotes",
        ));
    }
    let mut pending = Pending {
        id: random_token(24),
        client_id: client.client_id.clone(),
        client_name: client.client_name.clone(),
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        scope: scope_text.to_owned(),
        code_challenge: challenge,
        nonce: get("nonce").map(str::to_owned),
        launch_patient: None,
        launch_encounter: None,
        launch_user: None,
        needs_patient: false,
        acr_values,
        max_age,
        reauth_asked: false,
    };
    if let Some(launch) = get("launch") {
        match app.state.launch_take(launch, client_id, now()).await {
            Ok(Some(ctx)) => {
                pending.launch_patient = ctx["patient"].as_str().map(str::to_owned);
                pending.launch_encounter = ctx["encounter"].as_str().map(str::to_owned);
                pending.launch_user = ctx["user"].as_str().map(str::to_owned);
            }
            Ok(None) => {
                return fail(OAuthError::invalid_request(
                    "the launch parameter is unknown, expired, already used or for another app",
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "launch lookup failed");
                return fail(OAuthError::new(
                    OAuthErrorCode::ServerError,
                    "internal error",
                ));
            }
        }
    } else if requested.has(&SmartScope::Launch) {
        return fail(OAuthError::invalid_request(
            "scope launch needs the launch parameter of an EHR launch",
        ));
    }
    pending.needs_patient =
        requested.has(&SmartScope::LaunchPatient) && pending.launch_patient.is_none();
    let body = match serde_json::to_value(&pending) {
        Ok(v) => v,
        Err(e) => return Start::Page(500, format!("internal error: {e}")),
    };
    if let Err(e) = app
        .state
        .pending_put(&pending.id, &body, now() + PENDING_TTL)
        .await
    {
        tracing::error!(error = %e, "storing a pending authorization failed");
        return fail(OAuthError::new(
            OAuthErrorCode::ServerError,
            "internal error",
        ));
    }
    // Tiered OAuth: `idp` means something only with the `udap` scope
    if app.udap.is_some() && requested.has(&SmartScope::Other(TIERED_SCOPE.to_owned())) {
        if let Some(idp) = get("idp") {
            return Start::Tiered {
                request: pending.id,
                idp: idp.to_owned(),
            };
        }
    }
    Start::Redirect(format!("/auth/continue?req={}", pending.id))
}

/// Loads a live pending request.
pub async fn load_pending(app: &AppState, id: &str) -> Result<Pending, PendingError> {
    let v = app
        .state
        .pending_get(id, now())
        .await?
        .ok_or(PendingError::Gone)?;
    serde_json::from_value(v).map_err(|e| PendingError::Internal(e.to_string()))
}

/// Stores `p` again (after a change, e.g. `reauth_asked`).
pub async fn save_pending(app: &AppState, p: &Pending) -> Result<(), PendingError> {
    let body = serde_json::to_value(p).map_err(|e| PendingError::Internal(e.to_string()))?;
    app.state
        .pending_put(&p.id, &body, now() + PENDING_TTL)
        .await?;
    Ok(())
}

/// The user, authenticated with `assurance`, approves `granted_scope` (a
/// subset of the requested scopes) for `patient` (the picked patient, if
/// any): issues the code and returns the URL to redirect the browser to
/// (`redirect_uri?code=…&state=…`). The assurance goes into the tokens.
pub async fn approve(
    app: &AppState,
    pending_id: &str,
    user: &User,
    assurance: &Assurance,
    granted_scope: &str,
    patient: Option<&str>,
) -> Result<String, PendingError> {
    let p = load_pending(app, pending_id).await?;
    if p.launch_user.as_deref().is_some_and(|u| u != user.username) {
        return Err(PendingError::Forbidden(
            "this launch was started by another user".into(),
        ));
    }
    let requested = ScopeSet::parse(&p.scope).map_err(|e| PendingError::Internal(e.to_string()))?;
    let granted = ScopeSet::parse(granted_scope)
        .map_err(|e| PendingError::Forbidden(format!("malformed scope: {e}")))?;
    if !granted.covered_by(&requested) {
        return Err(PendingError::Forbidden(
            "the approved scopes go beyond what the app asked for".into(),
        ));
    }
    let own_patient = user.fhir_user.strip_prefix("Patient/").map(str::to_owned);
    let patient = match (user.role.as_str(), &p.launch_patient) {
        ("patient", _) => own_patient,
        (_, Some(lp)) => Some(lp.clone()),
        _ => patient.map(str::to_owned),
    };
    if p.needs_patient && patient.is_none() {
        return Err(PendingError::Forbidden("choose a patient first".into()));
    }
    let grant = json!({
        "client_id": p.client_id,
        "redirect_uri": p.redirect_uri,
        "code_challenge": p.code_challenge,
        "scope": granted_scope,
        "patient": patient,
        "encounter": p.launch_encounter,
        "username": user.username,
        "fhir_user": user.fhir_user,
        "role": user.role,
        "organization": user.organization,
        "nonce": p.nonce,
        "auth_time": assurance.auth_time.unwrap_or_else(now),
        "assurance": assurance,
        "need_patient_banner": p.launch_patient.is_some(),
    });
    let code = random_token(32);
    app.state
        .code_put(&hash_token(&code), &p.client_id, &grant, now() + CODE_TTL)
        .await?;
    app.state.pending_delete(&p.id).await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &p.state {
        pairs.push(("state", s));
    }
    Ok(with_query(&p.redirect_uri, &pairs))
}

/// The user denies: returns `redirect_uri?error=access_denied&state=…`.
pub async fn deny(app: &AppState, pending_id: &str) -> Result<String, PendingError> {
    let e = OAuthError::new(OAuthErrorCode::AccessDenied, "the user denied the request");
    fail(app, pending_id, &e).await
}

/// Ends a pending request with error `e`: returns
/// `redirect_uri?error=…&error_description=…&state=…`.
pub async fn fail(
    app: &AppState,
    pending_id: &str,
    e: &OAuthError,
) -> Result<String, PendingError> {
    let p = load_pending(app, pending_id).await?;
    app.state.pending_delete(&p.id).await?;
    Ok(error_redirect(&p.redirect_uri, e, p.state.as_deref()))
}

/// EHR launch: mints a single-use launch context for `client_id` and returns
/// the URL to open: the client's `launch_url` with `iss` (the FHIR base,
/// exactly as published) and `launch`.
pub async fn ehr_launch(
    app: &AppState,
    client_id: &str,
    user: &User,
    patient: &str,
    encounter: Option<&str>,
) -> Result<String, PendingError> {
    if user.role != "clinician" {
        return Err(PendingError::Forbidden(
            "only clinicians can launch apps from the EHR".into(),
        ));
    }
    let client = app
        .state
        .client_get(client_id)
        .await?
        .ok_or_else(|| PendingError::Forbidden("unknown app".into()))?;
    let launch_url = client.metadata["launch_url"]
        .as_str()
        .ok_or_else(|| PendingError::Forbidden("this app has no launch_url registered".into()))?;
    let launch = random_token(24);
    let ctx: Value = json!({"patient": patient, "encounter": encounter, "user": user.username});
    app.state
        .launch_put(&launch, client_id, &ctx, now() + LAUNCH_TTL)
        .await?;
    let iss = app.config.fhir_base();
    Ok(with_query(
        launch_url,
        &[("iss", iss.as_str()), ("launch", launch.as_str())],
    ))
}

/// Appends query pairs to a URL that may already have a query.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", q.finish())
}

fn error_redirect(redirect_uri: &str, e: &OAuthError, state: Option<&str>) -> String {
    let mut pairs = vec![
        ("error", e.code.as_str()),
        ("error_description", e.description.as_str()),
    ];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    with_query(redirect_uri, &pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_appended_and_encoded() {
        assert_eq!(
            with_query("http://a/cb", &[("code", "x y")]),
            "http://a/cb?code=x+y"
        );
        assert_eq!(
            with_query("http://a/cb?k=1", &[("state", "s&t")]),
            "http://a/cb?k=1&state=s%26t"
        );
    }
}
