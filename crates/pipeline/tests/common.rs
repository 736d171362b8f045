//! Shared by the pipeline's integration tests: one loaded pipeline per test binary.

use std::sync::{Arc, OnceLock};

use facelive_backends::{Backend, OrtBackend, OrtOptions};
use facelive_models::Manifest;
use facelive_pipeline::{
    BBox, CheckOptions, DecisionRule, DetectMode, Pipeline, PipelineConfig, PipelineError, Policy,
    Verdict,
};

fn load(cfg: PipelineConfig) -> Pipeline {
    load_on(cfg, facelive_backends::default_backend())
}

fn load_on(cfg: PipelineConfig, engine: Arc<dyn Backend>) -> Pipeline {
    Pipeline::load(cfg, &Manifest::builtin(), engine)
        .expect("the default pack loads from the models directory")
}

/// The full-pass detector (`DetectMode::Full`, the reference's way), on tract.
#[allow(dead_code)]
pub fn full_detect_pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        let mut cfg = PipelineConfig::new(facelive_testdata::models_dir());
        cfg.detect_mode = DetectMode::Full;
        load(cfg)
    })
}

/// ONNX Runtime from the library `facelive_testdata::ort_library` finds (once per binary).
#[allow(dead_code)]
pub fn ort_engine() -> Arc<dyn Backend> {
    static E: OnceLock<Arc<dyn Backend>> = OnceLock::new();
    E.get_or_init(|| {
        let opts = OrtOptions {
            library: Some(facelive_testdata::ort_library()),
            ..Default::default()
        };
        Arc::new(OrtBackend::new(opts).expect("ONNX Runtime loads"))
    })
    .clone()
}

/// The pipeline as shipped, on ONNX Runtime.
#[allow(dead_code)]
pub fn ort_pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        load_on(
            PipelineConfig::new(facelive_testdata::models_dir()),
            ort_engine(),
        )
    })
}

/// [`judge_only_pipeline`] on ONNX Runtime.
#[allow(dead_code)]
pub fn ort_judge_only_pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| load_on(judge_only_config(), ort_engine()))
}

fn judge_only_config() -> PipelineConfig {
    let mut cfg = PipelineConfig::new(facelive_testdata::models_dir());
    cfg.quality.image_size = Policy::Off;
    cfg.quality.face_size = Policy::Off;
    cfg
}

/// The pipeline as shipped: default configuration.
pub fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| load(PipelineConfig::new(facelive_testdata::models_dir())))
}

/// Quality checks off, to test the judge step alone on whatever box it is given.
#[allow(dead_code)]
pub fn judge_only_pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| load(judge_only_config()))
}

/// [`judge_only_pipeline`] with a working size of 320 px, so that every dev photo is
/// reduced before detection.
#[allow(dead_code)]
pub fn reduced_judge_only_pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        let mut cfg = judge_only_config();
        cfg.ingest.max_side = 320;
        load(cfg)
    })
}

#[allow(dead_code)]
pub fn check(rel: &str) -> Result<Verdict, PipelineError> {
    pipeline().check(&facelive_testdata::read(rel), &CheckOptions::default())
}

#[allow(dead_code)]
pub fn check_with(rel: &str, opts: &CheckOptions) -> Result<Verdict, PipelineError> {
    pipeline().check(&facelive_testdata::read(rel), opts)
}

#[allow(dead_code)]
pub fn at_threshold(t: f32) -> CheckOptions {
    CheckOptions {
        rule: DecisionRule::Threshold(t),
        ..Default::default()
    }
}

#[allow(dead_code)] // each test binary uses its own part of this module
pub fn bbox(b: [f32; 4]) -> BBox {
    BBox {
        x: b[0],
        y: b[1],
        width: b[2],
        height: b[3],
    }
}
