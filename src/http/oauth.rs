//! HTTP adapters of the authorization server: discovery documents, JWKS,
//! authorize (GET and POST), token, introspect, revoke and RFC 7591
//! registration. Errors on these routes are RFC 6749 JSON
//! (`{"error", "error_description"}`) with `Cache-Control: no-store`; the
//! authorize endpoint answers with redirects or a readable page.

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Json, Router,
};
use capability::smart::{self, OAuthUris};
use serde_json::Value;
use smart_launch::OAuthError;

use crate::{
    oauth::{self, authorize::Start},
    AppState,
};

/// Routes of the authorization server and discovery.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/fhir/.well-known/smart-configuration",
            get(smart_configuration),
        )
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route(
            "/fhir/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/auth/jwks", get(jwks))
        .route("/auth/smart-style.json", get(smart_style))
        .route("/auth/authorize", get(authorize_get).post(authorize_post))
        .route("/auth/token", post(token))
        .route("/auth/introspect", post(introspect))
        .route("/auth/revoke", post(revoke))
        .route("/auth/register", post(register))
}

fn uris(app: &AppState) -> OAuthUris {
    OAuthUris::under(app.config.public_url.as_str(), &app.config.fhir_base())
}

async fn smart_configuration(State(app): State<AppState>) -> Json<Value> {
    Json(smart::smart_configuration(&uris(&app)))
}

async fn openid_configuration(State(app): State<AppState>) -> Json<Value> {
    Json(smart::openid_configuration(&uris(&app)))
}

/// The `smart_style_url` document (SMART App Launch 2.2 "Styling").
async fn smart_style() -> Json<Value> {
    Json(serde_json::json!({
        "color_background": "#f7f8fa",
        "color_error": "#b3261e",
        "color_highlight": "#0b5cad",
        "color_modal_backdrop": "#1a1c1e",
        "color_success": "#1e6b34",
        "color_text": "#1a1c1e",
        "dim_border_radius": "6px",
        "dim_font_size": "16px",
        "dim_spacing_size": "16px",
        "font_family_body": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        "font_family_heading": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
    }))
}

async fn jwks(State(app): State<AppState>) -> Json<Value> {
    Json(app.keys.jwks())
}

/// An OAuth JSON answer that is never cached (RFC 6749 §5.1).
fn no_store(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn oauth_error(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = no_store(status, e.body());
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"fhirgate\""),
        );
    }
    r
}

/// Parses a form body; a repeated parameter is an error (RFC 6749 §3.2).
fn form(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(p, _)| p == k) {
            return Err(OAuthError::invalid_request(format!(
                "parameter '{k}' is repeated"
            )));
        }
    }
    Ok(pairs)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

async fn token(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = match form(&headers, &body) {
        Ok(f) => oauth::token::token(&app, &f, authorization(&headers)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => {
            let note = issued_note(&v);
            let mut res = no_store(StatusCode::OK, v);
            if let Some(n) = note {
                res.extensions_mut().insert(n);
            }
            res
        }
        Err(e) => oauth_error(&e),
    }
}

/// What the audit event of a token issuance names: the client, the user, the
/// launch patient and the granted scopes (read back from the token just
/// minted; never the token itself).
fn issued_note(answer: &Value) -> Option<crate::audit::RouteNote> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let token = answer["access_token"].as_str()?;
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let text = |k: &str| claims[k].as_str().map(str::to_owned);
    Some(crate::audit::RouteNote {
        client_id: text("client_id"),
        user: text("fhirUser"),
        role: text("role"),
        patient: text("patient").map(|p| format!("Patient/{p}")),
        what: Some(format!(
            "access token issued, scope: {}",
            claims["scope"].as_str().unwrap_or_default()
        )),
    })
}

async fn introspect(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = match form(&headers, &body) {
        Ok(f) => oauth::token::introspect(&app, &f, authorization(&headers)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => no_store(StatusCode::OK, v),
        Err(e) => oauth_error(&e),
    }
}

async fn revoke(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = match form(&headers, &body) {
        Ok(f) => oauth::token::revoke(&app, &f, authorization(&headers)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => no_store(StatusCode::OK, Value::Object(Default::default())),
        Err(e) => oauth_error(&e),
    }
}

async fn register(State(app): State<AppState>, body: Bytes) -> Response {
    // UDAP dynamic registration (a signed software statement) is open;
    // unsigned RFC 7591 registration only in demo mode
    if let Ok(meta) = serde_json::from_slice::<Value>(&body) {
        if crate::udap::registration::is_udap(&meta) {
            return match crate::udap::registration::register(&app, &meta).await {
                Ok((status, answer)) => no_store(status, answer),
                Err(e) => oauth_error(&e),
            };
        }
    }
    if !app.config.demo_enabled() {
        return oauth_error(&OAuthError::new(
            smart_launch::OAuthErrorCode::AccessDenied,
            "open dynamic registration is only enabled in demo mode; use `fhirgate client add` or UDAP",
        ));
    }
    let meta: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return oauth_error(&OAuthError::new(
                smart_launch::OAuthErrorCode::InvalidClientMetadata,
                format!("the body is not JSON: {e}"),
            ))
        }
    };
    match oauth::clients::register(&app, &meta).await {
        Ok((_, response)) => no_store(StatusCode::CREATED, response),
        Err(e) => oauth_error(&e),
    }
}

async fn authorize_get(
    State(app): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    start(&app, &q).await
}

async fn authorize_post(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match form(&headers, &body) {
        Ok(f) => start(&app, &f).await,
        Err(e) => page(400, &e.description),
    }
}

async fn start(app: &AppState, params: &[(String, String)]) -> Response {
    match oauth::authorize::start(app, params).await {
        Start::Redirect(url) => Redirect::to(&url).into_response(),
        Start::Page(status, message) => page(status, &message),
        Start::Tiered { request, idp } => crate::http::ui::tiered::start(app, &request, &idp).await,
    }
}

/// A minimal readable error page (the UI crate renders the full pages).
fn page(status: u16, message: &str) -> Response {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorization error</title></head>\
         <body><main><h1>Authorization error</h1><p>{escaped}</p></main></body></html>"
    );
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = (status, Html(html)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
