//! MiniFASNet (Silent-Face-Anti-Spoofing): the crop recipe and output decoding.
//!
//! The crop is the face box enlarged `crop_scale` times around its centre, shifted (not
//! padded) to lie inside the image, then resized to the model's square exactly as
//! `cv2.resize` does (see `cv_linear`), as the models were trained. An antialiased or area
//! resize moves scores noticeably (tests pin this).

use std::path::Path;
use std::sync::Arc;

use facelive_backends::{Backend, Model, Tensor};
use facelive_models::{InputSpec, JudgeSpec, ModelSpec};

use super::cv_linear::resize_region;
use super::Judge;
use crate::face::BBox;
use crate::image::RgbImage;
use crate::tensor::to_planar;
use crate::PipelineError;

pub struct MiniFasNet {
    name: String,
    model: Arc<dyn Model>,
    input: InputSpec,
    judge: JudgeSpec,
}

/// Inclusive pixel rectangle of the crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropRect {
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

/// The Silent-Face crop rectangle for a box in an image of `w` x `h` pixels.
pub fn crop_rect(bbox: &BBox, w: u32, h: u32, crop_scale: f32) -> CropRect {
    // f64 and the reference's order of operations: a one-pixel shift in the crop moves
    // the score measurably.
    let (iw, ih) = (w as f64, h as f64);
    let (bx, by, bw, bh) = (
        bbox.x as f64,
        bbox.y as f64,
        (bbox.width as f64).max(1.0),
        (bbox.height as f64).max(1.0),
    );
    let scale = ((ih - 1.0) / bh)
        .min((iw - 1.0) / bw)
        .min(crop_scale as f64);
    let (nw, nh) = (bw * scale, bh * scale);
    let (cx, cy) = (bx + bw / 2.0, by + bh / 2.0);
    let (mut l, mut t, mut r, mut b) = (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        b -= t;
        t = 0.0;
    }
    if r > iw - 1.0 {
        l -= r - iw + 1.0;
        r = iw - 1.0;
    }
    if b > ih - 1.0 {
        t -= b - ih + 1.0;
        b = ih - 1.0;
    }
    let clamp = |v: f64, max: u32| (v.max(0.0) as u32).min(max);
    CropRect {
        left: clamp(l, w - 1),
        top: clamp(t, h - 1),
        right: clamp(r, w - 1),
        bottom: clamp(b, h - 1),
    }
}

impl MiniFasNet {
    pub fn load(
        backend: &dyn Backend,
        dir: &Path,
        spec: &ModelSpec,
    ) -> Result<Self, PipelineError> {
        let judge = spec.judge.clone().ok_or_else(|| {
            PipelineError::InvalidRequest(format!("{} is not an anti-spoof model", spec.name))
        })?;
        let s = spec.input.size;
        let model = backend.load(&dir.join(&spec.file), &[1, 3, s, s])?;
        Ok(Self {
            name: spec.name.clone(),
            model,
            input: spec.input.clone(),
            judge,
        })
    }
}

/// The model's input for `bbox`: the Silent-Face crop at `crop_scale`, resized to `size`
/// square with OpenCV's INTER_LINEAR arithmetic (plain bilinear, no antialiasing).
pub fn crop(img: &RgbImage, bbox: &BBox, crop_scale: f32, size: u32) -> RgbImage {
    let r = crop_rect(bbox, img.width, img.height, crop_scale);
    resize_region(img, (r.left, r.top, r.right, r.bottom), size, size)
}

impl Judge for MiniFasNet {
    fn name(&self) -> &str {
        &self.name
    }

    fn live_score(&self, img: &RgbImage, bbox: &BBox) -> Result<f32, PipelineError> {
        let s = self.input.size;
        let crop = crop(img, bbox, self.judge.crop_scale, s as u32);
        let t = to_planar(&crop, s, s, &self.input);
        let out = self.model.run(Tensor::new(vec![1, 3, s, s], t)?)?;
        let logits = &out
            .first()
            .ok_or_else(|| {
                PipelineError::Inference(facelive_backends::BackendError::Run(
                    "MiniFASNet returned no output".into(),
                ))
            })?
            .data;
        if logits.len() != self.judge.classes {
            return Err(PipelineError::Inference(
                facelive_backends::BackendError::Shape(format!(
                    "MiniFASNet gave {} logits, expected {}",
                    logits.len(),
                    self.judge.classes
                )),
            ));
        }
        Ok(softmax(logits)[self.judge.live_class])
    }
}

fn softmax(z: &[f32]) -> Vec<f32> {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}
