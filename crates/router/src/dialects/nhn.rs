//! NHN Cloud Face Liveness: `POST /v1.0/appkeys/{appKey}/spoofing`, `Authorization:
//! {secretKey}`; JSON `{"image": {"url"} | {"bytes"}, "spoofingCondition"}` or multipart
//! `imageFile` + `spoofingCondition`. Every face is reported with its own verdict.
//!
//! Every answer is HTTP 200, errors included, as NHN Cloud documents: the outcome is in
//! `header.isSuccessful` and `resultCode`.
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
use facelive_pipeline::ingest::Formats;
use facelive_pipeline::{
    CheckName, CheckOptions, DecisionRule, OperatingPoint, Point, RetryReason, Verdict,
};
use serde::{Deserialize, Serialize};

use crate::admission::{admit, decide};
use crate::auth::ApiKey;
use crate::config::Limits;
use crate::dialect::{Bodies, Credential, Decision, Dialect, Endpoint, Purpose, Route, Sizes};
use crate::dialects::render::{self, fraction_box, fraction_point, FractionBox};
use crate::error::ApiError;
use crate::input::{self, Payload};
use crate::AppState;

pub static NHN: Dialect = Dialect {
    name: "nhn",
    key: ApiKey::Nhn,
    credential: Credential::AppKeyInPathAndSecret,
    bodies: Bodies::JsonOrMultipart,
    // NHN's input guide: PNG and JPEG.
    formats: Formats::PNG_JPEG,
    sizes: |l| Sizes {
        body: Limits::json_or_form_body(l.nhn_file),
        file: l.nhn_file,
    },
    error_status: ApiError::nhn_status,
    endpoints: &[&NHN_SPOOFING],
};

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

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NhnImageSource)]
struct ImageSource {
    url: Option<String>,
    bytes: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnHeader)]
#[serde(rename_all = "camelCase")]
struct Header {
    is_successful: bool,
    result_code: i32,
    result_message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnLandmark)]
struct Landmark {
    #[serde(rename = "type")]
    kind: &'static str,
    x: f32,
    y: f32,
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
            header: Header {
                is_successful: true,
                result_code: 0,
                result_message: "Success".into(),
            },
            data: Some(data),
        })
        .into_response(),
        Err(e) => error_response(&e),
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
            (image_bytes(state, image, file_limit).await?, point)
        }
        Payload::Multipart(mp) => {
            let form = input::form(mp, "imageFile", file_limit).await?;
            let point = condition(form.fields.get("spoofingCondition").map(String::as_str))?;
            let bytes = form
                .file
                .ok_or_else(|| ApiError::MissingField("imageFile".into()))?;
            (bytes, point)
        }
    };
    input::check_file_size(&bytes, file_limit)?;
    let opts = CheckOptions {
        judge_all_faces: true,
        ..route.dialect.options(DecisionRule::Point(point))
    };
    state.judge(bytes, opts).await
}

/// The image of a JSON request: fetched from its URL or decoded from its bytes.
async fn image_bytes(
    state: &AppState,
    image: ImageSource,
    file_limit: usize,
) -> Result<Vec<u8>, ApiError> {
    match (image.url, image.bytes) {
        (Some(u), None) => state.fetch(&u, file_limit).await,
        (None, Some(b)) => input::decode_base64(&b),
        (Some(_), Some(_)) => Err(ApiError::InvalidParam(
            "image.url and image.bytes are exclusive".into(),
        )),
        (None, None) => Err(ApiError::MissingField("image.url or image.bytes".into())),
    }
}

const LANDMARK_NAMES: [&str; 5] = ["leftEye", "rightEye", "nose", "leftLip", "rightLip"];

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
            let landmarks = f
                .landmarks
                .points()
                .iter()
                .zip(LANDMARK_NAMES)
                .map(|(p, kind): (&Point, _)| {
                    let q = fraction_point(p, w, h);
                    Landmark {
                        kind,
                        x: q.x,
                        y: q.y,
                    }
                })
                .collect();
            Some(FaceDetail {
                bbox: fraction_box(&f.bbox, w, h),
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

fn error_response(e: &ApiError) -> Response {
    let m = e.mapping();
    let body = Body {
        header: Header {
            is_successful: false,
            result_code: m.nhn_code,
            result_message: m.nhn_message.to_string(),
        },
        data: None,
    };
    let mut resp = render::error_response(e, body);
    *resp.status_mut() = (NHN.error_status)(e);
    resp
}
