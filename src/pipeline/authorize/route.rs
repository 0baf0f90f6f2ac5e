//! The authorize stage around routing ([`route_as`]): the two things the
//! stage needs from the routing step besides the request itself: answering
//! an empty searchset without asking the upstream, and reading the current
//! version of a resource before a restricted write
//! ([`Authorized::verify_existing`]).

use serde_json::json;
use smart_launch::context::AccessContext;
use tracing::Instrument;

use super::{access, authorize, filter_response, forbidden, op_name, Authorized};
use crate::{
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse, Interaction},
    observability::otel,
    pipeline::{consent, disclosure::Disclosure},
    upstream::RequestContext,
    AppState,
};

/// An empty `searchset` for a search nothing visible can match.
pub fn empty_searchset(base: &str, req: &FhirRequest) -> FhirResponse {
    let mut path = String::new();
    if let Some((ct, cid)) = &req.compartment {
        path = format!("/{ct}/{cid}");
    }
    if let Some(t) = &req.resource_type {
        path = format!("{path}/{t}");
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(req.params.iter())
        .finish();
    let sep = if query.is_empty() { "" } else { "?" };
    FhirResponse::ok(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 0,
        "link": [{"relation": "self", "url": format!("{}{path}{sep}{query}", base.trim_end_matches('/'))}],
    }))
}

/// Checks [`Authorized::verify_existing`] by reading each resource upstream.
async fn verify_existing(
    app: &AppState,
    caller: &AccessContext,
    auth: &Authorized,
    ctx: &RequestContext,
) -> FhirResult<()> {
    for e in &auth.verify_existing {
        let mut read = FhirRequest::new(Interaction::Read);
        read.resource_type = Some(e.resource_type.clone());
        read.id = Some(e.id.clone());
        let current = match app.upstream.execute(&read, ctx).await {
            Ok(r) => r.body,
            Err(err) if matches!(err.status.as_u16(), 404 | 410) => continue,
            Err(err) => return Err(err),
        };
        let visible = current
            .as_ref()
            .is_some_and(|b| access(caller, &e.resource_type, e.op).admits(&e.resource_type, b));
        if !visible {
            return Err(forbidden(format!(
                "{}/{} is outside what the access token may {}",
                e.resource_type,
                e.id,
                op_name(e.op)
            )));
        }
    }
    Ok(())
}

/// Stages authorize → route → filter for one caller: [`authorize`], then an
/// empty searchset when nothing visible can match, the write preconditions
/// ([`Authorized::verify_existing`]), and either the consent stage (which
/// asks the upstream and judges every resource) or, for exempt clients, the
/// upstream and [`filter_response`] alone.
/// `pipeline::handle_as` calls this between its limits and respond steps.
pub async fn route_as(
    app: &AppState,
    caller: &AccessContext,
    mut req: FhirRequest,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let auth = otel::stage("authorize").in_scope(|| authorize(caller, &mut req))?;
    if auth.answer_empty {
        return Ok(empty_searchset(&ctx.base, &req));
    }
    verify_existing(app, caller, &auth, ctx).await?;
    if consent::applies(app, caller) {
        return consent::route(app, caller, &auth, req, ctx, disclosure)
            .instrument(otel::stage("consent"))
            .await;
    }
    let mut resp = app.upstream.execute(&req, ctx).await?;
    otel::stage("filter").in_scope(|| filter_response(caller, &auth, &mut resp))?;
    consent::write::reindex_exempt(app, ctx, &req, &resp).await?;
    consent::record_exempt(&resp, &ctx.base, disclosure);
    Ok(resp)
}
