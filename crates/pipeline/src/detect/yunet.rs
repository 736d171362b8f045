//! YuNet (OpenCV Zoo, 2023mar): anchor-free, one prior per cell at strides 8/16/32, with
//! separate class and objectness heads. Decoding follows the models manifest.

use std::path::Path;
use std::sync::Arc;

use facelive_backends::{Backend, Model, Tensor};
use facelive_models::{DetectorSpec, ModelSpec};

use super::detector::{sort_largest_first, DetectMode, Detector};
use super::nms::nms;
use crate::error::PipelineError;
use crate::face::{BBox, Face, Landmarks, Point};
use crate::image::RgbImage;
use crate::imageops::letterbox::{shrink, shrunk, Canvas, Letterbox, Prepared, Source};
use crate::tensor::Region;

/// Context around the face the fine pass sees, in face sizes.
const REGION_MARGIN: f32 = 1.25;

/// The coarse pass sees the image at this fraction of the detector's resolution: a third
/// finds faces down to about 30 px there (`edge/two_faces.jpg`'s second face is 39 px; a
/// quarter missed it), on a canvas of about a sixth of the full pass's pixels for a 4:3
/// frame (224 x 224 against 640 x 480).
const COARSE_DIVISOR: usize = 3;

/// Two passes are tried only on images whose full pass costs at least this many times the
/// coarse one. Below that the image is a face crop or close to one: the fine region around
/// the face is most of the image, so the fine pass costs as much as the full one and the
/// coarse pass is lost. On the dev set every image whose full canvas is 2 to 4 coarse
/// canvases (16 face crops of about 300 x 300) fell back to the full pass after the coarse
/// one; skipping the coarse pass there saves about 1 ms each with the same boxes.
const COARSE_SHARE: usize = 4;

/// The coarse pass's score floor for a candidate the fine pass looks at again (the fine
/// pass decides at the detector's own threshold).
const COARSE_THRESHOLD: f32 = 0.3;

pub struct YuNet {
    /// The canvases and the input recipe: every pass's input comes from here.
    letterbox: Letterbox,
    /// One plan per canvas, in the letterbox's order, all built at load: no request
    /// builds a plan.
    plans: Vec<CanvasPlan>,
    max_side: usize,
    mode: DetectMode,
    /// The coarsest stride: a fine-pass region starts on a multiple of it.
    align: usize,
    det: DetectorSpec,
}

struct CanvasPlan {
    model: Arc<dyn Model>,
    heads: Vec<Heads>,
}

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
        backend: &dyn Backend,
        dir: &Path,
        spec: &ModelSpec,
        max_side: usize,
        mode: DetectMode,
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
        let path = dir.join(&spec.file);
        let letterbox = Letterbox::new(max_side, multiple, spec.input.clone());
        let plans = letterbox
            .canvases()
            .iter()
            .map(|canvas| {
                let model = backend.load(&path, &[1, 3, canvas.height, canvas.width])?;
                let heads = heads(&det, model.output_names())?;
                Ok(CanvasPlan { model, heads })
            })
            .collect::<Result<Vec<_>, PipelineError>>()?;
        Ok(Self {
            letterbox,
            plans,
            max_side,
            mode,
            align: det.strides.iter().copied().max().unwrap_or(32),
            det,
        })
    }

    /// Pixels of the canvas `source` of a `width` x `height` image goes on (what its pass
    /// costs); `None` when no canvas holds it.
    fn cost(&self, width: u32, height: u32, source: Source) -> Option<usize> {
        let p = self.letterbox.place(width, height, source)?;
        Some(self.letterbox.canvases()[p.canvas].area())
    }
}

fn heads(det: &DetectorSpec, names: &[String]) -> Result<Vec<Heads>, PipelineError> {
    let find = |n: String| {
        names.iter().position(|x| *x == n).ok_or_else(|| {
            PipelineError::Inference(facelive_backends::BackendError::Run(format!(
                "YuNet output {n} not found among {names:?}"
            )))
        })
    };
    det.strides
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

impl Detector for YuNet {
    fn warm_up(&self) -> Result<(), PipelineError> {
        for p in &self.plans {
            p.model.warm_up()?;
        }
        Ok(())
    }

    fn mode(&self) -> DetectMode {
        self.mode
    }

    fn detect_in(&self, img: &RgbImage, mode: DetectMode) -> Result<Vec<Face>, PipelineError> {
        // The image at the detector's resolution, made once: every pass reads from it.
        let s = shrink(img, self.max_side);
        let small = shrunk(img, s);
        let two_pass = match mode {
            DetectMode::TwoPass => self.two_pass(&small)?,
            DetectMode::Full => None,
        };
        let faces = match two_pass {
            Some(faces) => faces,
            None => {
                let whole = Source::Whole {
                    side: self.max_side,
                };
                self.pass(&small, whole, self.det.score_threshold)?
            }
        };
        let mut faces = scaled(faces, 1.0 / s.scale);
        sort_largest_first(&mut faces);
        Ok(faces)
    }
}

/// Faces mapped by a factor `k` (from a detector frame back to the image's pixels).
fn scaled(faces: Vec<Face>, k: f32) -> Vec<Face> {
    faces.into_iter().map(|f| f.scaled(k, k)).collect()
}

impl YuNet {
    /// One pass over `source` of `img`: its faces in `img`'s pixels (none when no canvas
    /// holds the source, which the callers have ruled out).
    fn pass(
        &self,
        img: &RgbImage,
        source: Source,
        threshold: f32,
    ) -> Result<Vec<Face>, PipelineError> {
        let Some(Prepared {
            canvas,
            tensor,
            origin,
            scale,
        }) = self.letterbox.prepare(img, source)
        else {
            return Ok(Vec::new());
        };
        let (plan, c) = (&self.plans[canvas], self.letterbox.canvases()[canvas]);
        let outputs = plan
            .model
            .run(Tensor::new(vec![1, 3, c.height, c.width], tensor)?)?;
        let mut faces = Vec::new();
        for h in &plan.heads {
            decode_stride(&outputs, h, c, origin, threshold, &mut faces)?;
        }
        // Back to `img`'s pixels (a region's scale is 1: multiplying by it is exact).
        Ok(scaled(nms(faces, self.det.nms_iou), 1.0 / scale))
    }

    /// Finds the faces on a third-size canvas, then detects again at the full pass's
    /// resolution on a region around each, aligned to the coarsest stride so its cells are
    /// the full pass's cells. `img` is the image at the detector's resolution; faces come
    /// back in its pixels. `None` when that would not be cheaper (small image, large face,
    /// many candidates) or no face was found: the caller then runs the full pass.
    ///
    /// The coarse pass only proposes: it keeps candidates down to [`COARSE_THRESHOLD`], so
    /// faces that score under the detector's threshold at a third of its resolution are
    /// still looked at, and the fine passes decide at the detector's own threshold. Faces
    /// under about 30 px at the detector's resolution can be missed (the full pass finds
    /// them down to about 10 px); the judged face is far larger.
    fn two_pass(&self, img: &RgbImage) -> Result<Option<Vec<Face>>, PipelineError> {
        let (w, h) = (img.width, img.height);
        let coarse = Source::Whole {
            side: self.max_side / COARSE_DIVISOR,
        };
        let full = Source::Whole {
            side: self.max_side,
        };
        let (Some(coarse_cost), Some(budget)) = (self.cost(w, h, coarse), self.cost(w, h, full))
        else {
            return Ok(None);
        };
        if COARSE_SHARE * coarse_cost > budget {
            return Ok(None);
        }
        let mut candidates = self.pass(img, coarse, COARSE_THRESHOLD)?;
        sort_largest_first(&mut candidates);
        let Some(regions) = self.fine_regions(&candidates, img, budget - coarse_cost) else {
            return Ok(None);
        };
        let mut faces = Vec::new();
        for region in regions {
            faces.extend(self.fine_pass(img, region)?);
        }
        if faces.is_empty() {
            return Ok(None);
        }
        Ok(Some(nms(faces, self.det.nms_iou)))
    }

    /// One region per candidate (largest first) whose centre no earlier region holds;
    /// `None` when there is no candidate, a region no canvas holds, or canvases that would
    /// cost `budget` or more.
    fn fine_regions(
        &self,
        candidates: &[Face],
        img: &RgbImage,
        budget: usize,
    ) -> Option<Vec<Region>> {
        let mut regions: Vec<Region> = Vec::new();
        let mut cost = 0;
        for face in candidates {
            if regions.iter().any(|r| holds_centre(r, &face.bbox)) {
                continue;
            }
            let region = region_around(&face.bbox, img.width, img.height, self.align);
            cost += self.cost(img.width, img.height, Source::Region(region))?;
            if cost >= budget {
                return None;
            }
            regions.push(region);
        }
        (!regions.is_empty()).then_some(regions)
    }

    /// The faces the full-resolution pass finds centred inside `region` (one centred
    /// outside belongs to a neighbouring region or is cut by this one's edge).
    fn fine_pass(&self, img: &RgbImage, region: Region) -> Result<Vec<Face>, PipelineError> {
        let faces = self.pass(img, Source::Region(region), self.det.score_threshold)?;
        Ok(faces
            .into_iter()
            .filter(|face| holds_centre(&region, &face.bbox))
            .collect())
    }
}

fn holds_centre(r: &Region, b: &BBox) -> bool {
    let (cx, cy) = (b.x + b.width / 2.0, b.y + b.height / 2.0);
    let (x0, y0) = (r.x as f32, r.y as f32);
    cx >= x0 && cy >= y0 && cx < x0 + r.width as f32 && cy < y0 + r.height as f32
}

/// The region the fine pass sees around a face: the face box enlarged [`REGION_MARGIN`]
/// times around its centre, its top left snapped down to a multiple of `align`, clipped to
/// the image.
fn region_around(face: &BBox, width: u32, height: u32, align: usize) -> Region {
    let side = face.width.max(face.height) * REGION_MARGIN;
    let (cx, cy) = (face.x + face.width / 2.0, face.y + face.height / 2.0);
    let snap = |v: f32| ((v.max(0.0) as usize) / align) * align;
    let (x, y) = (snap(cx - side / 2.0), snap(cy - side / 2.0));
    let (width, height) = (width as usize, height as usize);
    let right = ((cx + side / 2.0).ceil().max(0.0) as usize).min(width);
    let bottom = ((cy + side / 2.0).ceil().max(0.0) as usize).min(height);
    Region {
        x: x.min(width - 1),
        y: y.min(height - 1),
        width: right.saturating_sub(x).max(1),
        height: bottom.saturating_sub(y).max(1),
    }
}

fn decode_stride(
    out: &[Tensor],
    h: &Heads,
    canvas: Canvas,
    (ox, oy): (f32, f32),
    threshold: f32,
    faces: &mut Vec<Face>,
) -> Result<(), PipelineError> {
    let cols = canvas.width / h.stride;
    let n = (canvas.height / h.stride) * cols;
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
        let (cx, cy) = ((col + b[0]) * s + ox, (row + b[1]) * s + oy);
        let (w, hh) = (b[2].exp() * s, b[3].exp() * s);
        let k = &kps[i * 10..i * 10 + 10];
        let lm = std::array::from_fn(|j| Point {
            x: (k[2 * j] + col) * s + ox,
            y: (k[2 * j + 1] + row) * s + oy,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bbox(x: f32, y: f32, width: f32, height: f32) -> BBox {
        BBox {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn the_region_starts_on_the_stride_and_holds_the_face_with_its_margin() {
        let face = bbox(250.0, 130.0, 150.0, 200.0);
        let r = region_around(&face, 640, 480, 32);
        assert_eq!((r.x % 32, r.y % 32), (0, 0));
        // 1.25 x 200 = 250 around the centre (325, 230): 200..450 and 105..355, snapped.
        assert_eq!((r.x, r.y), (192, 96));
        assert_eq!((r.x + r.width, r.y + r.height), (450, 355));
    }

    #[test]
    fn the_region_is_clipped_to_the_image() {
        let r = region_around(&bbox(-20.0, 400.0, 100.0, 120.0), 640, 480, 32);
        assert_eq!((r.x, r.y), (0, 384));
        assert_eq!((r.x + r.width, r.y + r.height), (105, 480));
    }
}
