//! Accura Scan: `POST /v2/api/liveness`, `Api-Key` header, multipart file field
//! `liveness_image` (at most 1 MB), or the browser form some integrations send: JSON
//! `{"liveness_image": "data:image/jpeg;base64,..."}`. The score is a percentage; above 55% is live (the
//! vendor's rule). Accura does not publish its response fields; facelive's are:
//!
//! success: `{"status": "success", "message", "request_id", "liveness_score": 97.31,
//! "threshold": 55.0, "liveness_status": "live" | "spoof" | "retry", "retry_reason"}`;
//! failure: `{"status": "error", "error_code", "message", "request_id"}` with the HTTP status.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use facelive_pipeline::{CheckOptions, DecisionRule, Outcome, Verdict};
use serde::{Deserialize, Serialize};

use super::request_id;
use crate::audit::Who;
use crate::auth::ApiKey;
use crate::error::ApiError;
use crate::input::{self, Payload};
use crate::AppState;

#[derive(Deserialize)]
struct JsonRequest {
    liveness_image: Option<String>,
}

/// The vendor's threshold, in percent.
const THRESHOLD_PERCENT: f32 = 55.0;

#[derive(Serialize)]
struct Success {
    status: &'static str,
    message: String,
    request_id: String,
    liveness_score: Option<f32>,
    threshold: f32,
    liveness_status: &'static str,
    retry_reason: Option<String>,
}

#[derive(Serialize)]
struct Failure {
    status: &'static str,
    error_code: &'static str,
    message: String,
    request_id: String,
}

pub async fn liveness(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let rid = request_id(&headers);
    let res = state
        .handle(
            "accura",
            &rid,
            Some(Who::Key(ApiKey::Accura)),
            run(&state, &headers, req),
        )
        .await;
    match res {
        Ok(v) => {
            let percent = v.live_score.map(|s| (s * 10000.0).round() / 100.0);
            let (status, message) = match (v.outcome, percent) {
                (Outcome::Retry, _) | (_, None) => ("retry", super::retry_message(&v)),
                (_, Some(p)) if p > THRESHOLD_PERCENT => ("live", "live face"),
                _ => ("spoof", "presentation attack"),
            };
            Json(Success {
                status: "success",
                message: message.into(),
                request_id: rid,
                liveness_score: percent,
                threshold: THRESHOLD_PERCENT,
                liveness_status: status,
                retry_reason: v.retry_reason,
            })
            .into_response()
        }
        Err(e) => {
            let m = e.mapping();
            let body = Failure {
                status: "error",
                error_code: m.code,
                message: e.public_message(),
                request_id: rid,
            };
            super::error_response(&e, body)
        }
    }
}

async fn run(state: &AppState, headers: &HeaderMap, req: Request) -> Result<Verdict, ApiError> {
    let cfg = &state.cfg;
    let limit = cfg.limits.accura_file;
    let body_limit = crate::Limits::accura_body(limit);
    let key = cfg.keys.accura.as_deref();
    let gate = crate::auth::check_header(cfg.auth, headers, "api-key", "", key)
        .and_then(|()| state.admit_key(ApiKey::Accura));
    let _key = match gate {
        Ok(place) => place,
        Err(e) => return Err(input::refuse_unread(req, body_limit, &cfg.limits, e).await),
    };
    let missing = || ApiError::MissingField("liveness_image".into());
    let bytes = match input::payload(req, body_limit, &cfg.limits).await? {
        Payload::Multipart(mp) => input::form(mp, "liveness_image", limit)
            .await?
            .file
            .ok_or_else(missing)?,
        // The browser form some integrations send: the canvas's data URL in JSON.
        Payload::Json(body) => {
            let r: JsonRequest = input::json(&body)?;
            let data = r
                .liveness_image
                .filter(|d| !d.trim().is_empty())
                .ok_or_else(missing)?;
            input::decode_base64(&data)?
        }
    };
    input::check_file_size(&bytes, limit)?;
    state
        .judge(
            bytes,
            CheckOptions {
                rule: DecisionRule::Threshold(THRESHOLD_PERCENT / 100.0),
                ..Default::default()
            },
        )
        .await
}
