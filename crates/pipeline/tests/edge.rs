//! Every file in ../shared/data/dev/edge gets the outcome its manifest row implies.

mod common;

use common::{bbox, check, check_with, judge_only_pipeline, reduced_judge_only_pipeline};
use facelive_pipeline::ingest::Format;
use facelive_pipeline::{CheckOptions, Outcome, Verdict};
use facelive_testdata::{manifest, reference_scores};

fn reference_box(file: &str) -> [f32; 4] {
    reference_scores()
        .into_iter()
        .find(|r| r.file == file)
        .and_then(|r| r.bbox())
        .unwrap_or_else(|| panic!("no reference box for {file}"))
}

fn judged(v: &Verdict) -> f32 {
    v.live_score
        .unwrap_or_else(|| panic!("not judged: {:?}", v.retry_reason))
}

fn error_code(file: &str) -> String {
    match check(file) {
        Ok(v) => panic!(
            "{file} gave a verdict ({:?}) instead of an error",
            v.outcome
        ),
        Err(e) => e.code().to_string(),
    }
}

/// The manifest's edge rows and what each attack_type must produce, so a new edge file
/// without an expectation fails here instead of going untested.
#[test]
fn every_edge_file_gets_its_expected_outcome() {
    for row in manifest().into_iter().filter(|r| r.label == "edge") {
        let f = row.file.as_str();
        match row.attack_type.as_str() {
            "exif_rotated_face" | "multi_face" | "format_rgba_png" | "format_cmyk_jpeg"
            | "wrong_extension" | "format_webp" | "format_gif" => {
                let v = check(f).unwrap();
                assert!(
                    v.live_score.is_some(),
                    "{f}: not judged ({:?})",
                    v.retry_reason
                );
            }
            "tiny_face" => {
                let v = check(f).unwrap();
                assert_eq!(
                    (v.outcome, v.retry_reason.map(|r| r.as_str())),
                    (Outcome::Retry, Some("face_size")),
                    "{f}"
                );
            }
            "tiny_image" => {
                let v = check(f).unwrap();
                assert_eq!(
                    (v.outcome, v.retry_reason.map(|r| r.as_str())),
                    (Outcome::Retry, Some("image_size")),
                    "{f}"
                );
            }
            "no_face" => {
                let v = check(f).unwrap();
                assert_eq!(
                    (v.outcome, v.retry_reason.map(|r| r.as_str())),
                    (Outcome::Retry, Some("no_face")),
                    "{f}"
                );
                assert!(v.faces.is_empty() && v.live_score.is_none(), "{f}");
            }
            "format_grayscale" => assert_eq!(error_code(f), "unsupported_colour", "{f}"),
            "format_bmp" => assert_eq!(error_code(f), "unsupported_format", "{f}"),
            "corrupt_truncated" | "corrupt_header_only" => {
                assert_eq!(error_code(f), "corrupt_image", "{f}")
            }
            "nonimage_empty" => assert_eq!(error_code(f), "empty_input", "{f}"),
            "nonimage_text" | "nonimage_html" => assert_eq!(error_code(f), "not_an_image", "{f}"),
            "decompression_bomb" => assert_eq!(error_code(f), "image_too_large", "{f}"),
            other => panic!("{f}: no expectation for edge type {other}"),
        }
    }
}

#[test]
fn exif_rotated_faces_are_found_upright_where_the_reference_found_them() {
    for f in [
        "edge/exif3_face.jpg",
        "edge/exif6_face.jpg",
        "edge/exif8_face.jpg",
    ] {
        let v = check(f).unwrap();
        assert!(v.image.orientation_applied, "{f}");
        let face = v.face.as_ref().unwrap();
        let iou = face.bbox.iou(&bbox(reference_box(f)));
        assert!(iou >= 0.8, "{f}: IoU {iou:.2} with the reference box");
        // Upright: eyes above the nose, nose above the mouth.
        let lm = face.landmarks.unwrap();
        assert!(
            lm.left_eye.y < lm.nose.y && lm.nose.y < lm.mouth_left.y,
            "{f}: {lm:?}"
        );
        assert_eq!(
            (v.image.width, v.image.height),
            (600, 800),
            "{f}: size after orientation"
        );
    }
    // Orientation 6 swaps the stored sides; without auto-rotation the size stays as stored.
    let raw = check_with(
        "edge/exif6_face.jpg",
        &CheckOptions {
            auto_rotate: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!raw.image.orientation_applied);
    assert_eq!((raw.image.width, raw.image.height), (800, 600));
}

#[test]
fn photos_reduced_for_detection_are_judged_on_their_upright_full_resolution_pixels() {
    // At a 320-px working size these 600x800 photos are reduced; the judges still crop from
    // the full-resolution pixels, turned upright like the working image, so the scores are
    // the unreduced ones.
    for f in [
        "edge/exif3_face.jpg",
        "edge/exif6_face.jpg",
        "edge/exif8_face.jpg",
        "edge/rgba.png",
    ] {
        let opts = CheckOptions {
            face_box: Some(bbox(reference_box(f))),
            ..Default::default()
        };
        let bytes = facelive_testdata::read(f);
        let whole = judge_only_pipeline().check(&bytes, &opts).unwrap();
        let reduced = reduced_judge_only_pipeline().check(&bytes, &opts).unwrap();
        assert_eq!(
            reduced
                .image
                .working_width
                .max(reduced.image.working_height),
            320
        );
        let d = (judged(&whole) - judged(&reduced)).abs();
        assert!(d < 1e-5, "{f}: {} vs {}", judged(&whole), judged(&reduced));
    }
}

#[test]
fn the_larger_of_two_faces_is_judged_and_the_other_reported() {
    let v = check("edge/two_faces.jpg").unwrap();
    assert_eq!(v.faces.len(), 2, "{:?}", v.faces);
    let judged_face = v.face.as_ref().unwrap();
    let other = &v.faces[1];
    assert!(judged_face.bbox.area() > other.bbox.area());
    assert!(
        judged_face.bbox.x < other.bbox.x,
        "the larger face is the left one"
    );
    let iou = judged_face
        .bbox
        .iou(&bbox(reference_box("edge/two_faces.jpg")));
    assert!(iou >= 0.8, "IoU {iou:.2}");
}

#[test]
fn colour_variants_are_converted_and_score_like_the_reference() {
    // RGBA (opaque) and a PNG named .jpg: the same pixels as the reference decoded. Judged
    // in the reference's box: this tests the conversion, not the detector (two-pass
    // detection moves the box of rgba.png by 0.4 px and its score by 0.03).
    for (f, tol) in [
        ("edge/rgba.png", 0.02),
        ("edge/png_named.jpg", 0.02),
        ("edge/cmyk.jpg", 0.05),
        // Re-encoded copies: WebP (lossy) and GIF (256 colours) decode to other pixels
        // than the JPEG the reference read; the scores stay close.
        ("edge/face.webp", 0.05),
        ("edge/face.gif", 0.05),
    ] {
        let in_reference_box = CheckOptions {
            face_box: Some(bbox(reference_box(f))),
            ..Default::default()
        };
        let v = check_with(f, &in_reference_box).unwrap();
        let want = reference_scores()
            .into_iter()
            .find(|r| r.file == f)
            .unwrap()
            .live_score
            .unwrap();
        let got = judged(&v);
        assert!(
            (got - want).abs() <= tol,
            "{f}: {got:.3} vs reference {want:.3}"
        );
        assert_eq!(v.outcome, Outcome::Live, "{f}");
    }
    for (f, format) in [
        ("edge/png_named.jpg", Format::Png),
        ("edge/face.webp", Format::Webp),
        ("edge/face.gif", Format::Gif),
    ] {
        let v = check(f).unwrap();
        assert_eq!(v.image.format, format, "{f}");
        let iou = v.face.as_ref().unwrap().bbox.iou(&bbox(reference_box(f)));
        assert!(iou >= 0.9, "{f}: IoU {iou:.2} with the reference box");
    }
}

#[test]
fn refusals_name_what_was_found() {
    let e = check("edge/face.bmp").unwrap_err();
    assert!(e.to_string().contains("BMP"), "{e}");
    let e = check("edge/html.jpg").unwrap_err();
    assert!(e.to_string().contains("HTML"), "{e}");
    let e = check("edge/bomb_30000x30000.png").unwrap_err();
    assert!(e.to_string().contains("30000x30000"), "{e}");
}

#[test]
fn header_pixels_come_from_the_header_alone() {
    use facelive_pipeline::ingest::header_pixels;
    let bomb = facelive_testdata::read("edge/bomb_30000x30000.png");
    assert_eq!(header_pixels(&bomb).unwrap(), 900_000_000);
    let frame = facelive_testdata::read("live/nuaa_ClientRaw_0001_00_00_01_134.jpg");
    assert_eq!(header_pixels(&frame).unwrap(), 640 * 480);
    let text = facelive_testdata::read("edge/text.png");
    assert!(header_pixels(&text).is_err());
}

/// A JPEG cut to `keep` of its length with its end marker put back: what decoders fill
/// with grey unless they notice the scan data ran out.
fn cut_with_end_marker(rel: &str, keep: f64) -> Vec<u8> {
    let mut bytes = facelive_testdata::read(rel);
    bytes.truncate((bytes.len() as f64 * keep) as usize);
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

#[test]
fn a_jpeg_cut_short_with_its_end_marker_put_back_is_refused() {
    let baseline = "live/nuaa_ClientRaw_0001_00_00_01_134.jpg";
    let progressive = "live/deepface_img23.jpg";
    for f in [baseline, progressive] {
        assert!(
            check(f).unwrap().live_score.is_some(),
            "{f} intact is judged"
        );
        for keep in [0.45, 0.8, 0.97] {
            let bytes = cut_with_end_marker(f, keep);
            match common::pipeline().check(&bytes, &CheckOptions::default()) {
                Err(e) => {
                    assert_eq!(e.code(), "corrupt_image", "{f} cut to {keep}");
                    assert!(e.to_string().contains("scan data"), "{f}: {e}");
                }
                Ok(v) => panic!("{f} cut to {keep} was judged: {:?}", v.outcome),
            }
        }
    }
}

/// Segment lengths under 2 (the length counts its own two bytes) in a real JPEG's headers:
/// refused as corrupt, never a panic. The ingest fuzz target found the panic (the scan
/// walker sliced backwards); its inputs were mutated dev images, so the case is rebuilt
/// here from one instead of being committed.
#[test]
fn jpeg_segments_with_impossible_lengths_are_refused() {
    let original = facelive_testdata::read("live/nuaa_ClientRaw_0001_00_00_01_134.jpg");
    // Each segment header before the first scan: APP0, quantisation and Huffman tables, the
    // frame header.
    let mut at = 2;
    let mut headers = Vec::new();
    while original[at] == 0xFF && original[at + 1] != 0xDA {
        headers.push(at);
        at += 2 + u16::from_be_bytes([original[at + 2], original[at + 3]]) as usize;
    }
    assert!(headers.len() >= 4, "{headers:?}");
    for &at in &headers {
        for len in [0u8, 1] {
            let mut bytes = original.clone();
            bytes[at + 2] = 0;
            bytes[at + 3] = len;
            match common::pipeline().check(&bytes, &CheckOptions::default()) {
                Err(e) => assert_eq!(e.code(), "corrupt_image", "segment at {at}, length {len}"),
                Ok(v) => panic!("segment at {at}, length {len}: judged {:?}", v.outcome),
            }
        }
    }
}

/// A lossless WebP header and a GIF screen that declare 8000x8000 (64 Mpx, over the 40 Mpx
/// limit) and carry no pixels: refused for their size from the header alone, as PNG and
/// JPEG bombs are, before any pixel buffer exists.
#[test]
fn webp_and_gif_bombs_are_refused_from_the_header() {
    let side = 8000u32;
    // VP8L: signature 0x2f, then width-1 and height-1 in 14 bits each, alpha, version 0.
    let bits = (side - 1) | ((side - 1) << 14);
    let mut vp8l = vec![0x2f];
    vp8l.extend_from_slice(&bits.to_le_bytes());
    vp8l.extend_from_slice(&[0; 16]);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(4 + 8 + vp8l.len() as u32).to_le_bytes());
    webp.extend_from_slice(b"WEBPVP8L");
    webp.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    webp.extend_from_slice(&vp8l);
    // GIF: logical screen 8000x8000 with a two-colour palette, then one 1x1 frame.
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&(side as u16).to_le_bytes());
    gif.extend_from_slice(&(side as u16).to_le_bytes());
    gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3B]);
    for (name, bytes) in [("WebP", webp), ("GIF", gif)] {
        assert_eq!(
            facelive_pipeline::ingest::header_pixels(&bytes).unwrap(),
            64_000_000,
            "{name}"
        );
        let e = common::pipeline()
            .check(&bytes, &CheckOptions::default())
            .unwrap_err();
        assert_eq!(e.code(), "image_too_large", "{name}: {e}");
        assert!(e.to_string().contains("8000x8000"), "{name}: {e}");
    }
}

/// A progressive JPEG whose first scan (DC coefficients, which any later pass overwrites
/// the same way) is repeated until there are over 500: refused from its structure (each
/// scan would be another pass over the whole image), where libjpeg itself only warns about
/// the repeated progression and decodes on.
#[test]
fn a_jpeg_of_too_many_scans_is_refused_before_decoding() {
    let original = facelive_testdata::read("live/deepface_img23.jpg");
    let first = original.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let header = u16::from_be_bytes([original[first + 2], original[first + 3]]) as usize;
    // The scan's data ends at the first marker that is not a stuffed FF 00 or a restart.
    let end = (first + 2 + header..original.len() - 1)
        .find(|&i| original[i] == 0xFF && !matches!(original[i + 1], 0x00 | 0xD0..=0xD7))
        .unwrap();
    let scan = &original[first..end];
    let build = |repeats: usize| {
        let mut bytes = original[..end].to_vec();
        for _ in 0..repeats {
            bytes.extend_from_slice(scan);
        }
        bytes.extend_from_slice(&original[end..]);
        bytes
    };
    // A few repeats decode (libjpeg warns and goes on): the refusal is the count's.
    let few = common::pipeline().check(&build(3), &CheckOptions::default());
    assert!(few.is_ok(), "{:?}", few.err().map(|e| e.to_string()));
    match common::pipeline().check(&build(500), &CheckOptions::default()) {
        Err(e) => {
            assert_eq!(e.code(), "corrupt_image");
            assert!(e.to_string().contains("more than 500 scans"), "{e}");
        }
        Ok(v) => panic!("judged: {:?}", v.outcome),
    }
}
