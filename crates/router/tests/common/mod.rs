//! Shared by the router's integration tests: the real server on 127.0.0.1 with the real
//! pipeline and models, and a small HTTP server that hands out dev images for URL inputs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use facelive_models::Manifest;
use facelive_pipeline::{CheckOptions, DecisionRule, Pipeline, PipelineConfig, Verdict};
use facelive_router::{AppState, FetchRules, Keys, Limits, ServerConfig};

pub const LIVE: &str = "live/nuaa_ClientRaw_0001_00_00_01_134.jpg";
pub const SPOOF: &str = "spoof/nuaa_ImposterRaw_0001_00_00_01_111.jpg";
/// A live face scoring between the weak and strict thresholds.
pub const MIDDLING: &str = "live/nuaa_ClientRaw_0001_00_00_02_167.jpg";

pub fn pipeline() -> Arc<Pipeline> {
    static P: OnceLock<Arc<Pipeline>> = OnceLock::new();
    P.get_or_init(|| {
        Arc::new(
            Pipeline::load(
                PipelineConfig::new(facelive_testdata::models_dir()),
                &Manifest::builtin(),
                facelive_backends::default_backend(),
            )
            .expect("pipeline loads"),
        )
    })
    .clone()
}

pub fn keys() -> Keys {
    Keys {
        native: Some("native-key".into()),
        nhn_app_key: Some("app1".into()),
        nhn_secret_key: Some("secret1".into()),
        accura: Some("accura-key".into()),
        jcv: Some("jcv-key".into()),
        spoofsense: Some("ss-key".into()),
    }
}

pub fn config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: true,
        keys: keys(),
        limits: Limits::default(),
        workers: 2,
        queue: 8,
        request_timeout: Duration::from_secs(30),
        fetch: FetchRules::default(),
        connections: Default::default(),
        sessions: Default::default(),
        audit: Default::default(),
    }
}

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
}

/// Starts the real server (warm-up included) and returns its base URL.
pub async fn start(cfg: ServerConfig) -> Server {
    start_with(pipeline(), cfg, true).await
}

pub async fn start_with(pipeline: Arc<Pipeline>, cfg: ServerConfig, warm: bool) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(pipeline, cfg).unwrap();
    if warm {
        facelive_router::warm_up(&state).await.unwrap();
    }
    tokio::spawn(async move {
        facelive_router::serve_connections(state, listener, std::future::pending())
            .await
            .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

/// Status and JSON body of a response.
pub async fn body(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

/// Posts a dev image to the native API as base64 JSON with the test key.
pub async fn native_post(s: &Server, rel: &str) -> reqwest::Response {
    s.client
        .post(format!("{}/v1/liveness", s.base))
        .bearer_auth("native-key")
        .json(&serde_json::json!({"image": {"base64": b64(&image(rel))}}))
        .send()
        .await
        .unwrap()
}

/// [`native_post`]'s status and JSON body.
pub async fn native_json(s: &Server, rel: &str) -> (u16, serde_json::Value) {
    body(native_post(s, rel).await).await
}

pub fn image(rel: &str) -> Vec<u8> {
    facelive_testdata::read(rel)
}

/// One of the verify set's images (`../shared/data/verify/images`).
pub fn verify_image(name: &str) -> Vec<u8> {
    let p = facelive_testdata::verify_dir().join("images").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What `facelive check` gives for the same image (same pipeline, same options).
pub fn reference(rel: &str, rule: DecisionRule) -> Verdict {
    pipeline()
        .check(
            &image(rel),
            &CheckOptions {
                rule,
                ..Default::default()
            },
        )
        .unwrap()
}

/// Sends `head` and `body` over a raw connection, as a vendor's client writes them (header
/// names in their own casing), and returns the status and body of the answer. The server
/// may answer (413) and close before the body is all sent: writing and reading go on at
/// once, and what was read is kept when the connection is reset.
pub async fn raw_exchange(s: &Server, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://");
    let conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rx, mut tx) = conn.into_split();
    tx.write_all(head.as_bytes()).await.unwrap();
    let write = async {
        let _ = tx.write_all(body).await;
    };
    let read = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = rx.read(&mut buf).await {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        raw
    };
    let ((), raw) = tokio::join!(write, read);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&raw[..eol]).unwrap().trim();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 4 + size..];
    }
}

/// Runs an async test inside a loopback-only network namespace
/// ([`facelive_testdata::loopback_only`]) with a runtime of its own. Every test that makes
/// the server fetch a URL runs here.
pub fn in_loopback_namespace<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    facelive_testdata::loopback_only(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(test())
    })
}

/// A tiny HTTP server on 127.0.0.1, on a port NHN's rule allows (10000-12000):
/// `/img/<dev path>` serves a dev image, `/slow` never finishes its body,
/// `/redirect/<url>` answers 302 to `<url>`.
pub fn image_server() -> (String, u16) {
    let (listener, port) = (10000..12000)
        .map(|p| (p + std::process::id() as u16 % 1000) % 2000 + 10000)
        .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok().map(|l| (l, p)))
        .expect("a free port in 10000-12000");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                if let Some(rel) = path.strip_prefix("/img/") {
                    let body =
                        std::fs::read(facelive_testdata::dev_dir().join(rel)).unwrap_or_default();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                } else if path == "/slow" {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n\xff\xd8");
                    std::thread::sleep(Duration::from_secs(5));
                } else if let Some(to) = path.strip_prefix("/redirect/") {
                    let head = format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = stream.write_all(head.as_bytes());
                } else {
                    let _ =
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    (format!("http://127.0.0.1:{port}"), port)
}
