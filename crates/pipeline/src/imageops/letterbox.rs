//! The detector's input: the whole image shrunk (never enlarged) so its longer side fits
//! the detector size, or a region of it at its own resolution, placed top-left on the
//! smallest of a fixed set of canvases that holds it, zero-padded, as the model's planar
//! tensor. [`Letterbox`] does all of it; the detector asks it once per pass.
//!
//! The canvases are fixed so that every detector plan is built when the pipeline loads: a
//! request of a new shape costs what any other costs. The image's scale is the reference
//! pipeline's (longer side to the detector size), and the set is dense enough that the
//! padding is the reference's too for wide frames (see [`canvases`]).

use std::borrow::Cow;

use facelive_models::InputSpec;

use super::area_downscale;
use crate::image::RgbImage;
use crate::tensor::{region_to_planar, to_planar, Region};

/// The detector's canvases and input recipe, fixed at load.
pub struct Letterbox {
    canvases: Vec<Canvas>,
    input: InputSpec,
}

/// What a detector pass sees of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The whole image, shrunk so its longer side fits `side` (never enlarged).
    Whole { side: usize },
    /// A region of the image at its own resolution.
    Region(Region),
}

/// Where a pass's pixels go: the canvas (an index into [`Letterbox::canvases`]) and the
/// shrink or region they come from.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub canvas: usize,
    pub from: Placed,
}

/// The image's pixels a placement takes.
#[derive(Debug, Clone, Copy)]
pub enum Placed {
    Shrunk(Shrink),
    Region(Region),
}

/// One pass's input: its placement and tensor. A point on the canvas is at
/// `origin + point / scale` in the image's pixels.
pub struct Prepared {
    pub canvas: usize,
    pub tensor: Vec<f32>,
    pub origin: (f32, f32),
    pub scale: f32,
}

impl Letterbox {
    /// The canvases for a detector size and stride ([`canvases`]), and the model's input.
    pub fn new(size: usize, multiple: usize, input: InputSpec) -> Self {
        Self {
            canvases: canvases(size, multiple),
            input,
        }
    }

    /// Smallest first.
    pub fn canvases(&self) -> &[Canvas] {
        &self.canvases
    }

    /// Where `source` of a `width` x `height` image goes, without rendering it (what a
    /// pass would cost). A shrunk whole image always has a canvas (the largest holds any
    /// image shrunk to the detector size); a region has none when it is larger than all.
    pub fn place(&self, width: u32, height: u32, source: Source) -> Option<Placement> {
        let holding = |w: usize, h: usize| self.canvases.iter().position(|c| c.holds(w, h));
        match source {
            Source::Whole { side } => {
                let s = shrink_size(width, height, side);
                let canvas =
                    holding(s.width as usize, s.height as usize).unwrap_or(self.canvases.len() - 1);
                Some(Placement {
                    canvas,
                    from: Placed::Shrunk(s),
                })
            }
            Source::Region(r) => Some(Placement {
                canvas: holding(r.width, r.height)?,
                from: Placed::Region(r),
            }),
        }
    }

    /// A pass's input in one call: placed ([`Self::place`]) and rendered.
    pub fn prepare(&self, img: &RgbImage, source: Source) -> Option<Prepared> {
        let p = self.place(img.width, img.height, source)?;
        let c = self.canvases[p.canvas];
        Some(match p.from {
            Placed::Shrunk(s) => Prepared {
                canvas: p.canvas,
                tensor: to_planar(&shrunk(img, s), c.height, c.width, &self.input),
                origin: (0.0, 0.0),
                scale: s.scale,
            },
            Placed::Region(r) => Prepared {
                canvas: p.canvas,
                tensor: region_to_planar(img, r, c.height, c.width, &self.input),
                origin: (r.x as f32, r.y as f32),
                scale: 1.0,
            },
        })
    }
}

/// `img` shrunk as `s` says (itself when `s` keeps its size).
pub fn shrunk(img: &RgbImage, s: Shrink) -> Cow<'_, RgbImage> {
    if (s.width, s.height) == (img.width, img.height) {
        Cow::Borrowed(img)
    } else {
        Cow::Owned(area_downscale(img, s.width, s.height))
    }
}

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
    shrink_size(img.width, img.height, max_side)
}

fn shrink_size(width: u32, height: u32, max_side: usize) -> Shrink {
    let long = width.max(height) as f32;
    let scale = (max_side as f32 / long).min(1.0);
    Shrink {
        scale,
        width: ((width as f32 * scale) as u32).max(1),
        height: ((height as f32 * scale) as u32).max(1),
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
