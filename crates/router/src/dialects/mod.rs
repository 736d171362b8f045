//! One module per API dialect: request in, pipeline options out; verdict or error in,
//! the dialect's response out.

pub mod accura;
pub mod jcv;
pub mod native;
pub mod nhn;
pub mod spoofsense;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use facelive_pipeline::{BBox, Point, Verdict};
use serde::Serialize;

use crate::error::ApiError;
use crate::REQUEST_ID;

pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A box as fractions of the image size (0..1, clamped).
#[derive(Debug, Clone, Copy, Serialize)]
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
    let reason = v.retry_reason.as_deref();
    match reason {
        Some("no_face") => "no face was found; face the camera",
        _ => v
            .quality
            .iter()
            .find(|c| Some(c.name) == reason)
            .map(|c| c.hint)
            .unwrap_or("the image cannot be judged; take another photo"),
    }
}
