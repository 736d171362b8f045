//! NHN Cloud Face Recognition's compare: `POST
//! /nhn-face-reco/v1.0/appkeys/{appKey}/compare?threshold=1..100`, JSON
//! `{"sourceImage": {"url"} | {"bytes"}, "targetImage": {...}, "orientation"?, "mask"?}`.
//! The source's largest face against every face of the target, most similar first, split
//! into matched and unmatched at the caller's threshold. No liveness: a compare says
//! nothing of attacks (`/v1/verify` does both).
//!
//! facelive asks this endpoint for the secret key too (`Authorization`), as Face Liveness
//! does: NHN's v1.0 compare takes the app key alone, so its clients add that one header.
//! `orientation` and `mask` are accepted and not answered (facelive estimates neither).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use facelive_pipeline::{CheckName, CheckOptions, Comparison, MatchRule, RetryReason};
use serde::{Deserialize, Serialize};

use super::shapes::{error_response, image_bytes, located, Header, ImageSource, Landmark};
use crate::admission::{admit, decide};
use crate::dialect::{Decision, Endpoint, Purpose, Route};
use crate::dialects::render::FractionBox;
use crate::error::ApiError;
use crate::input;
use crate::AppState;

pub static NHN_COMPARE: Endpoint = Endpoint {
    paths: &["/nhn-face-reco/v1.0/appkeys/{appKey}/compare"],
    label: "nhn_compare",
    purpose: Purpose::Verdict,
    // The caller's threshold, on NHN's similarity scale ([`Scale`]).
    decision: Decision::OperatingPoints,
    handler: || post(compare),
};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareQuery {
    /// 1..100 (required): the similarity at or above which a face matches; 90 is
    /// facelive's balanced match threshold.
    #[param(value_type = u32, required = true)]
    threshold: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NhnCompareRequest)]
#[serde(rename_all = "camelCase")]
struct JsonRequest {
    source_image: Option<ImageSource>,
    target_image: Option<ImageSource>,
    /// Accepted; facelive answers no face orientation.
    #[allow(dead_code)]
    orientation: Option<bool>,
    /// Accepted; facelive answers no mask.
    #[allow(dead_code)]
    mask: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnCompareFace)]
struct FaceDetail {
    bbox: FractionBox,
    landmarks: Vec<Landmark>,
    /// Detection confidence, 0..1.
    confidence: f32,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnComparedFace)]
#[serde(rename_all = "camelCase")]
struct Compared {
    face_detail: FaceDetail,
    /// 0..100, on the scale the threshold is given in.
    similarity: f32,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnCompareData)]
#[serde(rename_all = "camelCase")]
struct Data {
    /// The face embedder's name.
    model_version: String,
    matched_face_detail_count: usize,
    matched_face_details: Vec<Compared>,
    unmatched_face_detail_count: usize,
    unmatched_face_details: Vec<Compared>,
    source_face: FaceDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnCompareBody)]
struct Body {
    header: Header,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data>,
}

/// NHN's similarity (0..100, and the caller's threshold with it) and facelive's cosine,
/// mapped piecewise linearly through (0, 0), (balanced, 90) and (1, 100): NHN's documented
/// example threshold, 90, is then facelive's balanced match threshold (FMR at most 0.1% on
/// the verify set, docs/THRESHOLDS.md), lower thresholds are looser, higher ones stricter;
/// a negative cosine is 0.
#[derive(Debug, Clone, Copy)]
struct Scale {
    balanced: f32,
}

/// The NHN similarity facelive's balanced match threshold maps to.
const BALANCED_PERCENT: f32 = 90.0;

impl Scale {
    fn new(balanced: f32) -> Self {
        // Keeps both pieces of the map a slope, whatever the configuration says.
        Self {
            balanced: balanced.clamp(0.01, 0.99),
        }
    }

    fn percent(self, cosine: f32) -> f32 {
        let b = self.balanced;
        let c = cosine.clamp(0.0, 1.0);
        if c <= b {
            BALANCED_PERCENT * c / b
        } else {
            BALANCED_PERCENT + (100.0 - BALANCED_PERCENT) * (c - b) / (1.0 - b)
        }
    }

    fn cosine(self, percent: f32) -> f32 {
        let b = self.balanced;
        if percent <= BALANCED_PERCENT {
            b * percent / BALANCED_PERCENT
        } else {
            b + (1.0 - b) * (percent - BALANCED_PERCENT) / (100.0 - BALANCED_PERCENT)
        }
    }
}

/// NHN Cloud Face Recognition: compare faces
///
/// The source image's largest face against every face of the target image (at most 20),
/// most similar first; `similarity` is 0..100 and a face is matched at or above the
/// `threshold` query parameter (90 is facelive's balanced match threshold). Every answer is
/// HTTP 200, errors included: the outcome is in `header.isSuccessful` and
/// `header.resultCode`. No liveness is judged.
#[utoipa::path(
    post,
    path = NHN_COMPARE.paths[0],
    tag = "nhn",
    params(("appKey" = String, Path, description = "the NHN app key"), CompareQuery),
    request_body(content((JsonRequest = "application/json"))),
    responses(
        (status = 200, description = "the faces compared, or the error in the header", body = Body),
        (status = "default", description = "an error", body = Body)
    )
)]
pub async fn compare(
    State(state): State<Arc<AppState>>,
    Extension(route): Extension<Route>,
    query: Result<Query<CompareQuery>, QueryRejection>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    // Read now, refused after admission: a caller without the keys learns nothing else.
    let threshold = query
        .map_err(|e| ApiError::InvalidParam(e.body_text()))
        .and_then(|Query(q)| threshold_of(q.threshold.as_deref()));
    let run = run(&state, route, threshold, req);
    let (_, res) = decide(&state, route, &headers, run).await;
    match res.and_then(|c| render(&state, c)) {
        Ok(data) => Json(Body {
            header: Header::success(),
            data: Some(data),
        })
        .into_response(),
        Err(e) => error_response(&e, route),
    }
}

/// The `threshold` query parameter: required, 1..100.
fn threshold_of(v: Option<&str>) -> Result<f32, ApiError> {
    let v = v
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::MissingField("threshold".into()))?;
    match v.parse::<f32>() {
        Ok(t) if (1.0..=100.0).contains(&t) => Ok(t),
        _ => Err(ApiError::InvalidParam(format!(
            "threshold {v:?} is not a number within 1..100"
        ))),
    }
}

async fn run(
    state: &AppState,
    route: Route,
    threshold: Result<f32, ApiError>,
    req: Request,
) -> Result<Comparison, ApiError> {
    let a = admit(state, route, req).await?;
    let file_limit = a.sizes.file;
    let body = a.json()?;
    let percent = threshold?;
    let r: JsonRequest = input::json(&body).map_err(|e| ApiError::InvalidParam(e.to_string()))?;
    let image = |i: Option<ImageSource>, name: &'static str| {
        i.ok_or_else(|| ApiError::MissingField(name.into()))
    };
    let source = image(r.source_image, "sourceImage")?;
    let target = image(r.target_image, "targetImage")?;
    let source = image_bytes(state, source, "sourceImage", file_limit).await?;
    let target = image_bytes(state, target, "targetImage", file_limit).await?;
    let cosine = scale(state)?.cosine(percent);
    let opts = CheckOptions {
        formats: route.dialect.formats,
        ..CheckOptions::default()
    };
    state.compare(source, target, opts, cosine).await
}

/// The scale of this server's embedder: its balanced match threshold at 90.
fn scale(state: &AppState) -> Result<Scale, ApiError> {
    let balanced = state
        .pipeline
        .match_threshold(&CheckOptions::default(), MatchRule::default())?;
    Ok(Scale::new(balanced))
}

fn render(state: &AppState, c: Comparison) -> Result<Data, ApiError> {
    if c.target_retry_reason == Some(RetryReason::Check(CheckName::ImageSize)) {
        return Err(ApiError::ImageTooSmall {
            width: c.target_image.width,
            height: c.target_image.height,
        });
    }
    let scale = scale(state)?;
    let (w, h) = (c.target_image.width, c.target_image.height);
    let (mut matched, mut unmatched) = (Vec::new(), Vec::new());
    for f in &c.faces {
        let (bbox, landmarks) = located(&f.face.bbox, Some(&f.face.landmarks), w, h);
        let compared = Compared {
            face_detail: FaceDetail {
                bbox,
                landmarks,
                confidence: f.face.score,
            },
            similarity: scale.percent(f.similarity),
        };
        match f.same_person {
            true => matched.push(compared),
            false => unmatched.push(compared),
        }
    }
    let source = c
        .source
        .face
        .as_ref()
        .ok_or(ApiError::ReferenceUnusable(RetryReason::NoFace.as_str()))?;
    let (sw, sh) = (c.source.image.width, c.source.image.height);
    let (bbox, landmarks) = located(&source.bbox, source.landmarks.as_ref(), sw, sh);
    Ok(Data {
        model_version: state.pipeline.embedder()?.name().to_string(),
        matched_face_detail_count: matched.len(),
        matched_face_details: matched,
        unmatched_face_detail_count: unmatched.len(),
        unmatched_face_details: unmatched,
        source_face: FaceDetail {
            bbox,
            landmarks,
            confidence: source.detection_score.unwrap_or_default(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_puts_balanced_at_90_and_keeps_order() {
        let s = Scale::new(0.42);
        assert!((s.percent(0.42) - 90.0).abs() < 1e-4);
        assert_eq!(s.percent(-0.3), 0.0);
        assert!((s.percent(1.0) - 100.0).abs() < 1e-4);
        let mut last = -1.0;
        for i in 0..=1000 {
            let c = i as f32 / 1000.0;
            let p = s.percent(c);
            assert!(p >= last, "the map is monotone at {c}");
            assert!(
                (s.cosine(p) - c).abs() < 1e-5,
                "cosine inverts percent at {c}"
            );
            last = p;
        }
    }

    #[test]
    fn the_threshold_is_required_and_within_1_to_100() {
        assert!(matches!(threshold_of(None), Err(ApiError::MissingField(_))));
        assert!(matches!(
            threshold_of(Some(" ")),
            Err(ApiError::MissingField(_))
        ));
        for bad in ["0", "101", "abc", "NaN", "-5"] {
            assert!(
                matches!(threshold_of(Some(bad)), Err(ApiError::InvalidParam(_))),
                "{bad}"
            );
        }
        assert_eq!(threshold_of(Some("90")).unwrap(), 90.0);
    }
}
