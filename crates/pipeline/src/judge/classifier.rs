//! A single-image anti-spoof classifier described entirely by its manifest entry: input
//! (size, layout, colour order, scaling), the crop around the detector's box, the resize,
//! and how its output becomes a live probability. The MiniFASNet pair is two such entries.
//!
//! The Silent-Face crop (`outside = "shift"`) is the face box enlarged `scale` times around
//! its centre, the scale capped and the crop shifted (not padded) to lie inside the image,
//! then resized exactly as `cv2.resize` does (see `cv_linear`), as the models were trained.
//! An antialiased or area resize moves their scores noticeably (tests pin this).

use std::path::Path;
use std::sync::Arc;

use facelive_backends::{Backend, Model, Tensor};
use facelive_models::{
    Activation, CropSpec, InputSpec, JudgeSpec, Layout, ModelSpec, Outside, Resize,
};

use super::judgement::{Judge, JudgeOutput, View};
use crate::error::PipelineError;
use crate::face::BBox;
use crate::image::RgbImage;
use crate::imageops::area_downscale;
use crate::imageops::cv_lanczos::lanczos4;
use crate::imageops::cv_linear::resize_region;
use crate::tensor::to_planar;

pub struct Classifier {
    name: String,
    model: Arc<dyn Model>,
    input: InputSpec,
    judge: JudgeSpec,
    /// Whether the run also returns the trunk (after the features).
    trunk: bool,
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

impl Classifier {
    pub fn load(
        backend: &dyn Backend,
        dir: &Path,
        spec: &ModelSpec,
        with_trunk: bool,
    ) -> Result<Self, PipelineError> {
        let judge = spec.judge.clone().ok_or_else(|| {
            PipelineError::InvalidRequest(format!("{} is not an anti-spoof model", spec.name))
        })?;
        let s = spec.input.size;
        let shape = match spec.input.layout {
            Layout::NCHW => [1, 3, s, s],
            Layout::NHWC => [1, s, s, 3],
        };
        // The features come out of the same run as the score.
        let mut extra: Vec<String> = judge.features.iter().map(|f| f.node.clone()).collect();
        let trunk = judge.features.as_ref().and_then(|f| f.trunk.clone());
        if with_trunk {
            extra.push(trunk.ok_or_else(|| {
                PipelineError::InvalidRequest(format!(
                    "{} declares no trunk in its manifest entry's features",
                    spec.name
                ))
            })?);
        }
        let model = backend.load_with_outputs(&dir.join(&spec.file), &shape, &extra)?;
        Ok(Self {
            name: spec.name.clone(),
            model,
            input: spec.input.clone(),
            judge,
            trunk: with_trunk,
        })
    }
}

/// The model's input for `bbox`: the Silent-Face crop at `crop_scale`, resized to `size`
/// square with OpenCV's INTER_LINEAR arithmetic (plain bilinear, no antialiasing).
pub fn crop(img: &RgbImage, bbox: &BBox, crop_scale: f32, size: u32) -> RgbImage {
    let r = crop_rect(bbox, img.width, img.height, crop_scale);
    resize_region(img, (r.left, r.top, r.right, r.bottom), size, size)
}

/// The box made square with its longer side, around the same centre.
fn squared(b: &BBox) -> BBox {
    let side = b.width.max(b.height);
    BBox {
        x: b.x + (b.width - side) / 2.0,
        y: b.y + (b.height - side) / 2.0,
        width: side,
        height: side,
    }
}

/// Where pixel `i` of a line of `n` comes from, or `None` (black) outside.
fn border(i: i64, n: i64, outside: Outside) -> Option<i64> {
    if (0..n).contains(&i) {
        return Some(i);
    }
    match outside {
        Outside::Replicate | Outside::Shift => Some(i.clamp(0, n - 1)),
        Outside::Constant => None,
        Outside::Reflect if n == 1 => Some(0),
        Outside::Reflect => {
            let period = 2 * n - 2;
            let j = i.rem_euclid(period);
            Some(if j >= n { period - j } else { j })
        }
    }
}

/// The box enlarged `scale` times around its centre, in integer pixels (truncated, as
/// `int()` does; with `whole`, the enlarged side too), with the pixels outside the image
/// filled as `outside` says.
fn padded(img: &RgbImage, b: &BBox, scale: f32, outside: Outside, whole: bool) -> RgbImage {
    let (mut w, mut h) = (
        b.width as f64 * scale as f64,
        b.height as f64 * scale as f64,
    );
    if whole {
        (w, h) = (w.trunc(), h.trunc());
    }
    let (cx, cy) = (
        b.x as f64 + b.width as f64 / 2.0,
        b.y as f64 + b.height as f64 / 2.0,
    );
    let (x1, y1) = ((cx - w / 2.0) as i64, (cy - h / 2.0) as i64);
    let (ow, oh) = ((w as i64).max(1), (h as i64).max(1));
    let (iw, ih) = (img.width as i64, img.height as i64);
    let mut data = vec![0u8; (ow * oh * 3) as usize];
    for oy in 0..oh {
        let Some(sy) = border(y1 + oy, ih, outside) else {
            continue;
        };
        for ox in 0..ow {
            if let Some(sx) = border(x1 + ox, iw, outside) {
                let s = ((sy * iw + sx) * 3) as usize;
                let d = ((oy * ow + ox) * 3) as usize;
                data[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
            }
        }
    }
    RgbImage::new(ow as u32, oh as u32, data)
}

fn resized(img: &RgbImage, resize: Resize, size: u32) -> RgbImage {
    match resize {
        Resize::Bilinear => resize_region(img, (0, 0, img.width - 1, img.height - 1), size, size),
        Resize::AreaLanczos if img.width >= size && img.height >= size => {
            area_downscale(img, size, size)
        }
        Resize::AreaLanczos => lanczos4(img, size, size),
    }
}

/// The model's input for `bbox` (working-image pixels), as its crop and resize declare.
pub fn declared_crop(
    img: &RgbImage,
    bbox: &BBox,
    c: &CropSpec,
    resize: Resize,
    size: u32,
) -> RgbImage {
    let whole = |b: &BBox| BBox {
        x: b.x.trunc(),
        y: b.y.trunc(),
        width: b.width.trunc(),
        height: b.height.trunc(),
    };
    let b = if c.whole_pixels { whole(bbox) } else { *bbox };
    let b = if c.square { squared(&b) } else { b };
    match (c.outside, resize) {
        (Outside::Shift, Resize::Bilinear) => crop(img, &b, c.scale, size),
        (Outside::Shift, _) => {
            let r = crop_rect(&b, img.width, img.height, c.scale);
            let region = BBox {
                x: r.left as f32,
                y: r.top as f32,
                width: (r.right - r.left + 1) as f32,
                height: (r.bottom - r.top + 1) as f32,
            };
            resized(
                &padded(img, &region, 1.0, Outside::Replicate, true),
                resize,
                size,
            )
        }
        (outside, _) => resized(
            &padded(img, &b, c.scale, outside, c.whole_pixels),
            resize,
            size,
        ),
    }
}

impl Judge for Classifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn weight(&self) -> f32 {
        self.judge.weight
    }

    fn judge_view(
        &self,
        img: &RgbImage,
        bbox: &BBox,
        view: &View,
    ) -> Result<JudgeOutput, PipelineError> {
        let s = self.input.size;
        let b = view.apply_to_box(bbox);
        let mut crop = declared_crop(img, &b, &self.judge.crop, self.judge.resize, s as u32);
        view.apply_to_crop(&mut crop);
        let t = to_planar(&crop, s, s, &self.input);
        let shape = match self.input.layout {
            Layout::NCHW => vec![1, 3, s, s],
            Layout::NHWC => vec![1, s, s, 3],
        };
        let mut outputs = self.model.run(Tensor::new(shape, t)?)?.into_iter();
        let out = outputs
            .next()
            .ok_or_else(|| self.wrong("returned no output".to_string()))?;
        let o = &self.judge.output;
        if out.data.len() != o.classes {
            return Err(self.wrong(format!(
                "gave {} outputs, expected {}",
                out.data.len(),
                o.classes
            )));
        }
        let features = match &self.judge.features {
            Some(f) => Some(
                outputs
                    .next()
                    .ok_or_else(|| self.wrong(format!("returned no features ({})", f.node)))?
                    .data,
            ),
            None => None,
        };
        let trunk = match self.trunk {
            true => Some(
                outputs
                    .next()
                    .ok_or_else(|| self.wrong("returned no trunk".to_string()))?
                    .data,
            ),
            false => None,
        };
        Ok(JudgeOutput {
            live_score: live_probability(&out.data, o),
            features,
            trunk,
        })
    }
}

impl Classifier {
    fn wrong(&self, what: String) -> PipelineError {
        PipelineError::Inference(facelive_backends::BackendError::Shape(format!(
            "{} {what}",
            self.name
        )))
    }
}

/// The live class's probability from a judge's raw output, as its manifest entry says.
pub fn live_probability(out: &[f32], o: &facelive_models::OutputSpec) -> f32 {
    match o.activation {
        Activation::Softmax => softmax(out)[o.live_index],
        Activation::Sigmoid => 1.0 / (1.0 + (-out[o.live_index]).exp()),
        Activation::None => out[o.live_index],
    }
}

fn softmax(z: &[f32]) -> Vec<f32> {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}
