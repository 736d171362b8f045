//! Inference engines behind one small, object-safe trait.
//!
//! The pipeline only sees [`Backend`] and [`Model`]: it hands over a dense `f32` tensor and
//! gets dense `f32` tensors back, in the model's output order. An engine is one module here,
//! compiled in by its cargo feature; tract (pure Rust, nothing downloaded at build time) is
//! the default.

use std::path::Path;
use std::sync::Arc;

#[cfg(feature = "tract")]
mod tract;
#[cfg(feature = "tract")]
pub use crate::tract::{onnx_loader, TractBackend};

/// A dense row-major `f32` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, BackendError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(BackendError::Shape(format!(
                "shape {shape:?} holds {expected} values, got {}",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot load model {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("inference failed: {0}")]
    Run(String),
    #[error("tensor shape mismatch: {0}")]
    Shape(String),
}

/// A loaded, optimised model with a fixed input shape. Plans are immutable after
/// optimisation, so one instance is shared by every thread (`run` takes `&self`).
pub trait Model: Send + Sync {
    /// The fixed input shape the plan was optimised for.
    fn input_shape(&self) -> &[usize];
    /// Output names, in the order `run` returns the outputs.
    fn output_names(&self) -> &[String];
    fn run(&self, input: Tensor) -> Result<Vec<Tensor>, BackendError>;
}

/// An inference engine: turns an ONNX file into a runnable [`Model`].
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    fn load(&self, path: &Path, input_shape: &[usize]) -> Result<Arc<dyn Model>, BackendError>;
}

/// The engine compiled in by default.
pub fn default_backend() -> Arc<dyn Backend> {
    #[cfg(feature = "tract")]
    {
        Arc::new(TractBackend)
    }
    #[cfg(not(feature = "tract"))]
    compile_error!("facelive-backends needs an engine feature; enable `tract`");
}
