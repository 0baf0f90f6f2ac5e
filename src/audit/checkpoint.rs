//! The checkpoint timer `serve` starts: signs a checkpoint every
//! `[audit] checkpoint_every` entries or `checkpoint_seconds` seconds
//! ([`super::Ledger::maybe_checkpoint`]), looking once a second (or more
//! often when `checkpoint_seconds` is 1). Failures are logged and retried
//! on the next tick; requests never wait for a checkpoint.

use std::time::Duration;

use crate::AppState;

/// Starts the timer task; it runs until the runtime stops.
pub fn spawn(app: &AppState) -> tokio::task::JoinHandle<()> {
    let ledger = app.audit.ledger().clone();
    let keys = app.keys.clone();
    let every = app.config.audit.checkpoint_every;
    let seconds = app.config.audit.checkpoint_seconds;
    let tick = Duration::from_millis((seconds * 1000).clamp(250, 1000));
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match ledger
                .maybe_checkpoint(&keys, every, (seconds * 1000) as i64)
                .await
            {
                Ok(Some(c)) => {
                    tracing::info!(tree_size = c.tree_size, root = %c.root_hash, "ledger checkpoint signed")
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "ledger checkpoint failed; retrying"),
            }
        }
    })
}
