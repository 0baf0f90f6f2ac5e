//! Brute-force protection of `$member-match` and `$bulk-member-match`: each
//! failed match (no match, or several) of a client is recorded in the state
//! store ([`crate::throttle`], kind `member-match`, shared by replicas); once a client has
//! `[payer] match_failure_limit` failures within
//! `match_failure_window_seconds`, its next match requests answer 429 with
//! the seconds to wait, until the oldest failure leaves the window.
//!
//! Alert: the failure that reaches the limit is logged at `warn` (client id
//! and count) and recorded on the audit ledger as its own event (subtype
//! `POST member-match-brute-force`, outcome 8, the client as agent), so an
//! auditor finds it with `GET /fhir/AuditEvent?agent=<client>`.

use axum::http::StatusCode;

use crate::{
    audit::RouteNote,
    error::{FhirError, FhirResult, IssueType},
    throttle::{self, Rule},
    AppState,
};

/// The route name the alert is recorded under (its subtype is `POST <this>`).
pub const ALERT_ROUTE: &str = "member-match-brute-force";

/// Failed matches, keyed by client id ([`crate::throttle`]).
const KIND: &str = "member-match";

fn rule(app: &AppState) -> Rule {
    let p = &app.config.payer;
    Rule::new(p.match_failure_limit, p.match_failure_window_seconds)
}

/// 429 when `client` has used up its failed matches; else Ok.
pub async fn check(app: &AppState, client: &str) -> FhirResult<()> {
    match throttle::blocked(app, KIND, client, rule(app))
        .await
        .map_err(FhirError::internal)?
    {
        Some(secs) => Err(too_many(i64::try_from(secs).unwrap_or(i64::MAX))),
        None => Ok(()),
    }
}

/// The 429 answer, with `Retry-After` (also in the OperationOutcome text).
pub fn too_many(secs: i64) -> FhirError {
    FhirError::new(
        StatusCode::TOO_MANY_REQUESTS,
        IssueType::Throttled,
        format!("too many failed member matches from this client; retry after {secs} seconds"),
    )
    .retry_after(secs.max(1) as u64)
}

/// Records one failed match of `client`; raises the alert when this
/// failure reaches the limit.
pub async fn fail(app: &AppState, client: &str, request_id: &str) -> FhirResult<()> {
    let rule = rule(app);
    if throttle::fail(app, KIND, client, rule)
        .await
        .map_err(FhirError::internal)?
    {
        alert(app, client, i64::from(rule.limit), request_id).await?;
    }
    Ok(())
}

/// The brute-force alert: a warning in the log and an event on the ledger.
async fn alert(app: &AppState, client: &str, count: i64, request_id: &str) -> FhirResult<()> {
    let secs = app.config.payer.match_failure_window_seconds;
    tracing::warn!(
        client_id = client,
        failures = count,
        window_seconds = secs,
        "possible member-match brute force: client reached the failed-match limit"
    );
    let note = RouteNote {
        client_id: Some(client.to_owned()),
        what: Some(format!(
            "member-match brute-force alert: {count} failed matches within {secs}s"
        )),
        ..RouteNote::default()
    };
    throttle::record_alert(
        app,
        request_id,
        &format!("/fhir/{ALERT_ROUTE}"),
        ALERT_ROUTE,
        &note,
    )
    .await
    .map_err(FhirError::unavailable)?;
    Ok(())
}
