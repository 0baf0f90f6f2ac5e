//! The audit layer of the non-FHIR routes (OAuth `/auth/*`, discovery, the
//! UI pages `/login`, `/launcher`, `/admin`, `/portal`, …, the admin API):
//! one BALP-style event per request, with the route template (never the
//! raw path or query), method, status, and the client and user where
//! known, appended before the response is released. If the ledger cannot
//! write, the response is replaced by 503 (fail closed). `/ui/static/*`
//! (the stylesheet) is not audited.
//!
//! Who is known: the client id of an HTTP Basic `Authorization`
//! (client_secret_basic; the secret is never kept), and whatever the
//! handler attached as a [`RouteNote`] response extension (user, role,
//! patient, what happened). Handlers that know more should attach one.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::Response,
};
use base64::{engine::general_purpose::STANDARD, Engine};

use super::{
    auditor::now_ms,
    events::{HttpFacts, RouteNote},
    AuditError,
};
use crate::{error::FhirError, http::logging::RequestId, AppState};

/// The HTTP facts of a request (method, raw path and query, peer address).
pub fn http_facts(req: &Request) -> HttpFacts {
    HttpFacts {
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        client_addr: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        recorded: now_ms(),
    }
}

/// The request id the logging layer assigned.
pub fn request_id(req: &Request) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// The client id of an HTTP Basic `Authorization` header (RFC 6749 §2.3.1).
pub fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let id = text.split(':').next()?;
    let id = url::form_urlencoded::parse(format!("x={id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    (!id.is_empty()).then_some(id)
}

/// The 503 answered when the ledger cannot write.
pub fn unavailable(request_id: &str, e: &AuditError) -> Response {
    let err = FhirError::unavailable(format!("audit ledger: {e}"));
    tracing::error!(error = %e, "audit entry not durable: failing closed with 503");
    let body = serde_json::to_vec(&err.outcome(Some(request_id))).unwrap_or_default();
    let mut res = Response::new(axum::body::Body::from(body));
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    res
}

type AuditFn = fn(
    State<AppState>,
    Request,
    Next,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// The layer type of [`layer`].
pub type AuditLayer = axum::middleware::FromFnLayer<AuditFn, AppState, (State<AppState>, Request)>;

/// The audit layer; apply it with `route_layer` so the matched route
/// template is known.
pub fn layer(state: &AppState) -> AuditLayer {
    fn boxed(
        s: State<AppState>,
        r: Request,
        n: Next,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>> {
        Box::pin(audit_route(s, r, n))
    }
    axum::middleware::from_fn_with_state(state.clone(), boxed as AuditFn)
}

/// The middleware (`axum::middleware::from_fn_with_state`), for use as a
/// `route_layer` so the matched route template is known.
pub async fn audit_route(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "(unmatched)".to_owned());
    if route.starts_with("/ui/static/") || !app.audit.enabled() {
        return next.run(req).await;
    }
    let id = request_id(&req);
    let http = http_facts(&req);
    let basic = basic_client_id(req.headers());
    let mut res = next.run(req).await;
    let mut note = res
        .extensions_mut()
        .remove::<RouteNote>()
        .unwrap_or_default();
    if note.client_id.is_none() {
        note.client_id = basic;
    }
    let status = res.status().as_u16();
    match app
        .audit
        .record_route(&id, &http, &route, status, &note)
        .await
    {
        Ok(receipt) => {
            receipt.stamp(res.headers_mut());
            res
        }
        Err(e) => unavailable(&id, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_client_ids_are_decoded_and_secrets_dropped() {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode("my%20app:s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(basic_client_id(&h).as_deref(), Some("my app"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_client_id(&h), None);
    }
}
