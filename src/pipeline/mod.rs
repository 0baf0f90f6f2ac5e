//! The FHIR pipeline. Every `/fhir` request passes the stages in this order
//! (the order is written down here once; see `STAGES`):
//!
//! 1. parse: HTTP → typed `FhirRequest` (done by `http::fhir`, normalised by
//!    interaction, never by HTTP method);
//! 2. limits: `_count` validated and capped, the cap reported (`limits`);
//! 3. route: the request goes to the configured `Upstream` (embedded store or
//!    HTTP FHIR server), whose answer already carries the facade's URLs;
//! 4. respond: `Prefer` and content negotiation are applied when rendering.
//!
//! Authentication, scope enforcement, consent and the audit ledger are added
//! as their own stages between 1 and 3 and after 3 by the capabilities that
//! build them (SMART, consent, ledger issues).

use crate::{
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse},
    AppState,
};

pub mod limits;

/// The stage order, for documentation and logs.
pub const STAGES: &[&str] = &["parse", "limits", "route", "respond"];

/// Runs one request through the stages after parsing.
pub async fn handle(
    app: &AppState,
    mut req: FhirRequest,
    request_id: &str,
) -> FhirResult<FhirResponse> {
    let ctx = app.request_context(request_id);
    let capped = limits::cap_count(&mut req, ctx.max_page_size)?;
    let mut resp = app.upstream.execute(&req, &ctx).await?;
    if let Some(asked) = capped {
        limits::report_cap(&mut resp, asked, ctx.max_page_size);
    }
    Ok(resp)
}
