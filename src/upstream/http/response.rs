//! Upstream HTTP answer → `FhirResponse` or `FhirError` (R4 http.html §3.1.0.4).
//!
//! | upstream says                               | client gets                                |
//! |---------------------------------------------|--------------------------------------------|
//! | 2xx with a FHIR JSON body (or none)         | same status; URLs rewritten to the facade  |
//! | 304 Not Modified                            | 304, no body                               |
//! | 4xx with an OperationOutcome                | same status; its issues, address scrubbed  |
//! | 4xx with no body                            | same status, generic message               |
//! | 401 / 403 (our credentials refused)         | 502: the client's own token is not at stake|
//! | 5xx, other 3xx, non-JSON or non-FHIR body   | 502 `transient`, detail only in the log    |
//!
//! Timeouts and connection failures are mapped where the request is sent (`mod.rs`).

use reqwest::{
    header::{HeaderMap, CONTENT_LOCATION, ETAG, LAST_MODIFIED, LOCATION},
    StatusCode,
};
use serde_json::Value;
use time::{macros::format_description, PrimitiveDateTime};

use super::rewrite::UpstreamBase;
use crate::{
    error::{FhirError, FhirResult, IssueType},
    fhir::{request::parse_etag, types::format_instant, FhirResponse},
};

/// Maps one upstream answer; `facade_base` is `ctx.base`.
pub fn map(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    up: &UpstreamBase,
    facade_base: &str,
) -> FhirResult<FhirResponse> {
    if status.is_server_error() {
        return Err(FhirError::bad_gateway(format!(
            "upstream answered {status}"
        )));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(FhirError::bad_gateway(format!(
            "upstream refused fhirgate's credentials ({status})"
        )));
    }
    if status == StatusCode::NOT_MODIFIED {
        let mut r = FhirResponse::new(status, None);
        r.version = header(headers, &ETAG).and_then(parse_etag);
        return Ok(r);
    }
    if !(status.is_success() || status.is_client_error()) {
        return Err(FhirError::bad_gateway(format!(
            "upstream answered unexpected {status}"
        )));
    }
    let mut body = parse_body(body)?;
    if let Some(b) = body.as_mut() {
        up.rewrite_body(b, facade_base);
    }
    if status.is_client_error() {
        return Err(client_error(status, body.as_ref()));
    }
    let mut r = FhirResponse::new(status, None);
    r.location = header(headers, &LOCATION).and_then(|v| up.header_url(v, facade_base));
    r.content_location =
        header(headers, &CONTENT_LOCATION).and_then(|v| up.header_url(v, facade_base));
    r.version = header(headers, &ETAG).and_then(parse_etag);
    r.last_modified = header(headers, &LAST_MODIFIED).and_then(http_date_to_instant);
    if let Some(resource) = body.as_ref().filter(|b| is_single_resource(b)) {
        let meta = &resource["meta"];
        let meta_version = meta["versionId"].as_str();
        if r.version.is_none() {
            r.version = meta_version.map(str::to_owned);
        }
        // `meta.lastUpdated` has the precision an HTTP date lacks; use it when it
        // describes the same version the ETag names.
        if meta_version.is_some() && meta_version == r.version.as_deref() {
            if let Some(lu) = meta["lastUpdated"].as_str() {
                r.last_modified = Some(lu.to_owned());
            }
        }
    }
    r.body = body;
    Ok(r)
}

/// `None` for an empty body; a JSON object with a `resourceType` otherwise, else 502.
fn parse_body(bytes: &[u8]) -> FhirResult<Option<Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| FhirError::bad_gateway(format!("upstream body is not JSON: {e}")))?;
    if v.get("resourceType").and_then(Value::as_str).is_none() {
        return Err(FhirError::bad_gateway(
            "upstream body is not a FHIR resource",
        ));
    }
    Ok(Some(v))
}

/// Whether the body is one resource that `ETag` / `Last-Modified` describe.
fn is_single_resource(b: &Value) -> bool {
    !matches!(
        b["resourceType"].as_str(),
        Some("Bundle" | "OperationOutcome" | "CapabilityStatement") | None
    )
}

/// A 4xx answer as a `FhirError` with the upstream's status and (scrubbed) issues.
fn client_error(status: StatusCode, body: Option<&Value>) -> FhirError {
    let Some(outcome) = body else {
        let reason = status.canonical_reason().unwrap_or("request rejected");
        return FhirError::new(
            status,
            issue_for_status(status),
            format!("upstream: {reason}"),
        );
    };
    if outcome["resourceType"] != "OperationOutcome" {
        return FhirError::bad_gateway(format!(
            "upstream {status} body is not an OperationOutcome"
        ));
    }
    let issues = outcome["issue"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let errors: Vec<&Value> = issues
        .iter()
        .filter(|i| matches!(i["severity"].as_str(), Some("error" | "fatal")))
        .collect();
    let chosen: Vec<&Value> = if errors.is_empty() {
        issues.iter().collect()
    } else {
        errors
    };
    let code = chosen
        .first()
        .and_then(|i| i["code"].as_str())
        .map(issue_type)
        .unwrap_or_else(|| issue_for_status(status));
    let texts: Vec<&str> = chosen
        .iter()
        .filter_map(|i| {
            i["diagnostics"]
                .as_str()
                .or_else(|| i["details"]["text"].as_str())
        })
        .filter(|t| !t.is_empty())
        .collect();
    let message = if texts.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request rejected")
            .to_owned()
    } else {
        texts.join("; ")
    };
    FhirError::new(status, code, message)
}

/// The issue code for a status when the upstream gave none.
fn issue_for_status(status: StatusCode) -> IssueType {
    match status.as_u16() {
        404 => IssueType::NotFound,
        410 => IssueType::Deleted,
        409 | 412 => IssueType::Conflict,
        413 => IssueType::TooCostly,
        405 | 406 | 415 => IssueType::NotSupported,
        429 => IssueType::Throttled,
        422 => IssueType::Processing,
        _ => IssueType::Invalid,
    }
}

/// An upstream issue code as ours (codes we do not model become `processing`).
fn issue_type(code: &str) -> IssueType {
    match code {
        "invalid" => IssueType::Invalid,
        "structure" => IssueType::Structure,
        "required" => IssueType::Required,
        "value" | "invariant" | "code-invalid" | "extension" => IssueType::Value,
        "not-supported" => IssueType::NotSupported,
        "not-found" => IssueType::NotFound,
        "deleted" => IssueType::Deleted,
        "conflict" => IssueType::Conflict,
        "duplicate" | "multiple-matches" => IssueType::Duplicate,
        "too-costly" | "too-long" => IssueType::TooCostly,
        "throttled" => IssueType::Throttled,
        "security" | "login" | "unknown" | "expired" => IssueType::Security,
        "forbidden" => IssueType::Forbidden,
        "timeout" => IssueType::Timeout,
        _ => IssueType::Processing,
    }
}

/// A header's value as text, if present and visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &reqwest::header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An HTTP date (RFC 9110 §5.6.7 IMF-fixdate) as a FHIR instant.
fn http_date_to_instant(value: &str) -> Option<String> {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(value.trim(), fmt)
        .ok()
        .map(|t| format_instant(t.assume_utc()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;
    use url::Url;

    use super::*;

    const FACADE: &str = "http://gw/fhir";

    fn up() -> UpstreamBase {
        UpstreamBase::new(&Url::parse("http://127.0.0.1:8103/fhir/R4").unwrap())
    }

    fn hdrs(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn created_answers_carry_facade_location_version_and_instant() {
        let body = json!({"resourceType": "Patient", "id": "a",
            "meta": {"versionId": "1", "lastUpdated": "2026-01-02T03:04:05.678Z"}});
        let h = hdrs(&[
            (
                "location",
                "http://127.0.0.1:8103/fhir/R4/Patient/a/_history/1",
            ),
            ("etag", "W/\"1\""),
            ("last-modified", "Fri, 02 Jan 2026 03:04:05 GMT"),
        ]);
        let r = map(
            StatusCode::CREATED,
            &h,
            body.to_string().as_bytes(),
            &up(),
            FACADE,
        )
        .unwrap();
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(
            r.location.as_deref(),
            Some("http://gw/fhir/Patient/a/_history/1")
        );
        assert_eq!(r.version.as_deref(), Some("1"));
        assert_eq!(r.last_modified.as_deref(), Some("2026-01-02T03:04:05.678Z"));
        // Without a body the HTTP date is used, converted to an instant.
        let r = map(StatusCode::OK, &h, b"", &up(), FACADE).unwrap();
        assert_eq!(r.last_modified.as_deref(), Some("2026-01-02T03:04:05.000Z"));
        assert!(r.body.is_none());
    }

    #[test]
    fn garbage_and_server_errors_are_bad_gateway() {
        let h = HeaderMap::new();
        for (status, body) in [
            (StatusCode::OK, &b"<html>hello</html>"[..]),
            (StatusCode::OK, &b"{\"hello\": 1}"[..]),
            (StatusCode::OK, &b"[1,2]"[..]),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                &b"{\"resourceType\":\"OperationOutcome\"}"[..],
            ),
            (StatusCode::SERVICE_UNAVAILABLE, &b""[..]),
            (StatusCode::FOUND, &b""[..]),
            (StatusCode::UNAUTHORIZED, &b""[..]),
            (StatusCode::NOT_FOUND, &b"<html>nginx</html>"[..]),
            (
                StatusCode::BAD_REQUEST,
                &b"{\"resourceType\":\"Patient\"}"[..],
            ),
        ] {
            let e = map(status, &h, body, &up(), FACADE).unwrap_err();
            assert_eq!(
                e.status,
                StatusCode::BAD_GATEWAY,
                "{status} {}",
                String::from_utf8_lossy(body)
            );
            assert!(!e.outcome(None).to_string().contains("8103"));
        }
    }

    #[test]
    fn client_errors_pass_through_with_scrubbed_outcome() {
        let oo = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "warning", "code": "informational", "diagnostics": "fyi"},
            {"severity": "error", "code": "conflict",
             "diagnostics": "Version mismatch at http://127.0.0.1:8103/fhir/R4/Patient/1"}]});
        let e = map(
            StatusCode::PRECONDITION_FAILED,
            &HeaderMap::new(),
            oo.to_string().as_bytes(),
            &up(),
            FACADE,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(e.code, IssueType::Conflict);
        assert_eq!(e.message, "Version mismatch at http://gw/fhir/Patient/1");
        let medplum = json!({"resourceType": "OperationOutcome", "id": "not-found",
            "issue": [{"severity": "error", "code": "not-found", "details": {"text": "Not found"}}]});
        let e = map(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            medplum.to_string().as_bytes(),
            &up(),
            FACADE,
        )
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code, e.message.as_str()),
            (404, IssueType::NotFound, "Not found")
        );
        let e = map(StatusCode::GONE, &HeaderMap::new(), b"", &up(), FACADE).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (410, IssueType::Deleted));
    }

    #[test]
    fn not_modified_keeps_the_version() {
        let r = map(
            StatusCode::NOT_MODIFIED,
            &hdrs(&[("etag", "W/\"4\"")]),
            b"",
            &up(),
            FACADE,
        )
        .unwrap();
        assert_eq!((r.status.as_u16(), r.version.as_deref()), (304, Some("4")));
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            http_date_to_instant("Sun, 06 Nov 1994 08:49:37 GMT").as_deref(),
            Some("1994-11-06T08:49:37.000Z")
        );
        assert_eq!(http_date_to_instant("yesterday"), None);
    }
}
