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
pub use crate::tract::{optimized_model, TractBackend};

#[cfg(feature = "ort")]
mod ort;

#[cfg(any(feature = "tract", feature = "ort"))]
pub mod onnx;
#[cfg(feature = "ort")]
pub use crate::ort::{OrtBackend, OrtOptions, DEFAULT_ORT_LIBRARY};

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
    #[error("the {engine} engine is not available: {reason}")]
    EngineUnavailable {
        engine: &'static str,
        reason: String,
    },
}

/// A loaded, optimised model with a fixed input shape. Plans are immutable after
/// optimisation, so one instance is shared by every thread (`run` takes `&self`).
pub trait Model: Send + Sync {
    /// The fixed input shape the plan was optimised for.
    fn input_shape(&self) -> &[usize];
    /// Output names, in the order `run` returns the outputs.
    fn output_names(&self) -> &[String];
    fn run(&self, input: Tensor) -> Result<Vec<Tensor>, BackendError>;
    /// Runs the plan once on zeros, so its first real run pays no lazy set-up.
    fn warm_up(&self) -> Result<(), BackendError> {
        let shape = self.input_shape().to_vec();
        let n = shape.iter().product();
        self.run(Tensor::new(shape, vec![0.0; n])?).map(drop)
    }
}

/// An inference engine: turns an ONNX file into a runnable [`Model`].
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    /// The model with its inner tensors `extra_outputs` (node output names) returned after
    /// its own outputs, computed by the same run.
    fn load_with_outputs(
        &self,
        path: &Path,
        input_shape: &[usize],
        extra_outputs: &[String],
    ) -> Result<Arc<dyn Model>, BackendError>;
    fn load(&self, path: &Path, input_shape: &[usize]) -> Result<Arc<dyn Model>, BackendError> {
        self.load_with_outputs(path, input_shape, &[])
    }
}

/// The engines a build can run, chosen at run time (`--backend`), named by
/// [`as_str`](Self::as_str) in flags, files and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// tract-onnx: pure Rust, compiled in, nothing to install.
    Tract,
    /// ONNX Runtime, loaded from `libonnxruntime.so` at run time (cargo feature `ort`).
    Ort,
}

impl EngineKind {
    pub const ALL: [EngineKind; 2] = [EngineKind::Tract, EngineKind::Ort];

    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Tract => "tract",
            EngineKind::Ort => "ort",
        }
    }

    /// The engine named `name` (as [`as_str`](Self::as_str) spells it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Whether this build carries the engine (its cargo feature was on).
    pub fn compiled_in(self) -> bool {
        match self {
            EngineKind::Tract => cfg!(feature = "tract"),
            EngineKind::Ort => cfg!(feature = "ort"),
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The engine that runs each role's models: the detector's and the judges' engines may
/// differ (each where it measured faster).
#[derive(Clone)]
pub struct Engines {
    pub detector: Arc<dyn Backend>,
    pub judge: Arc<dyn Backend>,
}

impl From<Arc<dyn Backend>> for Engines {
    fn from(b: Arc<dyn Backend>) -> Self {
        Self {
            detector: b.clone(),
            judge: b,
        }
    }
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
