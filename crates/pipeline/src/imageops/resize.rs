//! Downscaling whole images with the SIMD resizer.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

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
    let rows = horizontal_area_pass(&img.data, sw, &runs(area_weights(sw, dw)));
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
        round_to_bytes(&acc, line);
    }
    RgbImage::new(width, height, out)
}

/// `out[i] = acc[i].round().clamp(0.0, 255.0) as u8`. Rust's saturating float-to-byte
/// conversion compiles to one scalar conversion per value; with AVX2, eight at a time.
fn round_to_bytes(acc: &[f32], out: &mut [u8]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    // SAFETY: this build's CPU baseline has AVX2.
    let done = unsafe { round_to_bytes_avx2(acc, out) };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
    let done = 0;
    for (o, v) in out.iter_mut().zip(acc).skip(done) {
        *o = v.round().clamp(0.0, 255.0) as u8;
    }
}

/// [`round_to_bytes`] for whole groups of eight values; returns how many it wrote.
/// `f32::round` (half away from zero) is `trunc(v + copysign(0.49999997, v))`, exactly:
/// the largest float under a half makes every fraction of a half or more carry, and
/// nothing under it (LLVM lowers `round` the same way).
///
/// # Safety
/// The CPU has AVX2.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[target_feature(enable = "avx2")]
unsafe fn round_to_bytes_avx2(acc: &[f32], out: &mut [u8]) -> usize {
    use std::arch::x86_64::*;
    let whole = acc.len().min(out.len()) / 8 * 8;
    let half = _mm256_set1_ps(f32::from_bits(0.5f32.to_bits() - 1));
    let sign = _mm256_set1_ps(-0.0);
    let (zero, top) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
    for (v, o) in acc[..whole].chunks_exact(8).zip(out.chunks_exact_mut(8)) {
        // SAFETY: `v` is 8 readable f32, what the load reads.
        let v = unsafe { _mm256_loadu_ps(v.as_ptr()) };
        let nudge = _mm256_or_ps(_mm256_and_ps(v, sign), half);
        let r =
            _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(_mm256_add_ps(v, nudge));
        let i = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, zero), top));
        // Eight 32-bit values in 0..=255 to bytes: pack to 16 bits, then to 8.
        let w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256::<1>(i));
        let bytes = _mm_packus_epi16(w, w);
        let o: &mut [u8; 8] = o.try_into().expect("8 bytes");
        // SAFETY: `o` is 8 writable bytes, what the 64-bit store writes.
        unsafe { _mm_storel_epi64(o.as_mut_ptr().cast(), bytes) };
    }
    whole
}

/// Rows of source values per block in [`horizontal_area_pass`]: one per vector lane.
const LANES: usize = 8;

/// Every row of `data` (RGB, `sw` pixels a row) shrunk horizontally by the taps `xt`, as f32
/// rows of `xt.len()` pixels. Rows go [`LANES`] at a time with one row per vector lane: all
/// lanes then share each tap's weight, and each tap is one vector multiply-add (one pixel's
/// taps in a row are too few and too irregular to vectorise). A last, short block fills its
/// missing lanes with a zero row and drops their results.
fn horizontal_area_pass(data: &[u8], sw: usize, xt: &[(usize, Vec<f32>)]) -> Vec<f32> {
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
        fill_lanes(&src, &mut cols);
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
        empty_lanes(&acc, &mut rows[from..], n);
    }
    rows
}

/// `cols[k][r] = src[r][k]` as f32: the block's rows, column by column. One value at a time
/// this was a third of the shrink's time; with AVX2, eight columns of the eight rows are
/// widened and transposed in registers.
fn fill_lanes(src: &[&[u8]; LANES], cols: &mut [[f32; LANES]]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    // SAFETY: this build's CPU baseline has AVX2.
    let done = unsafe { fill_lanes_avx2(src, cols) };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
    let done = 0;
    for (k, col) in cols.iter_mut().enumerate().skip(done) {
        *col = std::array::from_fn(|r| src[r][k] as f32);
    }
}

/// [`fill_lanes`] for whole groups of eight columns; returns how many columns it filled.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[target_feature(enable = "avx2")]
unsafe fn fill_lanes_avx2(src: &[&[u8]; LANES], cols: &mut [[f32; LANES]]) -> usize {
    use std::arch::x86_64::*;
    const { assert!(LANES == 8) };
    let whole = cols.len() / 8 * 8;
    for (group, out) in cols[..whole].chunks_exact_mut(8).enumerate() {
        let k = group * 8;
        let mut rows = [_mm256_setzero_ps(); 8];
        for (v, row) in rows.iter_mut().zip(src) {
            let bytes: &[u8; 8] = row[k..k + 8].try_into().expect("8 bytes");
            // SAFETY: `bytes` is 8 readable bytes, what the 64-bit load reads.
            let b = unsafe { _mm_loadl_epi64(bytes.as_ptr().cast()) };
            *v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
        }
        for (col, v) in out.iter_mut().zip(transpose8(rows)) {
            // SAFETY: `col` is 8 writable f32, what the store writes.
            unsafe { _mm256_storeu_ps(col.as_mut_ptr(), v) };
        }
    }
    whole
}

/// The 8x8 transpose of eight registers of eight f32: lane `r` of output `j` is lane `j`
/// of input `r`.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[target_feature(enable = "avx2")]
fn transpose8(r: [std::arch::x86_64::__m256; 8]) -> [std::arch::x86_64::__m256; 8] {
    use std::arch::x86_64::*;
    let (a, b) = (
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
    );
    let (c, d) = (
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
    );
    let (e, f) = (
        _mm256_unpacklo_ps(r[4], r[5]),
        _mm256_unpackhi_ps(r[4], r[5]),
    );
    let (g, h) = (
        _mm256_unpacklo_ps(r[6], r[7]),
        _mm256_unpackhi_ps(r[6], r[7]),
    );
    // Columns 0-3 of rows 0-3 (low halves) and 4-7 (high halves), then rows 4-7.
    let top = [
        _mm256_shuffle_ps::<0x44>(a, c),
        _mm256_shuffle_ps::<0xEE>(a, c),
        _mm256_shuffle_ps::<0x44>(b, d),
        _mm256_shuffle_ps::<0xEE>(b, d),
    ];
    let bottom = [
        _mm256_shuffle_ps::<0x44>(e, g),
        _mm256_shuffle_ps::<0xEE>(e, g),
        _mm256_shuffle_ps::<0x44>(f, h),
        _mm256_shuffle_ps::<0xEE>(f, h),
    ];
    let mut out = [_mm256_setzero_ps(); 8];
    for j in 0..4 {
        out[j] = _mm256_permute2f128_ps::<0x20>(top[j], bottom[j]);
        out[j + 4] = _mm256_permute2f128_ps::<0x31>(top[j], bottom[j]);
    }
    out
}

/// `rows[r * len + k] = acc[k][r]` for the first `n` lanes, `len` being `acc.len()`: the
/// block's results back to rows, the inverse of [`fill_lanes`].
fn empty_lanes(acc: &[[f32; LANES]], rows: &mut [f32], n: usize) {
    let len = acc.len();
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    // SAFETY: this build's CPU baseline has AVX2.
    let done = match n == LANES {
        true => unsafe { empty_lanes_avx2(acc, rows) },
        false => 0,
    };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
    let done = 0;
    for (r, row) in rows.chunks_exact_mut(len).take(n).enumerate() {
        for (v, a) in row[done..].iter_mut().zip(&acc[done..]) {
            *v = a[r];
        }
    }
}

/// [`empty_lanes`] of a full block for whole groups of eight columns; returns how many
/// columns it emptied.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[target_feature(enable = "avx2")]
unsafe fn empty_lanes_avx2(acc: &[[f32; LANES]], rows: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let len = acc.len();
    let whole = len / 8 * 8;
    for (group, cols) in acc[..whole].chunks_exact(8).enumerate() {
        let mut v = [_mm256_setzero_ps(); 8];
        for (v, col) in v.iter_mut().zip(cols) {
            // SAFETY: `col` is 8 readable f32, what the load reads.
            *v = unsafe { _mm256_loadu_ps(col.as_ptr()) };
        }
        for (r, row) in transpose8(v).into_iter().enumerate() {
            let out: &mut [f32; 8] = (&mut rows[r * len + group * 8..][..8])
                .try_into()
                .expect("8 values");
            // SAFETY: `out` is 8 writable f32, what the store writes.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), row) };
        }
    }
    whole
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

    /// Every value from -1 to 300 in steps of 1/1024, each half-way value and its
    /// neighbours one ulp away, and the float just under a half, round as `f32::round`.
    #[test]
    fn round_to_bytes_rounds_as_f32_round() {
        let halves = (-1..300).flat_map(|k| {
            let h = k as f32 + 0.5;
            [
                h,
                f32::from_bits(h.to_bits() - 1),
                f32::from_bits(h.to_bits() + 1),
            ]
        });
        let grid = (-1024..300 * 1024).map(|i| i as f32 / 1024.0);
        let mut values: Vec<f32> = halves.chain(grid).collect();
        values.push(f32::from_bits(0.5f32.to_bits() - 1));
        let mut out = vec![0u8; values.len()];
        round_to_bytes(&values, &mut out);
        for (v, o) in values.iter().zip(&out) {
            assert_eq!(*o, v.round().clamp(0.0, 255.0) as u8, "{v}");
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
