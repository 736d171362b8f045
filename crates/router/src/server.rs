//! The accept loop: connections under their bound and deadlines, the drain at the stop
//! signal, and a shutdown that ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::OwnedSemaphorePermit;

use crate::conn;
use crate::error::ApiError;
use crate::state::AppState;

/// How long the audit trail's queue may take to reach its sink at shutdown, after the
/// connections are done: what is left then is counted and logged.
pub const AUDIT_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Warms the pipeline (one request through every stage), then marks the server ready.
pub async fn warm_up(state: &AppState) -> Result<(), ApiError> {
    let p = state.pipeline.clone();
    state.workers.run(move || p.warm_up()).await??;
    state.ready.store(true, Ordering::SeqCst);
    Ok(())
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
///
/// The accept loop is facelive's own rather than `axum::serve` for what a server facing
/// the internet needs: a deadline for a request's headers (hyper enforces none without a
/// timer, so connections trickling headers stayed open indefinitely), a deadline for a
/// connection with no request in flight (the first byte, keep-alive, HTTP/2 with no
/// stream: `conn`), and a bound on open connections (beyond it the connection idle the
/// longest is closed, or, when all are busy, the new one).
pub(crate) async fn serve(
    app: Router,
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    warm_up(&state)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    serve_connections(app, state.clone(), listener, shutdown).await?;
    if let Some(trail) = &state.audit {
        trail.drain(AUDIT_DRAIN).await;
    }
    Ok(())
}

/// A place for a new connection: a free one, or the one the connection idle the longest
/// gives up; `None` when every open connection is busy.
async fn place(
    open: &Arc<tokio::sync::Semaphore>,
    registry: &conn::Registry,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = open.clone().try_acquire_owned() {
        return Some(p);
    }
    if !registry.evict_oldest_idle() {
        return None;
    }
    // The evicted connection's task ends as soon as it is told: its place follows.
    tokio::time::timeout(
        std::time::Duration::from_secs(1),
        open.clone().acquire_owned(),
    )
    .await
    .ok()?
    .ok()
}

/// [`serve`] without the warm-up: accepts and serves connections until `shutdown`.
pub(crate) async fn serve_connections(
    app: Router,
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let conn = state.cfg.connections.clone();
    let open = Arc::new(tokio::sync::Semaphore::new(conn.max_connections));
    let registry = Arc::new(conn::Registry::default());
    let graceful = GracefulShutdown::new();
    // Stop signal, then the drain: not ready, still serving; then the listener closes.
    let drain = conn.drain;
    let drained = async move {
        shutdown.await;
        state.draining.store(true, Ordering::SeqCst);
        tracing::info!(seconds = drain.as_secs_f32(), "draining");
        tokio::time::sleep(drain).await;
    };
    let mut drained = std::pin::pin!(drained);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut drained => break,
        };
        let Some(place) = place(&open, &registry).await else {
            metrics::counter!("facelive_connections_refused_total").increment(1);
            continue;
        };
        let entry = registry.enter();
        let activity = entry.activity.clone();
        // Each request marks the connection busy until its answer is ready.
        let service = tower::ServiceBuilder::new()
            .map_future(move |fut| {
                let busy = activity.begin();
                async move {
                    let answer = fut.await;
                    drop(busy);
                    answer
                }
            })
            .service(app.clone());
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(conn.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(conn.idle_timeout);
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let served = graceful.watch(served);
        let (first, idle) = (conn.header_read_timeout, conn.idle_timeout);
        tokio::spawn(async move {
            conn::until_idle(served, &entry.activity, first, idle).await;
            drop(entry);
            drop(place);
        });
    }
    // New connections are refused from now on, not accepted by the kernel to hang.
    drop(listener);
    let stopping = graceful.shutdown();
    if tokio::time::timeout(conn.shutdown_timeout, stopping)
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = conn.shutdown_timeout.as_secs(),
            "connections still busy at the shutdown deadline are closed"
        );
    }
    Ok(())
}
