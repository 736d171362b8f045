//! One error type for the HTTP layer, mapped in one place to an HTTP status, the native
//! error code, NHN's result code and SpoofSense's error code. Dialects render the mapping in
//! their own shape; none of them decides a status or a code on its own.

use axum::http::StatusCode;
use facelive_pipeline::PipelineError;

use crate::sessions::SessionRefusal;
use crate::templates::TemplateRefusal;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("missing or wrong API key")]
    Unauthorized,
    #[error("{}", match .0 {
        SessionRefusal::Invalid => "the session token is not valid",
        SessionRefusal::Expired => "the session token has expired: ask for a new one",
        SessionRefusal::Used => "the session token was already used for a check: ask for a new one",
    })]
    Session(SessionRefusal),
    #[error("the request body is over the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the image is {size} bytes, over the limit of {limit} bytes")]
    ImageTooLarge { size: usize, limit: usize },
    #[error("the image is {width}x{height} pixels, under the minimum this API accepts")]
    ImageTooSmall { width: u32, height: u32 },
    #[error("the image data is not valid base64")]
    BadBase64,
    #[error("the required field {0} is missing or empty")]
    MissingField(String),
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    #[error("unsupported content type {0:?}: send application/json or multipart/form-data")]
    UnsupportedMediaType(String),
    #[error("the body is not valid JSON for this endpoint: {0}")]
    BadJson(String),
    #[error("the image URL is not allowed: {0}")]
    UrlForbidden(String),
    #[error("the image could not be downloaded: {0}")]
    UrlFetch(String),
    #[error("the image download timed out")]
    UrlTimeout,
    #[error("the request body arrived slower than {min_rate} bytes/s")]
    SlowBody { min_rate: u64 },
    #[error("this API key already has {limit} requests in flight; retry shortly")]
    KeyBusy { limit: usize },
    #[error("{}", if *all { format!("capture sessions already have {limit} requests in flight together; retry shortly") } else { format!("this session token already has {limit} requests in flight; retry shortly") })]
    TokenBusy { limit: usize, all: bool },
    #[error("face not found: no face was detected in the image")]
    FaceNotFound,
    #[error("{}", match .0 {
        TemplateRefusal::Invalid => "the template is not valid: damaged, or sealed by another server",
        TemplateRefusal::OtherModel => "the template was made with another face embedder: make a new one from the reference image",
    })]
    Template(TemplateRefusal),
    #[error("the reference image cannot be used: {0}")]
    ReferenceUnusable(&'static str),
    #[error("the server is at capacity; retry shortly")]
    Busy,
    #[error("the request took too long")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

/// Where one error lands in every surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub status: StatusCode,
    /// Native API `error.code`; also used by the Accura and JCV dialects.
    pub code: &'static str,
    pub nhn_code: i32,
    pub nhn_message: &'static str,
    pub spoofsense: &'static str,
}

const fn m(
    status: StatusCode,
    code: &'static str,
    nhn_code: i32,
    nhn_message: &'static str,
    spoofsense: &'static str,
) -> Mapping {
    Mapping {
        status,
        code,
        nhn_code,
        nhn_message,
        spoofsense,
    }
}

const NHN_INVALID_PARAM: (i32, &str) = (-40000, "InvalidParam");
const NHN_UNAUTHORIZED: (i32, &str) = (-41005, "UnauthorizedAppKeyOrSecretKey");
const NHN_TOO_LARGE: (i32, &str) = (-45020, "ImageTooLargeException");
const NHN_BAD_IMAGE: (i32, &str) = (-45030, "InvalidImageParameterException");
const NHN_BAD_FORMAT: (i32, &str) = (-45040, "InvalidImageFormatException");
const NHN_BAD_URL: (i32, &str) = (-45050, "InvalidImageURLException");
const NHN_TIMEOUT: (i32, &str) = (-45060, "ImageTimeoutError");
const NHN_SERVER: (i32, &str) = (-50000, "InternalServerError");

/// Where a pipeline error lands.
fn pipeline_mapping(e: &PipelineError) -> Mapping {
    use StatusCode as S;
    let map = |s, code, nhn: (i32, &'static str), ss| m(s, code, nhn.0, nhn.1, ss);
    let code = e.code();
    match e {
        PipelineError::EmptyInput => {
            map(S::BAD_REQUEST, code, NHN_BAD_IMAGE, "INVALID_IMAGE_PAYLOAD")
        }
        PipelineError::NotAnImage { .. } | PipelineError::UnsupportedFormat { .. } => map(
            S::UNSUPPORTED_MEDIA_TYPE,
            code,
            NHN_BAD_FORMAT,
            "INVALID_IMAGE_PAYLOAD",
        ),
        PipelineError::ImageTooLarge { .. } => map(
            S::UNPROCESSABLE_ENTITY,
            code,
            NHN_TOO_LARGE,
            "IMAGE_TOO_LARGE",
        ),
        PipelineError::CorruptImage { .. } => map(
            S::UNPROCESSABLE_ENTITY,
            code,
            NHN_BAD_IMAGE,
            "INVALID_IMAGE_PAYLOAD",
        ),
        PipelineError::UnsupportedColour(_) => map(
            S::UNPROCESSABLE_ENTITY,
            code,
            NHN_BAD_FORMAT,
            "INVALID_IMAGE_PAYLOAD",
        ),
        PipelineError::InvalidRequest(_) => map(
            S::BAD_REQUEST,
            code,
            NHN_INVALID_PARAM,
            "INVALID_IMAGE_PAYLOAD",
        ),
        // A reference's fault is the reference's (its own native code, 422); NHN, whose
        // compare takes a reference, tells image faults apart by its inner error's code.
        PipelineError::InvalidReference(inner) => {
            let i = pipeline_mapping(inner);
            m(
                S::UNPROCESSABLE_ENTITY,
                code,
                i.nhn_code,
                i.nhn_message,
                "INVALID_IMAGE_PAYLOAD",
            )
        }
        PipelineError::Models(_) | PipelineError::Inference(_) => {
            map(S::INTERNAL_SERVER_ERROR, code, NHN_SERVER, "INTERNAL_ERROR")
        }
    }
}

impl ApiError {
    pub fn mapping(&self) -> Mapping {
        use StatusCode as S;
        let map = |s, code, nhn: (i32, &'static str), ss| m(s, code, nhn.0, nhn.1, ss);
        match self {
            ApiError::Unauthorized => map(
                S::UNAUTHORIZED,
                "unauthorized",
                NHN_UNAUTHORIZED,
                "UNAUTHORIZED",
            ),
            ApiError::Session(r) => map(
                S::UNAUTHORIZED,
                match r {
                    SessionRefusal::Invalid => "session_invalid",
                    SessionRefusal::Expired => "session_expired",
                    SessionRefusal::Used => "session_used",
                },
                NHN_UNAUTHORIZED,
                "UNAUTHORIZED",
            ),
            ApiError::BodyTooLarge { .. } => map(
                S::PAYLOAD_TOO_LARGE,
                "body_too_large",
                NHN_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            ),
            ApiError::ImageTooLarge { .. } => map(
                S::PAYLOAD_TOO_LARGE,
                "file_too_large",
                NHN_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            ),
            ApiError::ImageTooSmall { .. } => map(
                S::UNPROCESSABLE_ENTITY,
                "image_too_small",
                NHN_BAD_IMAGE,
                "IMAGE_TOO_SMALL",
            ),
            ApiError::BadBase64 => map(
                S::BAD_REQUEST,
                "invalid_base64",
                NHN_BAD_IMAGE,
                "INVALID_IMAGE_PAYLOAD",
            ),
            ApiError::MissingField(_) => map(
                S::BAD_REQUEST,
                "missing_field",
                NHN_INVALID_PARAM,
                "INVALID_IMAGE_PAYLOAD",
            ),
            ApiError::InvalidParam(_) => map(
                S::BAD_REQUEST,
                "invalid_parameter",
                NHN_INVALID_PARAM,
                "INVALID_IMAGE_PAYLOAD",
            ),
            ApiError::UnsupportedMediaType(_) => map(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                NHN_INVALID_PARAM,
                "INVALID_IMAGE_PAYLOAD",
            ),
            ApiError::BadJson(_) => map(
                S::BAD_REQUEST,
                "invalid_json",
                NHN_INVALID_PARAM,
                "INVALID_IMAGE_PAYLOAD",
            ),
            ApiError::UrlForbidden(_) => map(
                S::BAD_REQUEST,
                "url_forbidden",
                NHN_BAD_URL,
                "INVALID_IMAGE_URL",
            ),
            ApiError::UrlFetch(_) => map(
                S::UNPROCESSABLE_ENTITY,
                "url_fetch_failed",
                NHN_BAD_URL,
                "INVALID_IMAGE_URL",
            ),
            ApiError::UrlTimeout => map(
                S::GATEWAY_TIMEOUT,
                "url_timeout",
                NHN_TIMEOUT,
                "IMAGE_TIMEOUT",
            ),
            ApiError::SlowBody { .. } => map(
                S::REQUEST_TIMEOUT,
                "body_too_slow",
                NHN_TIMEOUT,
                "REQUEST_TIMEOUT",
            ),
            ApiError::KeyBusy { .. } | ApiError::TokenBusy { .. } => map(
                S::TOO_MANY_REQUESTS,
                "too_many_requests",
                NHN_SERVER,
                "TOO_MANY_REQUESTS",
            ),
            ApiError::FaceNotFound => map(
                S::UNPROCESSABLE_ENTITY,
                "face_not_found",
                NHN_BAD_IMAGE,
                "FACE_NOT_DETECTED",
            ),
            ApiError::Template(r) => map(
                S::UNPROCESSABLE_ENTITY,
                match r {
                    TemplateRefusal::Invalid => "invalid_template",
                    TemplateRefusal::OtherModel => "template_model_mismatch",
                },
                NHN_INVALID_PARAM,
                "INVALID_IMAGE_PAYLOAD",
            ),
            ApiError::ReferenceUnusable(_) => map(
                S::UNPROCESSABLE_ENTITY,
                "reference_unusable",
                NHN_BAD_IMAGE,
                "FACE_NOT_DETECTED",
            ),
            ApiError::Busy => map(
                S::SERVICE_UNAVAILABLE,
                "overloaded",
                NHN_SERVER,
                "SERVER_BUSY",
            ),
            ApiError::Timeout => map(S::SERVICE_UNAVAILABLE, "timeout", NHN_SERVER, "TIMEOUT"),
            ApiError::Internal(_) => map(
                S::INTERNAL_SERVER_ERROR,
                "internal_error",
                NHN_SERVER,
                "INTERNAL_ERROR",
            ),
            ApiError::Pipeline(e) => pipeline_mapping(e),
        }
    }

    /// One error of each kind whose mapping differs (the pipeline's model and inference
    /// faults map as `Internal` does): what the API description derives each dialect's
    /// error statuses from.
    pub fn examples() -> Vec<ApiError> {
        let text = || String::new();
        let p = ApiError::Pipeline;
        vec![
            ApiError::Unauthorized,
            ApiError::Session(SessionRefusal::Invalid),
            ApiError::BodyTooLarge { limit: 0 },
            ApiError::ImageTooLarge { size: 0, limit: 0 },
            ApiError::ImageTooSmall {
                width: 0,
                height: 0,
            },
            ApiError::BadBase64,
            ApiError::MissingField(text()),
            ApiError::InvalidParam(text()),
            ApiError::UnsupportedMediaType(text()),
            ApiError::BadJson(text()),
            ApiError::UrlForbidden(text()),
            ApiError::UrlFetch(text()),
            ApiError::UrlTimeout,
            ApiError::SlowBody { min_rate: 0 },
            ApiError::KeyBusy { limit: 0 },
            ApiError::TokenBusy {
                limit: 0,
                all: false,
            },
            ApiError::FaceNotFound,
            ApiError::Template(TemplateRefusal::Invalid),
            ApiError::ReferenceUnusable(""),
            ApiError::Busy,
            ApiError::Timeout,
            ApiError::Internal(text()),
            p(PipelineError::EmptyInput),
            p(PipelineError::NotAnImage { found: text() }),
            p(PipelineError::UnsupportedFormat {
                found: text(),
                accepted: text(),
            }),
            p(PipelineError::ImageTooLarge {
                width: 0,
                height: 0,
                limit: 0,
            }),
            p(PipelineError::CorruptImage {
                format: "",
                reason: text(),
            }),
            p(PipelineError::UnsupportedColour(text())),
            p(PipelineError::InvalidRequest(text())),
            p(PipelineError::InvalidReference(Box::new(
                PipelineError::EmptyInput,
            ))),
        ]
    }

    /// The HTTP status of the one mapping (native, Accura and JCV answer with it).
    pub fn status(&self) -> StatusCode {
        self.mapping().status
    }

    /// Seconds a client should wait before retrying, for the overload answers.
    pub fn retry_after(&self) -> Option<u32> {
        matches!(
            self,
            ApiError::Busy
                | ApiError::KeyBusy { .. }
                | ApiError::TokenBusy { .. }
                | ApiError::Timeout
        )
        .then_some(1)
    }

    /// Where NHN Cloud answers this error: its API guides answer "200 OK for all API
    /// requests" and put the outcome in `header.isSuccessful` / `resultCode`, so a client
    /// whose HTTP library throws on other statuses still reaches the result code.
    pub fn nhn_status(&self) -> StatusCode {
        StatusCode::OK
    }

    /// Where SpoofSense answers this error: input and face problems come back as 200 with
    /// `success: false` (its API Usage page); what its API gateway refuses before the
    /// model (a bad key as 403, an oversized body as 413) and overload keep an HTTP error.
    pub fn spoofsense_status(&self) -> StatusCode {
        let status = self.mapping().status;
        match self {
            ApiError::Unauthorized => StatusCode::FORBIDDEN,
            ApiError::BodyTooLarge { .. }
            | ApiError::SlowBody { .. }
            | ApiError::KeyBusy { .. }
            | ApiError::TokenBusy { .. } => status,
            _ if status.is_client_error() => StatusCode::OK,
            _ => status,
        }
    }

    /// The message a client may see. Internal faults are logged, not shown.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_)
            | ApiError::Pipeline(PipelineError::Models(_) | PipelineError::Inference(_)) => {
                "internal server error".into()
            }
            other => other.to_string(),
        }
    }
}
