//! What every detector is: the trait, its modes, and the order faces come back in.

use crate::error::PipelineError;
use crate::face::Face;
use crate::image::RgbImage;

/// How the detector looks at an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectMode {
    /// The whole image at the detector size, as the reference pipeline does.
    Full,
    /// A third-size pass finds the faces, then a full-resolution pass on a region around
    /// each gives its box and landmarks: on tract 1.4 times the full pass's images/s on the
    /// dev set, with its balanced-point APCER and BPCER kept (docs/BENCHMARKS.md). Falls
    /// back to the full pass where that would not be cheaper.
    #[default]
    TwoPass,
}

impl DetectMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DetectMode::Full => "full",
            DetectMode::TwoPass => "two-pass",
        }
    }
}

impl std::fmt::Display for DetectMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DetectMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [DetectMode::Full, DetectMode::TwoPass]
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown detect mode {s:?} (full, two-pass)"))
    }
}

/// A face detector family. Faces come back in the coordinates of the image given, largest
/// first.
pub trait Detector: Send + Sync {
    /// The faces, found in the configured mode.
    fn detect(&self, img: &RgbImage) -> Result<Vec<Face>, PipelineError> {
        self.detect_in(img, self.mode())
    }
    /// The faces, found in `mode` (every mode's plans are built at load).
    fn detect_in(&self, img: &RgbImage, mode: DetectMode) -> Result<Vec<Face>, PipelineError>;
    /// The mode chosen at load.
    fn mode(&self) -> DetectMode;
    /// Runs every plan once, so no request pays a plan's first-run set-up.
    fn warm_up(&self) -> Result<(), PipelineError>;
}

/// Largest first: the face the pipeline judges is the largest one.
pub(crate) fn sort_largest_first(faces: &mut [Face]) {
    faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
}
