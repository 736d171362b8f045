//! Judge: anti-spoof models scoring the face, and the mean live score.

mod classifier;
mod cv_lanczos;
mod cv_linear;

pub use classifier::{crop, crop_rect, declared_crop, Classifier, CropRect};

use serde::Serialize;

use crate::face::BBox;
use crate::image::RgbImage;
use crate::PipelineError;

/// One anti-spoof model family.
pub trait Judge: Send + Sync {
    fn name(&self) -> &str;
    /// Weight in the fused score.
    fn weight(&self) -> f32 {
        1.0
    }
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

/// Runs every judge and fuses their live probabilities: the mean weighted by each judge's
/// declared weight (equal weights: the Silent-Face recipe's plain mean).
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
    let weights: Vec<f32> = judges.iter().map(|j| j.weight()).collect();
    let live_score = if weights.iter().all(|w| *w == 1.0) {
        // Exactly the plain mean, as the reference computes it.
        per_model.iter().map(|m| m.live_score).sum::<f32>() / per_model.len() as f32
    } else {
        let total: f32 = weights.iter().sum();
        per_model
            .iter()
            .zip(&weights)
            .map(|(m, w)| m.live_score * w)
            .sum::<f32>()
            / total
    };
    Ok(JudgeScores {
        live_score,
        per_model,
    })
}
