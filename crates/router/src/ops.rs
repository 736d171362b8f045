//! Operational endpoints: liveness of the process, readiness of the models, what is served,
//! metrics, and the API description with a docs page that needs no internet access.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use facelive_pipeline::OperatingPoint;
use serde_json::{json, Value};

use crate::state::AppState;

// The paths of the operational endpoints (routes and API description read them).
pub const HEALTH: &str = "/health";
pub const READY: &str = "/ready";
pub const INFO: &str = "/info";
pub const METRICS: &str = "/metrics";
pub const OPENAPI: &str = "/openapi.json";
pub const DOCS: &str = "/docs";
pub const CAPTURE: &str = "/capture";
pub const CAPTURE_SCRIPT: &str = "/capture/page.js";
pub const CAPTURE_MODULE: &str = "/capture/facelive-capture.js";

#[utoipa::path(get, path = HEALTH, tag = "operations", responses((status = 200, description = "the process is up")))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = READY, tag = "operations", responses((status = 200, description = "models loaded and warm"), (status = 503, description = "warming up or draining")))]
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let status = if state.draining.load(Ordering::SeqCst) {
        "draining"
    } else if state.audit_failing() {
        "audit failing"
    } else if state.ready.load(Ordering::SeqCst) {
        return Json(json!({"status": "ready"})).into_response();
    } else {
        "warming up"
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": status})),
    )
        .into_response()
}

#[utoipa::path(get, path = INFO, tag = "operations", responses((status = 200, description = "version, model pack, engines, thresholds, dialects with their endpoints, limits and formats")))]
pub async fn info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let cfg = &state.cfg;
    let p = state.pipeline.config();
    let thresholds: serde_json::Map<String, Value> = OperatingPoint::ALL
        .iter()
        // Through f32's shortest decimal form, so 0.4 reads 0.4 and not 0.4000000059604645.
        .map(|op| {
            let t: f64 = p
                .thresholds
                .get(*op)
                .to_string()
                .parse()
                .unwrap_or(f64::NAN);
            (op.as_str().to_string(), json!(t))
        })
        .collect();
    let dialects: Vec<Value> = crate::dialects::ALL
        .iter()
        .map(|d| d.describe(&cfg.limits))
        .collect();
    let shortest = |v: f32| v.to_string().parse::<f64>().unwrap_or(f64::NAN);
    let embedder = state.pipeline.embedder().ok().map(|e| {
        let t = state.pipeline.match_thresholds().unwrap_or(e.thresholds());
        json!({
            "name": e.name(),
            "sha256": e.sha256(),
            "dims": e.dims(),
            "match_thresholds": {
                "weak": shortest(t.weak),
                "balanced": shortest(t.balanced),
                "strict": shortest(t.strict),
            },
        })
    });
    Json(json!({
        "name": "facelive",
        "version": env!("CARGO_PKG_VERSION"),
        "model_pack": state.pipeline.model_pack(),
        "engines": state.pipeline.engines(),
        "thresholds": thresholds,
        "embedder": embedder,
        "attestation_key": state.attestor.jwks()["keys"][0]["kid"],
        "authentication": cfg.auth,
        "workers": cfg.workers,
        "queue": cfg.queue,
        "dialects": dialects,
    }))
}

#[utoipa::path(get, path = METRICS, tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let capacity = state.cfg.workers.max(1) + state.cfg.queue;
    metrics::gauge!("facelive_requests_in_flight").set(state.workers.in_flight(capacity) as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// `/openapi.json`'s body, rendered when the routes are built.
#[derive(Clone)]
pub struct ApiDescription(pub axum::body::Bytes);

#[utoipa::path(get, path = OPENAPI, tag = "operations", responses((status = 200, description = "this document")))]
pub async fn openapi(Extension(description): Extension<ApiDescription>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], description.0).into_response()
}

#[utoipa::path(get, path = DOCS, tag = "operations", responses((status = 200, description = "this document as a page that works offline", content_type = "text/html")))]
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// The capture page: camera, guidance, verdict (see docs/CAPTURE.md). Everything it needs
/// is in the binary: no CDN, nothing fetched but this server's API.
#[utoipa::path(get, path = CAPTURE, tag = "capture", responses((status = 200, description = "the capture page", content_type = "text/html")))]
pub async fn capture_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Same-origin scripts and API calls only; camera frames stay in the page.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; \
                 style-src 'self' 'unsafe-inline'; frame-ancestors 'self'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
            // frame-ancestors' equal for browsers that read only this header.
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        include_str!("capture/capture.html"),
    )
        .into_response()
}

/// The capture page's own script (no inline script: the page's policy forbids it).
#[utoipa::path(get, path = CAPTURE_SCRIPT, tag = "capture", responses((status = 200, description = "the capture page's script", content_type = "text/javascript")))]
pub async fn capture_page_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("capture/page.js"),
    )
        .into_response()
}

/// The embeddable client: one ES module, `capture(element, options)`.
#[utoipa::path(get, path = CAPTURE_MODULE, tag = "capture", responses((status = 200, description = "the embeddable capture client, one ES module", content_type = "text/javascript")))]
pub async fn capture_module() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("capture/facelive-capture.js"),
    )
        .into_response()
}
