//! facelive's own API: everything the pipeline knows.
//!
//! `POST /v1/liveness`, `Authorization: Bearer <key>`; JSON
//! `{"image": {"base64": ".."} | {"url": ".."}, "operating_point"?, "threshold"?, "auto_rotate"?}`
//! or multipart with a file field `image` and the same options as text fields.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use facelive_pipeline::{
    BBox, CheckOptions, DecisionRule, Face, ImageInfo, Landmarks, ModelPack, ModelScore,
    OperatingPoint, Outcome, QualityCheck, Timings, Verdict,
};
use serde::{Deserialize, Serialize};

use super::{fraction_box, request_id, FractionBox};

use crate::auth::Place;

use crate::audit::Who;
use crate::auth::ApiKey;
use crate::error::ApiError;
use crate::input::{self, Payload};
use crate::sessions;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    image: ImageSource,
    operating_point: Option<OperatingPoint>,
    threshold: Option<f32>,
    auto_rotate: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageSource {
    base64: Option<String>,
    url: Option<String>,
}

#[derive(Serialize)]
pub struct NativeFace {
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub box_fraction: FractionBox,
    pub landmarks: Option<Landmarks>,
    pub detection_score: Option<f32>,
    pub live_score: Option<f32>,
}

#[derive(Serialize)]
pub struct NativeResponse {
    pub request_id: String,
    pub outcome: Outcome,
    pub retry_reason: Option<String>,
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
}

#[derive(Serialize)]
struct ErrorBody {
    request_id: String,
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: &'static str,
    message: String,
}

pub async fn check(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    respond(&state, &headers, req, Use::Verdict, render).await
}

/// What a request is for: a verdict (which uses up a session token) or guidance.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Verdict,
    Guidance,
}

async fn respond<T: Serialize>(
    state: &AppState,
    headers: &HeaderMap,
    req: Request,
    purpose: Use,
    shape: fn(Verdict, String) -> T,
) -> Response {
    let rid = request_id(headers);
    let dialect = match purpose {
        Use::Verdict => "native",
        Use::Guidance => "guidance",
    };
    // Guidance decides nothing: it stays out of the audit trail.
    let audited = (purpose == Use::Verdict).then(|| who(headers));
    match state
        .handle(dialect, &rid, audited, run(state, headers, req, purpose))
        .await
    {
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

/// Who the audit trail names for a request: the session for a token, else the key.
fn who(headers: &HeaderMap) -> Who {
    let token = bearer(headers)
        .filter(|t| sessions::is_token(t))
        .and_then(sessions::token_id);
    match token {
        Some(id) => Who::Session(id.to_string()),
        None => Who::Key(ApiKey::Native),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The native key, or a capture session token, and a place for the request: the key's own,
/// or the token's (apart from the key's). A verdict spends the token, guidance does not; a
/// token is spent only once it has a place, so a refusal for load does not use it up.
fn authorize(state: &AppState, headers: &HeaderMap, purpose: Use) -> Result<Place, ApiError> {
    let cfg = &state.cfg;
    match bearer(headers) {
        Some(t) if cfg.auth && sessions::is_token(t) => {
            let id = state.sessions.check(t).map_err(ApiError::Session)?;
            let place = state.admit_token(&id)?;
            if purpose == Use::Verdict {
                state.sessions.consume(t).map_err(ApiError::Session)?;
            }
            Ok(place)
        }
        _ => {
            crate::auth::check_header(
                cfg.auth,
                headers,
                "authorization",
                "Bearer ",
                cfg.keys.native.as_deref(),
            )?;
            state.admit_key(ApiKey::Native)
        }
    }
}

/// The key (or token) and a place for it; or the refusal, once the body is read.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    req: Request,
    purpose: Use,
) -> Result<(Place, Request), ApiError> {
    let cfg = &state.cfg;
    match authorize(state, headers, purpose) {
        Ok(place) => Ok((place, req)),
        Err(e) => Err(input::refuse_unread(req, cfg.limits.native_body, &cfg.limits, e).await),
    }
}

async fn run(
    state: &AppState,
    headers: &HeaderMap,
    req: Request,
    purpose: Use,
) -> Result<Verdict, ApiError> {
    let (_key, req) = admit(state, headers, req, purpose).await?;
    let a = read(state, req).await?;
    let opts = CheckOptions {
        rule: a.rule,
        auto_rotate: a.auto_rotate,
        skip_judges: purpose == Use::Guidance,
        ..Default::default()
    };
    state.judge(a.bytes, opts).await
}

async fn read(state: &AppState, req: Request) -> Result<Asked, ApiError> {
    let cfg = &state.cfg;
    let limit = cfg.limits.native_body;
    let (bytes, point, threshold, rotate) = match input::payload(req, limit, &state.cfg.limits)
        .await?
    {
        Payload::Json(body) => {
            let r: JsonRequest = input::json(&body)?;
            let bytes = match (r.image.base64, r.image.url) {
                (Some(b), None) => input::decode_base64(&b)?,
                (None, Some(u)) => state.fetch(&u, limit).await?,
                (Some(_), Some(_)) => {
                    return Err(ApiError::InvalidParam(
                        "give image.base64 or image.url, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(ApiError::MissingField("image.base64 or image.url".into()))
                }
            };
            (bytes, r.operating_point, r.threshold, r.auto_rotate)
        }
        Payload::Multipart(mp) => {
            let form = input::form(mp, "image", limit).await?;
            let parse = |k: &str| form.fields.get(k).map(|v| v.trim().to_string());
            let point = parse("operating_point")
                .map(|v| v.parse::<OperatingPoint>().map_err(ApiError::InvalidParam))
                .transpose()?;
            let threshold = parse("threshold")
                .map(|v| {
                    v.parse::<f32>().map_err(|_| {
                        ApiError::InvalidParam(format!("threshold {v:?} is not a number"))
                    })
                })
                .transpose()?;
            let rotate = parse("auto_rotate")
                .map(|v| {
                    v.parse::<bool>().map_err(|_| {
                        ApiError::InvalidParam(format!("auto_rotate {v:?} is not true or false"))
                    })
                })
                .transpose()?;
            let bytes = form
                .file
                .ok_or_else(|| ApiError::MissingField("image".into()))?;
            (bytes, point, threshold, rotate)
        }
    };
    let rule = match (threshold, point) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidParam(
                "give operating_point or threshold, not both".into(),
            ))
        }
        (Some(t), None) if (0.0..=1.0).contains(&t) => DecisionRule::Threshold(t),
        (Some(t), None) => {
            return Err(ApiError::InvalidParam(format!(
                "threshold {t} is outside 0..1"
            )))
        }
        (None, p) => DecisionRule::Point(p.unwrap_or(OperatingPoint::Balanced)),
    };
    Ok(Asked {
        bytes,
        rule,
        auto_rotate: rotate,
    })
}

/// `POST /v1/quality`: capture guidance. The same request as `/v1/liveness`; the pipeline
/// stops after the quality checks (no anti-spoof models), and the answer says whether the
/// capture is fit to judge and what to change. A session token stays usable.
pub async fn quality(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    respond(&state, &headers, req, Use::Guidance, guidance).await
}

#[derive(Serialize)]
pub struct Guidance {
    pub request_id: String,
    /// Every enforced check passed: the capture can be judged.
    pub fit: bool,
    pub retry_reason: Option<String>,
    /// The failed checks' hints in order, each once ("move closer", "hold still", ...).
    pub hints: Vec<&'static str>,
    pub face: Option<NativeFace>,
    pub quality: Vec<QualityCheck>,
    pub image: ImageInfo,
    pub timings: Timings,
}

fn guidance(v: Verdict, request_id: String) -> Guidance {
    let mut hints: Vec<&'static str> = Vec::new();
    for c in v.quality.iter().filter(|c| !c.pass) {
        if !hints.contains(&c.hint) {
            hints.push(c.hint);
        }
    }
    if v.retry_reason.as_deref() == Some("no_face") {
        hints.push("put your face inside the frame");
    }
    let info = &v.image;
    Guidance {
        request_id,
        fit: v.retry_reason.is_none(),
        retry_reason: v.retry_reason.clone(),
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

/// `POST /v1/sessions`: a capture session token for a web page, for the native key only
/// (a token cannot make tokens).
pub async fn session(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let rid = request_id(&headers);
    let cfg = &state.cfg;
    let key = crate::auth::check_header(
        cfg.auth,
        &headers,
        "authorization",
        "Bearer ",
        cfg.keys.native.as_deref(),
    );
    match key {
        Ok(()) => (
            axum::http::StatusCode::CREATED,
            Json(state.sessions.issue()),
        )
            .into_response(),
        Err(e) => error_response(&e, rid),
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

fn render(v: Verdict, request_id: String) -> NativeResponse {
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
    }
}

fn error_response(e: &ApiError, request_id: String) -> Response {
    let body = ErrorBody {
        request_id,
        error: ErrorDetail {
            code: e.mapping().code,
            message: e.public_message(),
        },
    };
    super::error_response(e, body)
}
