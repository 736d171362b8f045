//! facelive's own API, its liveness endpoints: everything the pipeline knows.
//!
//! `POST /v1/liveness`, `Authorization: Bearer <key>`; JSON
//! `{"image": {"base64": ".."} | {"url": ".."}, "operating_point"?, "threshold"?, "auto_rotate"?}`
//! or multipart with a file field `image` and the same options as text fields.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use facelive_pipeline::{
    BBox, CheckOptions, DecisionRule, Face, ImageInfo, Landmarks, MatchRule, ModelPack, ModelScore,
    OperatingPoint, Outcome, QualityCheck, RetryReason, Timings, Verdict, VerifyOutcome,
    VerifyVerdict,
};
use serde::{Deserialize, Serialize};

use crate::admission::{admit, decide};
use crate::attest::Claims;
use crate::dialect::{Decision, Endpoint, Purpose, Route};
use crate::dialects::render::{self, fraction_box, FractionBox};
use crate::error::ApiError;
use crate::input::{self, Payload};
use crate::state::{AppState, Decided, ReferenceInput};

pub static NATIVE_CHECK: Endpoint = Endpoint {
    paths: &["/v1/liveness"],
    label: "native",
    purpose: Purpose::Verdict,
    decision: Decision::OperatingPoints,
    handler: || post(check),
};

/// Capture guidance: the quality checks only, so no decision to log as one.
pub static NATIVE_GUIDANCE: Endpoint = Endpoint {
    paths: &["/v1/quality"],
    label: "guidance",
    purpose: Purpose::Guidance,
    decision: Decision::OperatingPoints,
    handler: || post(quality),
};

/// The native API's multipart form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the form `from_form` reads.
pub(super) struct NativeForm {
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    operating_point: Option<facelive_pipeline::OperatingPoint>,
    /// 0..1; overrides operating_point.
    threshold: Option<String>,
    /// true or false: apply the EXIF orientation.
    auto_rotate: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NativeRequest)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    image: ImageSource,
    operating_point: Option<OperatingPoint>,
    threshold: Option<f32>,
    auto_rotate: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NativeImageSource)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageSource {
    pub base64: Option<String>,
    pub url: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NativeFace {
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub box_fraction: FractionBox,
    pub landmarks: Option<Landmarks>,
    pub detection_score: Option<f32>,
    pub live_score: Option<f32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NativeResponse {
    pub request_id: String,
    pub outcome: Outcome,
    #[schema(value_type = Option<String>)]
    pub retry_reason: Option<RetryReason>,
    pub live_score: Option<f32>,
    pub threshold: f32,
    pub operating_point: Option<OperatingPoint>,
    pub model_pack: ModelPack,
    pub face: Option<NativeFace>,
    pub other_faces: Vec<NativeFace>,
    pub per_model: Vec<ModelScore>,
    pub quality: Vec<QualityCheck>,
    pub image: ImageInfo,
    pub timings: Timings,
    /// A capture session's session bound to a reference: the match of the judged face.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<SessionMatch>,
    /// A capture session's answer: the signed result for the integrator's backend (a
    /// compact JWS, EdDSA; keys at `/.well-known/jwks.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
}

/// The match of a session bound to a reference.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionMatch {
    pub outcome: VerifyOutcome,
    pub verified: bool,
    pub similarity: Option<f32>,
    pub match_threshold: f32,
    pub same_person: Option<bool>,
}

/// What a native liveness request decided: the verdict, or (a session bound to a
/// reference) the verdict with its match; and a session's attestation.
pub(crate) struct Answer {
    checked: Checked,
    attestation: Option<String>,
}

enum Checked {
    Liveness(Box<Verdict>),
    Verify(Box<VerifyVerdict>),
}

impl Decided for Answer {
    fn liveness(&self) -> Option<&Verdict> {
        Some(answer_liveness(&self.checked))
    }
    fn label(&self) -> &'static str {
        match &self.checked {
            Checked::Liveness(v) => v.label(),
            Checked::Verify(v) => v.label(),
        }
    }
    fn matched(&self) -> Option<crate::audit::Match> {
        match &self.checked {
            Checked::Liveness(_) => None,
            Checked::Verify(v) => v.matched(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NativeError)]
pub(crate) struct ErrorBody {
    request_id: String,
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NativeErrorDetail)]
struct ErrorDetail {
    code: &'static str,
    message: String,
}

/// Native API: judge the largest face
///
/// JSON, or multipart with the file field `image` and the same options as text fields.
/// `outcome` is live, spoof, or retry (the image cannot be judged: no face, a failed
/// quality check, named by `retry_reason`).
#[utoipa::path(
    post,
    path = NATIVE_CHECK.paths[0],
    tag = "native",
    request_body(content(
        (JsonRequest = "application/json"),
        (NativeForm = "multipart/form-data")
    )),
    responses(
        (status = 200, description = "the verdict", body = NativeResponse),
        (status = "default", description = "an error", body = ErrorBody)
    )
)]
pub async fn check(
    State(state): State<Arc<AppState>>,
    Extension(route): Extension<Route>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    respond(&state, route, &headers, req, render).await
}

async fn respond<T: Serialize>(
    state: &AppState,
    route: Route,
    headers: &HeaderMap,
    req: Request,
    shape: fn(Answer, String) -> T,
) -> Response {
    let run = run(state, route, req);
    let (rid, res) = decide(state, route, headers, run).await;
    match res {
        Ok(v) => Json(shape(v, rid)).into_response(),
        Err(e) => error_response(&e, rid),
    }
}

/// What a native request asks for: the image, the decision rule, the EXIF choice.
struct Asked {
    bytes: Vec<u8>,
    rule: DecisionRule,
    auto_rotate: Option<bool>,
}

async fn run(state: &AppState, route: Route, req: Request) -> Result<Answer, ApiError> {
    let purpose = route.endpoint.purpose;
    let a = admit(state, route, req).await?;
    let session = a.session.clone();
    let asked = read(state, a.payload, a.sizes.body).await?;
    let opts = CheckOptions {
        auto_rotate: asked.auto_rotate,
        skip_judges: purpose == Purpose::Guidance,
        ..route.dialect.options(asked.rule)
    };
    let session = session.filter(|_| purpose == Purpose::Verdict);
    let Some(session) = session else {
        let v = state.judge(asked.bytes, opts).await?;
        return Ok(Answer {
            checked: Checked::Liveness(Box::new(v)),
            attestation: None,
        });
    };
    let image = asked.bytes.clone();
    let checked = match &session.binding.template {
        Some(t) => {
            let reference = ReferenceInput::Embedding(state.open_template(t)?);
            let v = state
                .verify(asked.bytes, reference, opts, MatchRule::default())
                .await?;
            Checked::Verify(Box::new(v))
        }
        None => Checked::Liveness(Box::new(state.judge(asked.bytes, opts).await?)),
    };
    let matched = match &checked {
        Checked::Verify(m) => Some(m.as_ref()),
        Checked::Liveness(_) => None,
    };
    let ttl = state.cfg.sessions.ttl;
    let claims = Claims::of(&session, answer_liveness(&checked), matched, &image, ttl);
    Ok(Answer {
        attestation: Some(state.attestor.sign(&claims)),
        checked,
    })
}

fn answer_liveness(c: &Checked) -> &Verdict {
    match c {
        Checked::Liveness(v) => v,
        Checked::Verify(v) => &v.liveness,
    }
}

/// The options of a request, as given (JSON fields or form text fields).
struct Given {
    bytes: Vec<u8>,
    point: Option<OperatingPoint>,
    threshold: Option<f32>,
    auto_rotate: Option<bool>,
}

pub(crate) fn rule_of(
    point: Option<OperatingPoint>,
    threshold: Option<f32>,
) -> Result<DecisionRule, ApiError> {
    match (threshold, point) {
        (Some(_), Some(_)) => Err(ApiError::InvalidParam(
            "give operating_point or threshold, not both".into(),
        )),
        (Some(t), None) if (0.0..=1.0).contains(&t) => Ok(DecisionRule::Threshold(t)),
        (Some(t), None) => Err(ApiError::InvalidParam(format!(
            "threshold {t} is outside 0..1"
        ))),
        (None, p) => Ok(DecisionRule::Point(p.unwrap_or(OperatingPoint::Balanced))),
    }
}

async fn read(state: &AppState, payload: Payload, limit: usize) -> Result<Asked, ApiError> {
    let given = match payload {
        Payload::Json(body) => from_json(state, &body, limit).await?,
        Payload::Multipart(mp) => from_form(mp, limit).await?,
    };
    let rule = rule_of(given.point, given.threshold)?;
    Ok(Asked {
        bytes: given.bytes,
        rule,
        auto_rotate: given.auto_rotate,
    })
}

/// The bytes of an image given as base64 or a URL (`field` names it in errors).
pub(crate) async fn image_bytes(
    state: &AppState,
    source: ImageSource,
    field: &str,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    match (source.base64, source.url) {
        (Some(b), None) => input::decode_base64(&b),
        (None, Some(u)) => state.fetch(&u, limit).await,
        (Some(_), Some(_)) => Err(ApiError::InvalidParam(format!(
            "give {field}.base64 or {field}.url, not both"
        ))),
        (None, None) => Err(ApiError::MissingField(format!(
            "{field}.base64 or {field}.url"
        ))),
    }
}

async fn from_json(state: &AppState, body: &[u8], limit: usize) -> Result<Given, ApiError> {
    let r: JsonRequest = input::json(body)?;
    let bytes = image_bytes(state, r.image, "image", limit).await?;
    Ok(Given {
        bytes,
        point: r.operating_point,
        threshold: r.threshold,
        auto_rotate: r.auto_rotate,
    })
}

async fn from_form(mp: axum::extract::Multipart, limit: usize) -> Result<Given, ApiError> {
    let form = input::form(mp, "image", limit).await?;
    let parse = |k: &str| form.fields.get(k).map(|v| v.trim().to_string());
    let point = parse("operating_point")
        .map(|v| v.parse::<OperatingPoint>().map_err(ApiError::InvalidParam))
        .transpose()?;
    let threshold = parse("threshold")
        .map(|v| {
            v.parse::<f32>()
                .map_err(|_| ApiError::InvalidParam(format!("threshold {v:?} is not a number")))
        })
        .transpose()?;
    let auto_rotate = parse("auto_rotate")
        .map(|v| {
            v.parse::<bool>().map_err(|_| {
                ApiError::InvalidParam(format!("auto_rotate {v:?} is not true or false"))
            })
        })
        .transpose()?;
    let bytes = form
        .file
        .ok_or_else(|| ApiError::MissingField("image".into()))?;
    Ok(Given {
        bytes,
        point,
        threshold,
        auto_rotate,
    })
}

/// `POST /v1/quality`: capture guidance. The same request as `/v1/liveness`; the pipeline
/// stops after the quality checks (no anti-spoof models), and the answer says whether the
/// capture is fit to judge and what to change. A session token stays usable.
#[utoipa::path(
    post,
    path = NATIVE_GUIDANCE.paths[0],
    tag = "native",
    request_body(content(
        (JsonRequest = "application/json"),
        (NativeForm = "multipart/form-data")
    )),
    responses(
        (status = 200, description = "the guidance", body = Guidance),
        (status = "default", description = "an error", body = ErrorBody)
    )
)]
pub async fn quality(
    State(state): State<Arc<AppState>>,
    Extension(route): Extension<Route>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    respond(&state, route, &headers, req, guidance).await
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Guidance {
    pub request_id: String,
    /// Every enforced check passed: the capture can be judged.
    pub fit: bool,
    #[schema(value_type = Option<String>)]
    pub retry_reason: Option<RetryReason>,
    /// The failed checks' hints in order, each once ("move closer", "hold still", ...).
    pub hints: Vec<&'static str>,
    pub face: Option<NativeFace>,
    pub quality: Vec<QualityCheck>,
    pub image: ImageInfo,
    pub timings: Timings,
}

fn guidance(a: Answer, request_id: String) -> Guidance {
    let Checked::Liveness(v) = a.checked else {
        unreachable!("guidance never verifies")
    };
    let v = *v;
    let mut hints: Vec<&'static str> = Vec::new();
    for c in v.quality.iter().filter(|c| !c.pass) {
        if !hints.contains(&c.hint) {
            hints.push(c.hint);
        }
    }
    if v.retry_reason == Some(RetryReason::NoFace) {
        hints.push(RetryReason::NO_FACE_HINT);
    }
    let info = &v.image;
    Guidance {
        request_id,
        fit: v.retry_reason.is_none(),
        retry_reason: v.retry_reason,
        hints,
        face: v.face.as_ref().map(|j| NativeFace {
            bbox: j.bbox,
            box_fraction: fraction_box(&j.bbox, info.width, info.height),
            landmarks: j.landmarks,
            detection_score: j.detection_score,
            live_score: None,
        }),
        quality: v.quality,
        image: v.image,
        timings: v.timings,
    }
}

fn native_face(f: &Face, score: Option<f32>, info: &ImageInfo) -> NativeFace {
    NativeFace {
        bbox: f.bbox,
        box_fraction: fraction_box(&f.bbox, info.width, info.height),
        landmarks: Some(f.landmarks),
        detection_score: Some(f.score),
        live_score: score,
    }
}

fn render(a: Answer, request_id: String) -> NativeResponse {
    let attestation = a.attestation;
    let (v, verify) = match a.checked {
        Checked::Liveness(v) => (*v, None),
        Checked::Verify(m) => {
            let m = *m;
            let matched = SessionMatch {
                outcome: m.outcome,
                verified: m.verified,
                similarity: m.similarity,
                match_threshold: m.match_threshold,
                same_person: m.same_person,
            };
            (m.liveness, Some(matched))
        }
    };
    let mut r = render_verdict(v, request_id);
    r.verify = verify;
    r.attestation = attestation;
    r
}

pub(crate) fn render_verdict(v: Verdict, request_id: String) -> NativeResponse {
    let info = &v.image;
    let face = v.face.as_ref().map(|j| NativeFace {
        bbox: j.bbox,
        box_fraction: fraction_box(&j.bbox, info.width, info.height),
        landmarks: j.landmarks,
        detection_score: j.detection_score,
        live_score: v.live_score,
    });
    let other_faces = v
        .faces
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, f)| native_face(f, v.face_scores.get(i).copied().flatten(), info))
        .collect();
    NativeResponse {
        request_id,
        outcome: v.outcome,
        retry_reason: v.retry_reason,
        live_score: v.live_score,
        threshold: v.threshold,
        operating_point: v.operating_point,
        model_pack: v.model_pack,
        face,
        other_faces,
        per_model: v.per_model,
        quality: v.quality,
        image: v.image,
        timings: v.timings,
        verify: None,
        attestation: None,
    }
}

pub(crate) fn error_response(e: &ApiError, request_id: String) -> Response {
    let body = ErrorBody {
        request_id,
        error: ErrorDetail {
            code: e.mapping().code,
            message: e.public_message(),
        },
    };
    render::error_response(e, body)
}
