//! Request limits of the FHIR API:
//! - paging: `_count` must be a non-negative integer and is capped at the
//!   configured maximum page size; a capped request is told so in an
//!   OperationOutcome entry of the Bundle (`search.mode = outcome`);
//! - time: a whole request (pipeline and rendering, not the audit append
//!   after it) gets `[limits] request_timeout_secs`, else 503 `timeout`
//!   ([`deadline`]; the request is still audited, with that status);
//! - size: bodies above `max_body_bytes` are refused 413 while parsing
//!   (`http::fhir`); the per-client rate limit is [`super::ratelimit`].

use std::{future::Future, time::Duration};

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::{
    config::Limits,
    error::{FhirError, FhirResult, IssueType},
    fhir::{FhirRequest, FhirResponse},
};

/// Runs `work` within the configured request time limit (none when 0).
pub async fn deadline<T>(limits: &Limits, work: impl Future<Output = T>) -> FhirResult<T> {
    if limits.request_timeout_secs == 0 {
        return Ok(work.await);
    }
    within(Duration::from_secs(limits.request_timeout_secs), work).await
}

/// Runs `work` for at most `limit`.
async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> FhirResult<T> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| timed_out(limit.as_secs()))
}

/// The answer to a request that ran out of time.
pub fn timed_out(secs: u64) -> FhirError {
    let mut e = FhirError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        IssueType::Timeout,
        format!("the request did not complete within {secs} seconds"),
    );
    e.internal = Some("request time limit reached".into());
    e
}

/// Validates and caps `_count` in place; returns the asked value when capped.
pub fn cap_count(req: &mut FhirRequest, max: u32) -> FhirResult<Option<u64>> {
    let mut capped = None;
    for (k, v) in req.params.iter_mut().filter(|(k, _)| k == "_count") {
        let asked: u64 = v.trim().parse().map_err(|_| {
            FhirError::processing(format!("{k} must be a non-negative integer, not '{v}'"))
        })?;
        if asked > u64::from(max) {
            *v = max.to_string();
            capped = Some(asked);
        }
    }
    Ok(capped)
}

/// Adds the "capped" note to a Bundle answer.
pub fn report_cap(resp: &mut FhirResponse, asked: u64, max: u32) {
    let Some(Value::Object(bundle)) = resp.body.as_mut() else {
        return;
    };
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return;
    }
    let note = json!({
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "information",
                "code": "informational",
                "diagnostics": format!("_count={asked} exceeds the maximum page size; pages hold at most {max} entries"),
            }]
        },
        "search": {"mode": "outcome"}
    });
    match bundle.get_mut("entry") {
        Some(Value::Array(entries)) => entries.push(note),
        _ => {
            bundle.insert("entry".into(), Value::Array(vec![note]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::Interaction;

    #[test]
    fn count_is_validated_and_capped() {
        let mut r = FhirRequest::new(Interaction::SearchType);
        r.params = vec![("_count".into(), "100000".into())];
        assert_eq!(cap_count(&mut r, 1000).unwrap(), Some(100000));
        assert_eq!(r.param("_count"), Some("1000"));
        r.params = vec![("_count".into(), "10".into())];
        assert_eq!(cap_count(&mut r, 1000).unwrap(), None);
        r.params = vec![("_count".into(), "-1".into())];
        assert_eq!(cap_count(&mut r, 1000).unwrap_err().status.as_u16(), 400);
        r.params = vec![("_count".into(), "ten".into())];
        assert!(cap_count(&mut r, 1000).is_err());
    }

    #[tokio::test]
    async fn the_deadline_answers_503_timeout_and_zero_means_none() {
        let slow = tokio::time::sleep(Duration::from_secs(3));
        let e = within(Duration::from_millis(20), slow).await.unwrap_err();
        assert_eq!((e.status.as_u16(), e.code.code()), (503, "timeout"));
        let limits = Limits::default();
        assert_eq!(deadline(&limits, async { 7 }).await.unwrap(), 7);
        let off = Limits {
            request_timeout_secs: 0,
            ..Limits::default()
        };
        let quick = tokio::time::sleep(Duration::from_millis(20));
        assert!(deadline(&off, quick).await.is_ok());
    }

    #[test]
    fn the_cap_is_reported_in_the_bundle() {
        let mut resp =
            FhirResponse::ok(json!({"resourceType": "Bundle", "type": "searchset", "entry": []}));
        report_cap(&mut resp, 100000, 1000);
        let body = resp.body.unwrap();
        assert_eq!(body["entry"][0]["search"]["mode"], "outcome");
        assert!(body["entry"][0]["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("100000"));
    }
}
