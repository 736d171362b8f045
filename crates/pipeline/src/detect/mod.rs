//! Detect: every face in the working image, with box, five landmarks and score.

mod detector;
mod nms;
mod yunet;

pub use detector::{DetectMode, Detector};
pub use yunet::YuNet;
