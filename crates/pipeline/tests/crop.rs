//! The MiniFASNet input crops against the exact 80x80 inputs the reference pipeline built
//! (../shared/data/dev/crops). JPEG decoders differ by a level or two per pixel; a wrong
//! crop rectangle, colour order or resize filter shows up as far larger differences.

use facelive_pipeline::image::RgbImage;
use facelive_pipeline::ingest::{ingest, IngestOptions};
use facelive_pipeline::judge::{crop, crop_rect};
use facelive_pipeline::BBox;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use serde_json::Value;

struct Case {
    image: String,
    bbox: BBox,
    scale: f32,
    rect: [u32; 4],
    bgr: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let dev = facelive_testdata::dev_dir();
    let json: Value =
        serde_json::from_slice(&std::fs::read(dev.join("crops/crops.json")).unwrap()).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let b = &c["box"];
            let r = &c["crop_rect"];
            let f = |v: &Value| v.as_f64().unwrap() as f32;
            let u = |v: &Value| v.as_u64().unwrap() as u32;
            Case {
                image: c["image"].as_str().unwrap().to_string(),
                bbox: BBox {
                    x: f(&b["x"]),
                    y: f(&b["y"]),
                    width: f(&b["width"]),
                    height: f(&b["height"]),
                },
                scale: f(&c["scale"]),
                rect: [
                    u(&r["left"]),
                    u(&r["top"]),
                    u(&r["right_inclusive"]),
                    u(&r["bottom_inclusive"]),
                ],
                bgr: std::fs::read(dev.join(c["file"].as_str().unwrap())).unwrap(),
            }
        })
        .collect()
}

fn decode(rel: &str) -> RgbImage {
    ingest(&facelive_testdata::read(rel), &IngestOptions::default())
        .unwrap()
        .image
}

/// Mean absolute difference per channel value between our RGB crop and a reference BGR crop.
fn mean_abs_diff(rgb: &RgbImage, bgr: &[u8]) -> f64 {
    assert_eq!(rgb.data.len(), bgr.len());
    let mut sum = 0u64;
    for (p, q) in rgb.data.chunks_exact(3).zip(bgr.chunks_exact(3)) {
        for c in 0..3 {
            sum += (p[c] as i32 - q[2 - c] as i32).unsigned_abs() as u64;
        }
    }
    sum as f64 / bgr.len() as f64
}

/// What an antialiasing resize (the default of most image libraries) would give.
fn antialiased_crop(img: &RgbImage, bbox: &BBox, scale: f32) -> RgbImage {
    let r = crop_rect(bbox, img.width, img.height, scale);
    let src = ImageRef::new(img.width, img.height, &img.data, PixelType::U8x3).unwrap();
    let mut dst = Image::new(80, 80, PixelType::U8x3);
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(
            r.left as f64,
            r.top as f64,
            (r.right - r.left + 1) as f64,
            (r.bottom - r.top + 1) as f64,
        );
    Resizer::new().resize(&src, &mut dst, &opts).unwrap();
    RgbImage::new(80, 80, dst.into_vec())
}

#[test]
fn crop_rectangles_are_the_reference_rectangles() {
    for c in cases() {
        let img = decode(&c.image);
        let r = crop_rect(&c.bbox, img.width, img.height, c.scale);
        assert_eq!(
            [r.left, r.top, r.right, r.bottom],
            c.rect,
            "{} at scale {}",
            c.image,
            c.scale
        );
    }
}

#[test]
fn crops_match_reference_pixels_and_an_antialiased_resize_would_not() {
    for c in cases() {
        let img = decode(&c.image);
        let ours = mean_abs_diff(&crop(&img, &c.bbox, c.scale, 80), &c.bgr);
        let aa = mean_abs_diff(&antialiased_crop(&img, &c.bbox, c.scale), &c.bgr);
        eprintln!(
            "{} s{}: ours {ours:.2}, antialiased {aa:.2}",
            c.image, c.scale
        );
        assert!(
            ours <= 0.5,
            "{} s{}: mean abs diff {ours:.2} > 0.5",
            c.image,
            c.scale
        );
        // The check discriminates: the wrong filter is several times further away.
        assert!(
            aa > 2.0 * ours.max(0.5),
            "{} s{}: antialiased {aa:.2} vs ours {ours:.2}",
            c.image,
            c.scale
        );
    }
}
