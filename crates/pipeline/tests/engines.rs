//! The two engines give the same verdicts, and no request builds a plan.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{ort_pipeline, pipeline};
use facelive_backends::{Backend, BackendError, Model};
use facelive_models::Manifest;
use facelive_pipeline::{CheckOptions, DetectMode, Pipeline, PipelineConfig};
use facelive_testdata::{manifest, read};

/// Every dev image (live, spoof and edge) through both engines: the same outcome and box,
/// and live scores within 1e-4.
#[test]
fn tract_and_onnx_runtime_agree_on_every_dev_image() {
    let opts = CheckOptions::default();
    let (mut compared, mut worst) = (0, (0f32, String::new()));
    for row in manifest() {
        let bytes = read(&row.file);
        let (t, o) = (
            pipeline().check(&bytes, &opts),
            ort_pipeline().check(&bytes, &opts),
        );
        let (t, o) = match (t, o) {
            (Ok(t), Ok(o)) => (t, o),
            (Err(a), Err(b)) => {
                assert_eq!(a.code(), b.code(), "{}: different refusals", row.file);
                continue;
            }
            (t, o) => panic!("{}: tract {:?} vs ort {:?}", row.file, t.err(), o.err()),
        };
        assert_eq!(t.outcome, o.outcome, "{}", row.file);
        assert_eq!(t.retry_reason, o.retry_reason, "{}", row.file);
        if let (Some(a), Some(b)) = (&t.face, &o.face) {
            assert!(
                a.bbox.iou(&b.bbox) > 0.999,
                "{}: boxes {:?} vs {:?}",
                row.file,
                a.bbox,
                b.bbox
            );
        }
        if let (Some(a), Some(b)) = (t.live_score, o.live_score) {
            let d = (a - b).abs();
            if d > worst.0 {
                worst = (d, row.file.clone());
            }
            compared += 1;
        }
        assert_eq!(
            t.live_score.is_some(),
            o.live_score.is_some(),
            "{}",
            row.file
        );
    }
    eprintln!("{compared} scores compared; largest difference {worst:?}");
    assert!(compared > 180, "only {compared} images were judged by both");
    assert!(
        worst.0 <= 1e-4,
        "scores differ by {} on {}",
        worst.0,
        worst.1
    );
}

/// Counts the plans an engine builds.
struct Counting {
    inner: Arc<dyn Backend>,
    loads: AtomicUsize,
}

impl Backend for Counting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn load_with_outputs(
        &self,
        path: &Path,
        input_shape: &[usize],
        extra_outputs: &[String],
    ) -> Result<Arc<dyn Model>, BackendError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner
            .load_with_outputs(path, input_shape, extra_outputs)
    }
}

/// A PNG of `w` x `h` with a face pasted at its centre, scaled to fit.
fn face_png(face: &facelive_pipeline::image::RgbImage, w: u32, h: u32) -> Vec<u8> {
    let mut px = vec![96u8; (w * h * 3) as usize];
    let s = (w as f32 / face.width as f32).min(h as f32 / face.height as f32);
    let (fw, fh) = (
        (face.width as f32 * s) as u32,
        (face.height as f32 * s) as u32,
    );
    let (ox, oy) = ((w - fw) / 2, (h - fh) / 2);
    for y in 0..fh {
        for x in 0..fw {
            let (sx, sy) = ((x as f32 / s) as u32, (y as f32 / s) as u32);
            let src =
                ((sy.min(face.height - 1) * face.width + sx.min(face.width - 1)) * 3) as usize;
            let dst = (((oy + y) * w + ox + x) * 3) as usize;
            px[dst..dst + 3].copy_from_slice(&face.data[src..src + 3]);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header().unwrap().write_image_data(&px).unwrap();
    out
}

/// 200 images of different sizes, from 40x40 to 2400x1500 and tall and wide: every plan is
/// built when the pipeline loads, none after, whatever the shape, in either detect mode.
#[test]
fn no_request_builds_a_plan() {
    let runs = [
        (facelive_backends::default_backend(), DetectMode::TwoPass),
        (common::ort_engine(), DetectMode::Full),
    ];
    for (engine, mode) in runs {
        let counting = Arc::new(Counting {
            inner: engine.clone(),
            loads: AtomicUsize::new(0),
        });
        let mut cfg = PipelineConfig::new(facelive_testdata::models_dir());
        cfg.detect_mode = mode;
        let p = Pipeline::load(
            cfg,
            &Manifest::builtin(),
            counting.clone() as Arc<dyn Backend>,
        )
        .unwrap();
        let at_load = counting.loads.load(Ordering::SeqCst);
        assert!(at_load >= 3, "{}: {at_load} plans at load", engine.name());
        let face = facelive_pipeline::ingest::ingest(
            &read("live/silentface_image_T1.jpg"),
            &Default::default(),
        )
        .unwrap()
        .image;
        let mut judged = 0;
        for i in 0..200u32 {
            let (w, h) = (40 + (i * 53) % 2360, 40 + (i * 97) % 1460);
            let v = p
                .check(&face_png(&face, w, h), &CheckOptions::default())
                .unwrap();
            judged += v.live_score.is_some() as usize;
        }
        assert_eq!(
            counting.loads.load(Ordering::SeqCst),
            at_load,
            "{}: a request built a plan",
            engine.name()
        );
        assert!(
            judged > 100,
            "{}: only {judged} of 200 judged",
            engine.name()
        );
    }
}
