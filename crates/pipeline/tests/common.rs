//! Shared by the pipeline's integration tests: one loaded pipeline per test binary.

use std::sync::OnceLock;

use facelive_models::Manifest;
use facelive_pipeline::{
    BBox, CheckOptions, DecisionRule, Pipeline, PipelineConfig, PipelineError, Policy, Verdict,
};

fn load(cfg: PipelineConfig) -> Pipeline {
    Pipeline::load(
        cfg,
        &Manifest::builtin(),
        facelive_backends::default_backend(),
    )
    .expect("the default pack loads from the models directory")
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
    P.get_or_init(|| {
        let mut cfg = PipelineConfig::new(facelive_testdata::models_dir());
        cfg.quality.image_size = Policy::Off;
        cfg.quality.face_size = Policy::Off;
        load(cfg)
    })
}

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
