//! JCV (Japan Computer Vision) Liveness: JSON `{"images": [{"index": 0, "type": "RGB",
//! "data": "<base64>"}, ...], "autoRotate"?: bool}`. Only index 0 is analysed (items beyond
//! it are ignored, as JCV documents); its largest face's `position` is always in the
//! response. JCV publishes no path or key header; facelive serves it at
//! `POST /v1/jcv/liveness` with `X-API-Key`. Response:
//!
//! `{"status": "ok" | "retry", "score", "live", "threshold": 0.5, "position": {"top",
//! "left", "width", "height"}, "model": {"name", "version"}, "retry_reason", "request_id"}`;
//! on failure `{"status": "error", "error": {"code", "message"}, "request_id"}`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use facelive_pipeline::ingest::Formats;
use facelive_pipeline::{
    BBox, CheckOptions, DecisionRule, ModelPack, Outcome, RetryReason, Verdict,
};
use serde::{Deserialize, Serialize};

use crate::admission::{admit, decide};
use crate::auth::ApiKey;
use crate::config::Limits;
use crate::dialect::{Bodies, Credential, Decision, Dialect, Endpoint, Purpose, Route, Sizes};
use crate::dialects::render;
use crate::error::ApiError;
use crate::input;
use crate::AppState;

pub static JCV: Dialect = Dialect {
    name: "jcv",
    key: ApiKey::Jcv,
    // The platform's other APIs take `api-key`; its liveness page `X-API-Key`.
    credential: Credential::Header(&["x-api-key", "api-key"]),
    bodies: Bodies::Json,
    // "Request and Response": JPG, PNG and GIF (its first frame).
    formats: Formats::PNG_JPEG_GIF,
    sizes: |l| Sizes {
        body: Limits::json_body_for(l.jcv_file),
        file: l.jcv_file,
    },
    error_status: ApiError::status,
    endpoints: &[&JCV_LIVENESS],
};

pub static JCV_LIVENESS: Endpoint = Endpoint {
    paths: &["/v1/jcv/liveness"],
    label: "jcv",
    purpose: Purpose::Verdict,
    // JCV's recommended threshold, kept whatever the model version.
    decision: Decision::Vendor(0.5),
    handler: || post(liveness),
};

/// JCV's recommended threshold, kept whatever the model version.
fn threshold() -> f32 {
    let t = JCV_LIVENESS.decision.threshold();
    t.expect("JCV decides at its own threshold")
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = JcvRequest)]
#[serde(rename_all = "camelCase")]
struct JsonRequest {
    images: Option<Vec<Item>>,
    auto_rotate: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = JcvImage)]
struct Item {
    index: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    data: Option<String>,
}

#[derive(Serialize, Default, utoipa::ToSchema)]
#[schema(as = JcvPosition)]
struct Position {
    top: i64,
    left: i64,
    width: i64,
    height: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = JcvSuccess)]
struct Success {
    status: &'static str,
    score: Option<f32>,
    live: bool,
    threshold: f32,
    position: Position,
    model: ModelPack,
    #[schema(value_type = Option<String>)]
    retry_reason: Option<RetryReason>,
    request_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = JcvFailure)]
struct Failure {
    status: &'static str,
    error: Detail,
    request_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = JcvErrorDetail)]
struct Detail {
    code: &'static str,
    message: String,
}

/// The face "used for liveness detection" in integer pixels, inside the image: the
/// detector's box may reach past an edge on a tight crop, JCV's position never does.
fn position(b: &BBox, width: u32, height: u32) -> Position {
    let clamp = |v: f32, max: u32| (v.round() as i64).clamp(0, max as i64);
    let (left, top) = (clamp(b.x, width), clamp(b.y, height));
    let (right, bottom) = (clamp(b.x + b.width, width), clamp(b.y + b.height, height));
    Position {
        top,
        left,
        width: right - left,
        height: bottom - top,
    }
}

/// JCV Liveness
///
/// Only `images[0]` is analysed; its largest face's `position` is always answered.
#[utoipa::path(
    post,
    path = JCV_LIVENESS.paths[0],
    tag = "jcv",
    request_body(content((JsonRequest = "application/json"))),
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
            let position = v
                .face
                .as_ref()
                .map(|f| position(&f.bbox, v.image.width, v.image.height))
                .unwrap_or_default();
            Json(Success {
                status: if v.outcome == Outcome::Retry {
                    "retry"
                } else {
                    "ok"
                },
                score: v.live_score,
                live: v.outcome == Outcome::Live,
                threshold: threshold(),
                position,
                model: v.model_pack,
                retry_reason: v.retry_reason,
                request_id: rid,
            })
            .into_response()
        }
        Err(e) => {
            let m = e.mapping();
            let body = Failure {
                status: "error",
                error: Detail {
                    code: m.code,
                    message: e.public_message(),
                },
                request_id: rid,
            };
            render::error_response(&e, body)
        }
    }
}

async fn run(state: &AppState, route: Route, req: Request) -> Result<Verdict, ApiError> {
    let a = admit(state, route, req).await?;
    let file_limit = a.sizes.file;
    let body = a.json()?;
    let r: JsonRequest = input::json(&body)?;
    let items = r
        .images
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::MissingField("images".into()))?;
    for (i, item) in items.iter().enumerate() {
        if item.index != Some(i as i64) {
            return Err(ApiError::InvalidParam(format!(
                "images[{i}].index must be {i} (indices start at 0 and increase by one)"
            )));
        }
    }
    let first = &items[0];
    match first.kind.as_deref() {
        Some("RGB") => {}
        Some(other) => {
            return Err(ApiError::InvalidParam(format!(
                "images[0].type {other:?} is not supported (RGB)"
            )))
        }
        None => return Err(ApiError::MissingField("images[0].type".into())),
    }
    let data = first
        .data
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| ApiError::MissingField("images[0].data".into()))?;
    let bytes = input::decode_base64(data)?;
    input::check_file_size(&bytes, file_limit)?;
    let opts = CheckOptions {
        auto_rotate: Some(r.auto_rotate.unwrap_or(false)),
        ..route.dialect.options(DecisionRule::Threshold(threshold()))
    };
    let verdict = state.judge(bytes, opts).await?;
    // JCV documents no face as a "face not found" error, not a result.
    if verdict.retry_reason == Some(RetryReason::NoFace) {
        return Err(ApiError::FaceNotFound);
    }
    Ok(verdict)
}
