//! One module per API dialect: request in, pipeline options out; verdict or error in,
//! the dialect's response out.

pub(crate) mod accura;
pub(crate) mod jcv;
pub(crate) mod native;
pub(crate) mod nhn;
pub(crate) mod spoofsense;
pub(crate) mod verify;

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Json;
use facelive_pipeline::ingest::Formats;
use facelive_pipeline::{BBox, CheckOptions, DecisionRule, Point, RetryReason, Verdict};
use serde::Serialize;

use crate::auth::ApiKey;
use crate::config::Limits;
use crate::error::ApiError;
use crate::{AppState, REQUEST_ID};

/// How a dialect's requests carry their credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <key>`, or a capture session token (native).
    BearerOrSessionToken,
    /// The app key as the `{appKey}` path segment and the secret key as `Authorization` (NHN).
    AppKeyInPathAndSecret,
    /// The key in the first of these headers that holds it.
    Header(&'static [&'static str]),
}

/// The request bodies a dialect takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bodies {
    JsonOrMultipart,
    Json,
}

/// Byte limits of one dialect's requests, from the server's [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The whole request body.
    pub body: usize,
    /// The image file in it (the body's limit where the vendor sets none apart).
    pub file: usize,
}

/// How an endpoint decides live or spoof.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// facelive's operating points (or the caller's threshold, native).
    OperatingPoints,
    /// The vendor's fixed threshold on the 0..1 live score.
    Vendor(f32),
}

impl Decision {
    /// The vendor's threshold, if it has one.
    pub fn threshold(self) -> Option<f32> {
        match self {
            Decision::OperatingPoints => None,
            Decision::Vendor(t) => Some(t),
        }
    }
}

/// What a request is for: a verdict (audited; it spends a session token) or capture
/// guidance (neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verdict,
    Guidance,
}

/// One endpoint of a dialect: the paths it answers at and how it decides.
pub struct Endpoint {
    /// `POST` paths (the first is the one the vendor documents).
    pub paths: &'static [&'static str],
    /// Its name in metrics, logs and the audit trail.
    pub label: &'static str,
    pub purpose: Purpose,
    pub decision: Decision,
    pub(crate) handler: fn() -> MethodRouter<Arc<AppState>>,
}

/// One API dialect: every fact about it that more than one place reads.
pub struct Dialect {
    pub name: &'static str,
    pub key: ApiKey,
    pub credential: Credential,
    pub bodies: Bodies,
    /// The image formats the vendor documents.
    pub formats: Formats,
    pub sizes: fn(&Limits) -> Sizes,
    /// The HTTP status of an error's answer (NHN answers 200 for all, SpoofSense for most).
    pub error_status: fn(&ApiError) -> StatusCode,
    pub endpoints: &'static [&'static Endpoint],
}

impl Dialect {
    /// The pipeline's options for a request of this dialect decided by `rule`.
    pub(crate) fn options(&self, rule: DecisionRule) -> CheckOptions {
        CheckOptions {
            rule,
            formats: self.formats,
            ..Default::default()
        }
    }
}

pub static NATIVE: Dialect = Dialect {
    name: "native",
    key: ApiKey::Native,
    credential: Credential::BearerOrSessionToken,
    bodies: Bodies::JsonOrMultipart,
    formats: Formats::ALL,
    sizes: |l| Sizes {
        body: l.native_body,
        file: l.native_body,
    },
    error_status: ApiError::status,
    endpoints: &[
        &NATIVE_CHECK,
        &NATIVE_GUIDANCE,
        &NATIVE_VERIFY,
        &NATIVE_TEMPLATES,
    ],
};

pub static NATIVE_CHECK: Endpoint = Endpoint {
    paths: &["/v1/liveness"],
    label: "native",
    purpose: Purpose::Verdict,
    decision: Decision::OperatingPoints,
    handler: || post(native::check),
};

/// Capture guidance: the quality checks only, so no decision to log as one.
pub static NATIVE_GUIDANCE: Endpoint = Endpoint {
    paths: &["/v1/quality"],
    label: "guidance",
    purpose: Purpose::Guidance,
    decision: Decision::OperatingPoints,
    handler: || post(native::quality),
};

/// Liveness with verify: the selfie judged, its judged face matched against a reference.
pub static NATIVE_VERIFY: Endpoint = Endpoint {
    paths: &["/v1/verify"],
    label: "native_verify",
    purpose: Purpose::Verdict,
    decision: Decision::OperatingPoints,
    handler: || post(verify::verify),
};

/// A reference photo sealed into a template: no decision, so not audited.
pub static NATIVE_TEMPLATES: Endpoint = Endpoint {
    paths: &["/v1/templates"],
    label: "template",
    purpose: Purpose::Guidance,
    decision: Decision::OperatingPoints,
    handler: || post(verify::template),
};

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
    endpoints: &[&Endpoint {
        paths: &["/v1.0/appkeys/{appKey}/spoofing"],
        label: "nhn",
        purpose: Purpose::Verdict,
        decision: Decision::OperatingPoints,
        handler: || post(nhn::spoofing),
    }],
};

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
    endpoints: &[&Endpoint {
        paths: &["/v2/api/liveness"],
        label: "accura",
        purpose: Purpose::Verdict,
        // The vendor's threshold: 55% (decided as every threshold is, score >= 55%).
        decision: Decision::Vendor(0.55),
        handler: || post(accura::liveness),
    }],
};

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
    endpoints: &[&Endpoint {
        paths: &["/v1/jcv/liveness"],
        label: "jcv",
        purpose: Purpose::Verdict,
        // JCV's recommended threshold, kept whatever the model version.
        decision: Decision::Vendor(0.5),
        handler: || post(jcv::liveness),
    }],
};

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
    handler: || post(spoofsense::antispoofing),
};

pub static SPOOFSENSE_ROBUST: Endpoint = Endpoint {
    paths: &["/robust"],
    label: "spoofsense_robust",
    purpose: Purpose::Verdict,
    decision: Decision::Vendor(0.50),
    handler: || post(spoofsense::robust),
};

impl Dialect {
    /// What `/info` says of it.
    pub(crate) fn describe(&self, limits: &Limits) -> serde_json::Value {
        let sizes = (self.sizes)(limits);
        let endpoints: Vec<String> = self
            .endpoints
            .iter()
            .flat_map(|e| e.paths.iter().map(|p| format!("POST {p}")))
            .collect();
        let thresholds: serde_json::Map<String, serde_json::Value> = self
            .endpoints
            .iter()
            .filter_map(|e| Some((e.paths[0].to_string(), e.decision.threshold()?.into())))
            .collect();
        serde_json::json!({
            "name": self.name,
            "endpoints": endpoints,
            "max_body_bytes": sizes.body,
            "max_file_bytes": sizes.file,
            "formats": self.formats.names(),
            "multipart": self.bodies == Bodies::JsonOrMultipart,
            "vendor_thresholds": thresholds,
        })
    }
}

/// Every dialect the server speaks.
pub static ALL: [&Dialect; 5] = [&NATIVE, &NHN, &ACCURA, &JCV, &SPOOFSENSE];

/// One request to `endpoint` of `dialect`, decided by `run` under the server's deadline,
/// counted, logged and (a verdict) audited: the request id and the result, for the dialect
/// to render.
pub(crate) async fn decide<D: crate::Decided>(
    state: &AppState,
    dialect: &Dialect,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    run: impl std::future::Future<Output = Result<D, ApiError>>,
) -> (String, Result<D, ApiError>) {
    let rid = request_id(headers);
    let audited =
        (endpoint.purpose == Purpose::Verdict).then(|| crate::admission::who(dialect, headers));
    let res = state.handle(endpoint.label, &rid, audited, run).await;
    (rid, res)
}

pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A box as fractions of the image size (0..1, clamped).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub(crate) struct FractionBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

pub(crate) fn fraction_box(b: &BBox, w: u32, h: u32) -> FractionBox {
    let (w, h) = (w as f32, h as f32);
    let c = |v: f32| v.clamp(0.0, 1.0);
    FractionBox {
        x0: c(b.x / w),
        y0: c(b.y / h),
        x1: c((b.x + b.width) / w),
        y1: c((b.y + b.height) / h),
    }
}

pub(crate) fn fraction_point(p: &Point, w: u32, h: u32) -> Point {
    Point {
        x: (p.x / w as f32).clamp(0.0, 1.0),
        y: (p.y / h as f32).clamp(0.0, 1.0),
    }
}

/// A dialect's error body with the status of the one mapping, and Retry-After where the
/// mapping asks for it.
pub(crate) fn error_response(e: &ApiError, body: impl Serialize) -> Response {
    let mut resp = (e.mapping().status, Json(body)).into_response();
    if let Some(s) = e.retry_after() {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, s.into());
    }
    resp
}

/// What to tell the user when the image cannot be judged: the hint of the failed check.
pub(crate) fn retry_message(v: &Verdict) -> &'static str {
    match v.retry_reason {
        Some(RetryReason::NoFace) => RetryReason::NO_FACE_HINT,
        Some(RetryReason::Check(name)) => v
            .quality
            .iter()
            .find(|c| c.name == name)
            .map_or(UNJUDGED, |c| c.hint),
        None => UNJUDGED,
    }
}

const UNJUDGED: &str = "the image cannot be judged; take another photo";
