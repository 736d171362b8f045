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
    // Channel c of pixel p goes to c * channel_stride + p * pixel_stride.
    let (channel_stride, pixel_stride) = match input.layout {
        Layout::NCHW => (plane, 1),
        Layout::NHWC => (1, 3),
    };
    let inv_std = input.std.map(|s| 1.0 / s);
    let iw = img.width as usize;
    let w = region.width.min(width).min(iw.saturating_sub(region.x));
    let h = region
        .height
        .min(height)
        .min((img.height as usize).saturating_sub(region.y));
    for y in 0..h {
        let start = ((region.y + y) * iw + region.x) * 3;
        let row = &img.data[start..start + w * 3];
        for (c, &src_c) in order.iter().enumerate() {
            let (scale, mean, inv_std) = (input.scale, input.mean[c], inv_std[c]);
            let value = |px: &[u8]| (px[src_c] as f32 * scale - mean) * inv_std;
            if matches!(input.layout, Layout::NCHW) {
                // Planar: the channel's row is one contiguous run, which vectorises.
                let dst = &mut t[c * plane + y * width..][..w];
                for (d, px) in dst.iter_mut().zip(row.chunks_exact(3)) {
                    *d = value(px);
                }
            } else {
                for (x, px) in row.chunks_exact(3).enumerate() {
                    t[c * channel_stride + (y * width + x) * pixel_stride] = value(px);
                }
            }
        }
    }
    t
}
