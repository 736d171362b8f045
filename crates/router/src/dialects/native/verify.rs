//! The native API's liveness with verify: `POST /v1/verify` (a selfie judged and its judged
//! face matched against a reference photo or template), `POST /v1/templates` (a reference
//! photo sealed into a template).
//!
//! JSON `{"image": {"base64"|"url"}, "reference": {"base64"|"url"|"template"},
//! "operating_point"?, "threshold"?, "match_threshold"?, "auto_rotate"?}`, or multipart with
//! the files `image` and `reference` (or the text field `reference_template`) and the same
//! options as text fields.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use facelive_pipeline::{
    CheckOptions, DecisionRule, ImageInfo, MatchRule, ModelPack, OperatingPoint, QualityCheck,
    RetryReason, VerifyOutcome, VerifyVerdict, WhichImage,
};
use serde::{Deserialize, Serialize};

use super::liveness::{
    error_response, image_bytes, render_verdict, rule_of, ErrorBody, ImageSource, NativeFace,
    NativeResponse,
};
use crate::admission::{admit, decide};
use crate::dialect::{Decision, Endpoint, Purpose, Route};
use crate::dialects::render::fraction_box;
use crate::error::ApiError;
use crate::input::{self, Payload};
use crate::state::{AppState, ReferenceInput, Sealed};

/// Liveness with verify: the selfie judged, its judged face matched against a reference.
pub static NATIVE_VERIFY: Endpoint = Endpoint {
    paths: &["/v1/verify"],
    label: "native_verify",
    purpose: Purpose::Verdict,
    decision: Decision::OperatingPoints,
    handler: || post(verify),
};

/// A reference photo sealed into a template: no decision, so not audited.
pub static NATIVE_TEMPLATES: Endpoint = Endpoint {
    paths: &["/v1/templates"],
    label: "template",
    purpose: Purpose::Guidance,
    decision: Decision::OperatingPoints,
    handler: || post(template),
};

/// The verify endpoint's multipart form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the form `from_form` reads.
struct VerifyForm {
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// The reference photo; or give `reference_template`.
    #[schema(value_type = Option<String>, format = Binary)]
    reference: Option<Vec<u8>>,
    /// A template from `POST /v1/templates`.
    reference_template: Option<String>,
    operating_point: Option<facelive_pipeline::OperatingPoint>,
    /// 0..1; overrides operating_point.
    threshold: Option<String>,
    /// -1..1; overrides the operating point's match threshold.
    match_threshold: Option<String>,
    /// true or false: apply the EXIF orientation.
    auto_rotate: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = VerifyRequest)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    image: ImageSource,
    reference: ReferenceSource,
    operating_point: Option<OperatingPoint>,
    threshold: Option<f32>,
    /// Cosine similarity at or above which the faces are the same person (-1..1);
    /// default: the operating point's.
    match_threshold: Option<f32>,
    auto_rotate: Option<bool>,
}

/// A reference: a photo (base64 or URL) or a template from `POST /v1/templates`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NativeReferenceSource)]
#[serde(deny_unknown_fields)]
pub(super) struct ReferenceSource {
    pub base64: Option<String>,
    pub url: Option<String>,
    pub template: Option<String>,
}

/// The reference's face, when a photo was given.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReferenceAnswer {
    pub face: Option<NativeFace>,
    #[schema(value_type = Option<String>)]
    pub retry_reason: Option<RetryReason>,
    pub quality: Vec<QualityCheck>,
    pub image: ImageInfo,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    pub request_id: String,
    /// verified (live and the same person), attack, not_same_person or retry.
    pub outcome: VerifyOutcome,
    /// With `retry`: which image cannot be used (`image` is the selfie).
    pub retry_image: Option<WhichImage>,
    #[schema(value_type = Option<String>)]
    pub retry_reason: Option<RetryReason>,
    pub verified: bool,
    /// Cosine similarity of the judged face and the reference's face (-1..1).
    pub similarity: Option<f32>,
    pub match_threshold: f32,
    pub same_person: Option<bool>,
    /// The selfie's liveness answer, as `/v1/liveness` gives it.
    pub liveness: NativeResponse,
    /// Absent when the reference was a template.
    pub reference: Option<ReferenceAnswer>,
    pub model_pack: ModelPack,
}

/// Native API: liveness with verify
///
/// The selfie is judged as `/v1/liveness` judges it, and the face judged is the face
/// matched against the reference (a photo's largest face, or a template). `verified` only
/// when the selfie is live and the faces match.
#[utoipa::path(
    post,
    path = NATIVE_VERIFY.paths[0],
    tag = "native",
    request_body(content(
        (JsonRequest = "application/json"),
        (VerifyForm = "multipart/form-data")
    )),
    responses(
        (status = 200, description = "the verdict and the match", body = VerifyResponse),
        (status = "default", description = "an error", body = ErrorBody)
    )
)]
pub async fn verify(
    State(state): State<Arc<AppState>>,
    Extension(route): Extension<Route>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let run = run(&state, route, req);
    let (rid, res) = decide(&state, route, &headers, run).await;
    match res {
        Ok(v) => Json(render(v, rid)).into_response(),
        Err(e) => error_response(&e, rid),
    }
}

/// What a verify request asks.
struct Asked {
    image: Vec<u8>,
    reference: ReferenceInput,
    decision: DecisionRule,
    auto_rotate: Option<bool>,
    rule: MatchRule,
}

async fn run(state: &AppState, route: Route, req: Request) -> Result<VerifyVerdict, ApiError> {
    let a = admit(state, route, req).await?;
    if a.session.is_some() {
        // A page's token may judge its one capture, bound or not; it chooses no reference.
        return Err(ApiError::Unauthorized);
    }
    let asked = match a.payload {
        Payload::Json(body) => from_json(state, &body, a.sizes.body).await?,
        Payload::Multipart(mp) => from_form(state, mp, a.sizes.body).await?,
    };
    let opts = CheckOptions {
        auto_rotate: asked.auto_rotate,
        ..route.dialect.options(asked.decision)
    };
    state
        .verify(asked.image, asked.reference, opts, asked.rule)
        .await
}

fn match_rule(t: Option<f32>) -> Result<MatchRule, ApiError> {
    // Refused only when given, so the default is never shown.
    MatchRule::new(t).map_err(|_| {
        let t = t.unwrap_or_default();
        ApiError::InvalidParam(format!("match_threshold {t} is outside -1..1"))
    })
}

pub(super) async fn reference_of(
    state: &AppState,
    r: ReferenceSource,
    limit: usize,
) -> Result<ReferenceInput, ApiError> {
    match (r.template, r.base64.is_some() || r.url.is_some()) {
        (Some(_), true) => Err(ApiError::InvalidParam(
            "give reference.template or a reference image, not both".into(),
        )),
        (Some(t), false) => Ok(ReferenceInput::Embedding(state.open_template(&t)?)),
        (None, _) => {
            let source = ImageSource {
                base64: r.base64,
                url: r.url,
            };
            let bytes = image_bytes(state, source, "reference", limit).await?;
            Ok(ReferenceInput::Image(bytes))
        }
    }
}

async fn from_json(state: &AppState, body: &[u8], limit: usize) -> Result<Asked, ApiError> {
    let r: JsonRequest = input::json(body)?;
    Ok(Asked {
        decision: rule_of(r.operating_point, r.threshold)?,
        auto_rotate: r.auto_rotate,
        rule: match_rule(r.match_threshold)?,
        image: image_bytes(state, r.image, "image", limit).await?,
        reference: reference_of(state, r.reference, limit).await?,
    })
}

async fn from_form(
    state: &AppState,
    mp: axum::extract::Multipart,
    limit: usize,
) -> Result<Asked, ApiError> {
    let mut form = input::form_files(mp, &["image", "reference"], limit).await?;
    let text = |k: &str| form.fields.get(k).map(|v| v.trim().to_string());
    let number = |k: &str| {
        text(k)
            .map(|v| {
                v.parse::<f32>()
                    .map_err(|_| ApiError::InvalidParam(format!("{k} {v:?} is not a number")))
            })
            .transpose()
    };
    let point = text("operating_point")
        .map(|v| v.parse::<OperatingPoint>().map_err(ApiError::InvalidParam))
        .transpose()?;
    let auto_rotate = text("auto_rotate")
        .map(|v| {
            v.parse::<bool>().map_err(|_| {
                ApiError::InvalidParam(format!("auto_rotate {v:?} is not true or false"))
            })
        })
        .transpose()?;
    let decision = rule_of(point, number("threshold")?)?;
    let rule = match_rule(number("match_threshold")?)?;
    let template = text("reference_template");
    let image = form
        .files
        .remove("image")
        .ok_or_else(|| ApiError::MissingField("image".into()))?;
    let reference = match (form.files.remove("reference"), template) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidParam(
                "give the reference file or reference_template, not both".into(),
            ))
        }
        (Some(bytes), None) => ReferenceInput::Image(bytes),
        (None, Some(t)) => ReferenceInput::Embedding(state.open_template(&t)?),
        (None, None) => {
            return Err(ApiError::MissingField(
                "reference or reference_template".into(),
            ))
        }
    };
    Ok(Asked {
        image,
        reference,
        decision,
        auto_rotate,
        rule,
    })
}

fn render(v: VerifyVerdict, request_id: String) -> VerifyResponse {
    let reference = v.reference.map(|r| ReferenceAnswer {
        face: r.face.as_ref().map(|j| NativeFace {
            bbox: j.bbox,
            box_fraction: fraction_box(&j.bbox, r.image.width, r.image.height),
            landmarks: j.landmarks,
            detection_score: j.detection_score,
            live_score: None,
        }),
        retry_reason: r.retry_reason,
        quality: r.quality,
        image: r.image,
    });
    let model_pack = v.liveness.model_pack.clone();
    VerifyResponse {
        outcome: v.outcome,
        retry_image: v.retry_image,
        retry_reason: v.retry_reason,
        verified: v.verified,
        similarity: v.similarity,
        match_threshold: v.match_threshold,
        same_person: v.same_person,
        liveness: render_verdict(v.liveness, request_id.clone()),
        reference,
        model_pack,
        request_id,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TemplateRequest)]
#[serde(deny_unknown_fields)]
struct TemplateRequest {
    image: ImageSource,
    auto_rotate: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TemplateResponse {
    pub request_id: String,
    /// Opaque and sealed: give it as `reference.template` (or `reference_template`), or
    /// bind a capture session to it. facelive keeps no copy.
    pub template: String,
    /// The embedder it was made with: a template of another opens nowhere else.
    pub embedder: String,
    pub face: Option<NativeFace>,
    pub quality: Vec<QualityCheck>,
    pub image: ImageInfo,
}

/// Native API: seal a reference photo into a template
///
/// The photo's largest face, fit to use (its own quality checks), embedded and sealed
/// under the server's template key. A photo with no usable face is refused
/// (`reference_unusable`).
#[utoipa::path(
    post,
    path = NATIVE_TEMPLATES.paths[0],
    tag = "native",
    request_body(content(
        (TemplateRequest = "application/json"),
        (super::liveness::NativeForm = "multipart/form-data")
    )),
    responses(
        (status = 200, description = "the template", body = TemplateResponse),
        (status = "default", description = "an error", body = ErrorBody)
    )
)]
pub async fn template(
    State(state): State<Arc<AppState>>,
    Extension(route): Extension<Route>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let run = async {
        let a = admit(&state, route, req).await?;
        if a.session.is_some() {
            // A page's token judges one capture; it makes no references.
            return Err(ApiError::Unauthorized);
        }
        let (bytes, auto_rotate) = match a.payload {
            Payload::Json(body) => {
                let r: TemplateRequest = input::json(&body)?;
                (
                    image_bytes(&state, r.image, "image", a.sizes.body).await?,
                    r.auto_rotate,
                )
            }
            Payload::Multipart(mp) => {
                let form = input::form(mp, "image", a.sizes.body).await?;
                (
                    form.file
                        .ok_or_else(|| ApiError::MissingField("image".into()))?,
                    None,
                )
            }
        };
        state.template(bytes, auto_rotate).await
    };
    let (rid, res) = decide(&state, route, &headers, run).await;
    match res {
        Ok(Sealed { face, template }) => {
            let embedder = state
                .pipeline
                .embedder()
                .map(|e| e.name().to_string())
                .unwrap_or_default();
            Json(TemplateResponse {
                request_id: rid,
                template,
                embedder,
                face: face.face.as_ref().map(|j| NativeFace {
                    bbox: j.bbox,
                    box_fraction: fraction_box(&j.bbox, face.image.width, face.image.height),
                    landmarks: j.landmarks,
                    detection_score: j.detection_score,
                    live_score: None,
                }),
                quality: face.quality,
                image: face.image,
            })
            .into_response()
        }
        Err(e) => error_response(&e, rid),
    }
}
