//! The DTR SMART app (Da Vinci DTR 2.0.1 "DTR SMART App"), served by
//! fhirgate itself at the URL CRD cards link to (`[crd] dtr_launch_url`,
//! default `{public_url}/dtr/launch`):
//!
//! - `GET /dtr/launch?iss=…[&launch=…]`: the app's launch URL (SMART App
//!   Launch 2.2 §"EHR launch", or standalone with `iss` alone). It accepts
//!   only this server's FHIR base as `iss`, mints `state` and a PKCE S256
//!   verifier, hands both to the browser in a short-lived cookie scoped to
//!   `/dtr` (the app script moves them into `sessionStorage` at once and
//!   clears it) and answers 303 to `/auth/authorize` with `response_type`,
//!   `client_id`, `redirect_uri`, `scope`, `state`, `aud` (= `iss`),
//!   `code_challenge`, `code_challenge_method=S256` and `launch`.
//! - `GET /dtr/app`: the redirect URI, a static page (`ui/static/dtr/`);
//!   `GET /dtr/app.js`: its script, a small vanilla SMART client that
//!   exchanges the code at `/auth/token`, calls
//!   `Questionnaire/$questionnaire-package`, renders the form and stores a
//!   `completed` QuestionnaireResponse. No inline script: the UI's CSP
//!   (`default-src 'self'`) applies unchanged.
//!
//! The app is the public OAuth client [`CLIENT_ID`], registered by the demo
//! start ([`ensure_client`]); it never registers itself at run time.

use axum::{
    extract::{RawQuery, State},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::json;
use smart_launch::token::random_token;

use super::{see_other, Fields, UiError};
use crate::{oauth::authorize::with_query, state::oauth::ClientRecord, AppState};

/// The app's OAuth `client_id` (a public client, PKCE only).
pub const CLIENT_ID: &str = "dtr-app";
/// The app's name in the launcher and on the authorization page.
pub const CLIENT_NAME: &str = "DTR documentation";
/// Scopes after the launch scope: who the user is, the patient, the
/// coverage and orders the documentation is about, the payer's
/// Questionnaires (`$questionnaire-package` needs read on Questionnaire)
/// and the QuestionnaireResponse it stores.
const DATA_SCOPE: &str = "openid fhirUser user/Patient.r user/Coverage.rs \
     user/ServiceRequest.rs user/Questionnaire.rs user/QuestionnaireResponse.cru";
/// The cookie carrying `state`, verifier and `iss` from the launch to the app page.
pub const LAUNCH_COOKIE: &str = "fhirgate_dtr_launch";
/// How long a launch may take before the app page no longer accepts it.
const LAUNCH_COOKIE_SECONDS: u32 = 600;

/// The app page (the redirect URI).
const APP_HTML: &str = include_str!("../../../ui/static/dtr/app.html");
/// The app script.
const APP_JS: &str = include_str!("../../../ui/static/dtr/app.js");

/// `{public_url}` without a trailing slash.
fn public(app: &AppState) -> String {
    app.config
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

/// The app's redirect URI.
pub fn redirect_uri(app: &AppState) -> String {
    format!("{}/dtr/app", public(app))
}

/// The app's launch URL.
pub fn launch_url(app: &AppState) -> String {
    format!("{}/dtr/launch", public(app))
}

/// Every scope the app is registered for.
pub fn registered_scope() -> String {
    format!("launch launch/patient {DATA_SCOPE}")
}

/// Registers [`CLIENT_ID`] as a public client (redirect URI `/dtr/app`,
/// launch URL `/dtr/launch`) unless it exists. An existing registration is
/// kept as it is; if its redirect URI is not this server's (the public URL
/// changed), the log says so.
pub async fn ensure_client(app: &AppState) -> anyhow::Result<()> {
    let redirect = redirect_uri(app);
    if let Some(c) = app.state.client_get(CLIENT_ID).await? {
        if !crate::oauth::clients::redirect_uris(&c.metadata).contains(&redirect) {
            tracing::warn!(
                client_id = CLIENT_ID,
                expected = %redirect,
                "the DTR app's registration has another redirect URI; the app will not launch \
                 until the client is registered again for this public URL"
            );
        }
        return Ok(());
    }
    let record = ClientRecord {
        client_id: CLIENT_ID.to_owned(),
        client_name: CLIENT_NAME.to_owned(),
        client_type: "public".to_owned(),
        secret_hash: None,
        metadata: json!({
            "client_name": CLIENT_NAME,
            "redirect_uris": [redirect],
            "launch_url": launch_url(app),
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": registered_scope(),
        }),
        created_at: crate::oauth::now(),
    };
    app.state.client_insert(&record).await?;
    tracing::info!(client_id = CLIENT_ID, "registered the DTR SMART app");
    Ok(())
}

/// The launch's `iss`, which must be this server's FHIR base (SMART App
/// Launch: the app checks `iss` before it sends the user anywhere).
fn checked_iss(app: &AppState, q: &Fields) -> Result<String, UiError> {
    let base = app.config.fhir_base();
    let iss = q.get("iss").map(|i| i.trim_end_matches('/')).unwrap_or("");
    if iss.is_empty() {
        return Err(UiError::BadRequest(format!(
            "The DTR app was opened without an iss (the FHIR server to work with). \
             Launch it from the EHR launcher, or open /dtr/launch?iss={base}"
        )));
    }
    if iss != base {
        return Err(UiError::BadRequest(format!(
            "This DTR app works only with the FHIR server {base}; it was asked to use {iss}."
        )));
    }
    Ok(base)
}

/// `GET /dtr/launch?iss=…[&launch=…]` → 303 to the authorization endpoint.
pub async fn launch_get(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, UiError> {
    let q = Fields::parse(query.unwrap_or_default().as_bytes());
    let base = checked_iss(&app, &q)?;
    let client = app
        .state
        .client_get(CLIENT_ID)
        .await
        .map_err(UiError::internal)?;
    let redirect = redirect_uri(&app);
    if !client
        .is_some_and(|c| crate::oauth::clients::redirect_uris(&c.metadata).contains(&redirect))
    {
        return Err(UiError::NotFound(format!(
            "The DTR app is not registered on this server as client '{CLIENT_ID}' with redirect URI \
             {redirect} (the demo start registers it)."
        )));
    }
    let launch = q.get("launch").filter(|l| !l.is_empty());
    let state = random_token(24);
    let verifier = random_token(48);
    let scope = match launch {
        Some(_) => format!("launch {DATA_SCOPE}"),
        None => format!("launch/patient {DATA_SCOPE}"),
    };
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect.as_str()),
        ("scope", scope.as_str()),
        ("state", state.as_str()),
        ("aud", base.as_str()),
    ];
    let code_challenge = smart_launch::pkce::challenge_of(&verifier);
    pairs.push(("code_challenge", code_challenge.as_str()));
    pairs.push(("code_challenge_method", "S256"));
    if let Some(l) = launch {
        pairs.push(("launch", l));
    }
    let to = with_query(&format!("{}/auth/authorize", public(&app)), &pairs);
    let mut res = see_other(&to)?;
    let value = launch_cookie(&app, &state, &verifier, &base, &redirect);
    let cookie = HeaderValue::from_str(&value).map_err(UiError::internal)?;
    res.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(res)
}

/// The `Set-Cookie` value handing `state`, verifier, `iss` and the
/// redirect URI (sent again at the token endpoint) to the app page: base64url JSON, path `/dtr`, ten minutes, `SameSite=Lax` (it must
/// come back on the redirect from the authorization endpoint), `Secure` on
/// https. Not `HttpOnly`: the app script reads it once and clears it.
fn launch_cookie(app: &AppState, state: &str, verifier: &str, iss: &str, redirect: &str) -> String {
    let payload = json!({
        "state": state,
        "verifier": verifier,
        "iss": iss,
        "redirect_uri": redirect,
        "client_id": CLIENT_ID,
    })
    .to_string();
    let secure = if app.config.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{LAUNCH_COOKIE}={}; Path=/dtr; Max-Age={LAUNCH_COOKIE_SECONDS}; SameSite=Lax{secure}",
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// `GET /dtr/app`: the app page.
pub async fn app_get() -> Response {
    super::html_response(axum::http::StatusCode::OK, APP_HTML.to_owned())
}

/// `GET /dtr/app.js`: the app script.
pub async fn script_get() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registered_scope_covers_both_launches() {
        let s = smart_launch::scope::ScopeSet::parse(&registered_scope());
        assert!(s.is_ok());
        assert!(registered_scope().starts_with("launch launch/patient openid fhirUser"));
    }
}
