//! Every resize and letterbox of the pipeline, in one place: the image follows
//! ingest -> detect -> quality -> judge, and each stage takes the pixels it needs from here.
//!
//! - [`resize`]: whole images and regions shrunk with the SIMD resizer (decoding reduces
//!   large photos, the detector's first pass, the sharpness check, the judges' large crops);
//! - [`letterbox`]: the detector's fixed input canvases and how an image is placed on them;
//! - [`cv_linear`] and [`cv_lanczos`]: the judges' crops, with OpenCV's exact arithmetic
//!   (the models were trained on `cv2.resize` output).

pub mod cv_lanczos;
pub mod cv_linear;
mod lanes;
pub mod letterbox;
pub mod resize;

pub use resize::{area_downscale, downscale, downscale_region};
