//! facelive's HTTP layer: the native API and the NHN, Accura, JCV and SpoofSense dialects,
//! each a thin adapter over the one pipeline, plus health, readiness, info and metrics.
//!
//! The pipeline knows nothing of HTTP, and no dialect knows anything of models: a dialect
//! turns its request into image bytes and [`facelive_pipeline::CheckOptions`], and a
//! [`facelive_pipeline::Verdict`] or an [`ApiError`] into its response.
//!
//! This file is the map: the modules, the routes, [`app`] and [`serve`]. The shared state
//! and the request shell are in `state.rs`, the accept loop and shutdown in `server.rs`, the
//! dialect table's types in `dialect.rs` and each dialect's entry and handlers in
//! `dialects/`. No module imports one that imports it back (CI checks:
//! `scripts/module-cycles.py`).

mod admission;
pub mod attest;
pub mod audit;
pub mod auth;
pub mod config;
mod conn;
pub mod dialect;
pub mod dialects;
pub mod error;
pub mod input;
mod openapi;
mod ops;
mod refusals;
mod request_id;
mod server;
pub mod sessions;
mod state;
pub mod templates;
mod work;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Router};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

pub use audit::AuditConfig;
pub use config::{
    Connections, FetchRules, Keys, Limits, Network, Secret, ServerConfig, SessionConfig,
};
pub use dialects::native::session::{JWKS, SESSIONS};
pub use error::ApiError;
pub use request_id::{MAX_REQUEST_ID, REQUEST_ID};
pub use server::{warm_up, AUDIT_DRAIN};
pub use state::AppState;

/// Every dialect's endpoints, each under its dialect's body limit (axum's own extractor
/// limit, backing up the checks made while reading).
fn dialect_routes(limits: &Limits) -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for d in dialects::ALL {
        let body = DefaultBodyLimit::max((d.sizes)(limits).body);
        for e in d.endpoints {
            let route = Extension(dialect::Route {
                dialect: d,
                endpoint: e,
            });
            for path in e.paths {
                let handler: MethodRouter<Arc<AppState>> = (e.handler)().layer(body);
                router = router.route(path, handler.layer(route));
            }
        }
    }
    router
}

/// Every route besides the dialects' checks: method, path, handler.
fn others() -> [(Method, &'static str, MethodRouter<Arc<AppState>>); 11] {
    [
        (
            Method::POST,
            SESSIONS,
            post(dialects::native::session::issue),
        ),
        (Method::GET, JWKS, get(dialects::native::session::jwks)),
        (Method::GET, ops::CAPTURE, get(ops::capture_page)),
        (Method::GET, ops::CAPTURE_MODULE, get(ops::capture_module)),
        (
            Method::GET,
            ops::CAPTURE_SCRIPT,
            get(ops::capture_page_script),
        ),
        (Method::GET, ops::HEALTH, get(ops::health)),
        (Method::GET, ops::READY, get(ops::ready)),
        (Method::GET, ops::INFO, get(ops::info)),
        (Method::GET, ops::METRICS, get(ops::metrics)),
        (Method::GET, ops::OPENAPI, get(ops::openapi)),
        (Method::GET, ops::DOCS, get(ops::docs)),
    ]
}

fn other_routes() -> Router<Arc<AppState>> {
    others()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
}

/// Every route [`app`] serves, as method and path: what the API description must cover.
pub fn routes() -> Vec<(Method, &'static str)> {
    let checks = dialects::ALL
        .iter()
        .flat_map(|d| d.endpoints.iter())
        .flat_map(|e| e.paths.iter().map(|p| (Method::POST, *p)));
    let others = others().into_iter().map(|(m, p, _)| (m, p));
    checks.chain(others).collect()
}

/// The whole HTTP surface.
pub fn app(state: Arc<AppState>) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    // Rendered once: it depends only on the configuration.
    let description = ops::ApiDescription(
        openapi::document(&state.cfg.limits)
            .to_json()
            .expect("the API description is plain JSON: string keys only")
            .into(),
    );
    dialect_routes(&state.cfg.limits)
        .merge(other_routes())
        .layer(Extension(description))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(request_id::screen))
        // No answer is to be sniffed into another type or framed by another site (the
        // capture page allows its own origin, as its policy says).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .with_state(state)
}

/// Warms the pipeline, then serves [`app`] until `shutdown` resolves and lets requests in
/// flight finish (see `server.rs`).
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(app(state.clone()), state, listener, shutdown).await
}

/// [`serve`] without the warm-up.
pub async fn serve_connections(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve_connections(app(state.clone()), state, listener, shutdown).await
}
