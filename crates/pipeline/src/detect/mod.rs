//! Detect: every face in the working image, with box, five landmarks and score.

mod letterbox;
mod nms;
mod yunet;

pub use yunet::YuNet;

use crate::face::Face;
use crate::image::RgbImage;
use crate::PipelineError;

/// A face detector family. Faces come back in the coordinates of the image given, largest
/// first.
pub trait Detector: Send + Sync {
    fn detect(&self, img: &RgbImage) -> Result<Vec<Face>, PipelineError>;
}

/// Largest first: the face the pipeline judges is the largest one.
pub(crate) fn sort_largest_first(faces: &mut [Face]) {
    faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
}
