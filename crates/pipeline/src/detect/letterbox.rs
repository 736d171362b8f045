//! The detector's input: the whole image shrunk (never enlarged) so its longer side fits
//! the detector size, placed top-left and zero-padded to a multiple of the model's stride.
//!
//! Wide images keep their aspect (padded to a multiple of 32), as OpenCV's FaceDetectorYN
//! does: the padding changes the boxes by a pixel or so, and the anti-spoof scores follow
//! the box. Tall images are padded to a square instead, because tract runs YuNet far slower
//! on tall inputs than on a square of the same side (see the models manifest).

use facelive_models::InputSpec;

use crate::image::RgbImage;
use crate::ingest::area_downscale;
use crate::tensor::to_planar;

pub struct Letterboxed {
    pub tensor: Vec<f32>,
    pub height: usize,
    pub width: usize,
    /// Letterbox pixels per image pixel.
    pub scale: f32,
}

/// The padded input shape (height, width) for an image of `w` x `h` already shrunk to fit.
pub fn input_shape(w: usize, h: usize, multiple: usize) -> (usize, usize) {
    let up = |v: usize| v.div_ceil(multiple).max(1) * multiple;
    if h > w {
        (up(h), up(h))
    } else {
        (up(h), up(w))
    }
}

pub fn letterbox(
    img: &RgbImage,
    max_side: usize,
    multiple: usize,
    input: &InputSpec,
) -> Letterboxed {
    let long = img.width.max(img.height) as f32;
    let scale = (max_side as f32 / long).min(1.0);
    // Truncate like the reference pipeline, so boxes agree on the same image.
    let w = ((img.width as f32 * scale) as u32).max(1);
    let h = ((img.height as f32 * scale) as u32).max(1);
    let (ph, pw) = input_shape(w as usize, h as usize, multiple);
    let small;
    let src = if (w, h) != (img.width, img.height) {
        small = area_downscale(img, w, h);
        &small
    } else {
        img
    };
    Letterboxed {
        tensor: to_planar(src, ph, pw, input),
        height: ph,
        width: pw,
        scale,
    }
}

#[cfg(test)]
mod tests {
    use super::input_shape;

    #[test]
    fn wide_inputs_keep_their_aspect_and_tall_ones_become_squares() {
        assert_eq!(input_shape(640, 480, 32), (480, 640));
        assert_eq!(input_shape(640, 360, 32), (384, 640));
        assert_eq!(input_shape(480, 640, 32), (640, 640));
        assert_eq!(input_shape(72, 72, 32), (96, 96));
    }
}
