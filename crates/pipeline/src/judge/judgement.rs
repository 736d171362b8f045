//! What a judge is and gives: the trait, one run's output, the views it can score, and
//! one model's score in a verdict.

use serde::Serialize;

use crate::error::PipelineError;
use crate::face::BBox;
use crate::image::RgbImage;

/// What one run of a judge gives.
#[derive(Debug, Clone)]
pub struct JudgeOutput {
    /// Probability that the face is live.
    pub live_score: f32,
    /// The values its final classifier read, when its manifest entry declares them.
    pub features: Option<Vec<f32>>,
    /// The map entering its last block, when the pipeline was loaded to return it.
    pub trunk: Option<Vec<f32>>,
}

/// A perturbed view of a face, for training with augmentation: the crop's box moved by
/// `shift` (fractions of its width and height) and scaled by `scale` around its centre,
/// the crop mirrored when `flip`, and each colour channel (R, G, B) multiplied by `gain`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub flip: bool,
    pub shift: (f32, f32),
    pub scale: f32,
    pub gain: [f32; 3],
}

impl View {
    /// The face as scoring sees it.
    pub const IDENTITY: View = View {
        flip: false,
        shift: (0.0, 0.0),
        scale: 1.0,
        gain: [1.0; 3],
    };

    /// `bbox` moved and scaled as this view says (exactly `bbox` when it does neither:
    /// the scoring crop must not move by a rounding).
    pub fn apply_to_box(&self, b: &BBox) -> BBox {
        if self.shift == (0.0, 0.0) && self.scale == 1.0 {
            return *b;
        }
        let (w, h) = (b.width * self.scale, b.height * self.scale);
        let (cx, cy) = (
            b.x + b.width / 2.0 + self.shift.0 * b.width,
            b.y + b.height / 2.0 + self.shift.1 * b.height,
        );
        BBox {
            x: cx - w / 2.0,
            y: cy - h / 2.0,
            width: w,
            height: h,
        }
    }

    /// The crop mirrored and its colours scaled as this view says.
    pub fn apply_to_crop(&self, crop: &mut RgbImage) {
        if self.flip {
            let (w, row) = (crop.width as usize, crop.width as usize * 3);
            for line in crop.data.chunks_exact_mut(row) {
                for x in 0..w / 2 {
                    let (a, b) = (x * 3, (w - 1 - x) * 3);
                    for c in 0..3 {
                        line.swap(a + c, b + c);
                    }
                }
            }
        }
        if self.gain != [1.0; 3] {
            for px in crop.data.chunks_exact_mut(3) {
                for (v, g) in px.iter_mut().zip(self.gain) {
                    *v = (*v as f32 * g).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
}

/// One anti-spoof model family.
pub trait Judge: Send + Sync {
    fn name(&self) -> &str;
    /// Weight in the fused score.
    fn weight(&self) -> f32 {
        1.0
    }
    /// Scores the face in `bbox` (working-image pixels).
    fn judge(&self, img: &RgbImage, bbox: &BBox) -> Result<JudgeOutput, PipelineError> {
        self.judge_view(img, bbox, &View::IDENTITY)
    }
    /// Scores a perturbed view of the face in `bbox`.
    fn judge_view(
        &self,
        img: &RgbImage,
        bbox: &BBox,
        view: &View,
    ) -> Result<JudgeOutput, PipelineError>;
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelScore {
    pub model: String,
    pub live_score: f32,
    /// The judge's features on the same crop (not part of any answer).
    #[serde(skip)]
    pub features: Option<Vec<f32>>,
    /// The map entering its last block, when asked for (not part of any answer).
    #[serde(skip)]
    pub trunk: Option<Vec<f32>>,
}
