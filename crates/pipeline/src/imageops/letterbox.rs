//! The detector's input: the whole image shrunk (never enlarged) so its longer side fits
//! the detector size, placed top-left on the smallest of a fixed set of canvases that
//! holds it, zero-padded.
//!
//! The canvases are fixed so that every detector plan is built when the pipeline loads: a
//! request of a new shape costs what any other costs. The image's scale is the reference
//! pipeline's (longer side to the detector size), and the set is dense enough that the
//! padding is the reference's too for wide frames (see [`canvases`]).

use crate::image::RgbImage;

/// A detector input size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canvas {
    pub height: usize,
    pub width: usize,
}

impl Canvas {
    pub fn holds(&self, w: usize, h: usize) -> bool {
        w <= self.width && h <= self.height
    }

    /// Pixels, which a detector run's cost follows.
    pub fn area(&self) -> usize {
        self.height * self.width
    }
}

/// The canvases for a detector size, smallest first: a square at every multiple of the
/// model's stride up to the size, and full-width landscapes from 1:2 to square. A shrunk
/// image then gets the padding the reference pipeline gives it (to the next multiple) in
/// every dimension that was not shrunk to the full size, or a square (for tall images:
/// tract runs tall inputs slowly); the detector's boxes, and so the anti-spoof scores,
/// follow that padding.
pub fn canvases(size: usize, multiple: usize) -> Vec<Canvas> {
    let size = size.div_ceil(multiple) * multiple;
    let sides = (1..=size / multiple).map(|k| k * multiple);
    let squares = sides.clone().map(|s| Canvas {
        height: s,
        width: s,
    });
    let landscapes = sides
        .filter(|&h| h >= size / 2 && h < size)
        .map(|h| Canvas {
            height: h,
            width: size,
        });
    let mut all: Vec<Canvas> = squares.chain(landscapes).collect();
    all.sort_by_key(|c| (c.height * c.width, c.height));
    all
}

/// How an image is shrunk for the detector: letterbox pixels per image pixel, and the
/// shrunk size (truncated like the reference pipeline, so boxes agree on the same image).
#[derive(Debug, Clone, Copy)]
pub struct Shrink {
    pub scale: f32,
    pub width: u32,
    pub height: u32,
}

/// `img` shrunk so its longer side fits `max_side`, never enlarged.
pub fn shrink(img: &RgbImage, max_side: usize) -> Shrink {
    let long = img.width.max(img.height) as f32;
    let scale = (max_side as f32 / long).min(1.0);
    Shrink {
        scale,
        width: ((img.width as f32 * scale) as u32).max(1),
        height: ((img.height as f32 * scale) as u32).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(height: usize, width: usize) -> Canvas {
        Canvas { height, width }
    }

    #[test]
    fn canvases_are_wide_or_square_multiples_of_the_stride() {
        let all = canvases(640, 32);
        assert_eq!(all.len(), 20 + 10);
        assert_eq!(all[0], c(32, 32));
        assert_eq!(*all.last().unwrap(), c(640, 640));
        assert!(all.iter().all(|c| c.height % 32 == 0 && c.width % 32 == 0));
        assert!(all.contains(&c(480, 640)) && all.contains(&c(352, 640)));
    }

    #[test]
    fn every_shrunk_image_has_a_canvas_and_tall_ones_get_squares() {
        let all = canvases(640, 32);
        let pick = |w, h| *all.iter().find(|c| c.holds(w, h)).unwrap();
        // As the reference pads them: 4:3 and 16:9 frames, shrunk to 640 wide.
        assert_eq!(pick(640, 480), c(480, 640));
        assert_eq!(pick(640, 360), c(384, 640));
        // Tall or small: a square of the longer side, rounded up.
        assert_eq!(pick(480, 640), c(640, 640));
        assert_eq!(pick(89, 116), c(128, 128));
        assert_eq!(pick(300, 300), c(320, 320));
        assert_eq!(pick(1, 1), c(32, 32));
        assert!(all.iter().all(|c| c.height <= c.width));
    }
}
