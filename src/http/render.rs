//! Renders `FhirResponse`s and `FhirError`s as HTTP: content negotiation
//! (`_format`, `Accept`; JSON by default, FHIR XML on request), `ETag: W/"n"`,
//! `Last-Modified` (HTTP-date), `Location`, `Content-Location`, and
//! `Prefer: return=` (R4 http.html §3.1.0.8, §3.1.0.1.2 for the formats).
//! Serializing the body is the last step: everything before it (consent
//! filtering, `_summary`/`_elements`) worked on JSON; XML is made here by
//! `fhir::xml`, and a body it cannot express becomes a 406 OperationOutcome.

use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::Response,
};
use serde_json::{json, Value};

use crate::{
    error::FhirError,
    fhir::{types::parse_instant, xml, FhirResponse, Interaction, Prefer, PreferReturn},
};

/// The media type answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/fhir+json` (the default).
    FhirJson,
    /// `application/json` (when the client asked for exactly that).
    Json,
    /// `application/fhir+xml` (asked for as that, `application/xml`,
    /// `text/xml` or `_format=xml`).
    FhirXml,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Self::FhirJson => "application/fhir+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
            Self::FhirXml => "application/fhir+xml; charset=utf-8",
        }
    }
}

/// The XML media types (R4 http.html §3.1.0.1.2: `xml`, `text/xml`,
/// `application/xml`, `application/fhir+xml`; the R3 spelling too).
pub fn is_xml_mime(mime: &str) -> bool {
    matches!(
        mime,
        "xml" | "text/xml" | "application/xml" | "application/fhir+xml" | "application/xml+fhir"
    )
}

/// Picks the answer format from `_format` (wins) or `Accept`; also `_pretty`.
pub fn negotiate(
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<(Format, bool), FhirError> {
    let pretty = query.iter().any(|(k, v)| k == "_pretty" && v == "true");
    if let Some((_, f)) = query.iter().find(|(k, _)| k == "_format") {
        let f = f.split(';').next().unwrap_or("").trim();
        return match f {
            "json" | "application/fhir+json" | "application/json+fhir" => {
                Ok((Format::FhirJson, pretty))
            }
            "application/json" => Ok((Format::Json, pretty)),
            f if is_xml_mime(f) => Ok((Format::FhirXml, pretty)),
            other => Err(FhirError::not_acceptable(format!(
                "unsupported _format '{other}'"
            ))),
        };
    }
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if accept.trim().is_empty() {
        return Ok((Format::FhirJson, pretty));
    }
    let mut json_only = false;
    for item in accept.split(',') {
        let mut params = item.split(';');
        let mime = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = params.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if refused {
            continue;
        }
        match mime.as_str() {
            "application/fhir+json" | "application/json+fhir" | "*/*" | "application/*" => {
                return Ok((Format::FhirJson, pretty))
            }
            "application/json" => json_only = true,
            m if is_xml_mime(m) => return Ok((Format::FhirXml, pretty)),
            _ => {}
        }
    }
    if json_only {
        Ok((Format::Json, pretty))
    } else {
        Err(FhirError::not_acceptable(format!(
            "cannot produce any of Accept: {accept}; fhirgate answers application/fhir+json or application/fhir+xml"
        )))
    }
}

/// With no `_format` and no `Accept` preference (none, or only `*/*`), an
/// XML request body gets an XML answer (R4 leaves the format open then; the
/// sender evidently reads XML).
pub fn follow_body(headers: &HeaderMap, query: &[(String, String)], format: Format) -> Format {
    let accept_open = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .all(|m| matches!(m.split(';').next().unwrap_or("").trim(), "" | "*/*"));
    let sent_xml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|m| m != "xml" && is_xml_mime(&m));
    if format == Format::FhirJson
        && accept_open
        && sent_xml
        && !query.iter().any(|(k, _)| k == "_format")
    {
        Format::FhirXml
    } else {
        format
    }
}

/// Renders a successful answer.
pub fn response(
    mut r: FhirResponse,
    format: Format,
    pretty: bool,
    head: bool,
    prefer: Prefer,
    interaction: Interaction,
) -> Response {
    if matches!(
        interaction,
        Interaction::Create | Interaction::Update | Interaction::ConditionalUpdate
    ) {
        match prefer.return_ {
            Some(PreferReturn::Minimal) => r.body = None,
            Some(PreferReturn::OperationOutcome) => {
                let what = if r.status == StatusCode::CREATED {
                    "created"
                } else {
                    "updated"
                };
                r.body = Some(json!({
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "information", "code": "informational", "diagnostics": format!("resource {what}")}]
                }));
            }
            _ => {}
        }
    }
    let mut headers = HeaderMap::new();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    if let Some(v) = &r.version {
        set(header::ETAG, &format!("W/\"{v}\""));
    }
    if let Some(lm) = r.last_modified.as_deref().and_then(http_date) {
        set(header::LAST_MODIFIED, &lm);
    }
    if let Some(l) = &r.location {
        set(header::LOCATION, l);
    }
    if let Some(l) = &r.content_location {
        set(header::CONTENT_LOCATION, l);
    }
    build(r.status, headers, r.body.as_ref(), format, pretty, head)
}

/// Renders an error as an OperationOutcome; server-side detail goes to the log only.
pub fn error(e: &FhirError, format: Format, pretty: bool, request_id: &str) -> Response {
    if e.status.is_server_error() {
        tracing::error!(status = e.status.as_u16(), message = %e.message, internal = e.internal.as_deref().unwrap_or(""), "request failed");
    } else if let Some(internal) = &e.internal {
        tracing::warn!(status = e.status.as_u16(), internal = %internal, "request refused");
    }
    let body = e.outcome(Some(request_id));
    let mut headers = HeaderMap::new();
    if let Some(secs) = e.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if e.status == StatusCode::UNAUTHORIZED {
        // RFC 6750 §3: the challenge; the description is our own text, quoted safely.
        let description: String = e
            .message
            .chars()
            .map(|c| match c {
                '"' | '\\' => '\'',
                c if c.is_ascii_graphic() || c == ' ' => c,
                _ => '?',
            })
            .collect();
        let challenge = match &e.challenge {
            Some(params) => format!("Bearer realm=\"fhirgate\", {params}"),
            None => format!(
                "Bearer realm=\"fhirgate\", error=\"invalid_token\", error_description=\"{description}\""
            ),
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    build(e.status, headers, Some(&body), format, pretty, false)
}

fn build(
    status: StatusCode,
    mut headers: HeaderMap,
    body: Option<&Value>,
    format: Format,
    pretty: bool,
    head: bool,
) -> Response {
    let bytes = match body {
        Some(b) => match serialize(b, format, pretty) {
            Ok(bytes) => bytes,
            Err(e) => return unrepresentable(&e, pretty, head),
        },
        None => Vec::new(),
    };
    if body.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
    }
    let mut res = Response::new(if head {
        Body::empty()
    } else {
        Body::from(bytes)
    });
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

/// The body's bytes in `format` (XML is always indented: fhirbolt's writer).
fn serialize(body: &Value, format: Format, pretty: bool) -> Result<Vec<u8>, xml::XmlError> {
    match format {
        Format::FhirXml => xml::to_xml(body).map(String::into_bytes),
        Format::FhirJson | Format::Json if pretty => {
            Ok(serde_json::to_vec_pretty(body).unwrap_or_default())
        }
        Format::FhirJson | Format::Json => Ok(serde_json::to_vec(body).unwrap_or_default()),
    }
}

/// 406 for an answer that XML cannot express (fhirbolt's strict R4 model
/// refused it): an OperationOutcome in XML, or in JSON when even that fails.
/// The answer's own headers (ETag, Location) are not sent with it.
fn unrepresentable(e: &xml::XmlError, pretty: bool, head: bool) -> Response {
    // The detail may quote resource content: it goes to the client (who
    // was allowed to see it), not to the log.
    let kind = match e {
        xml::XmlError::Internal => "converter panic",
        _ => "refused by the strict R4 model",
    };
    tracing::warn!(kind, "answer not expressible as FHIR XML; 406");
    let error = FhirError::not_acceptable(format!(
        "the answer cannot be sent as FHIR XML ({e}); ask for _format=json"
    ));
    let body = error.outcome(None);
    let format = match xml::to_xml(&body) {
        Ok(_) => Format::FhirXml,
        Err(_) => Format::FhirJson,
    };
    build(
        error.status,
        HeaderMap::new(),
        Some(&body),
        format,
        pretty,
        head,
    )
}

/// A FHIR instant as an RFC 9110 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(instant: &str) -> Option<String> {
    let t = parse_instant(instant)?.to_offset(time::UtcOffset::UTC);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    Some(format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[t.weekday().number_days_from_monday() as usize],
        t.day(),
        MONTHS[u8::from(t.month()) as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiation_prefers_format_then_accept() {
        assert_eq!(
            negotiate(&HeaderMap::new(), &[]).unwrap().0,
            Format::FhirJson
        );
        assert_eq!(
            negotiate(&accept("application/json"), &[]).unwrap().0,
            Format::Json
        );
        assert_eq!(
            negotiate(&accept("text/html, */*;q=0.8"), &[]).unwrap().0,
            Format::FhirJson
        );
        assert_eq!(
            negotiate(&accept("application/fhir+xml"), &[]).unwrap().0,
            Format::FhirXml
        );
        assert_eq!(
            negotiate(&accept("text/xml;q=0.9, application/json"), &[])
                .unwrap()
                .0,
            Format::FhirXml
        );
        assert_eq!(
            negotiate(&accept("application/xml;q=0, application/json"), &[])
                .unwrap()
                .0,
            Format::Json
        );
        assert_eq!(
            negotiate(&accept("image/png"), &[])
                .unwrap_err()
                .status
                .as_u16(),
            406
        );
        assert_eq!(
            negotiate(&accept("application/fhir+xml"), &q(&[("_format", "json")]))
                .unwrap()
                .0,
            Format::FhirJson
        );
        for f in ["xml", "text/xml", "application/xml", "application/fhir+xml"] {
            assert_eq!(
                negotiate(&accept("application/fhir+json"), &q(&[("_format", f)]))
                    .unwrap()
                    .0,
                Format::FhirXml,
                "{f}"
            );
        }
        assert_eq!(
            negotiate(&HeaderMap::new(), &q(&[("_format", "turtle")]))
                .unwrap_err()
                .status
                .as_u16(),
            406
        );
        assert!(
            negotiate(&HeaderMap::new(), &q(&[("_pretty", "true")]))
                .unwrap()
                .1
        );
    }

    #[test]
    fn xml_answers_are_converted_last_and_refusals_are_406() {
        let ok = build(
            StatusCode::OK,
            HeaderMap::new(),
            Some(&json!({"resourceType": "Patient", "id": "p1"})),
            Format::FhirXml,
            false,
            false,
        );
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            ok.headers()[header::CONTENT_TYPE],
            "application/fhir+xml; charset=utf-8"
        );
        let refused = build(
            StatusCode::OK,
            HeaderMap::new(),
            Some(&json!({"resourceType": "Patient", "colour": "blue"})),
            Format::FhirXml,
            false,
            false,
        );
        assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            refused.headers()[header::CONTENT_TYPE],
            "application/fhir+xml; charset=utf-8"
        );
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(
            http_date("1994-11-06T08:49:37.000Z").as_deref(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert_eq!(
            http_date("2026-01-01T01:00:00+01:00").as_deref(),
            Some("Thu, 01 Jan 2026 00:00:00 GMT")
        );
        assert_eq!(http_date("nope"), None);
    }
}
