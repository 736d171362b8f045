//! Accura Scan: `POST /v2/api/liveness`, `Api-Key` header, multipart file field
//! `liveness_image` (at most 1 MB), or the browser form some integrations send: JSON
//! `{"liveness_image": "data:image/jpeg;base64,..."}`. The score is a percentage; 55% or above is live (the
//! vendor's threshold). Accura does not publish its response fields; facelive's are:
//!
//! success: `{"status": "success", "message", "request_id", "liveness_score": 97.31,
//! "threshold": 55.0, "liveness_status": "live" | "spoof" | "retry", "retry_reason"}`;
//! failure: `{"status": "error", "error_code", "message", "request_id"}` with the HTTP status.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use facelive_pipeline::ingest::Formats;
use facelive_pipeline::{DecisionRule, Outcome, RetryReason, Verdict};
use serde::{Deserialize, Serialize};

use crate::admission::{admit, decide};
use crate::auth::ApiKey;
use crate::config::Limits;
use crate::dialect::{Bodies, Credential, Decision, Dialect, Endpoint, Purpose, Route, Sizes};
use crate::dialects::render;
use crate::error::ApiError;
use crate::input::{self, Payload};
use crate::AppState;

pub static ACCURA: Dialect = Dialect {
    name: "accura",
    key: ApiKey::Accura,
    credential: Credential::Header(&["api-key"]),
    bodies: Bodies::JsonOrMultipart,
    formats: Formats::ALL,
    sizes: |l| Sizes {
        body: Limits::json_or_form_body(l.accura_file),
        file: l.accura_file,
    },
    error_status: ApiError::status,
    endpoints: &[&ACCURA_LIVENESS],
};

pub static ACCURA_LIVENESS: Endpoint = Endpoint {
    paths: &["/v2/api/liveness"],
    label: "accura",
    purpose: Purpose::Verdict,
    // The vendor's threshold: 55% (decided as every threshold is, score >= 55%).
    decision: Decision::Vendor(0.55),
    handler: || post(liveness),
};

/// Accura's multipart form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AccuraForm {
    #[schema(value_type = String, format = Binary)]
    liveness_image: Vec<u8>,
}
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AccuraJsonRequest)]
struct JsonRequest {
    liveness_image: Option<String>,
}

/// The vendor's threshold (55%), in percent as its answers carry it.
fn threshold_percent() -> f32 {
    let t = ACCURA_LIVENESS.decision.threshold();
    (t.expect("Accura decides at its own threshold") * 100.0).round()
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AccuraSuccess)]
struct Success {
    status: &'static str,
    message: String,
    request_id: String,
    liveness_score: Option<f32>,
    threshold: f32,
    liveness_status: &'static str,
    #[schema(value_type = Option<String>)]
    retry_reason: Option<RetryReason>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AccuraFailure)]
struct Failure {
    status: &'static str,
    error_code: &'static str,
    message: String,
    request_id: String,
}

/// Accura Scan
///
/// `liveness_score` is a percentage; above `threshold` (55) is live.
#[utoipa::path(
    post,
    path = ACCURA_LIVENESS.paths[0],
    tag = "accura",
    request_body(content(
        (AccuraForm = "multipart/form-data"),
        (JsonRequest = "application/json")
    )),
    responses(
        (status = 200, description = "the verdict", body = Success),
        (status = "default", description = "an error", body = Failure)
    )
)]
pub async fn liveness(
    State(state): State<Arc<AppState>>,
    Extension(route): Extension<Route>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let (rid, res) = decide(&state, route, &headers, run(&state, route, req)).await;
    match res {
        Ok(v) => {
            let threshold = threshold_percent();
            let percent = v.live_score.map(|s| (s * 10000.0).round() / 100.0);
            // The pipeline's one decision (at the vendor's threshold, score >= 0.55), so
            // that the answer, the metrics and the audit trail never disagree.
            let (status, message) = match v.outcome {
                Outcome::Retry => ("retry", render::retry_message(&v)),
                Outcome::Live => ("live", "live face"),
                Outcome::Spoof => ("spoof", "presentation attack"),
            };
            Json(Success {
                status: "success",
                message: message.into(),
                request_id: rid,
                liveness_score: percent,
                threshold,
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
            render::error_response(&e, body)
        }
    }
}

async fn run(state: &AppState, route: Route, req: Request) -> Result<Verdict, ApiError> {
    let a = admit(state, route, req).await?;
    let limit = a.sizes.file;
    let missing = || ApiError::MissingField("liveness_image".into());
    let bytes = match a.payload {
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
    let rule = DecisionRule::Threshold(threshold_percent() / 100.0);
    state.judge(bytes, route.dialect.options(rule)).await
}
