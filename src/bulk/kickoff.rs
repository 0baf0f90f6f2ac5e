//! The `$export` kick-off: validates the request, checks the Group and the
//! `_typeFilter` queries as the client, enforces the concurrency limit
//! (429), checks a de-identified export's purpose and profile
//! (`deid::export::authorize`), stores the job and answers 202 with an
//! absolute `Content-Location` (the status URL).

use axum::http::StatusCode;
use serde_json::json;
use smart_launch::context::AccessContext;

use super::{
    jobs::{self, Job, Level, Progress, StoredCaller},
    params,
};
use crate::{
    error::{FhirError, FhirResult, IssueType},
    fhir::{now_instant, FhirRequest, FhirResponse, Interaction, PreferHandling},
    pipeline::{self, Disclosure},
    AppState,
};

fn db(e: sqlx::Error) -> FhirError {
    FhirError::unavailable(format!("bulk job store: {e}"))
}

/// Handles `[base](/Patient|/Group/{id})/$export`.
pub async fn kickoff(
    app: &AppState,
    req: FhirRequest,
    caller: &AccessContext,
    request_id: &str,
    _disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    if !req.prefer.respond_async {
        return Err(FhirError::bad_request(
            "$export is asynchronous: send Prefer: respond-async",
        ));
    }
    let level = match (req.resource_type.as_deref(), req.id.as_deref()) {
        (None, None) => Level::System,
        (Some("Patient"), None) => Level::Patient,
        (Some("Group"), Some(id)) => Level::Group(id.to_owned()),
        _ => {
            return Err(FhirError::new(
                StatusCode::BAD_REQUEST,
                IssueType::NotSupported,
                "$export is supported at [base], [base]/Patient and [base]/Group/[id]",
            ))
        }
    };
    let is_post = req.body.is_some();
    let mut spec = params::parse(&req, level.clone(), is_post)?;
    let mut stored = StoredCaller::of(caller);
    if let Some(d) = spec.deid.take() {
        // secondary use: the stated purpose is the job's (consent judges
        // every batch with it, so `research` Consents apply)
        let stated = req
            .purpose_of_use
            .as_deref()
            .or(caller.purpose_of_use.as_deref());
        let d =
            crate::deid::export::authorize(app, caller, stated, &d.profile, d.key_set.as_deref())?;
        stored.purpose_of_use = Some(d.purpose.clone());
        spec.deid = Some(d);
    }
    if let Level::Group(id) = &level {
        // The Group must exist and the client's scopes must reach it.
        read_group(app, caller, id, request_id).await?;
    }
    // Each `_typeFilter` must be a search the client may run.
    let lenient = req.prefer.handling == Some(PreferHandling::Lenient);
    let mut kept = Vec::new();
    for (t, q) in std::mem::take(&mut spec.type_filters) {
        let mut probe = FhirRequest::new(Interaction::SearchType);
        probe.resource_type = Some(t.clone());
        probe.params = params::filter_params(&q);
        probe.params.push(("_count".into(), "1".into()));
        probe.prefer.handling = Some(PreferHandling::Strict);
        let mut scratch = Disclosure::default();
        match pipeline::handle_as(app, probe, caller, request_id, &mut scratch).await {
            Err(e) if e.status == StatusCode::BAD_REQUEST && lenient => {}
            Err(e) if e.status == StatusCode::BAD_REQUEST => {
                return Err(FhirError::bad_request(format!(
                    "_typeFilter {t}?{q} is not a valid search: {}",
                    e.message
                )))
            }
            _ => kept.push((t, q)),
        }
    }
    spec.type_filters = kept;
    let base = app.config.fhir_base();
    let job = Job {
        id: uuid::Uuid::new_v4().simple().to_string(),
        client_id: caller.client_id.clone(),
        status: jobs::status::QUEUED.into(),
        request: request_url(&base, &req),
        spec,
        caller: stored,
        transaction_time: now_instant(),
        progress: Progress::default(),
        last_poll: None,
        finished: None,
    };
    enqueue(app, job, "export").await
}

/// Stores a queued job for the worker, unless `bulk.max_concurrent_jobs`
/// are queued or running already (429 with `Retry-After`), and answers 202
/// with the absolute status URL in `Content-Location`.
pub async fn enqueue(app: &AppState, job: Job, what: &str) -> FhirResult<FhirResponse> {
    let cfg = &app.config.bulk;
    let active = jobs::count_active(&app.state).await.map_err(db)?;
    if active >= cfg.max_concurrent_jobs as i64 {
        return Err(FhirError::new(
            StatusCode::TOO_MANY_REQUESTS,
            IssueType::Throttled,
            format!(
                "too many {what} jobs in progress (limit {}); retry later",
                cfg.max_concurrent_jobs
            ),
        )
        .retry_after(cfg.retry_after_seconds.max(1)));
    }
    jobs::insert(&app.state, &job, super::now_ms())
        .await
        .map_err(db)?;
    app.bulk.wake.notify_one();
    let mut resp = FhirResponse::new(
        StatusCode::ACCEPTED,
        Some(json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "information", "code": "informational",
            "diagnostics": format!("{what} job {} accepted; poll the Content-Location", job.id)}]})),
    );
    resp.content_location = Some(format!("{}/bulk/status/{}", app.config.fhir_base(), job.id));
    Ok(resp)
}

/// Reads a Group for its membership: the client's scopes must allow reading
/// it (403/404 otherwise) and the Group rules must let this client export it
/// (`payer::groups`: a payer's own matched Groups, a provider's attribution
/// Groups; 404 otherwise). The Group is read on fhirgate's identity and never
/// released, so a member's consent does not hide the list; each member's
/// data is judged by consent when exported.
pub async fn read_group(
    app: &AppState,
    caller: &AccessContext,
    id: &str,
    request_id: &str,
) -> FhirResult<serde_json::Value> {
    let mut read = FhirRequest::new(Interaction::Read);
    read.resource_type = Some("Group".into());
    read.id = Some(id.to_owned());
    let auth = pipeline::authorize::authorize(caller, &mut read)?;
    let ctx = app.request_context(request_id);
    let mut resp = app.upstream.execute(&read, &ctx).await?;
    pipeline::authorize::filter_response(caller, &auth, &mut resp)?;
    let group = resp
        .body
        .ok_or_else(|| FhirError::not_found(format!("Group/{id} is not known")))?;
    // the Group rules (a payer's matched Groups, a provider's attribution
    // Groups) decide whether this client may export it at all
    crate::payer::groups::exportable_members(app, &caller.client_id, &group)
        .await
        .map_err(|_| FhirError::not_found(format!("Group/{id} is not known")))?;
    Ok(group)
}

/// The kick-off URL as the client sent it (path and query).
fn request_url(base: &str, req: &FhirRequest) -> String {
    let mut path = base.to_owned();
    if let Some(t) = &req.resource_type {
        path.push('/');
        path.push_str(t);
    }
    if let Some(id) = &req.id {
        path.push('/');
        path.push_str(id);
    }
    path.push_str("/$export");
    if !req.params.is_empty() {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(req.params.iter())
            .finish();
        path.push('?');
        path.push_str(&q);
    }
    path
}
