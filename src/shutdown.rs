//! `serve`'s life after start-up: serve until the stop signal (SIGTERM or
//! SIGINT in `cli`), then stop in order:
//! 1. stop accepting connections; in-flight requests finish (each one's
//!    audit entry is durable before its response, so a drained server has
//!    nothing queued for the ledger), for at most `[limits]
//!    shutdown_grace_secs`; what is still running then is abandoned;
//! 2. sign a last ledger checkpoint covering every entry appended (so the
//!    tail of the chain does not wait for the next replica's timer);
//! 3. close the state store's pool and the embedded store's pool (SQLite
//!    checkpoints its WAL on the last close), each within a few seconds.
//!
//! Then `serve` returns `Ok` and the process exits 0. Background tasks
//! (checkpoint timer, bulk worker, consent poller) stop with the runtime;
//! an export job cut short is resumed by the next start.

use std::{future::Future, future::IntoFuture, net::SocketAddr, time::Duration};

use tokio::{net::TcpListener, sync::watch};

use crate::{state::StateStore, upstream::embedded::EmbeddedStore, AppState};

/// Longest wait for the final checkpoint and for each pool to close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `signal` resolves, then drains and
/// closes as the module docs say.
pub async fn serve(
    app: AppState,
    embedded: Option<EmbeddedStore>,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stopping, mut stopped) = watch::channel(false);
    let router = crate::app(app.clone());
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        signal.await;
        let _ = stopping.send(true);
    });
    let grace = Duration::from_secs(app.config.limits.shutdown_grace_secs);
    let expired = async move {
        if stopped.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server.into_future() => served?,
        () = expired => tracing::warn!(
            grace_secs = grace.as_secs(),
            "shutdown grace period over: abandoning requests still in flight"
        ),
    }
    close(&app, embedded).await;
    tracing::info!("fhirgate stopped");
    Ok(())
}

/// Steps 2 and 3: the last checkpoint, then the pools. Failures are logged;
/// they do not change the exit status (nothing more can be done about them).
pub async fn close(app: &AppState, embedded: Option<EmbeddedStore>) {
    if app.audit.enabled() {
        let ledger = app.audit.ledger();
        // every entry not yet covered by a checkpoint is due now
        let last = ledger.maybe_checkpoint(&app.keys, 1, 0);
        match tokio::time::timeout(CLOSE_WAIT, last).await {
            Ok(Ok(Some(c))) => tracing::info!(
                tree_size = c.tree_size,
                root = %c.root_hash,
                "final ledger checkpoint"
            ),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "final ledger checkpoint failed"),
            Err(_) => tracing::error!("final ledger checkpoint timed out"),
        }
    }
    let state = async {
        match &app.state {
            StateStore::Sqlite(p) => p.close().await,
            StateStore::Postgres(p) => p.close().await,
        }
    };
    if tokio::time::timeout(CLOSE_WAIT, state).await.is_err() {
        tracing::warn!("state store pool did not close in time");
    }
    if let Some(store) = embedded {
        if tokio::time::timeout(CLOSE_WAIT, store.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("embedded store pool did not close in time");
        }
    }
}
