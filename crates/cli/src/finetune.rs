//! `facelive adapt --fine-tune`: each judge's last block and classifier fine-tuned on
//! augmented views of the training folds' faces, scored out of fold on the same grouped
//! folds as the head, so the two methods are measured against each other on equal terms.

use std::time::Instant;

use anyhow::Context;
use facelive_adapt::{FineTune, Tail};
use facelive_pipeline::{CheckOptions, DecisionRule, Pipeline, View};
use ndarray::{s, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::config::PipelineArgs;
use crate::dataset::Item;

/// `adapt`'s fine-tuning flags (built with the `fine-tune` feature only).
#[derive(clap::Args, Debug, Clone)]
pub struct FineTuneArgs {
    /// Also fine-tune each judge's last block and classifier on augmented views, on the
    /// same folds, and report it against the head (docs/ADAPT.md).
    #[arg(long)]
    pub fine_tune: bool,
    /// Views of each face fine-tuning trains on: as scored, mirrored, and random shifts,
    /// scales and colour changes.
    #[arg(long, default_value_t = 4, requires = "fine_tune")]
    pub views: usize,
    /// Fine-tuning: passes over the training folds' views.
    #[arg(long, default_value_t = FineTune::default().epochs, requires = "fine_tune")]
    pub epochs: usize,
    /// Fine-tuning: Adam's learning rate.
    #[arg(long, default_value_t = FineTune::default().learning_rate, requires = "fine_tune")]
    pub learning_rate: f32,
    /// Fine-tuning: the pull towards the pretrained weights (L2-SP).
    #[arg(long, default_value_t = FineTune::default().pull, requires = "fine_tune")]
    pub pull: f32,
}

/// Fine-tuned judges' out-of-fold scores of the judged rows, and what it cost.
pub(crate) struct FineTuned {
    pub oof: Vec<f32>,
    pub views: usize,
    pub extract_s: f64,
    pub train_s: f64,
    pub how: FineTune,
}

/// `views` views of a face: as scored, mirrored, then random ones (mirrored or not, the
/// box moved up to 6% and scaled by 0.9-1.1, brightness 0.85-1.15 and each channel
/// 0.95-1.05), the same for a seed.
pub(crate) fn views(n: usize, seed: u64) -> Vec<View> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![
        View::IDENTITY,
        View {
            flip: true,
            ..View::IDENTITY
        },
    ];
    while v.len() < n {
        let bright = rng.random_range(0.85..1.15f32);
        v.push(View {
            flip: rng.random_bool(0.5),
            shift: (rng.random_range(-0.06..0.06), rng.random_range(-0.06..0.06)),
            scale: rng.random_range(0.9..1.1),
            gain: [0; 3].map(|_| bright * rng.random_range(0.95..1.05f32)),
        });
    }
    v.truncate(n.max(1));
    v
}

/// The judged rows' trunks, `[row][view][judge]`, from the base pack loaded to return them.
fn trunks(
    pipeline: &Pipeline,
    items: &[Item],
    rows: &[usize],
    views: &[View],
) -> anyhow::Result<Vec<Vec<Vec<Vec<f32>>>>> {
    let opts = CheckOptions {
        rule: DecisionRule::Threshold(0.0),
        views: views.to_vec(),
        ..Default::default()
    };
    rows.par_iter()
        .map(|&i| {
            let path = &items[i].path;
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let v = pipeline.check(&bytes, &opts)?;
            v.views
                .into_iter()
                .map(|per_judge| {
                    per_judge
                        .into_iter()
                        .map(|m| m.trunk.context("a judge returned no trunk"))
                        .collect()
                })
                .collect::<anyhow::Result<Vec<Vec<_>>>>()
                .and_then(|t| {
                    anyhow::ensure!(t.len() == views.len(), "{} was not judged", path.display());
                    Ok(t)
                })
        })
        .collect()
}

/// Each judge's tail, read from its ONNX file from the manifest's trunk on.
fn tails(args: &PipelineArgs) -> anyhow::Result<Vec<Tail>> {
    let m = args.manifest()?;
    let dir = args.pipeline_config()?.models_dir;
    m.pack
        .judges
        .iter()
        .map(|j| {
            let spec = m.get(j)?;
            let judge = spec.judge.as_ref().context("not a judge")?;
            let trunk = judge
                .features
                .as_ref()
                .and_then(|f| f.trunk.as_deref())
                .with_context(|| {
                    format!("judge {j} declares no trunk in its features: it cannot be fine-tuned")
                })?;
            let ops = facelive_backends::onnx::tail(&dir.join(&spec.file), trunk)?;
            Tail::from_ops(&ops, judge.output.live_index)
                .with_context(|| format!("judge {j} cannot be fine-tuned"))
        })
        .collect()
}

/// The samples of `rows` (indices into the trunks) for judge `j`, views as given, stacked
/// as the tail reads them, with their labels.
fn stack(
    tail: &Tail,
    trunks: &[Vec<Vec<Vec<f32>>>],
    live: &[bool],
    rows: &[usize],
    views: std::ops::Range<usize>,
    j: usize,
) -> anyhow::Result<(Array2<f32>, Vec<bool>)> {
    let p = tail.positions();
    let n = rows.len() * views.len();
    let mut x = Array2::zeros((n * p, tail.inputs()));
    let mut y = Vec::with_capacity(n);
    let mut k = 0;
    for &r in rows {
        for v in views.clone() {
            x.slice_mut(s![k * p..(k + 1) * p, ..])
                .assign(&tail.rows(&trunks[r][v][j])?);
            y.push(live[r]);
            k += 1;
        }
    }
    Ok((x, y))
}

/// Out-of-fold scores of fine-tuned judges: for each fold, every judge's tail trained on
/// all views of the other folds' rows, then the fold's rows scored as served (the mean of
/// the judges' live probabilities on the face as scored).
pub(crate) fn out_of_fold(
    args: &PipelineArgs,
    items: &[Item],
    rows: &[usize],
    row_fold: &[usize],
    live: &[bool],
    n_views: usize,
    how: FineTune,
) -> anyhow::Result<FineTuned> {
    let k = row_fold.iter().max().map_or(0, |f| f + 1);
    let t0 = Instant::now();
    let mut cfg = args.pipeline_config()?;
    cfg.judge_trunks = true;
    let pipeline = Pipeline::load(cfg, &args.manifest()?, args.engines()?)?;
    let views = views(n_views, how.seed);
    let trunks = trunks(&pipeline, items, rows, &views)?;
    let extract_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let tails = tails(args)?;
    let jobs: Vec<(usize, usize)> = (0..k)
        .flat_map(|f| (0..tails.len()).map(move |j| (f, j)))
        .collect();
    let scored: Vec<(usize, usize, Vec<f32>)> = jobs
        .par_iter()
        .map(|&(f, j)| {
            let train: Vec<usize> = (0..rows.len()).filter(|&r| row_fold[r] != f).collect();
            let test: Vec<usize> = (0..rows.len()).filter(|&r| row_fold[r] == f).collect();
            let (x, y) = stack(&tails[j], &trunks, live, &train, 0..views.len(), j)?;
            let tuned = tails[j].fine_tune(&x, &y, &how);
            let (xt, _) = stack(&tails[j], &trunks, live, &test, 0..1, j)?;
            Ok((f, j, tuned.live_scores(xt.view())))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut oof = vec![0.0f32; rows.len()];
    for (f, _, scores) in &scored {
        let test = (0..rows.len()).filter(|&r| row_fold[r] == *f);
        for (r, s) in test.zip(scores) {
            oof[r] += s / tails.len() as f32;
        }
    }
    Ok(FineTuned {
        oof,
        views: views.len(),
        extract_s,
        train_s: t1.elapsed().as_secs_f64(),
        how,
    })
}
