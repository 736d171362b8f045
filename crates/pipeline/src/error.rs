use facelive_backends::BackendError;
use facelive_models::ModelsError;

/// Everything that stops the pipeline from producing a verdict. Each variant has a stable
/// machine-readable [`code`](PipelineError::code); the HTTP layer and the CLI map these in one
/// place each. Messages never carry image bytes.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the input is empty")]
    EmptyInput,
    #[error("{found} is not a supported image format ({accepted} are)")]
    UnsupportedFormat { found: String, accepted: String },
    #[error("the input is not an image ({found})")]
    NotAnImage { found: String },
    #[error("the image is {width}x{height} = {} Mpx, over the limit of {} Mpx", mpx(*width, *height), *limit as f64 / 1e6)]
    ImageTooLarge { width: u32, height: u32, limit: u64 },
    #[error("the {format} data is corrupt or incomplete: {reason}")]
    CorruptImage {
        format: &'static str,
        reason: String,
    },
    #[error("{0}")]
    UnsupportedColour(String),
    #[error("the models could not be loaded: {0}")]
    Models(#[from] ModelsError),
    #[error("model inference failed: {0}")]
    Inference(#[from] BackendError),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The reference image (liveness with verify) cannot be used: the inner error says why.
    #[error("the reference image: {0}")]
    InvalidReference(Box<PipelineError>),
}

fn mpx(w: u32, h: u32) -> String {
    format!("{:.1}", w as f64 * h as f64 / 1e6)
}

impl PipelineError {
    /// Stable error code, part of the public API of every surface (CLI JSON, HTTP).
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::EmptyInput => "empty_input",
            PipelineError::UnsupportedFormat { .. } => "unsupported_format",
            PipelineError::NotAnImage { .. } => "not_an_image",
            PipelineError::ImageTooLarge { .. } => "image_too_large",
            PipelineError::CorruptImage { .. } => "corrupt_image",
            PipelineError::UnsupportedColour(_) => "unsupported_colour",
            PipelineError::Models(_) => "models_unavailable",
            PipelineError::Inference(_) => "inference_failed",
            PipelineError::InvalidRequest(_) => "invalid_request",
            PipelineError::InvalidReference(_) => "invalid_reference",
        }
    }

    /// True when the fault is the input's, false when it is the service's.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, PipelineError::Models(_) | PipelineError::Inference(_))
    }
}
