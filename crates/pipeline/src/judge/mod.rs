//! Judge: anti-spoof models scoring the face, and the fused live score: the weighted mean
//! of the judges' scores, or an adapted pack's head over their features.

mod classifier;
mod head;
mod judgement;

pub use classifier::{crop, crop_rect, declared_crop, live_probability, Classifier, CropRect};
pub use head::Head;
pub use judgement::{Judge, JudgeOutput, ModelScore, View};

use serde::Serialize;

use crate::error::PipelineError;
use crate::face::BBox;
use crate::image::RgbImage;

#[derive(Debug, Clone, Serialize)]
pub struct JudgeScores {
    /// The fused live score: the head's, or the weighted mean of the per-model scores.
    pub live_score: f32,
    pub per_model: Vec<ModelScore>,
}

/// Runs every judge and fuses their outputs: through the head when the pack has one, else
/// the mean weighted by each judge's declared weight (equal weights: the Silent-Face
/// recipe's plain mean).
pub fn judge_all(
    judges: &[Box<dyn Judge>],
    head: Option<&Head>,
    img: &RgbImage,
    bbox: &BBox,
) -> Result<JudgeScores, PipelineError> {
    let per_model = judges
        .iter()
        .map(|j| {
            let out = j.judge(img, bbox)?;
            Ok(ModelScore {
                model: j.name().to_string(),
                live_score: out.live_score,
                features: out.features,
                trunk: out.trunk,
            })
        })
        .collect::<Result<Vec<_>, PipelineError>>()?;
    let live_score = match head {
        Some(h) => h.live_score(&per_model)?,
        None => weighted_mean(judges, &per_model),
    };
    Ok(JudgeScores {
        live_score,
        per_model,
    })
}

/// Every judge's output on each of `views` of the face in `bbox`, outer by view.
pub fn judge_views(
    judges: &[Box<dyn Judge>],
    img: &RgbImage,
    bbox: &BBox,
    views: &[View],
) -> Result<Vec<Vec<ModelScore>>, PipelineError> {
    views
        .iter()
        .map(|v| {
            judges
                .iter()
                .map(|j| {
                    let out = j.judge_view(img, bbox, v)?;
                    Ok(ModelScore {
                        model: j.name().to_string(),
                        live_score: out.live_score,
                        features: out.features,
                        trunk: out.trunk,
                    })
                })
                .collect()
        })
        .collect()
}

fn weighted_mean(judges: &[Box<dyn Judge>], per_model: &[ModelScore]) -> f32 {
    let weights: Vec<f32> = judges.iter().map(|j| j.weight()).collect();
    if weights.iter().all(|w| *w == 1.0) {
        // Exactly the plain mean, as the reference computes it.
        return per_model.iter().map(|m| m.live_score).sum::<f32>() / per_model.len() as f32;
    }
    let total: f32 = weights.iter().sum();
    per_model
        .iter()
        .zip(&weights)
        .map(|(m, w)| m.live_score * w)
        .sum::<f32>()
        / total
}
