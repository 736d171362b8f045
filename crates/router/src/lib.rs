//! facelive's HTTP layer: the native API and the NHN, Accura, JCV and SpoofSense dialects,
//! each a thin adapter over the one pipeline, plus health, readiness, info and metrics.
//!
//! The pipeline knows nothing of HTTP, and no dialect knows anything of models: a dialect
//! turns its request into image bytes and [`facelive_pipeline::CheckOptions`], and a
//! [`facelive_pipeline::Verdict`] or an [`ApiError`] into its response.
//!
//! This file is the map: the modules, the routes and [`app`]. The shared state and the
//! request shell are in `state.rs`, the accept loop and shutdown in `server.rs`, the
//! dialect table in `dialects/`.

mod admission;
pub mod attest;
pub mod audit;
pub mod auth;
pub mod config;
mod conn;
pub mod dialects;
pub mod error;
pub mod input;
mod openapi;
mod ops;
mod refusals;
mod server;
pub mod sessions;
mod state;
pub mod templates;
mod work;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

pub use audit::AuditConfig;
pub use config::{Connections, Keys, Limits, Secret, ServerConfig, SessionConfig};
pub use error::ApiError;
pub use input::fetch::{FetchRules, Network};
pub use server::{serve, serve_connections, warm_up, AUDIT_DRAIN};
pub use state::AppState;
pub(crate) use state::{Decided, ReferenceInput};

pub const REQUEST_ID: &str = "x-request-id";

/// Capture session tokens are issued here (native key only).
pub const SESSIONS: &str = "/v1/sessions";

/// The public keys of session attestations.
pub const JWKS: &str = "/.well-known/jwks.json";

/// The longest client `X-Request-Id` kept (it goes into logs and answers).
pub const MAX_REQUEST_ID: usize = 128;

/// A client's request id is kept when it is one short value of `[A-Za-z0-9._:-]`.
fn request_id_acceptable(v: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
}

/// Drops a client's `X-Request-Id` that is long, repeated or of unsafe characters, so one
/// is generated (and answered) instead: no client writes kilobytes into every log line.
async fn screen_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    let mut given = req.headers().get_all(REQUEST_ID).iter();
    let keep = match (given.next(), given.next()) {
        (None, _) => true,
        (Some(v), None) => request_id_acceptable(v.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// Every dialect's endpoints, each under its dialect's body limit (axum's own extractor
/// limit, backing up the checks made while reading).
fn dialect_routes(limits: &Limits) -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for d in dialects::ALL {
        let body = DefaultBodyLimit::max((d.sizes)(limits).body);
        for e in d.endpoints {
            for path in e.paths {
                router = router.route(path, (e.handler)().layer(body));
            }
        }
    }
    router
}

/// Every route besides the dialects' checks: method, path, handler.
fn others() -> [(Method, &'static str, MethodRouter<Arc<AppState>>); 11] {
    [
        (Method::POST, SESSIONS, post(dialects::native::session)),
        (Method::GET, JWKS, get(dialects::verify::jwks)),
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
    dialect_routes(&state.cfg.limits)
        .merge(other_routes())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(screen_request_id))
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
