//! What NHN's APIs share: the answer header, faces with named landmarks as fractions of the
//! image, an image given by URL or base64 bytes, and the error answer.

use axum::response::Response;
use facelive_pipeline::{BBox, Landmarks, Point};
use serde::{Deserialize, Serialize};

use crate::dialect::Route;
use crate::dialects::render::{self, fraction_box, fraction_point, FractionBox};
use crate::error::ApiError;
use crate::input;
use crate::AppState;

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnHeader)]
#[serde(rename_all = "camelCase")]
pub(super) struct Header {
    is_successful: bool,
    result_code: i32,
    result_message: String,
}

impl Header {
    pub fn success() -> Self {
        Header {
            is_successful: true,
            result_code: 0,
            result_message: "Success".into(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NhnLandmark)]
pub(super) struct Landmark {
    #[serde(rename = "type")]
    kind: &'static str,
    x: f32,
    y: f32,
}

const LANDMARK_NAMES: [&str; 5] = ["leftEye", "rightEye", "nose", "leftLip", "rightLip"];

/// A face's box and named landmarks (none when unknown) as fractions of a `w` x `h` image.
pub(super) fn located(
    bbox: &BBox,
    landmarks: Option<&Landmarks>,
    w: u32,
    h: u32,
) -> (FractionBox, Vec<Landmark>) {
    let points = landmarks.map(Landmarks::points);
    let landmarks = points
        .iter()
        .flatten()
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
    (fraction_box(bbox, w, h), landmarks)
}

/// An image in a JSON request: exactly one of a URL and base64 bytes.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NhnImageSource)]
pub(super) struct ImageSource {
    url: Option<String>,
    bytes: Option<String>,
}

/// The image of a JSON request (`name` in errors): fetched from its URL or decoded from
/// its bytes.
pub(super) async fn image_bytes(
    state: &AppState,
    image: ImageSource,
    name: &str,
    file_limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let bytes = match (image.url, image.bytes) {
        (Some(u), None) => state.fetch(&u, file_limit).await?,
        (None, Some(b)) => input::decode_base64(&b)?,
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidParam(format!(
                "{name}.url and {name}.bytes are exclusive"
            )))
        }
        (None, None) => {
            return Err(ApiError::MissingField(format!(
                "{name}.url or {name}.bytes"
            )))
        }
    };
    input::check_file_size(&bytes, file_limit)?;
    Ok(bytes)
}

/// An error's body: the header alone.
#[derive(Serialize)]
struct ErrorBody {
    header: Header,
}

/// The error answer: NHN's result code and message in the header, no data, at the status
/// the dialect's table entry gives.
pub(super) fn error_response(e: &ApiError, route: Route) -> Response {
    let m = e.mapping();
    let body = ErrorBody {
        header: Header {
            is_successful: false,
            result_code: m.nhn_code,
            result_message: m.nhn_message.to_string(),
        },
    };
    let mut resp = render::error_response(e, body);
    *resp.status_mut() = (route.dialect.error_status)(e);
    resp
}
