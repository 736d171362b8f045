//! Bilinear resize with OpenCV's exact arithmetic (`cv::resize`, INTER_LINEAR, 8-bit, x86).
//!
//! The anti-spoof models were trained on crops made by `cv2.resize`, and their scores move
//! by several hundredths when the crop differs by a level on a tenth of its pixels (a float
//! bilinear, or fast_image_resize's interpolation mode, does exactly that). So the crop is
//! made the way OpenCV makes it: 11-bit fixed-point weights from float source coordinates,
//! a horizontal pass into integers, and the vertical pass with the rounding of OpenCV's
//! SIMD path. Only 80x80 outputs are made here, so plain loops are fast enough.

use crate::image::RgbImage;

const COEF_SCALE: f32 = 2048.0;

/// Source index and the two fixed-point weights, for each output index.
fn taps(src: usize, dst: usize) -> Vec<(usize, usize, i32, i32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s >= src as i64 - 1 {
                s = src as i64 - 1;
                frac = 0.0;
            }
            let s = s as usize;
            let a1 = (frac * COEF_SCALE).round_ties_even() as i32;
            let a0 = ((1.0 - frac) * COEF_SCALE).round_ties_even() as i32;
            (s, (s + 1).min(src - 1), a0, a1)
        })
        .collect()
}

/// Resizes the inclusive rectangle `[left..=right] x [top..=bottom]` of `img` to
/// `width` x `height`.
pub fn resize_region(
    img: &RgbImage,
    (left, top, right, bottom): (u32, u32, u32, u32),
    width: u32,
    height: u32,
) -> RgbImage {
    let (l, t) = (left as usize, top as usize);
    let (sw, sh) = ((right - left + 1) as usize, (bottom - top + 1) as usize);
    let (dw, dh) = (width as usize, height as usize);
    let xt = taps(sw, dw);
    let yt = taps(sh, dh);
    let stride = img.width as usize * 3;
    // Horizontal pass, only for the source rows the vertical pass reads.
    let mut rows: Vec<Option<Vec<i32>>> = vec![None; sh];
    for &(y0, y1, _, _) in &yt {
        for y in [y0, y1] {
            if rows[y].is_none() {
                let src = &img.data[(t + y) * stride + l * 3..];
                let mut row = vec![0i32; dw * 3];
                for (dx, &(x0, x1, a0, a1)) in xt.iter().enumerate() {
                    for c in 0..3 {
                        row[dx * 3 + c] = src[x0 * 3 + c] as i32 * a0 + src[x1 * 3 + c] as i32 * a1;
                    }
                }
                rows[y] = Some(row);
            }
        }
    }
    let mut out = vec![0u8; dw * dh * 3];
    for (dy, &(y0, y1, b0, b1)) in yt.iter().enumerate() {
        let (r0, r1) = (rows[y0].as_ref().unwrap(), rows[y1].as_ref().unwrap());
        let dst = &mut out[dy * dw * 3..(dy + 1) * dw * 3];
        // Zipped, not indexed: without bounds checks the pass vectorises.
        for ((d, &v0), &v1) in dst.iter_mut().zip(r0).zip(r1) {
            let v = (((b0 * (v0 >> 4)) >> 16) + ((b1 * (v1 >> 4)) >> 16) + 2) >> 2;
            *d = v.clamp(0, 255) as u8;
        }
    }
    RgbImage::new(width, height, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_copies_pixels() {
        let data: Vec<u8> = (0..4 * 3 * 3).map(|v| (v * 7 % 256) as u8).collect();
        let img = RgbImage::new(4, 3, data.clone());
        assert_eq!(resize_region(&img, (0, 0, 3, 2), 4, 3).data, data);
    }

    #[test]
    fn halving_a_two_pixel_row_averages_it() {
        let img = RgbImage::new(2, 1, vec![0, 0, 0, 200, 100, 50]);
        assert_eq!(
            resize_region(&img, (0, 0, 1, 0), 1, 1).data,
            vec![100, 50, 25]
        );
    }
}
