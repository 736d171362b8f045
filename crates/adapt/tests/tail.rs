//! Fine-tuning trains a copy of each judge's last block read from its ONNX graph: the copy
//! must compute what the graph computes. On every judged dev image, in three views (as
//! scored, mirrored, moved and recoloured), the tail applied to the trunk the model
//! returned gives the live probability the model gave.

use facelive_adapt::Tail;
use facelive_models::Manifest;
use facelive_pipeline::{CheckOptions, Pipeline, PipelineConfig, View};
use facelive_testdata::{manifest, models_dir, read};

fn tails(m: &Manifest) -> Vec<Tail> {
    m.pack
        .judges
        .iter()
        .map(|j| {
            let spec = m.get(j).unwrap();
            let judge = spec.judge.as_ref().unwrap();
            let trunk = judge.features.as_ref().unwrap().trunk.as_ref().unwrap();
            let ops = facelive_backends::onnx::tail(&models_dir().join(&spec.file), trunk)
                .expect("the tail reads from the graph");
            Tail::from_ops(&ops, judge.output.live_index).expect("a MiniFASNet tail")
        })
        .collect()
}

#[test]
fn the_tail_read_from_the_graph_reproduces_every_view_score() {
    let m = Manifest::builtin();
    let mut cfg = PipelineConfig::new(models_dir());
    cfg.judge_trunks = true;
    let p = Pipeline::load(cfg, &m, facelive_backends::default_backend()).unwrap();
    let tails = tails(&m);
    let views = [
        View::IDENTITY,
        View {
            flip: true,
            ..View::IDENTITY
        },
        View {
            flip: false,
            shift: (0.05, -0.04),
            scale: 1.08,
            gain: [1.1, 0.95, 0.9],
        },
    ];
    let opts = CheckOptions {
        views: views.to_vec(),
        ..Default::default()
    };
    let (mut checked, mut moved) = (0, 0);
    for row in manifest() {
        let Ok(v) = p.check(&read(&row.file), &opts) else {
            continue;
        };
        if v.per_model.is_empty() {
            continue;
        }
        assert_eq!(v.views.len(), views.len());
        for (k, per_judge) in v.views.iter().enumerate() {
            for ((score, tail), base) in per_judge.iter().zip(&tails).zip(&v.per_model) {
                let trunk = score.trunk.as_ref().expect("loaded to return trunks");
                assert_eq!(trunk.len(), 128 * 25, "{}", score.model);
                let again = tail.live_scores(tail.rows(trunk).unwrap().view())[0];
                assert!(
                    (again - score.live_score).abs() < 1e-4,
                    "{} {} view {k}: {again} from the trunk, {} scored",
                    row.file,
                    score.model,
                    score.live_score
                );
                if k == 0 {
                    assert_eq!(
                        score.live_score, base.live_score,
                        "view 0 is the face as scored"
                    );
                } else if (score.live_score - base.live_score).abs() > 1e-3 {
                    moved += 1;
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 3 * 2 * 150, "only {checked} scores checked");
    // A view that changed nothing would train on copies.
    assert!(
        moved * 2 > checked / 3 * 2,
        "only {moved} perturbed scores moved"
    );
}

#[test]
fn a_trunk_that_is_not_a_chain_to_the_output_is_refused() {
    let path = models_dir().join("minifasnet_v2_80x80_s2.7.onnx");
    // The stage-4 input feeds both its residual branch and the Add: not a chain.
    let err = facelive_backends::onnx::tail(&path, "/stage4/model/model.0/Add_output_0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a chain"), "{err}");
}
