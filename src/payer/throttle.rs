//! Brute-force protection of `$member-match` and `$bulk-member-match`: each
//! failed match (no match, or several) of a client is recorded in the state
//! store (`payer_match_failures`, shared by replicas); once a client has
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
    audit::{auditor::now_ms, HttpFacts, RouteNote},
    error::{FhirError, FhirResult, IssueType},
    AppState,
};

/// The route name the alert is recorded under (its subtype is `POST <this>`).
pub const ALERT_ROUTE: &str = "member-match-brute-force";

fn window_ms(app: &AppState) -> i64 {
    i64::try_from(app.config.payer.match_failure_window_seconds)
        .unwrap_or(i64::MAX / 2)
        .saturating_mul(1000)
}

/// Failures of `client` since `since_ms`: (count, oldest).
async fn failures(app: &AppState, client: &str, since_ms: i64) -> FhirResult<(i64, Option<i64>)> {
    let sql =
        "SELECT COUNT(*), MIN(at_ms) FROM payer_match_failures WHERE client_id = $1 AND at_ms > $2";
    let row: (i64, Option<i64>) = crate::state::on_pool!(&app.state, |p| {
        sqlx::query_as(sql)
            .bind(client)
            .bind(since_ms)
            .fetch_one(p)
            .await
    })
    .map_err(FhirError::internal)?;
    Ok(row)
}

/// 429 when `client` has used up its failed matches; else Ok.
pub async fn check(app: &AppState, client: &str) -> FhirResult<()> {
    let limit = i64::from(app.config.payer.match_failure_limit);
    if limit == 0 {
        return Ok(());
    }
    let now = now_ms();
    let window = window_ms(app);
    let (count, oldest) = failures(app, client, now - window).await?;
    if count < limit {
        return Ok(());
    }
    let wait_ms = oldest.map_or(window, |o| o + window - now).max(1000);
    let secs = (wait_ms + 999) / 1000;
    Err(too_many(secs))
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
    let now = now_ms();
    let window = window_ms(app);
    crate::state::on_pool!(&app.state, |p| {
        sqlx::query("DELETE FROM payer_match_failures WHERE at_ms <= $1")
            .bind(now - window)
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(FhirError::internal)?;
    crate::state::on_pool!(&app.state, |p| {
        sqlx::query("INSERT INTO payer_match_failures (client_id, at_ms) VALUES ($1, $2)")
            .bind(client)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(FhirError::internal)?;
    let limit = i64::from(app.config.payer.match_failure_limit);
    if limit == 0 {
        return Ok(());
    }
    let (count, _) = failures(app, client, now - window).await?;
    if count == limit {
        alert(app, client, count, request_id).await?;
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
    let http = HttpFacts {
        method: "POST".into(),
        path: format!("/fhir/{ALERT_ROUTE}"),
        query: None,
        client_addr: None,
        recorded: now_ms(),
    };
    let note = RouteNote {
        client_id: Some(client.to_owned()),
        what: Some(format!(
            "member-match brute-force alert: {count} failed matches within {secs}s"
        )),
        ..RouteNote::default()
    };
    let event = app
        .audit
        .builder()
        .route(request_id, &http, ALERT_ROUTE, 429, &note);
    app.audit
        .record(vec![event])
        .await
        .map_err(FhirError::unavailable)?;
    Ok(())
}
