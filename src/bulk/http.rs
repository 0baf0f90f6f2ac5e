//! The status and file endpoints under `/fhir/bulk/`, dispatched by the
//! `/fhir` handler before FHIR parsing so its audit step records every
//! poll, delete, download and refusal. Both need the bearer token of the
//! client that kicked the job off: no token → 401; another client's → 404
//! (as for a job that does not exist).

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, Method, StatusCode},
    response::Response,
};
use serde_json::json;

use object_store::ObjectStore;

use super::{
    files,
    jobs::{self, status, Job},
    manifest,
};
use crate::{
    audit::FhirFacts,
    error::{FhirError, FhirResult, IssueType},
    fhir::{FhirRequest, Interaction},
    http::render::{self, Format},
    pipeline::{self, disclosure::Caller, Disclosure},
    AppState,
};

/// Whether the path is one of ours.
pub fn is_bulk_path(path: &str) -> bool {
    path.starts_with("/fhir/bulk/")
}

/// Answers `/fhir/bulk/status/{job}` and `/fhir/bulk/files/{job}/{file}`.
pub async fn respond(
    app: &AppState,
    req: Request,
    request_id: &str,
    disclosure: &mut Disclosure,
    facts: &mut Option<FhirFacts>,
) -> Response {
    match answer(app, req, request_id, disclosure, facts).await {
        Ok(r) => r,
        Err(e) => render::error(&e, Format::FhirJson, false, request_id),
    }
}

fn gone_or_missing() -> FhirError {
    FhirError::not_found("no such export job (unknown, deleted, or not yours)")
}

async fn answer(
    app: &AppState,
    req: Request,
    request_id: &str,
    disclosure: &mut Disclosure,
    facts: &mut Option<FhirFacts>,
) -> FhirResult<Response> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path
        .trim_start_matches("/fhir/bulk/")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = req.method().clone();
    let (op, job_id, file) = match (segments.as_slice(), &method) {
        (["status", job], &Method::GET) => ("bulk-status", *job, None),
        (["status", job], &Method::DELETE) => ("bulk-delete", *job, None),
        (["files", job, file], &Method::GET) => ("bulk-download", *job, Some(*file)),
        (["status", _], _) | (["files", _, _], _) => {
            return Err(FhirError::method_not_allowed("method not supported here"))
        }
        _ => return Err(FhirError::not_found("no such bulk endpoint")),
    };
    let mut f = FhirRequest::new(Interaction::Operation);
    f.operation = Some(op.to_owned());
    f.id = Some(job_id.to_owned());
    *facts = Some(FhirFacts::of(&f));
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = pipeline::authenticate::authenticate(app, authorization).await?;
    disclosure.caller = Some(Caller::of(&caller));
    let job = jobs::get(&app.state, job_id)
        .await
        .map_err(|e| FhirError::unavailable(format!("bulk job store: {e}")))?
        .filter(|j| j.client_id == caller.client_id && j.status != status::DELETED)
        .ok_or_else(gone_or_missing)?;
    match op {
        "bulk-status" => poll(app, &job).await,
        "bulk-delete" => delete(app, &job).await,
        _ => download(app, &job, file.unwrap_or_default(), request_id).await,
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn set(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

async fn poll(app: &AppState, job: &Job) -> FhirResult<Response> {
    let cfg = &app.config.bulk;
    let now = super::now_ms();
    let db = |e: sqlx::Error| FhirError::unavailable(format!("bulk job store: {e}"));
    let in_progress = job.status == status::QUEUED || job.status == status::RUNNING;
    if in_progress && cfg.min_poll_seconds > 0 {
        if let Some(last) = job.last_poll {
            if now - last < (cfg.min_poll_seconds as i64) * 1000 {
                let e = FhirError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    IssueType::Throttled,
                    "polled too often; wait for Retry-After",
                );
                let mut r = json_response(e.status, &e.outcome(None));
                set(&mut r, "retry-after", &cfg.retry_after_seconds.to_string());
                return Ok(r);
            }
        }
    }
    jobs::polled(&app.state, &job.id, now).await.map_err(db)?;
    if in_progress {
        let p = &job.progress;
        let progress = if p.types.is_empty() {
            "queued".to_owned()
        } else {
            format!("{} of {} resource types done", p.done.len(), p.types.len())
        };
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::ACCEPTED;
        set(&mut r, "x-progress", &progress);
        set(&mut r, "retry-after", &cfg.retry_after_seconds.to_string());
        return Ok(r);
    }
    if job.status == status::FAILED {
        let msg = job.progress.errors.join("; ");
        let e = FhirError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueType::Exception,
            format!("the export failed: {msg}"),
        );
        return Ok(json_response(e.status, &e.outcome(None)));
    }
    let base = app.config.fhir_base();
    let mut r = json_response(StatusCode::OK, &manifest::manifest(&base, job));
    let finished = job.finished.unwrap_or(now);
    let expires = finished + (cfg.expires_hours as i64) * 3_600_000;
    if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(expires / 1000) {
        if let Ok(s) = t.format(&time::format_description::well_known::Rfc2822) {
            set(&mut r, "expires", &s.replace("+0000", "GMT"));
        }
    }
    Ok(r)
}

async fn delete(app: &AppState, job: &Job) -> FhirResult<Response> {
    jobs::mark_deleted(&app.state, &job.id, super::now_ms())
        .await
        .map_err(|e| FhirError::unavailable(format!("bulk job store: {e}")))?;
    files::remove_job(app.bulk.store.as_ref(), &job.id)
        .await
        .map_err(|e| FhirError::internal(format!("bulk files: {e}")))?;
    let body = json!({"resourceType": "OperationOutcome", "issue": [{
        "severity": "information", "code": "informational",
        "diagnostics": "the export job and its files were deleted"}]});
    Ok(json_response(StatusCode::ACCEPTED, &body))
}

async fn download(app: &AppState, job: &Job, name: &str, _rid: &str) -> FhirResult<Response> {
    if job.status != status::COMPLETE {
        return Err(FhirError::not_found("the export is not complete"));
    }
    let p = &job.progress;
    if !p
        .output
        .iter()
        .chain(p.error.iter())
        .chain(p.deleted.iter())
        .any(|f| f.name == name)
    {
        return Err(FhirError::not_found("no such file in this export"));
    }
    let got = app
        .bulk
        .store
        .get(&files::object(&job.id, name))
        .await
        .map_err(|e| FhirError::not_found(format!("file unavailable: {e}")))?;
    let mut r = Response::new(Body::from_stream(got.into_stream()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+ndjson"),
    );
    Ok(r)
}
