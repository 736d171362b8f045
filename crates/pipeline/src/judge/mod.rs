//! Judge: anti-spoof models scoring the face, and the mean live score.

mod cv_linear;
mod minifasnet;

pub use minifasnet::{crop, crop_rect, CropRect, MiniFasNet};

use serde::Serialize;

use crate::face::BBox;
use crate::image::RgbImage;
use crate::PipelineError;

/// One anti-spoof model family.
pub trait Judge: Send + Sync {
    fn name(&self) -> &str;
    /// Probability that the face in `bbox` (working-image pixels) is live.
    fn live_score(&self, img: &RgbImage, bbox: &BBox) -> Result<f32, PipelineError>;
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelScore {
    pub model: String,
    pub live_score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct JudgeScores {
    /// Mean of the per-model live scores.
    pub live_score: f32,
    pub per_model: Vec<ModelScore>,
}

/// Runs every judge and averages their live probabilities (the Silent-Face recipe).
pub fn judge_all(
    judges: &[Box<dyn Judge>],
    img: &RgbImage,
    bbox: &BBox,
) -> Result<JudgeScores, PipelineError> {
    let per_model = judges
        .iter()
        .map(|j| {
            Ok(ModelScore {
                model: j.name().to_string(),
                live_score: j.live_score(img, bbox)?,
            })
        })
        .collect::<Result<Vec<_>, PipelineError>>()?;
    let live_score = per_model.iter().map(|m| m.live_score).sum::<f32>() / per_model.len() as f32;
    Ok(JudgeScores {
        live_score,
        per_model,
    })
}
