//! The `/fhir` handler: turns HTTP into a `FhirRequest` (path, query, form
//! body of `_search`, conditional headers, `Prefer`, content negotiation,
//! body size limit; an XML body becomes FHIR JSON here, before any stage
//! sees it) and hands it to the pipeline. Every failure here is an
//! OperationOutcome with the right status. Last, the request's audit events
//! are appended to the ledger before the response is released (receipt
//! header `X-Ledger-Seq`; 503 when the ledger cannot write).

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, Method},
    response::Response,
};
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tracing::Instrument;

use super::render::{self, Format};
use crate::{
    audit,
    error::{FhirError, FhirResult},
    fhir::{request::parse_etag, xml, FhirRequest, Prefer},
    pipeline, AppState,
};

/// `ANY /fhir`.
pub async fn fhir_root(State(app): State<AppState>, req: Request) -> Response {
    handle(app, req).await
}

/// `ANY /fhir/{*path}`.
pub async fn fhir_path(State(app): State<AppState>, req: Request) -> Response {
    handle(app, req).await
}

async fn handle(app: AppState, req: Request) -> Response {
    let request_id = audit::middleware::request_id(&req);
    let http = audit::middleware::http_facts(&req);
    let mut disclosure = pipeline::Disclosure::default();
    let mut facts = None;
    // The whole request runs within `[limits] request_timeout_secs` (503).
    // What the request writes to the embedded store, undone if it fails
    // closed below (a retry must not leave a duplicate).
    let journal = crate::upstream::embedded::journal::Journal::default();
    let work = journal.scope(respond(&app, req, &request_id, &mut disclosure, &mut facts));
    let mut res = match pipeline::limits::deadline(&app.config.limits, work).await {
        Ok(res) => res,
        Err(e) => render::error(&e, Format::FhirJson, false, &request_id),
    };
    // Stage "audit": the request's BALP events (one per patient touched)
    // are durable on the ledger before the response leaves; the receipt is
    // `X-Ledger-Seq`. If the ledger cannot write: 503, nothing else.
    let status = res.status().as_u16();
    match app
        .audit
        .record_fhir(&request_id, &http, facts.as_ref(), &disclosure, status)
        .instrument(crate::observability::otel::stage("ledger.append"))
        .await
    {
        Ok(receipt) => {
            receipt.stamp(res.headers_mut());
            res
        }
        Err(e) => {
            crate::upstream::embedded::journal::undo_request(&app, &journal).await;
            audit::middleware::unavailable(&request_id, &e)
        }
    }
}

/// Parses, runs the pipeline and renders; fills `disclosure` and `facts`.
async fn respond(
    app: &AppState,
    req: Request,
    request_id: &str,
    disclosure: &mut pipeline::Disclosure,
    facts: &mut Option<audit::FhirFacts>,
) -> Response {
    // Bulk export status and file URLs are not FHIR paths.
    if crate::bulk::http::is_bulk_path(req.uri().path()) {
        return crate::bulk::http::respond(app, req, request_id, disclosure, facts).await;
    }
    let head = req.method() == Method::HEAD;
    let authorization = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let (format, pretty) = match render::negotiate(req.headers(), &query) {
        Ok((f, pretty)) => (render::follow_body(req.headers(), &query, f), pretty),
        Err(e) => return render::error(&e, Format::FhirJson, false, request_id),
    };
    match build(app, req, query).await {
        Ok(fhir_req) => {
            let prefer = fhir_req.prefer;
            let interaction = fhir_req.interaction;
            *facts = Some(audit::FhirFacts::of(&fhir_req));
            let result = pipeline::handle(
                app,
                fhir_req,
                request_id,
                authorization.as_deref(),
                disclosure,
            )
            .await;
            match result {
                Ok(resp) => render::response(resp, format, pretty, head, prefer, interaction),
                Err(e) => render::error(&e, format, pretty, request_id),
            }
        }
        Err(e) => render::error(&e, format, pretty, request_id),
    }
}

/// Builds the typed request from HTTP parts.
async fn build(
    app: &AppState,
    req: Request,
    mut params: Vec<(String, String)>,
) -> FhirResult<FhirRequest> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let below = path.strip_prefix("/fhir").unwrap_or(path);
    let decoded: Vec<String> = below
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let mut fhir = FhirRequest::route(&parts.method, &segments)?;
    params.retain(|(k, _)| k != "_format" && k != "_pretty");

    let limit = app.config.limits.max_body_bytes;
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(too_large(limit));
        }
    }
    let bytes = axum::body::to_bytes(Body::new(body), limit)
        .await
        .map_err(|_| too_large(limit))?;
    if !bytes.is_empty() {
        match body_kind(&parts.headers)? {
            BodyKind::Form => {
                if !fhir.interaction.is_search() {
                    return Err(FhirError::unsupported_media(
                        "form-encoded bodies are only accepted by _search",
                    ));
                }
                params.extend(
                    url::form_urlencoded::parse(&bytes)
                        .map(|(k, v)| (k.into_owned(), v.into_owned())),
                );
            }
            kind @ (BodyKind::Json | BodyKind::Xml) => {
                if fhir.interaction.is_search() {
                    return Err(FhirError::unsupported_media(
                        "_search takes application/x-www-form-urlencoded parameters",
                    ));
                }
                fhir.body = Some(parse_resource(matches!(kind, BodyKind::Xml), &bytes)?);
            }
        }
    }
    fhir.params = params;
    let h = &parts.headers;
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(m) = text("if-match") {
        fhir.if_match = Some(
            parse_etag(&m)
                .map(|v| format!("W/\"{v}\""))
                .ok_or_else(|| {
                    FhirError::bad_request("If-Match must be a version ETag like W/\"1\"")
                })?,
        );
    }
    fhir.if_none_exist = text("if-none-exist");
    fhir.if_none_match = text("if-none-match");
    fhir.if_modified_since = text("if-modified-since");
    fhir.prefer = Prefer::parse(h.get_all("prefer").iter().filter_map(|v| v.to_str().ok()));
    fhir.purpose_of_use = text("x-purpose-of-use")
        .map(|p| p.trim().to_ascii_uppercase())
        .filter(|p| !p.is_empty());
    fhir.break_glass_reason = text("x-break-glass-reason")
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    Ok(fhir)
}

/// A JSON or XML body as FHIR JSON (the XML was bounded by the same
/// `max_body_bytes` as JSON before it got here).
fn parse_resource(is_xml: bool, bytes: &[u8]) -> FhirResult<Value> {
    let v: Value = if is_xml {
        xml::from_xml(bytes).map_err(|e| match e {
            xml::XmlError::Internal => FhirError::internal("the XML converter panicked"),
            e => FhirError::bad_request(format!("the body is not valid FHIR XML: {e}")),
        })?
    } else {
        serde_json::from_slice(bytes)
            .map_err(|e| FhirError::bad_request(format!("the body is not valid JSON: {e}")))?
    };
    if !v.is_object() {
        return Err(FhirError::bad_request("the body must be a JSON object"));
    }
    Ok(v)
}

fn too_large(limit: usize) -> FhirError {
    FhirError::too_large(format!(
        "the request body exceeds the limit of {limit} bytes"
    ))
}

enum BodyKind {
    Json,
    Xml,
    Form,
}

fn body_kind(headers: &HeaderMap) -> FhirResult<BodyKind> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/fhir+json");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/fhir+json" | "application/json" | "application/json+fhir" => {
            Ok(BodyKind::Json)
        }
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        m if m != "xml" && render::is_xml_mime(m) => Ok(BodyKind::Xml),
        other => Err(FhirError::unsupported_media(format!(
            "unsupported Content-Type '{other}'; send application/fhir+json or application/fhir+xml"
        ))),
    }
}
