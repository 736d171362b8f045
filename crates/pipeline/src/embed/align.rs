//! The aligned face crop an embedder reads, as OpenCV's `FaceRecognizerSF::alignCrop` makes
//! it: the least-squares similarity transform (rotation, uniform scale, translation; never a
//! reflection) taking the five landmarks onto the model's template, then `warpAffine` with
//! bilinear interpolation and a black border, in floating point as OpenCV 4.11 and later
//! warp, so the crop is the reference's to a grey level (tested against the reference
//! recipe in crates/pipeline/tests/verify_agreement.rs).

use crate::face::Landmarks;
use crate::image::RgbImage;

/// A 2x3 affine transform `[a, b, c; d, e, f]`: (x, y) -> (a x + b y + c, d x + e y + f).
pub type Affine = [[f64; 3]; 2];

/// The similarity transform taking `src` onto `dst` in the least-squares sense (Umeyama's
/// solution with its reflection guard, in closed form for two dimensions). The means and
/// centred points are single precision, as alignCrop's are.
pub fn similarity(src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> Affine {
    let mean = |p: &[[f32; 2]; 5], k: usize| p.iter().map(|q| q[k]).sum::<f32>() / 5.0;
    let (sm, dm) = ([mean(src, 0), mean(src, 1)], [mean(dst, 0), mean(dst, 1)]);
    let (mut dot, mut cross, mut var) = (0f64, 0f64, 0f64);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = ((s[0] - sm[0]) as f64, (s[1] - sm[1]) as f64);
        let (dx, dy) = ((d[0] - dm[0]) as f64, (d[1] - dm[1]) as f64);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        var += sx * sx + sy * sy;
    }
    if var <= 0.0 {
        // All five points at one place: no transform fits; map them to the template's centre.
        return [[0.0, 0.0, dm[0] as f64], [0.0, 0.0, dm[1] as f64]];
    }
    // [a -b; b a] minimises sum |R s - d|^2 over rotations with scale.
    let (a, b) = (dot / var, cross / var);
    let (mx, my) = (sm[0] as f64, sm[1] as f64);
    [
        [a, -b, dm[0] as f64 - (a * mx - b * my)],
        [b, a, dm[1] as f64 - (b * mx + a * my)],
    ]
}

/// The inverse of an affine transform (OpenCV's `invertAffineTransform`); a singular one
/// gives zeros.
fn invert(m: &Affine) -> Affine {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let d = if det != 0.0 { 1.0 / det } else { 0.0 };
    let (a, b) = (m[1][1] * d, -m[0][1] * d);
    let (e, f) = (-m[1][0] * d, m[0][0] * d);
    [
        [a, b, -a * m[0][2] - b * m[1][2]],
        [e, f, -e * m[0][2] - f * m[1][2]],
    ]
}

/// `img` warped by `m` (crop pixels from image pixels) into a `size` x `size` crop: OpenCV's
/// `warpAffine(img, crop, m, (size, size), INTER_LINEAR, BORDER_CONSTANT, 0)` as OpenCV 4.11
/// and later compute it: source coordinates and interpolation in floating point, rounded to
/// the nearest grey level (ties to even), black outside the image. (OpenCV before 4.11
/// quantised coordinates to 1/32 pixel: up to 4 grey levels apart on the verify set.)
pub fn warp(img: &RgbImage, m: &Affine, size: u32) -> RgbImage {
    let inv = invert(m);
    let n = size as usize;
    let mut out = vec![0u8; n * n * 3];
    for y in 0..n {
        for x in 0..n {
            let (fx, fy) = (x as f64, y as f64);
            let sx = inv[0][0] * fx + inv[0][1] * fy + inv[0][2];
            let sy = inv[1][0] * fx + inv[1][1] * fy + inv[1][2];
            out[(y * n + x) * 3..][..3].copy_from_slice(&bilinear(img, sx, sy));
        }
    }
    RgbImage::new(size, size, out)
}

/// The pixel at (`sx`, `sy`) interpolated from its 2x2 neighbourhood, black outside.
fn bilinear(img: &RgbImage, sx: f64, sy: f64) -> [u8; 3] {
    let (w, h) = (img.width as i64, img.height as i64);
    let (x0, y0) = (sx.floor(), sy.floor());
    if !(x0.is_finite() && y0.is_finite()) {
        return [0; 3];
    }
    let (a, b) = (sx - x0, sy - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    if x0 >= w || x0 + 1 < 0 || y0 >= h || y0 + 1 < 0 {
        return [0; 3];
    }
    let at = |px: i64, py: i64, c: usize| -> f64 {
        if px < 0 || py < 0 || px >= w || py >= h {
            0.0
        } else {
            img.data[(py as usize * w as usize + px as usize) * 3 + c] as f64
        }
    };
    std::array::from_fn(|c| {
        let (p00, p01) = (at(x0, y0, c), at(x0 + 1, y0, c));
        let (p10, p11) = (at(x0, y0 + 1, c), at(x0 + 1, y0 + 1, c));
        let top = p00 + a * (p01 - p00);
        let bottom = p10 + a * (p11 - p10);
        (top + b * (bottom - top))
            .round_ties_even()
            .clamp(0.0, 255.0) as u8
    })
}

/// The aligned crop of the face with `landmarks` (image pixels of `img`).
pub fn align(
    img: &RgbImage,
    landmarks: &Landmarks,
    template: &[[f32; 2]; 5],
    size: u32,
) -> RgbImage {
    let src = landmarks.points().map(|p| [p.x, p.y]);
    warp(img, &similarity(&src, template), size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: [[f32; 2]; 5] = [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ];

    /// Points that are the template rotated, scaled and moved come back exactly, and a
    /// mirrored face is not reflected back (the transform stays a rotation).
    #[test]
    fn similarity_recovers_a_known_transform_and_never_reflects() {
        let (s, t) = (2.5f64, 0.3f64);
        let (a, b) = (s * t.cos(), s * t.sin());
        let src = TEMPLATE.map(|p| {
            let (x, y) = (p[0] as f64, p[1] as f64);
            [
                (a * x - b * y + 100.0) as f32,
                (b * x + a * y + 40.0) as f32,
            ]
        });
        let m = similarity(&src, &TEMPLATE);
        for (p, q) in src.iter().zip(TEMPLATE) {
            let x = m[0][0] * p[0] as f64 + m[0][1] * p[1] as f64 + m[0][2];
            let y = m[1][0] * p[0] as f64 + m[1][1] * p[1] as f64 + m[1][2];
            assert!(
                (x - q[0] as f64).abs() < 1e-3 && (y - q[1] as f64).abs() < 1e-3,
                "{x},{y} vs {q:?}"
            );
        }
        let mirrored = src.map(|p| [-p[0], p[1]]);
        let m = similarity(&mirrored, &TEMPLATE);
        assert!(
            m[0][0] * m[1][1] - m[0][1] * m[1][0] > 0.0,
            "a reflection: {m:?}"
        );
    }

    /// The identity warp copies pixels, a half-pixel shift averages neighbours with
    /// OpenCV's rounding, and what falls outside the image is black.
    #[test]
    fn warp_is_opencv_bilinear_with_a_black_border() {
        let data: Vec<u8> = (0..4 * 4 * 3).map(|i| (i * 5) as u8).collect();
        let img = RgbImage::new(4, 4, data.clone());
        let id = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        assert_eq!(warp(&img, &id, 4).data, data);
        let half = [[1.0, 0.0, -0.5], [0.0, 1.0, 0.0]];
        let w = warp(&img, &half, 4);
        // Crop (1, 0) reads image x = 1.5: the mean of pixels 1 and 2, ties to even.
        let mean = (img.pixel(1, 0)[0] as f64 + img.pixel(2, 0)[0] as f64) / 2.0;
        let want = mean.round_ties_even() as u8;
        assert_eq!(w.pixel(1, 0)[0], want);
        let far = [[1.0, 0.0, 100.0], [0.0, 1.0, 0.0]];
        assert!(warp(&img, &far, 4).data.iter().all(|&v| v == 0));
    }
}
