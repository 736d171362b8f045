use facelive_models::{Colour, InputSpec, Layout};

use crate::image::RgbImage;

/// `f32` tensor of `height` x `width` (the model's layout) holding `img` at its top left, in
/// the model's colour order and normalisation ((pixel * scale - mean) / std), zeros
/// elsewhere.
pub fn to_planar(img: &RgbImage, height: usize, width: usize, input: &InputSpec) -> Vec<f32> {
    let all = Region {
        x: 0,
        y: 0,
        width: img.width as usize,
        height: img.height as usize,
    };
    region_to_planar(img, all, height, width, input)
}

/// A rectangle of pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// As [`to_planar`], for the `region` of `img` only (placed at the tensor's top left).
pub fn region_to_planar(
    img: &RgbImage,
    region: Region,
    height: usize,
    width: usize,
    input: &InputSpec,
) -> Vec<f32> {
    let plane = height * width;
    let mut t = vec![0f32; 3 * plane];
    let order: [usize; 3] = match input.colour {
        Colour::BGR => [2, 1, 0],
        Colour::RGB => [0, 1, 2],
    };
    let inv_std = input.std.map(|s| 1.0 / s);
    // Channel c of the tensor from a source pixel.
    let value =
        |px: &[u8], c: usize| (px[order[c]] as f32 * input.scale - input.mean[c]) * inv_std[c];
    let iw = img.width as usize;
    let w = region.width.min(width).min(iw.saturating_sub(region.x));
    let h = region
        .height
        .min(height)
        .min((img.height as usize).saturating_sub(region.y));
    for y in 0..h {
        let start = ((region.y + y) * iw + region.x) * 3;
        let row = &img.data[start..start + w * 3];
        match input.layout {
            // Each channel's row is one contiguous run, which vectorises.
            Layout::NCHW => {
                for c in 0..3 {
                    let dst = &mut t[c * plane + y * width..][..w];
                    for (d, px) in dst.iter_mut().zip(row.chunks_exact(3)) {
                        *d = value(px, c);
                    }
                }
            }
            Layout::NHWC => {
                let dst = &mut t[y * width * 3..][..w * 3];
                for (d, px) in dst.chunks_exact_mut(3).zip(row.chunks_exact(3)) {
                    for (c, v) in d.iter_mut().enumerate() {
                        *v = value(px, c);
                    }
                }
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layout: Layout, colour: Colour) -> InputSpec {
        InputSpec {
            layout,
            colour,
            scale: 1.0 / 255.0,
            mean: [0.5, 0.25, 0.0],
            std: [0.5, 0.25, 1.0],
            size: 3,
            multiple_of: None,
        }
    }

    /// A 2x2 image whose pixel (x, y) is (10 + x, 20 + y, 30 + x + y), so each value tells
    /// where it came from.
    fn image() -> RgbImage {
        let px = |x: u8, y: u8| [10 + x, 20 + y, 30 + x + y];
        let data = [px(0, 0), px(1, 0), px(0, 1), px(1, 1)].concat();
        RgbImage::new(2, 2, data)
    }

    /// Tensor value of channel `c` (model order) at (x, y), by the formula, zero outside.
    fn expected(input: &InputSpec, x: usize, y: usize, c: usize) -> f32 {
        if x >= 2 || y >= 2 {
            return 0.0;
        }
        let rgb = [10 + x, 20 + y, 30 + x + y];
        let source = match input.colour {
            Colour::RGB => rgb[c],
            Colour::BGR => rgb[2 - c],
        };
        (source as f32 * input.scale - input.mean[c]) / input.std[c]
    }

    #[test]
    fn both_layouts_and_colour_orders_put_each_value_where_the_model_reads_it() {
        for layout in [Layout::NCHW, Layout::NHWC] {
            for colour in [Colour::RGB, Colour::BGR] {
                let input = spec(layout, colour);
                let t = to_planar(&image(), 3, 3, &input);
                for (y, x, c) in
                    (0..3).flat_map(|y| (0..3).flat_map(move |x| (0..3).map(move |c| (y, x, c))))
                {
                    let i = match layout {
                        Layout::NCHW => c * 9 + y * 3 + x,
                        Layout::NHWC => (y * 3 + x) * 3 + c,
                    };
                    let want = expected(&input, x, y, c);
                    assert!(
                        (t[i] - want).abs() < 1e-6,
                        "{layout:?} {colour:?} ({x}, {y}) c{c}: {} vs {want}",
                        t[i]
                    );
                }
            }
        }
    }
}
