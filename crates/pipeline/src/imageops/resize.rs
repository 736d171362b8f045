//! Downscaling whole images with the SIMD resizer.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::lanes::{empty_lanes, fill_lanes, round_to_bytes, Path, LANES};
use crate::image::RgbImage;

/// Shrinks `img` to `width` x `height` with an antialiasing filter (area-like), as a
/// photograph should be shrunk before detection.
pub fn downscale(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    if (width, height) == (img.width, img.height) {
        return img.clone();
    }
    let src = ImageRef::new(img.width, img.height, &img.data, PixelType::U8x3)
        .expect("RgbImage buffers always match their size");
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
    Resizer::new()
        .resize(&src, &mut dst, &opts)
        .expect("same pixel type on both sides");
    RgbImage::new(width, height, dst.into_vec())
}

/// Shrinks the region `(x, y, w, h)` of `img` to `width` x `height` with the SIMD resizer,
/// reading the region in place (no copy of it is made).
pub fn downscale_region(
    img: &RgbImage,
    (x, y, w, h): (u32, u32, u32, u32),
    width: u32,
    height: u32,
) -> RgbImage {
    let src = ImageRef::new(img.width, img.height, &img.data, PixelType::U8x3)
        .expect("RgbImage buffers always match their size");
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Box))
        .crop(x as f64, y as f64, w as f64, h as f64);
    Resizer::new()
        .resize(&src, &mut dst, &opts)
        .expect("same pixel type on both sides");
    RgbImage::new(width, height, dst.into_vec())
}

/// Area-weighted shrink (OpenCV INTER_AREA semantics: each output pixel is the mean of the
/// source area it covers, partial pixels weighted by coverage). The detector input is made
/// this way because the detector's boxes, and through them the anti-spoof scores, move with
/// the shrink filter; the reference pipeline shrinks with INTER_AREA.
pub fn area_downscale(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    assert!(width <= img.width && height <= img.height && width > 0 && height > 0);
    if (width, height) == (img.width, img.height) {
        return img.clone();
    }
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (dw, dh) = (width as usize, height as usize);
    // Horizontal pass into f32 rows, then vertical (OpenCV's order). Each sum adds its
    // taps in order from zero, as the definition does.
    let path = Path::best();
    let rows = horizontal_area_pass(path, &img.data, sw, &runs(area_weights(sw, dw)));
    let mut out = vec![0u8; dh * dw * 3];
    let mut acc = vec![0f32; dw * 3];
    let ys = runs(area_weights(sh, dh));
    for ((first, weights), line) in ys.iter().zip(out.chunks_exact_mut(dw * 3)) {
        acc.fill(0.0);
        for (row, &w) in rows[first * dw * 3..].chunks_exact(dw * 3).zip(weights) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v * w;
            }
        }
        round_to_bytes(path, &acc, line);
    }
    RgbImage::new(width, height, out)
}

/// Every row of `data` (RGB, `sw` pixels a row) shrunk horizontally by the taps `xt`, as f32
/// rows of `xt.len()` pixels. Rows go [`LANES`] at a time with one row per vector lane: all
/// lanes then share each tap's weight, and each tap is one vector multiply-add (one pixel's
/// taps in a row are too few and too irregular to vectorise). A last, short block fills its
/// missing lanes with a zero row and drops their results.
fn horizontal_area_pass(path: Path, data: &[u8], sw: usize, xt: &[(usize, Vec<f32>)]) -> Vec<f32> {
    let (row_len, out_len) = (sw * 3, xt.len() * 3);
    // Filled block by block (not zeroed whole first: a frame's rows are over a megabyte).
    let mut rows = Vec::with_capacity(data.len() / row_len * out_len);
    let zero_row = vec![0u8; row_len];
    // The block's rows column by column: `cols[k][r]` is row r's value k.
    let mut cols = vec![[0f32; LANES]; row_len];
    let mut acc = vec![[0f32; LANES]; out_len];
    for block in data.chunks(LANES * row_len) {
        let n = block.len() / row_len;
        let src: [&[u8]; LANES] = std::array::from_fn(|r| match r < n {
            true => &block[r * row_len..][..row_len],
            false => &zero_row,
        });
        fill_lanes(path, &src, &mut cols);
        for ((first, weights), out) in xt.iter().zip(acc.chunks_exact_mut(3)) {
            for (c, sum) in out.iter_mut().enumerate() {
                let mut s = [0f32; LANES];
                for (t, &w) in weights.iter().enumerate() {
                    let v = &cols[(first + t) * 3 + c];
                    for r in 0..LANES {
                        s[r] += v[r] * w;
                    }
                }
                *sum = s;
            }
        }
        let from = rows.len();
        rows.resize(from + n * out_len, 0.0);
        empty_lanes(path, &acc, &mut rows[from..], n);
    }
    rows
}

/// Each output's taps as the first source index and the weights of the adjacent run that
/// starts there (`area_weights` gives them in order and without gaps).
fn runs(taps: Vec<Vec<(usize, f32)>>) -> Vec<(usize, Vec<f32>)> {
    taps.into_iter()
        .map(|t| (t[0].0, t.iter().map(|&(_, w)| w).collect()))
        .collect()
}

/// For each output index, the source indices it covers and their coverage weights.
fn area_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f1 = d as f64 * scale;
            let f2 = f1 + scale;
            let cell = scale.min(src as f64 - f1);
            let s1 = f1.ceil() as usize;
            let s2 = (f2.floor() as usize).min(src);
            let mut taps = Vec::new();
            if s1 as f64 - f1 > 1e-3 {
                taps.push((s1 - 1, ((s1 as f64 - f1) / cell) as f32));
            }
            for s in s1..s2 {
                taps.push((s, (1.0 / cell) as f32));
            }
            if f2 - s2 as f64 > 1e-3 && s2 < src {
                taps.push((s2, ((f2 - s2 as f64).min(1.0).min(cell) / cell) as f32));
            }
            taps
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_weights_cover_each_output_pixel_exactly_once() {
        for (src, dst) in [(1160, 640), (800, 640), (4352, 640), (10, 3)] {
            for taps in area_weights(src, dst) {
                let sum: f32 = taps.iter().map(|t| t.1).sum();
                assert!((sum - 1.0).abs() < 1e-4, "{src}->{dst}: {taps:?}");
            }
        }
    }

    /// The definition, one output value at a time: what the fast loops must equal exactly.
    fn area_downscale_by_definition(img: &RgbImage, width: u32, height: u32) -> Vec<u8> {
        let (sw, sh) = (img.width as usize, img.height as usize);
        let (dw, dh) = (width as usize, height as usize);
        let (xt, yt) = (area_weights(sw, dw), area_weights(sh, dh));
        let mut out = Vec::new();
        for ys in &yt {
            for xs in &xt {
                for c in 0..3 {
                    let mut v = 0f32;
                    for &(sy, wy) in ys {
                        let mut h = 0f32;
                        for &(sx, wx) in xs {
                            h += img.data[(sy * sw + sx) * 3 + c] as f32 * wx;
                        }
                        v += h * wy;
                    }
                    out.push(v.round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        out
    }

    #[test]
    fn area_downscale_equals_its_definition_exactly() {
        let (w, h) = (203, 157);
        let data = (0..w * h * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let img = RgbImage::new(w, h, data);
        for (dw, dh) in [(64, 48), (101, 78), (50, 157), (203, 20), (1, 1)] {
            assert_eq!(
                area_downscale(&img, dw, dh).data,
                area_downscale_by_definition(&img, dw, dh),
                "{dw}x{dh}"
            );
        }
    }

    #[test]
    fn area_shrink_by_two_averages_blocks() {
        let img = RgbImage::new(
            2,
            2,
            vec![0, 0, 0, 100, 100, 100, 50, 50, 50, 250, 250, 250],
        );
        assert_eq!(area_downscale(&img, 1, 1).data, vec![100, 100, 100]);
    }
}
