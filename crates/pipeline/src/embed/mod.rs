//! Embed: the face's identity as a unit vector, from a landmark-aligned crop, for matching
//! the judged face against a reference (liveness with verify). The model, its input, its
//! alignment template and its match thresholds are its manifest entry.

pub mod align;

use std::path::Path;
use std::sync::Arc;

use facelive_backends::{Backend, Model, Tensor};
use facelive_models::{EmbedderSpec, InputSpec, Layout, MatchThresholds, ModelSpec};

use crate::error::PipelineError;
use crate::face::Landmarks;
use crate::image::RgbImage;
use crate::tensor::to_planar;

/// A face's embedding, L2-normalised.
#[derive(Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// A vector normalised to unit length; `None` when it is empty, zero or not finite.
    pub fn normalised(v: Vec<f32>) -> Option<Self> {
        let norm = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        if v.is_empty() || !norm.is_finite() || norm == 0.0 {
            return None;
        }
        Some(Self(v.iter().map(|x| (*x as f64 / norm) as f32).collect()))
    }

    pub fn values(&self) -> &[f32] {
        &self.0
    }

    /// Cosine similarity, -1..1.
    pub fn similarity(&self, other: &Embedding) -> f32 {
        let dot: f64 = self
            .0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        dot.clamp(-1.0, 1.0) as f32
    }
}

impl std::fmt::Debug for Embedding {
    // An embedding is biometric data: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedding({} values)", self.0.len())
    }
}

/// A loaded embedder: its plan built once, shared by every thread.
pub struct Embedder {
    name: String,
    sha256: String,
    model: Arc<dyn Model>,
    input: InputSpec,
    spec: EmbedderSpec,
    output: usize,
}

impl Embedder {
    pub fn load(
        backend: &dyn Backend,
        dir: &Path,
        spec: &ModelSpec,
    ) -> Result<Self, PipelineError> {
        let embedder = spec.embedder.clone().ok_or_else(|| {
            PipelineError::Models(facelive_models::ModelsError::Manifest(format!(
                "{} has no [model.embedder] entry",
                spec.name
            )))
        })?;
        let s = spec.input.size;
        let shape = match spec.input.layout {
            Layout::NCHW => [1, 3, s, s],
            Layout::NHWC => [1, s, s, 3],
        };
        let model = backend.load(&dir.join(&spec.file), &shape)?;
        let output = model
            .output_names()
            .iter()
            .position(|n| *n == embedder.output)
            .ok_or_else(|| {
                PipelineError::Models(facelive_models::ModelsError::Manifest(format!(
                    "{} has no output named {}",
                    spec.name, embedder.output
                )))
            })?;
        Ok(Self {
            name: spec.name.clone(),
            sha256: spec.sha256.clone(),
            model,
            input: spec.input.clone(),
            spec: embedder,
            output,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model file's sha256: what a sealed template is bound to.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn dims(&self) -> usize {
        self.spec.dims
    }

    pub fn thresholds(&self) -> MatchThresholds {
        self.spec.thresholds
    }

    /// The crop the model reads for the face with `landmarks` in `img`.
    pub fn aligned(&self, img: &RgbImage, landmarks: &Landmarks) -> RgbImage {
        align::align(img, landmarks, &self.spec.template, self.input.size as u32)
    }

    /// The face's embedding.
    pub fn embed(&self, img: &RgbImage, landmarks: &Landmarks) -> Result<Embedding, PipelineError> {
        let crop = self.aligned(img, landmarks);
        let s = self.input.size;
        let shape = self.model.input_shape().to_vec();
        let input = Tensor::new(shape, to_planar(&crop, s, s, &self.input))?;
        let out = self.model.run(input)?;
        let v = out
            .into_iter()
            .nth(self.output)
            .map(|t| t.data)
            .unwrap_or_default();
        if v.len() != self.spec.dims {
            return Err(PipelineError::Inference(
                facelive_backends::BackendError::Shape(format!(
                    "{} gave {} values, its manifest entry says {}",
                    self.name,
                    v.len(),
                    self.spec.dims
                )),
            ));
        }
        Embedding::normalised(v).ok_or_else(|| {
            PipelineError::Inference(facelive_backends::BackendError::Run(format!(
                "{} gave a zero or non-finite embedding",
                self.name
            )))
        })
    }
}
