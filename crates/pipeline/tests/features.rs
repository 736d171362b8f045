//! A judge's features are those its own score was computed from: on every judged dev image,
//! each judge's score recomputed from its features and its final classifier's weight (read
//! from the ONNX file) equals the score it reported, on both engines.

mod common;

use common::{ort_pipeline, pipeline};
use facelive_models::Manifest;
use facelive_pipeline::judge::live_probability;
use facelive_pipeline::{CheckOptions, Pipeline};
use facelive_testdata::{manifest, models_dir, read};

/// The judge's output from its features: features x classifier weight `[features, classes]`.
fn recomputed(features: &[f32], weight: &facelive_backends::Tensor) -> Vec<f32> {
    let (n, classes) = (weight.shape[0], weight.shape[1]);
    assert_eq!(features.len(), n, "features against the classifier's rows");
    (0..classes)
        .map(|c| {
            (0..n)
                .map(|i| features[i] * weight.data[i * classes + c])
                .sum()
        })
        .collect()
}

fn scores_follow_from_features(p: &Pipeline) {
    let m = Manifest::builtin();
    let mut checked = 0;
    for row in manifest() {
        let Ok(v) = p.check(&read(&row.file), &CheckOptions::default()) else {
            continue;
        };
        for score in &v.per_model {
            let spec = m.get(&score.model).unwrap();
            let judge = spec.judge.as_ref().unwrap();
            let declared = judge
                .features
                .as_ref()
                .expect("the pack's judges declare features");
            let weight = facelive_backends::onnx::initializer(
                &models_dir().join(&spec.file),
                &declared.classifier,
            )
            .unwrap();
            let f = score.features.as_ref().expect("a judged face has features");
            assert_eq!(f.len(), 128, "{}", score.model);
            let again = live_probability(&recomputed(f, &weight), &judge.output);
            assert!(
                (again - score.live_score).abs() < 1e-5,
                "{} {}: {} from features, {} scored",
                row.file,
                score.model,
                again,
                score.live_score
            );
            checked += 1;
        }
    }
    assert!(checked >= 2 * 150, "only {checked} judge scores checked");
}

#[test]
fn tract_features_reproduce_every_judge_score() {
    scores_follow_from_features(pipeline());
}

#[test]
fn onnx_runtime_features_reproduce_every_judge_score() {
    scores_follow_from_features(ort_pipeline());
}

#[test]
fn a_feature_node_the_graph_lacks_is_refused_at_load() {
    let path = models_dir().join("minifasnet_v2_80x80_s2.7.onnx");
    let bytes = std::fs::read(path).unwrap();
    let err =
        facelive_backends::onnx::with_outputs(&bytes, &["/no/such/tensor".into()]).unwrap_err();
    assert!(err.contains("/no/such/tensor"), "{err}");
}
