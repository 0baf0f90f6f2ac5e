//! `serve`'s life after start-up: serve until the stop signal (SIGTERM or
//! SIGINT in `cli`), then stop in order:
//! 1. stop accepting connections; in-flight requests finish (each one's
//!    audit entry is durable before its response, so a drained server has
//!    nothing queued for the ledger), for at most `[limits]
//!    shutdown_grace_secs`; what is still running then is abandoned;
//! 2. sign a last ledger checkpoint covering every entry appended (so the
//!    tail of the chain does not wait for the next replica's timer);
//! 3. close the state store's pool and the embedded store's pool (SQLite
//!    checkpoints its WAL on the last close), each within a few seconds;
//! 4. flush the OpenTelemetry spans still queued for export (when
//!    `[observability] otlp_endpoint` is set; `observability::otel`).
//!
//! Then `serve` returns `Ok` and the process exits 0. Background tasks
//! (checkpoint timer, bulk worker, consent poller) stop with the runtime;
//! an export job cut short is resumed by the next start.
//!
//! The connections are plain TCP, or TLS when `[tls]` is configured
//! (`crate::tls`: the same axum server over a listener that completes the
//! handshakes); either way handlers see the TCP peer as
//! `ConnectInfo<SocketAddr>` and every request carries its `tls::Transport`.

use std::{future::Future, future::IntoFuture, net::SocketAddr, time::Duration};

use axum::{
    extract::connect_info::Connected,
    middleware,
    serve::{IncomingStream, Listener, ListenerExt, TapIo},
    Router,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::{
    state::StateStore,
    tls::{listener::TlsListener, TlsServer, Transport},
    upstream::embedded::EmbeddedStore,
    AppState,
};

/// Longest wait for the final checkpoint and for each pool to close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `signal` resolves, then drains and
/// closes as the module docs say. With `[tls]` in the configuration, the
/// certificate is loaded here (see [`serve_with`] to load it earlier).
pub async fn serve(
    app: AppState,
    embedded: Option<EmbeddedStore>,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = app.config.tls.as_ref().map(TlsServer::load).transpose()?;
    serve_with(app, embedded, listener, tls, signal).await
}

/// [`serve`] with the TLS side already loaded (`None`: plain HTTP).
pub async fn serve_with(
    app: AppState,
    embedded: Option<EmbeddedStore>,
    listener: TcpListener,
    tls: Option<TlsServer>,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stopping, mut stopped) = watch::channel(false);
    let transport = Transport::new(&app.config, tls.is_some());
    let router = crate::app(app.clone()).layer(middleware::from_fn_with_state(
        transport,
        crate::tls::transport::layer,
    ));
    let shutdown = async move {
        signal.await;
        let _ = stopping.send(true);
    };
    let server = async move {
        match tls {
            None => drive(plain(listener), router, shutdown).await,
            Some(tls) => {
                tls.spawn_reload();
                let listener = TlsListener::new(listener, tls.acceptor())?;
                // tap_io: axum's `ConnectInfo<SocketAddr>` for any listener
                drive(listener.tap_io(|_| {}), router, shutdown).await
            }
        }
    };
    let grace = Duration::from_secs(app.config.limits.shutdown_grace_secs);
    let expired = async move {
        if stopped.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => served?,
        () = expired => tracing::warn!(
            grace_secs = grace.as_secs(),
            "shutdown grace period over: abandoning requests still in flight"
        ),
    }
    close(&app, embedded).await;
    tracing::info!("fhirgate stopped");
    // Last: the trace spans of the drained requests (and of the close).
    crate::observability::otel::shutdown().await;
    Ok(())
}

/// The plain-HTTP listener: each accepted connection with `TCP_NODELAY` set,
/// as the TLS listener's (a response's last partial segment is not held
/// back until the client acknowledges the one before, which a client's
/// delayed ACK can stretch to 40 ms).
fn plain(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    fn nodelay(tcp: &mut TcpStream) {
        let _ = tcp.set_nodelay(true);
    }
    listener.tap_io(nodelay)
}

/// Step 1's server on any listener whose peer is a `SocketAddr`.
async fn drive<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: Connected<IncomingStream<'a, L>>,
{
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .into_future()
    .await
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn plain_connections_are_accepted_with_nodelay() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut listener = plain(tcp);
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = listener.accept().await;
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(
            stream.nodelay().unwrap(),
            "TCP_NODELAY on the accepted side"
        );
    }
}
