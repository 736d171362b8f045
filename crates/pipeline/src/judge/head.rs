//! An adapted pack's head: logistic regression over the judges' standardised, concatenated
//! features (trained by `facelive adapt`). A few hundred multiply-adds an image.

use facelive_models::HeadSpec;

use super::judgement::ModelScore;
use crate::error::PipelineError;

pub struct Head {
    spec: HeadSpec,
}

impl Head {
    pub fn new(spec: HeadSpec) -> Self {
        Self { spec }
    }

    /// The head's inputs: each named judge's features, concatenated in the head's order.
    pub fn inputs(&self, per_model: &[ModelScore]) -> Result<Vec<f32>, PipelineError> {
        let mut x = Vec::with_capacity(self.spec.weights.len());
        for name in &self.spec.judges {
            let f = per_model
                .iter()
                .find(|m| &m.model == name)
                .and_then(|m| m.features.as_deref())
                .ok_or_else(|| missing(format!("no features from {name}")))?;
            x.extend_from_slice(f);
        }
        if x.len() != self.spec.weights.len() {
            return Err(missing(format!(
                "the judges gave {} features, the head reads {}",
                x.len(),
                self.spec.weights.len()
            )));
        }
        Ok(x)
    }

    pub fn live_score(&self, per_model: &[ModelScore]) -> Result<f32, PipelineError> {
        Ok(self.spec.score(&self.inputs(per_model)?))
    }
}

fn missing(msg: String) -> PipelineError {
    PipelineError::Inference(facelive_backends::BackendError::Shape(msg))
}
