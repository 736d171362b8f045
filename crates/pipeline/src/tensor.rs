use facelive_models::InputSpec;

use crate::image::RgbImage;

/// NCHW `f32` tensor of `height` x `width` holding `img` at its top left, in the model's
/// colour order and normalisation (value = pixel * scale - mean), zeros elsewhere.
pub fn to_planar(img: &RgbImage, height: usize, width: usize, input: &InputSpec) -> Vec<f32> {
    let plane = height * width;
    let mut t = vec![0f32; 3 * plane];
    let order: [usize; 3] = if input.colour == "BGR" {
        [2, 1, 0]
    } else {
        [0, 1, 2]
    };
    let (w, h) = (img.width as usize, img.height as usize);
    for y in 0..h.min(height) {
        let row = &img.data[y * w * 3..(y + 1) * w * 3];
        for x in 0..w.min(width) {
            let px = &row[x * 3..x * 3 + 3];
            for (c, &src_c) in order.iter().enumerate() {
                t[c * plane + y * width + x] = px[src_c] as f32 * input.scale - input.mean[c];
            }
        }
    }
    t
}
