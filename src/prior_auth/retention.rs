//! Retention of prior-authorization requests: decided requests (and their
//! review actions) are purged `[prior_auth] retention_days` after their
//! decision (at least six months, checked at start); pended requests are
//! never purged. [`spawn`] runs [`purge`] at start and then every hour.

use std::time::Duration;

use crate::{error::FhirResult, AppState};

use super::review_store;

/// How often the purge runs.
const EVERY: Duration = Duration::from_secs(3600);

/// Purges what is past retention now; how many requests went.
pub async fn purge(app: &AppState) -> FhirResult<u64> {
    let days = app.config.prior_auth.retention_days;
    let cutoff = crate::audit::auditor::now_ms() - days * 86_400_000;
    Ok(review_store::purge_decided_before(&app.state, cutoff).await?)
}

/// Runs [`purge`] now and hourly for the life of the server.
pub fn spawn(app: &AppState) {
    let app = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            match purge(&app).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    purged = n,
                    "prior authorization: decided requests past retention purged"
                ),
                Err(e) => {
                    tracing::warn!(error = %e.message, "prior authorization: retention purge failed")
                }
            }
        }
    });
}
