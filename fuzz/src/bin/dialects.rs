//! Every dialect's request parsing, through the real router and pipeline: the first byte
//! picks an endpoint, the second a content type, the rest is the body. No answer may be a
//! 500, nor a body that is not JSON (but SpoofSense's documented 413 text). URL inputs are
//! all refused before any connection (no port is allowed), so the harness never reaches
//! the network.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use facelive_models::Manifest;
use facelive_pipeline::{Pipeline, PipelineConfig};
use facelive_router::{AppState, FetchRules, ServerConfig};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const ENDPOINTS: &[&str] = &[
    "/v1/liveness",
    "/v1.0/appkeys/app1/spoofing",
    "/v2/api/liveness",
    "/v1/jcv/liveness",
    "/antispoofing",
    "/robust",
    "/v3/antispoofing",
    "/v1/verify",
    "/nhn-face-reco/v1.0/appkeys/app1/compare?threshold=90",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "multipart/form-data; boundary=FUZZ",
    "application/json; charset=utf-8",
    "text/plain",
    "",
];

fn config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: false,
        keys: Default::default(),
        limits: Default::default(),
        workers: 1,
        queue: 1,
        request_timeout: Duration::from_secs(30),
        fetch: FetchRules {
            ports: Vec::new(),
            ..FetchRules::default()
        },
        connections: Default::default(),
        sessions: Default::default(),
        audit: Default::default(),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pipeline = Pipeline::load(
        PipelineConfig::new(facelive_fuzz::models_dir()),
        &Manifest::builtin(),
        facelive_backends::default_backend(),
    )
    .expect("the models load (set FACELIVE_MODELS_DIR)");
    let state = AppState::new(Arc::new(pipeline), config()).unwrap();
    // A panic inside is the finding: nothing is reused after one.
    let app = AssertUnwindSafe(facelive_router::app(state));
    let rt = AssertUnwindSafe(rt);
    afl::fuzz!(|data: &[u8]| one_request(&app, &rt, data));
}

fn one_request(app: &AssertUnwindSafe<Router>, rt: &AssertUnwindSafe<Runtime>, data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let path = ENDPOINTS[data[0] as usize % ENDPOINTS.len()];
    let ctype = CONTENT_TYPES[data[1] as usize % CONTENT_TYPES.len()];
    let mut req = Request::post(path).header(header::CONTENT_LENGTH, data.len() - 2);
    if !ctype.is_empty() {
        req = req.header(header::CONTENT_TYPE, ctype);
    }
    let req = req.body(Body::from(data[2..].to_vec())).unwrap();
    let resp = rt.block_on(app.0.clone().oneshot(req)).unwrap();
    let status = resp.status();
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{path} answered 500"
    );
    let body = rt
        .block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
        .unwrap();
    // SpoofSense's oversized body is its gateway's text, as it documents.
    let text_allowed = status == StatusCode::PAYLOAD_TOO_LARGE
        && (path.ends_with("antispoofing") || path == "/robust");
    assert!(
        text_allowed || serde_json_is_valid(&body),
        "{path} answered {status} with a body that is not JSON"
    );
}

fn serde_json_is_valid(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok()
}
