//! `POST /fhir/Group/$bulk-member-match` (PDex 2.x Payer-to-Payer, bulk).
//!
//! Input `Parameters`: one or more `MemberBundle` parts, each with the
//! `$member-match` parts as `part` (`MemberPatient`, `CoverageToMatch`,
//! `CoverageToLink` optional, `Consent`); a malformed bundle is 400 naming
//! it (`MemberBundle[i].Consent`).
//!
//! With `Prefer: respond-async` (what PDex requires) the request is
//! validated (400), throttled (429) and queued as a job of the Bulk Data
//! core (`bulk::jobs`, task `bulk-member-match`): 202 with an absolute
//! `Content-Location` (`/fhir/bulk/status/{job}`), polled like an export;
//! when done, the manifest's `output` holds one `Parameters` file (one
//! NDJSON line, the answer below). The job's Groups and Consents have ids
//! derived from the job, so a job resumed after a crash stores them once.
//! Without the header the answer is given synchronously (a convenience
//! beyond PDex). Either way each member is matched as `$member-match` does,
//! then the Groups are created in the upstream and returned in a
//! `Parameters`:
//! - `MatchedMembers` (always): one member per unique match with a Consent
//!   that can be honoured, `entity` the member's Patient and the
//!   `MemberIdentifier` as an extension-free `entity.identifier`; the
//!   Consent is stored for the member.
//! - `NonMatchedMembers` (when any): no match or several; the submitted
//!   Patients are contained and referenced (`#nm-<i>`).
//! - `ConsentConstrainedMembers` (when any): matched but the Consent cannot
//!   be honoured; the submitted Patients are contained (`#cc-<i>`), our
//!   member id is not revealed.
//!
//! Each Group's `managingEntity` names the requesting client
//! ([`groups::owner_reference`]), so only that client sees it. Each member
//! that did not match counts as one failed match ([`throttle`]).

use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::{consent, groups, matching, member_match, params, throttle};
use crate::{
    audit::{FhirFacts, HttpFacts},
    bulk::jobs::{self, FileEntry, Job, Level, Progress, Spec, StoredCaller, Task},
    error::{FhirError, FhirResult},
    fhir::{now_instant, FhirRequest, FhirResponse, Interaction},
    pipeline::Disclosure,
    upstream::RequestContext,
    AppState,
};

/// The PDex member-match Group code system.
pub const GROUP_CODES: &str =
    "http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PdexMultiMemberMatchResultCS";

/// Most members one request may carry.
pub const MAX_MEMBERS: usize = 500;

/// Runs the operation: queued with `Prefer: respond-async`, else answered
/// at once.
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    req: &FhirRequest,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let client = caller.client_id.as_str();
    throttle::check(app, client).await?;
    let inputs = inputs(req.body.as_ref())?;
    if req.prefer.respond_async {
        return kickoff(app, caller, req).await;
    }
    let out = match_all(app, ctx, client, &inputs, disclosure, None).await?;
    Ok(FhirResponse::ok(out))
}

/// The validated `MemberBundle`s of a request body.
fn inputs(body: Option<&Value>) -> FhirResult<Vec<member_match::MatchInput>> {
    let parts = params::parameters(body, "bulk-member-match")?;
    let bundles: Vec<&Value> = params::named(&parts, "MemberBundle").collect();
    if bundles.is_empty() {
        return Err(FhirError::bad_request("parameter MemberBundle is missing"));
    }
    if bundles.len() > MAX_MEMBERS {
        return Err(FhirError::bad_request(format!(
            "at most {MAX_MEMBERS} MemberBundle parts per request"
        )));
    }
    let mut inputs = Vec::new();
    for (i, b) in bundles.iter().enumerate() {
        let sub = b["part"].as_array().cloned().unwrap_or_default();
        inputs.push(member_match::input(&sub, &format!("MemberBundle[{i}]."))?);
    }
    Ok(inputs)
}

/// Queues the match as a job and answers 202 with its status URL.
async fn kickoff(
    app: &AppState,
    caller: &AccessContext,
    req: &FhirRequest,
) -> FhirResult<FhirResponse> {
    let base = app.config.fhir_base();
    let job = Job {
        id: uuid::Uuid::new_v4().simple().to_string(),
        client_id: caller.client_id.clone(),
        status: jobs::status::QUEUED.into(),
        request: format!("{base}/Group/$bulk-member-match"),
        spec: Spec {
            level: Level::System,
            types: vec!["Parameters".into()],
            since: None,
            elements: Vec::new(),
            type_filters: Vec::new(),
            patients: Vec::new(),
            task: Task::BulkMemberMatch {
                input: req.body.clone().unwrap_or(Value::Null),
            },
            deid: None,
        },
        caller: StoredCaller::of(caller),
        transaction_time: now_instant(),
        progress: Progress::default(),
        last_poll: None,
        finished: None,
    };
    crate::bulk::kickoff::enqueue(app, job, "$bulk-member-match").await
}

/// Runs a queued match for the bulk worker: matches, stores the Groups and
/// Consents (ids derived from the job), records the disclosure on the audit
/// ledger and writes the answer as `Parameters-1.ndjson`.
pub async fn run_job(
    app: &AppState,
    job: &Job,
    caller: &AccessContext,
    input: &Value,
) -> Result<Vec<FileEntry>, String> {
    let rid = format!("bulk-{}", job.id);
    let ctx = app.request_context(&rid);
    let inputs = inputs(Some(input)).map_err(|e| e.message)?;
    let mut d = Disclosure::of(caller);
    let result = match_all(app, &ctx, &caller.client_id, &inputs, &mut d, Some(&job.id)).await;
    let status = match &result {
        Ok(_) => 200,
        Err(e) => e.status.as_u16(),
    };
    let mut op = FhirRequest::new(Interaction::Operation);
    op.resource_type = Some("Group".into());
    op.operation = Some("bulk-member-match".into());
    let http = HttpFacts {
        method: "POST".into(),
        path: format!("/fhir/bulk/member-match/{}", job.id),
        query: None,
        client_addr: None,
        recorded: crate::bulk::now_ms(),
    };
    app.audit
        .record_fhir(&rid, &http, Some(&FhirFacts::of(&op)), &d, status)
        .await
        .map_err(|e| format!("audit ledger unavailable: {e}"))?;
    let out = result.map_err(|e| format!("$bulk-member-match: {} {}", status, e.message))?;
    let mut line = out.to_string().into_bytes();
    line.push(b'\n');
    let name = "Parameters-1.ndjson";
    crate::bulk::files::put(app.bulk.store.as_ref(), &job.id, name, line)
        .await
        .map_err(|e| format!("writing {name}: {e}"))?;
    Ok(vec![FileEntry {
        type_: "Parameters".into(),
        name: name.into(),
        count: 1,
    }])
}

/// Matches every member and creates the result Groups (`job`: ids derived
/// from it, for an asynchronous run).
async fn match_all(
    app: &AppState,
    ctx: &RequestContext,
    client: &str,
    inputs: &[member_match::MatchInput],
    disclosure: &mut Disclosure,
    job: Option<&str>,
) -> FhirResult<Value> {
    let (mut matched, mut unmatched, mut constrained) = (Vec::new(), Vec::new(), Vec::new());
    let (mut nm_contained, mut cc_contained) = (Vec::new(), Vec::new());
    for (i, input) in inputs.iter().enumerate() {
        match matching::find(app, ctx, &input.patient, &input.coverage).await? {
            matching::Found::One { patient, .. } => {
                let pid = patient["id"].as_str().unwrap_or_default().to_owned();
                if consent::honourable(&input.consent).is_err() {
                    constrained.push(contained_member(&mut cc_contained, "cc", i, &input.patient));
                    continue;
                }
                let cid = job.map(|j| format!("bmm-{j}-{i}"));
                consent::store_as(app, ctx, &input.consent, &pid, cid.as_deref()).await?;
                let reference = format!("Patient/{pid}");
                disclosure
                    .patient(&reference)
                    .released
                    .push(reference.clone());
                matched.push(json!({
                    "entity": {
                        "reference": reference,
                        "identifier": member_match::member_identifier(app, &pid)
                    }
                }));
            }
            matching::Found::None | matching::Found::Several(_) => {
                throttle::fail(app, client, &ctx.request_id).await?;
                unmatched.push(contained_member(&mut nm_contained, "nm", i, &input.patient));
            }
        }
    }
    let gid = |code: &str| job.map(|j| format!("bmm-{j}-{code}"));
    let mut out = vec![json!({
        "name": "MatchedMembers",
        "resource": create(app, ctx, client, "match", "Matched members", matched, Vec::new(), gid("match")).await?
    })];
    if !unmatched.is_empty() {
        out.push(json!({
            "name": "NonMatchedMembers",
            "resource": create(app, ctx, client, "nomatch", "Non-matched members", unmatched, nm_contained, gid("nomatch")).await?
        }));
    }
    if !constrained.is_empty() {
        out.push(json!({
            "name": "ConsentConstrainedMembers",
            "resource": create(app, ctx, client, "consentconstraint", "Consent-constrained members", constrained, cc_contained, gid("consentconstraint")).await?
        }));
    }
    Ok(params::build(out))
}

/// A member entry pointing at the submitted Patient, contained as `#<tag>-<i>`.
fn contained_member(contained: &mut Vec<Value>, tag: &str, i: usize, patient: &Value) -> Value {
    let local = format!("{tag}-{i}");
    let mut p = patient.clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("meta");
        o.insert("id".into(), json!(local));
    }
    contained.push(p);
    json!({"entity": {"reference": format!("#{local}")}})
}

/// Creates one result Group in the upstream (as the system) and returns it
/// (`id`: stored under that id, by an update that creates).
#[allow(clippy::too_many_arguments)]
async fn create(
    app: &AppState,
    ctx: &RequestContext,
    client: &str,
    code: &str,
    name: &str,
    members: Vec<Value>,
    contained: Vec<Value>,
    id: Option<String>,
) -> FhirResult<Value> {
    let mut g = json!({
        "resourceType": "Group",
        "type": "person",
        "actual": true,
        "code": {"coding": [{"system": GROUP_CODES, "code": code}]},
        "name": name,
        "managingEntity": groups::owner_reference(client),
        "quantity": members.len(),
        "characteristic": [{
            "code": {"coding": [{"system": GROUP_CODES, "code": code}]},
            "valueBoolean": true,
            "exclude": false
        }]
    });
    if !members.is_empty() {
        g["member"] = Value::Array(members);
    }
    if !contained.is_empty() {
        g["contained"] = Value::Array(contained);
    }
    if let Some(id) = &id {
        g["id"] = json!(id);
    }
    let mut req = FhirRequest::new(if id.is_some() {
        Interaction::Update
    } else {
        Interaction::Create
    });
    req.resource_type = Some("Group".into());
    req.id = id;
    req.body = Some(g);
    app.upstream
        .execute(&req, ctx)
        .await?
        .body
        .ok_or_else(|| FhirError::internal("the upstream stored the Group without a body"))
}
