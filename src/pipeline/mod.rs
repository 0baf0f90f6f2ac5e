//! The FHIR pipeline. Every `/fhir` request passes the stages in this order
//! (the order is written down here once; see `STAGES`):
//!
//! 1. parse: HTTP → typed `FhirRequest` (done by `http::fhir`, normalised by
//!    interaction, never by HTTP method);
//! 2. authenticate: bearer token → `AccessContext`, or 401 (`authenticate`);
//!    the CapabilityStatement alone is public;
//! 3. limits: the client's rate limit (429, `ratelimit`), then `_count`
//!    validated and capped, the cap reported (`limits`); the whole request
//!    runs within `limits::deadline` (set by `http::fhir`);
//! 4. authorize: SMART scopes by type and interaction, patient compartment,
//!    granular constraints; may refuse (403) or narrow the request (`authorize`);
//! 5. route: the request goes to the configured `Upstream` (embedded store or
//!    HTTP FHIR server), whose answer already carries the facade's URLs;
//! 6. filter: every resource of the answer is checked again against the
//!    caller's grants (`authorize::filter_response`), so `_include`, chains
//!    and batch entries cannot smuggle data out;
//! 7. respond: `Prefer` and content negotiation are applied when rendering.
//!
//! A client registered for secondary use (`[deid.clients]`) only searches
//! de-identified data (`deid::search`: checked before step 4, the answer
//! gated by research consent and de-identified after step 6).
//!
//! The consent stage (`consent`) takes over steps 5–6 for every caller not
//! exempt from consent: it asks the upstream itself and judges every
//! resource of the answer (see `authorize::route_as`). `AuditEvent` reads
//! and searches are answered from the audit ledger (`audit::read`); the
//! payer operations and Group reads by the `payer` module. The
//! audit stage runs after the pipeline, in `http::fhir`, and records what
//! the pipeline put in the request's [`Disclosure`] before the response is
//! released.
//!
//! Each stage runs in a trace span of its name (`observability::otel`:
//! authenticate, authorize, consent, upstream, filter, ledger.append).

use smart_launch::context::AccessContext;
use tracing::Instrument;

use crate::{
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse, Interaction},
    observability::otel,
    AppState,
};

pub mod authenticate;
pub mod authorize;
pub mod consent;
pub mod disclosure;
pub mod limits;
pub mod ratelimit;

pub use disclosure::Disclosure;

/// The stage order, for documentation and logs.
pub const STAGES: &[&str] = &[
    "parse",
    "authenticate",
    "limits",
    "authorize",
    "route",
    "filter",
    "respond",
];

/// Runs one request through the stages after parsing.
pub async fn handle(
    app: &AppState,
    req: FhirRequest,
    request_id: &str,
    authorization: Option<&str>,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    if req.interaction == Interaction::Capabilities {
        return capabilities(app, &req, request_id).await;
    }
    let caller = authenticate::authenticate(app, authorization)
        .instrument(otel::stage("authenticate"))
        .await?;
    disclosure.caller = Some(disclosure::Caller::of(&caller));
    app.rate.check(&caller.client_id)?;
    // a client registered for secondary use gets de-identified data only
    let mut req = req;
    let Some(deid) = crate::deid::search::check(app, &caller, &mut req)? else {
        return handle_as(app, req, &caller, request_id, disclosure).await;
    };
    let mut resp = handle_as(app, req, &caller, request_id, disclosure).await?;
    deid.finish(app, &mut resp, disclosure).await?;
    Ok(resp)
}

/// The stages after authentication, for a known caller.
pub async fn handle_as(
    app: &AppState,
    mut req: FhirRequest,
    caller: &AccessContext,
    request_id: &str,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let ctx = app.request_context(request_id);
    let capped = limits::cap_count(&mut req, ctx.max_page_size)?;
    // AuditEvents are served from the ledger, never from the upstream; a
    // Patient-compartment search (`Patient/[id]/AuditEvent`) is the ledger's
    // `patient` search (R4: AuditEvent's compartment parameter is `patient`).
    if req.resource_type.as_deref() == Some("AuditEvent") {
        if let Some((ty, id)) = req.compartment.take_if(|(ty, _)| ty == "Patient") {
            req.interaction = Interaction::SearchType;
            req.params
                .push(("patient".to_owned(), format!("{ty}/{id}")));
        }
        if req.compartment.is_none() {
            return crate::audit::read::search_audit(app, caller, &req).await;
        }
    }
    // Bulk Data `$export` kick-offs are run by the bulk module.
    if crate::bulk::is_export(&req) {
        return Box::pin(crate::bulk::kickoff(
            app, req, caller, request_id, disclosure,
        ))
        .await;
    }
    // Payer APIs ($member-match, $bulk-member-match, $davinci-data-export)
    // and Group visibility are answered by the payer module.
    if let Some(op) = crate::payer::Operation::of(&req) {
        return Box::pin(crate::payer::run(app, caller, op, req, &ctx, disclosure)).await;
    }
    // Da Vinci PAS (Claim/$submit, Claim/$inquire): the prior_auth module.
    if let Some(op) = crate::prior_auth::Operation::of(&req) {
        return Box::pin(crate::prior_auth::run(app, caller, op, req, disclosure)).await;
    }
    // Da Vinci DTR ($questionnaire-package, $next-question): the dtr module.
    if let Some(op) = crate::dtr::Operation::of(&req) {
        return Box::pin(crate::dtr::run(app, caller, op, req, disclosure)).await;
    }
    // `$validate` (type and instance level): the validation module.
    if crate::validation::is_validate(&req) {
        return Box::pin(crate::validation::run(app, caller, req, &ctx, disclosure)).await;
    }
    // Writes checked against profiles on the way in (`[validation] on_write`).
    if let Some(refused) = crate::validation::on_write(app, &req) {
        return Ok(refused);
    }
    // Subscriptions on the PAS topic (Subscriptions R5 Backport): the
    // subscriptions module; never the upstream.
    if crate::subscriptions::applies(&req) {
        return Box::pin(crate::subscriptions::route(app, caller, req, disclosure)).await;
    }
    crate::subscriptions::refuse_indirect(&req)?;
    let mut resp = if crate::payer::groups::applies(&req) {
        crate::payer::groups::route(app, caller, req, &ctx, disclosure).await?
    } else {
        authorize::route_as(app, caller, req, &ctx, disclosure).await?
    };
    if let Some(asked) = capped {
        limits::report_cap(&mut resp, asked, ctx.max_page_size);
    }
    Ok(resp)
}

/// `GET /fhir/metadata`: public; the statement of what this instance
/// serves, built from its configuration and its store (`capabilities`).
async fn capabilities(
    app: &AppState,
    req: &FhirRequest,
    request_id: &str,
) -> FhirResult<FhirResponse> {
    crate::capabilities::statement(app, req, request_id).await
}
