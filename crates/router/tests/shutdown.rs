//! Shutdown that ends: after the drain the listener is closed (a new connection is
//! refused, not accepted to hang), and a client that pipelines requests and never reads
//! its answers holds the exit no longer than the shutdown deadline.

mod common;

use std::time::{Duration, Instant};

use facelive_router::AppState;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_cannot_hold_the_exit_past_the_deadline() {
    let mut cfg = common::config();
    cfg.connections.drain = Duration::from_millis(200);
    cfg.connections.shutdown_timeout = Duration::from_secs(2);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(common::pipeline(), cfg).unwrap();
    facelive_router::warm_up(&state).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(facelive_router::serve_connections(state, listener, async {
        let _ = stopped.await;
    }));

    // 3,000 pipelined requests for the API description (tens of KB each, no key needed),
    // never read: the server's writes block once the socket buffers are full.
    let mut pipeliner = tokio::net::TcpStream::connect(addr).await.unwrap();
    let writer = tokio::spawn(async move {
        let one = "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3000);
        let _ = pipeliner.write_all(one.as_bytes()).await;
        // Keep the connection open, unread, until the test ends.
        tokio::time::sleep(Duration::from_secs(120)).await;
        drop(pipeliner);
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let t0 = Instant::now();
    stop.send(()).unwrap();
    // Past the drain, before the deadline: the listener is closed.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let late = tokio::net::TcpStream::connect(addr).await;
    assert!(
        matches!(&late, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a connection after the drain: {late:?}"
    );
    let ended = tokio::time::timeout(Duration::from_secs(20), server).await;
    assert!(ended.is_ok(), "still serving 20 s after the stop signal");
    ended.unwrap().unwrap().unwrap();
    eprintln!(
        "stopped {:?} after the signal (drain 0.2 s + deadline 2 s)",
        t0.elapsed()
    );
    writer.abort();
}
