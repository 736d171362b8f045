use facelive_models::InputSpec;

use crate::image::RgbImage;

/// NCHW `f32` tensor of `height` x `width` holding `img` at its top left, in the model's
/// colour order and normalisation (value = pixel * scale - mean), zeros elsewhere.
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
    let order: [usize; 3] = if input.colour == "BGR" {
        [2, 1, 0]
    } else {
        [0, 1, 2]
    };
    let iw = img.width as usize;
    let w = region.width.min(width).min(iw.saturating_sub(region.x));
    let h = region
        .height
        .min(height)
        .min((img.height as usize).saturating_sub(region.y));
    for y in 0..h {
        let start = ((region.y + y) * iw + region.x) * 3;
        let row = &img.data[start..start + w * 3];
        for (x, px) in row.chunks_exact(3).enumerate() {
            for (c, &src_c) in order.iter().enumerate() {
                t[c * plane + y * width + x] = px[src_c] as f32 * input.scale - input.mean[c];
            }
        }
    }
    t
}
