//! Capture sessions of the native API: `POST /v1/sessions` issues a page its one-capture
//! token (for the native key only, optionally bound to a nonce and a reference the selfie
//! will be verified against), and `GET /.well-known/jwks.json` publishes the keys that
//! verify a session's signed result.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::liveness::{error_response, ErrorBody};
use super::verify::{reference_of, ReferenceSource};
use crate::error::ApiError;
use crate::input;
use crate::request_id;
use crate::sessions::Binding;
use crate::state::{AppState, ReferenceInput};

/// Capture session tokens are issued here (native key only).
pub const SESSIONS: &str = "/v1/sessions";

/// The public keys of session attestations.
pub const JWKS: &str = "/.well-known/jwks.json";

/// `POST /v1/sessions`: a capture session token for a web page, for the native key only
/// (a token cannot make tokens).
#[utoipa::path(
    post,
    path = SESSIONS,
    operation_id = "session",
    tag = "native",
    responses(
        (status = 201, description = "a session token", body = crate::sessions::Issued),
        (status = 401, description = "unauthorized: the native key is missing or wrong (a session token cannot make tokens)", body = ErrorBody)
    )
)]
pub async fn issue(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let rid = request_id::of(&headers);
    let cfg = &state.cfg;
    let key = crate::auth::check_header(
        cfg.auth,
        &headers,
        "authorization",
        "Bearer ",
        cfg.keys.native.as_deref(),
    );
    let issued = match key {
        Ok(()) => session_binding(&state, &body)
            .await
            .map(|b| state.sessions.issue(&b)),
        Err(e) => Err(e),
    };
    match issued {
        Ok(t) => (axum::http::StatusCode::CREATED, Json(t)).into_response(),
        Err(e) => error_response(&e, rid),
    }
}

/// `POST /v1/sessions`'s optional JSON body: a nonce from the integrator's backend and a
/// reference (a photo or a template) the session's selfie will be verified against.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = SessionRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionRequest {
    /// Echoed in the session's attestation (at most 256 characters).
    nonce: Option<String>,
    reference: Option<ReferenceSource>,
}

/// The binding a session request asks for: its reference sealed into a template.
async fn session_binding(state: &AppState, body: &[u8]) -> Result<Binding, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Binding::default());
    }
    let r: SessionRequest = input::json(body)?;
    if r.nonce.as_ref().is_some_and(|n| n.len() > 256) {
        return Err(ApiError::InvalidParam(
            "nonce is over 256 characters".into(),
        ));
    }
    let limit = state.cfg.limits.native_body;
    let template = match r.reference {
        None => None,
        Some(ReferenceSource {
            template: Some(t),
            base64: None,
            url: None,
        }) => {
            state.open_template(&t)?;
            Some(t)
        }
        Some(source) => match reference_of(state, source, limit).await? {
            ReferenceInput::Image(bytes) => Some(state.template(bytes, None).await?.template),
            ReferenceInput::Embedding(_) => unreachable!("a template is matched above"),
        },
    };
    Ok(Binding {
        nonce: r.nonce,
        template,
    })
}

/// The public keys that verify session attestations (RFC 7517).
#[utoipa::path(
    get,
    path = JWKS,
    tag = "native",
    responses((status = 200, description = "the JSON Web Key Set of the attestation key"))
)]
pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    Json(state.attestor.jwks()).into_response()
}
