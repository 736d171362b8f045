//! What more than one dialect renders the same way: boxes and points as fractions of the
//! image, an error body under the one status mapping, the hint for an unjudged image.

use axum::response::{IntoResponse, Response};
use axum::Json;
use facelive_pipeline::{BBox, Point, RetryReason, Verdict};
use serde::Serialize;

use crate::error::ApiError;

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
