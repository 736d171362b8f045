//! SpoofSense: `POST /antispoofing` (also at `/v3/antispoofing`, where its evaluation
//! script posts) and `POST /robust`, `x-api-key` header, JSON `{"data": "<base64>"}`;
//! `{"success", "message", "model_output": {"pred_idx": "real" | "spoof", "prob_real"}}`.
//! Thresholds on prob_real: 0.55 (/antispoofing), 0.50 (/robust).
//!
//! As its API Usage page documents, every outcome but an oversized body is HTTP 200: a face
//! that cannot be judged, or bad input, is `success: false` with an `error_code`
//! (FACE_NOT_DETECTED, INVALID_IMAGE_PAYLOAD, FACE_TOO_SMALL under 128x128 px, and
//! facelive's quality reasons); a bad key is its gateway's 403 `{"message": "Forbidden"}`
//! (the iOS SDK knows a bad key only by that message); a body over 10,485,760 bytes is 413
//! with the gateway's text.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use facelive_pipeline::ingest::Formats;
use facelive_pipeline::{CheckName, DecisionRule, Outcome, RetryReason, Verdict};
use serde::{Deserialize, Serialize};

use crate::admission::{admit, decide};
use crate::auth::ApiKey;
use crate::dialect::{Bodies, Credential, Decision, Dialect, Endpoint, Purpose, Route, Sizes};
use crate::dialects::render;
use crate::error::ApiError;
use crate::input;
use crate::AppState;

pub static SPOOFSENSE: Dialect = Dialect {
    name: "spoofsense",
    key: ApiKey::SpoofSense,
    credential: Credential::Header(&["x-api-key"]),
    bodies: Bodies::Json,
    // Image requirements: png, jpg, jpeg.
    formats: Formats::PNG_JPEG,
    sizes: |l| Sizes {
        body: l.spoofsense_body,
        file: l.spoofsense_body,
    },
    error_status: ApiError::spoofsense_status,
    endpoints: &[&SPOOFSENSE_ANTISPOOFING, &SPOOFSENSE_ROBUST],
};

pub static SPOOFSENSE_ANTISPOOFING: Endpoint = Endpoint {
    // Its evaluation script posts to /v3/antispoofing.
    paths: &["/antispoofing", "/v3/antispoofing"],
    label: "spoofsense",
    purpose: Purpose::Verdict,
    decision: Decision::Vendor(0.55),
    handler: || post(antispoofing),
};

pub static SPOOFSENSE_ROBUST: Endpoint = Endpoint {
    paths: &["/robust"],
    label: "spoofsense_robust",
    purpose: Purpose::Verdict,
    decision: Decision::Vendor(0.50),
    handler: || post(robust),
};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SpoofSenseRequest)]
struct JsonRequest {
    data: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SpoofSenseModelOutput)]
struct ModelOutput {
    pred_idx: &'static str,
    prob_real: f32,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SpoofSenseBody)]
struct Body {
    success: bool,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_output: Option<ModelOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
}

/// SpoofSense anti-spoofing
///
/// Live when `prob_real` is over the endpoint's threshold. A face that cannot be judged, or
/// bad input, is HTTP 200 with `success: false` and an `error_code`; a bad key is 403
/// `{"message": "Forbidden"}`; a body over the limit 413 with the gateway's text.
#[utoipa::path(
    post,
    path = SPOOFSENSE_ANTISPOOFING.paths[0],
    tag = "spoofsense",
    request_body(content((JsonRequest = "application/json"))),
    responses(
        (status = 200, description = "the verdict, or the reason there is none", body = Body),
        (status = "default", description = "an error", body = Body)
    )
)]
pub async fn antispoofing(
    state: State<Arc<AppState>>,
    Extension(route): Extension<Route>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    endpoint(state, route, headers, req).await
}

/// SpoofSense anti-spoofing for low-quality captures
///
/// As `/antispoofing`, at a lower threshold.
#[utoipa::path(
    post,
    path = SPOOFSENSE_ROBUST.paths[0],
    tag = "spoofsense",
    request_body(content((JsonRequest = "application/json"))),
    responses(
        (status = 200, description = "the verdict, or the reason there is none", body = Body),
        (status = "default", description = "an error", body = Body)
    )
)]
pub async fn robust(
    state: State<Arc<AppState>>,
    Extension(route): Extension<Route>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    endpoint(state, route, headers, req).await
}

async fn endpoint(
    State(state): State<Arc<AppState>>,
    route: Route,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let threshold = route
        .endpoint
        .decision
        .threshold()
        .expect("SpoofSense decides at its own thresholds");
    let run = run(&state, route, req, threshold);
    let (_, res) = decide(&state, route, &headers, run).await;
    match res {
        Ok(v) => Json(render(&v)).into_response(),
        Err(e) => failure(&e),
    }
}

fn failure(e: &ApiError) -> Response {
    let status = (SPOOFSENSE.error_status)(e);
    match e {
        ApiError::Unauthorized => {
            (status, Json(serde_json::json!({"message": "Forbidden"}))).into_response()
        }
        ApiError::BodyTooLarge { limit } => (
            status,
            format!("HTTP content length exceeded {limit} bytes."),
        )
            .into_response(),
        _ => {
            let body = Body {
                success: false,
                message: e.public_message(),
                model_output: None,
                error_code: Some(e.mapping().spoofsense),
            };
            let mut resp = render::error_response(e, body);
            *resp.status_mut() = status;
            resp
        }
    }
}

/// SpoofSense's smallest face, either side, in original pixels.
const MIN_FACE: f32 = 128.0;

async fn run(
    state: &AppState,
    route: Route,
    req: Request,
    threshold: f32,
) -> Result<Verdict, ApiError> {
    let a = admit(state, route, req).await?;
    let body = a.json()?;
    let r: JsonRequest = input::json(&body)?;
    let data = r
        .data
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| ApiError::MissingField("data".into()))?;
    let bytes = input::decode_base64(&data)?;
    let opts = route.dialect.options(DecisionRule::Threshold(threshold));
    state.judge(bytes, opts).await
}

/// SpoofSense's code for an image that cannot be judged, by the reason facelive found.
fn retry_code(reason: Option<RetryReason>) -> &'static str {
    use CheckName as C;
    let Some(reason) = reason else {
        return "LOW_QUALITY_IMAGE";
    };
    match reason {
        RetryReason::NoFace => "FACE_NOT_DETECTED",
        RetryReason::Check(check) => match check {
            C::FaceSize | C::EyeDistance | C::FaceShare => "FACE_TOO_SMALL",
            C::ImageSize => "IMAGE_TOO_SMALL",
            C::Yaw | C::Pitch | C::Roll => "FACE_NOT_FRONTAL",
            C::Brightness | C::Exposure => "POOR_LIGHTING",
            C::Sharpness => "IMAGE_BLURRY",
            C::FacePadding => "FACE_TOO_CLOSE_TO_EDGE",
            C::FaceCount => "MULTIPLE_FACES",
        },
    }
}

fn render(v: &Verdict) -> Body {
    let small = v
        .face
        .as_ref()
        .map(|f| (f.bbox.width, f.bbox.height))
        .filter(|(w, h)| w.min(*h) < MIN_FACE);
    if let (Some((w, h)), Some(_)) = (small, v.live_score) {
        return Body {
            success: false,
            message: format!(
                "Detected face box: {h:.0}x{w:.0} pixels (height x width), under the \
                 minimum of 128x128"
            ),
            model_output: None,
            error_code: Some("FACE_TOO_SMALL"),
        };
    }
    match (v.outcome, v.live_score) {
        (Outcome::Retry, _) | (_, None) => Body {
            success: false,
            message: render::retry_message(v).into(),
            model_output: None,
            error_code: Some(retry_code(v.retry_reason)),
        },
        (outcome, Some(p)) => Body {
            success: true,
            message: "ok".into(),
            model_output: Some(ModelOutput {
                pred_idx: if outcome == Outcome::Live {
                    "real"
                } else {
                    "spoof"
                },
                prob_real: p,
            }),
            error_code: None,
        },
    }
}
