//! NHN Cloud Face Liveness: `POST /v1.0/appkeys/{appKey}/spoofing`, `Authorization:
//! {secretKey}`; JSON `{"image": {"url"} | {"bytes"}, "spoofingCondition"}` or multipart
//! `imageFile` + `spoofingCondition`. Every face is reported with its own verdict.
//!
//! Decisions: `spoofingCondition` weak / balanced / strict are facelive's operating points.
//! Faces under the minimum face size are "not analysed" (left out), as NHN documents; an
//! image under the minimum image size is an InvalidImageParameter error (-45030).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use facelive_pipeline::{
    CheckName, CheckOptions, DecisionRule, OperatingPoint, RetryReason, Verdict,
};
use serde::{Deserialize, Serialize};

use super::shapes::{error_response, image_bytes, located, Header, ImageSource, Landmark};
use crate::admission::{admit, decide};
use crate::dialect::{Decision, Endpoint, Purpose, Route};
use crate::dialects::render::FractionBox;
use crate::error::ApiError;
use crate::input::{self, Payload};
use crate::AppState;

pub static NHN_SPOOFING: Endpoint = Endpoint {
    paths: &["/v1.0/appkeys/{appKey}/spoofing"],
    label: "nhn",
    purpose: Purpose::Verdict,
    decision: Decision::OperatingPoints,
    handler: || post(spoofing),
};

/// NHN's multipart form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct NhnForm {
    #[serde(rename = "imageFile")]
    #[schema(value_type = String, format = Binary)]
    image_file: Vec<u8>,
    /// weak, balanced (default) or strict.
    #[serde(rename = "spoofingCondition")]
    spoofing_condition: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NhnRequest)]
#[serde(rename_all = "camelCase")]
struct JsonRequest {
    image: Option<ImageSource>,
    spoofing_condition: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnFaceDetail)]
struct FaceDetail {
    bbox: FractionBox,
    landmarks: Vec<Landmark>,
    spoofing: bool,
    confidence: f32,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnData)]
#[serde(rename_all = "camelCase")]
struct Data {
    face_detail_count: usize,
    face_details: Vec<FaceDetail>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnBody)]
struct Body {
    header: Header,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data>,
}

/// NHN Cloud Face Liveness
///
/// Every face is reported; `spoofing` is true for an attack; `confidence` is the detection
/// confidence; coordinates are fractions of the image size. Every answer is HTTP 200,
/// errors included: the outcome is in `header.isSuccessful` and `header.resultCode`.
#[utoipa::path(
    post,
    path = NHN_SPOOFING.paths[0],
    tag = "nhn",
    params(("appKey" = String, Path, description = "the NHN app key")),
    request_body(content(
        (JsonRequest = "application/json"),
        (NhnForm = "multipart/form-data")
    )),
    responses(
        (status = 200, description = "the faces, or the error in the header", body = Body),
        (status = "default", description = "an error", body = Body)
    )
)]
pub async fn spoofing(
    State(state): State<Arc<AppState>>,
    Extension(route): Extension<Route>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let (_, res) = decide(&state, route, &headers, run(&state, route, req)).await;
    match res.and_then(render) {
        Ok(data) => Json(Body {
            header: Header::success(),
            data: Some(data),
        })
        .into_response(),
        Err(e) => error_response(&e, route),
    }
}

fn condition(v: Option<&str>) -> Result<OperatingPoint, ApiError> {
    match v.map(str::trim) {
        None | Some("") => Ok(OperatingPoint::Balanced),
        Some(s) => s.parse().map_err(|_| {
            ApiError::InvalidParam(format!(
                "spoofingCondition {s:?} is not weak, balanced or strict"
            ))
        }),
    }
}

async fn run(state: &AppState, route: Route, req: Request) -> Result<Verdict, ApiError> {
    let a = admit(state, route, req).await?;
    let file_limit = a.sizes.file;
    let (bytes, point) = match a.payload {
        Payload::Json(body) => {
            let r: JsonRequest =
                input::json(&body).map_err(|e| ApiError::InvalidParam(e.to_string()))?;
            let point = condition(r.spoofing_condition.as_deref())?;
            let image = r
                .image
                .ok_or_else(|| ApiError::MissingField("image".into()))?;
            (image_bytes(state, image, "image", file_limit).await?, point)
        }
        Payload::Multipart(mp) => {
            let form = input::form(mp, "imageFile", file_limit).await?;
            let point = condition(form.fields.get("spoofingCondition").map(String::as_str))?;
            let bytes = form
                .file
                .ok_or_else(|| ApiError::MissingField("imageFile".into()))?;
            input::check_file_size(&bytes, file_limit)?;
            (bytes, point)
        }
    };
    let opts = CheckOptions {
        judge_all_faces: true,
        ..route.dialect.options(DecisionRule::Point(point))
    };
    state.judge(bytes, opts).await
}

fn render(v: Verdict) -> Result<Data, ApiError> {
    if v.retry_reason == Some(RetryReason::Check(CheckName::ImageSize)) {
        return Err(ApiError::ImageTooSmall {
            width: v.image.width,
            height: v.image.height,
        });
    }
    let (w, h) = (v.image.width, v.image.height);
    let details: Vec<FaceDetail> = v
        .faces
        .iter()
        .zip(&v.face_scores)
        .filter_map(|(f, score)| {
            let score = (*score)?;
            let (bbox, landmarks) = located(&f.bbox, Some(&f.landmarks), w, h);
            Some(FaceDetail {
                bbox,
                landmarks,
                spoofing: score < v.threshold,
                confidence: f.score,
            })
        })
        .collect();
    Ok(Data {
        face_detail_count: details.len(),
        face_details: details,
    })
}
