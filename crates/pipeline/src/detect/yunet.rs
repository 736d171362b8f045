//! YuNet (OpenCV Zoo, 2023mar): anchor-free, one prior per cell at strides 8/16/32, with
//! separate class and objectness heads. Decoding follows the models manifest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use facelive_backends::{Backend, Model, Tensor};
use facelive_models::{DetectorSpec, InputSpec, ModelSpec};

use super::letterbox::{input_shape, letterbox};
use super::nms::nms;
use super::{sort_largest_first, Detector};
use crate::face::{BBox, Face, Landmarks, Point};
use crate::image::RgbImage;
use crate::PipelineError;

pub struct YuNet {
    backend: Arc<dyn Backend>,
    path: PathBuf,
    /// Optimised plans by input shape (height, width). Each is built once, then shared and
    /// never changed; common camera shapes are built at load time, others on first use.
    plans: RwLock<HashMap<(usize, usize), Arc<dyn Model>>>,
    max_side: usize,
    multiple: usize,
    input: InputSpec,
    det: DetectorSpec,
}

/// Shapes built at load time: 4:3 and 16:9 landscape frames at the default size, and every
/// portrait or square photo (tall inputs are padded to a square).
const WARM_SHAPES: [(usize, usize); 3] = [(480, 640), (384, 640), (640, 640)];
/// Bound on cached plans; a shape beyond it is built for the request and dropped.
const MAX_PLANS: usize = 64;

/// Output indices of one stride's four heads.
struct Heads {
    stride: usize,
    cls: usize,
    obj: usize,
    bbox: usize,
    kps: usize,
}

impl YuNet {
    pub fn load(
        backend: Arc<dyn Backend>,
        dir: &Path,
        spec: &ModelSpec,
        max_side: usize,
    ) -> Result<Self, PipelineError> {
        let det = spec.detector.clone().ok_or_else(|| {
            PipelineError::InvalidRequest(format!("{} is not a detector", spec.name))
        })?;
        let multiple = spec.input.multiple_of.unwrap_or(32);
        if max_side == 0 || !max_side.is_multiple_of(multiple) {
            return Err(PipelineError::InvalidRequest(format!(
                "detector size {max_side} must be a positive multiple of {multiple}"
            )));
        }
        let yunet = Self {
            backend,
            path: dir.join(&spec.file),
            plans: RwLock::new(HashMap::new()),
            max_side,
            multiple,
            input: spec.input.clone(),
            det,
        };
        let scale = max_side as f32 / 640.0;
        for (h, w) in WARM_SHAPES {
            let (w, h) = ((w as f32 * scale) as usize, (h as f32 * scale) as usize);
            yunet.plan(input_shape(w, h, multiple))?;
        }
        Ok(yunet)
    }

    fn plan(&self, shape: (usize, usize)) -> Result<Arc<dyn Model>, PipelineError> {
        if let Some(p) = self.plans.read().expect("plan cache lock").get(&shape) {
            return Ok(p.clone());
        }
        let plan = self.backend.load(&self.path, &[1, 3, shape.0, shape.1])?;
        let mut plans = self.plans.write().expect("plan cache lock");
        if plans.len() < MAX_PLANS {
            plans.insert(shape, plan.clone());
        }
        Ok(plan)
    }

    fn heads(&self, model: &dyn Model) -> Result<Vec<Heads>, PipelineError> {
        let names = model.output_names();
        let find = |n: String| {
            names.iter().position(|x| *x == n).ok_or_else(|| {
                PipelineError::Inference(facelive_backends::BackendError::Run(format!(
                    "YuNet output {n} not found among {names:?}"
                )))
            })
        };
        self.det
            .strides
            .iter()
            .map(|&s| {
                Ok(Heads {
                    stride: s,
                    cls: find(format!("cls_{s}"))?,
                    obj: find(format!("obj_{s}"))?,
                    bbox: find(format!("bbox_{s}"))?,
                    kps: find(format!("kps_{s}"))?,
                })
            })
            .collect()
    }
}

impl Detector for YuNet {
    fn detect(&self, img: &RgbImage) -> Result<Vec<Face>, PipelineError> {
        let lb = letterbox(img, self.max_side, self.multiple, &self.input);
        let model = self.plan((lb.height, lb.width))?;
        let outputs = model.run(Tensor::new(vec![1, 3, lb.height, lb.width], lb.tensor)?)?;
        let mut faces = Vec::new();
        for h in self.heads(model.as_ref())? {
            decode_stride(
                &outputs,
                &h,
                (lb.height, lb.width),
                self.det.score_threshold,
                &mut faces,
            )?;
        }
        let mut faces = nms(faces, self.det.nms_iou);
        let inv = 1.0 / lb.scale;
        for f in &mut faces {
            *f = f.scaled(inv, inv);
        }
        sort_largest_first(&mut faces);
        Ok(faces)
    }
}

fn decode_stride(
    out: &[Tensor],
    h: &Heads,
    (height, width): (usize, usize),
    threshold: f32,
    faces: &mut Vec<Face>,
) -> Result<(), PipelineError> {
    let cols = width / h.stride;
    let n = (height / h.stride) * cols;
    let (cls, obj, bbox, kps) = (
        &out[h.cls].data,
        &out[h.obj].data,
        &out[h.bbox].data,
        &out[h.kps].data,
    );
    if cls.len() < n || obj.len() < n || bbox.len() < 4 * n || kps.len() < 10 * n {
        return Err(PipelineError::Inference(
            facelive_backends::BackendError::Shape(format!(
                "YuNet stride {} outputs are smaller than {n} cells",
                h.stride
            )),
        ));
    }
    let s = h.stride as f32;
    for i in 0..n {
        let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
        if score < threshold {
            continue;
        }
        let (row, col) = ((i / cols) as f32, (i % cols) as f32);
        let b = &bbox[i * 4..i * 4 + 4];
        let (cx, cy) = ((col + b[0]) * s, (row + b[1]) * s);
        let (w, hh) = (b[2].exp() * s, b[3].exp() * s);
        let k = &kps[i * 10..i * 10 + 10];
        let lm = std::array::from_fn(|j| Point {
            x: (k[2 * j] + col) * s,
            y: (k[2 * j + 1] + row) * s,
        });
        faces.push(Face {
            bbox: BBox {
                x: cx - w / 2.0,
                y: cy - hh / 2.0,
                width: w,
                height: hh,
            },
            landmarks: Landmarks::from_array(lm),
            score,
        });
    }
    Ok(())
}
