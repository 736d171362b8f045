//! `facelive adapt`: a head over the judges' features, trained on the customer's labelled
//! captures, with its evidence built in: grouped k-fold cross-validation of the base pack
//! against the adapted one on out-of-fold scores, and the pack written only when it wins.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
#[cfg(feature = "fine-tune")]
use facelive_adapt::FineTune;
use facelive_eval::{AtThreshold, Evaluation, Failure, Label, Sample};
use facelive_models::{
    AdaptedPack, Backbone, CrossValidation, PackInfo, PackThresholds, Training, PACK_FILE,
};
use facelive_pipeline::{
    CheckOptions, DecisionRule, OperatingPoint, Outcome, Pipeline, Thresholds,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::PipelineArgs;
use crate::dataset::{self, Item, SetLabel};
use crate::eval::{pct, Report, Scored};

#[derive(Debug, Args)]
pub struct AdaptArgs {
    /// A manifest CSV, as for `eval`, with a column naming each image's group.
    pub set: PathBuf,
    /// The column naming each image's group (subject, device, source): a group is never in
    /// the training and the test side of a split at once.
    #[arg(long, value_name = "COLUMN")]
    pub group_by: String,
    /// Folder for the adapted pack (pack.toml), the feature cache and the report.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Outer cross-validation folds (leave one group out when there are fewer groups).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Orders groups of equal size when they are dealt into folds.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the pack even when it does not beat the base pack out of fold (it is marked
    /// `forced` in pack.toml).
    #[arg(long)]
    pub force: bool,
    /// The adapted pack's name (default: `adapted-` and the out folder's name).
    #[arg(long)]
    pub name: Option<String>,
    #[cfg(feature = "fine-tune")]
    #[command(flatten)]
    pub tuning: crate::finetune::FineTuneArgs,
    /// Images judged at once while extracting features (default: all cores).
    #[arg(long, env = "FACELIVE_THREADS")]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub paths: dataset::SetPaths,
}

/// Target pooled APCERs of weak, balanced and strict, as `calibrate`'s defaults.
const TARGETS: [(OperatingPoint, f64); 3] = [
    (OperatingPoint::Weak, 0.05),
    (OperatingPoint::Balanced, 0.025),
    (OperatingPoint::Strict, 0.01),
];
/// Calibrated thresholds are multiples of this.
const STEP: f32 = 0.01;
/// The adapted pack must beat the base pack on the images they decide differently with a
/// one-sided McNemar p below this: on a few hundred images a lower ACER alone can be luck
/// (labels dealt at random give one about half the time).
const SIGNIFICANCE: f64 = 0.05;
const FEATURE_CACHE: &str = "features.json";

/// One image's pass through the base pack: its score and features, or why none.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Extracted {
    sha256: String,
    /// The base pack's live score; absent when the image was not judged.
    live_score: Option<f32>,
    /// The judges' features, concatenated in the pack's judge order.
    features: Option<Vec<f32>>,
    /// Why the image was not judged (a retry reason, or `unreadable`).
    reason: Option<String>,
}

/// `OUT/features.json`: the base pack's outputs for a set, so retraining never re-runs the
/// models. Valid only for the same pack (name, version, judges).
#[derive(Debug, Serialize, Deserialize)]
struct FeatureCache {
    pack: String,
    judges: Vec<String>,
    images: BTreeMap<String, Extracted>,
}

pub fn run(args: &PipelineArgs, a: AdaptArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.adapted_pack()?.is_none(),
        "adapt starts from the base pack: run it without --pack (FACELIVE_PACK)"
    );
    let items: Vec<Item> = dataset::judged(&a.set, a.paths)?;
    let groups: Vec<String> = items
        .iter()
        .map(|i| i.column(&a.group_by).map(str::to_string))
        .collect::<anyhow::Result<_>>()?;
    let live: Vec<bool> = items.iter().map(|i| i.label == SetLabel::Live).collect();
    facelive_adapt::check_size(&live, &refs(&groups))
        .with_context(|| format!("{} cannot be adapted on", a.set.display()))?;
    let pipeline = crate::load_pipeline(args)?;
    let judges = judge_names(args)?;
    let t0 = Instant::now();
    let (extracted, cached) = extract(&pipeline, &judges, &items, &a)?;
    let extract_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let cv = CrossValidated::run(&items, &groups, &extracted, &judges, &a)?;
    let final_head =
        facelive_adapt::fit_head(&cv.x, &cv.live, &refs(&cv.groups), &judges, a.folds, a.seed)?;
    let train_s = t1.elapsed().as_secs_f64();
    write_training_scores(&a.out, &items, &cv, &final_head.spec)?;
    let base_t = pipeline.config().thresholds;
    let verdict = Comparison::new(&cv.rows, &cv.oof, &items, &extracted, base_t)?;
    #[cfg(feature = "fine-tune")]
    let fine_tuned = match a.tuning.fine_tune {
        true => Some(FineTuneResult::run(
            args, &a, &items, &cv, &extracted, &verdict,
        )?),
        false => None,
    };
    let times = Times {
        extract_s,
        cached,
        train_s,
    };
    let summary = verdict.summary(&a, &items, &cv, &extracted, &times)?;
    #[cfg(feature = "fine-tune")]
    let summary = match &fine_tuned {
        Some(ft) => summary + &ft.summary()?,
        None => summary,
    };
    verdict.reports(&a, &items, pipeline.model_pack())?;
    std::fs::write(a.out.join("report.md"), &summary)?;
    print!("{summary}");
    let wins = verdict.wins();
    let pack_path = a.out.join(PACK_FILE);
    if !wins && !a.force {
        // A pack from an earlier run must not outlive the evidence against it.
        let _ = std::fs::remove_file(&pack_path);
        eprintln!(
            "facelive: not written (--force writes it anyway). {}",
            verdict.conclusion()
        );
        return Ok(ExitCode::from(1));
    }
    let pack = verdict.pack(&a, &pipeline, args, final_head, &cv, &items, !wins)?;
    pack.write(&a.out)?;
    println!("adapted pack written to {}", pack_path.display());
    Ok(ExitCode::SUCCESS)
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The base pack's judges, each of which must declare its features.
fn judge_names(args: &PipelineArgs) -> anyhow::Result<Vec<String>> {
    let m = args.manifest()?;
    for j in &m.pack.judges {
        let spec = m.get(j)?;
        anyhow::ensure!(
            spec.judge.as_ref().is_some_and(|s| s.features.is_some()),
            "judge {j} declares no features in its manifest entry ([model.judge] features = \
             {{ node, classifier }}): it cannot be adapted"
        );
    }
    Ok(m.pack.judges.clone())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex_string(&Sha256::digest(bytes))
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// How long the two stages took, and how many images' features came from the cache.
struct Times {
    extract_s: f64,
    cached: usize,
    train_s: f64,
}

/// Every image through the base pack once, or from the cache where the same bytes were
/// seen with the same pack; also how many came from the cache.
fn extract(
    pipeline: &Pipeline,
    judges: &[String],
    items: &[Item],
    a: &AdaptArgs,
) -> anyhow::Result<(Vec<Extracted>, usize)> {
    let pack = format!(
        "{} {}",
        pipeline.model_pack().name,
        pipeline.model_pack().version
    );
    let path = a.out.join(FEATURE_CACHE);
    let cached: BTreeMap<String, Extracted> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<FeatureCache>(&b).ok())
        .filter(|c| c.pack == pack && c.judges == judges)
        .map(|c| c.images)
        .unwrap_or_default();
    let opts = CheckOptions {
        rule: DecisionRule::Threshold(0.0),
        ..Default::default()
    };
    let bar = dataset::progress(items.len());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()?;
    let out: Vec<Extracted> = pool.install(|| {
        items
            .par_iter()
            .map(|item| {
                let e = extract_one(pipeline, &opts, item, &cached);
                bar.inc(1);
                e
            })
            .collect::<anyhow::Result<_>>()
    })?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let cache = FeatureCache {
        pack,
        judges: judges.to_vec(),
        images: items
            .iter()
            .map(|i| i.name.clone())
            .zip(out.iter().cloned())
            .collect(),
    };
    std::fs::write(&path, serde_json::to_vec(&cache)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let hits = items
        .iter()
        .zip(&out)
        .filter(|(i, e)| cached.get(&i.name).is_some_and(|c| c.sha256 == e.sha256))
        .count();
    Ok((out, hits))
}

fn extract_one(
    pipeline: &Pipeline,
    opts: &CheckOptions,
    item: &Item,
    cached: &BTreeMap<String, Extracted>,
) -> anyhow::Result<Extracted> {
    let bytes =
        std::fs::read(&item.path).with_context(|| format!("reading {}", item.path.display()))?;
    let sha256 = sha256_hex(&bytes);
    if let Some(c) = cached.get(&item.name).filter(|c| c.sha256 == sha256) {
        return Ok(c.clone());
    }
    let (live_score, features, reason) = match pipeline.check(&bytes, opts) {
        Ok(v) if v.outcome != Outcome::Retry => {
            let f: Option<Vec<f32>> = v
                .per_model
                .iter()
                .map(|m| m.features.clone())
                .collect::<Option<Vec<_>>>()
                .map(|parts| parts.concat());
            (v.live_score, f, None)
        }
        Ok(v) => {
            let reason = v.retry_reason.map(|r| r.to_string());
            (None, None, Some(reason.unwrap_or_default()))
        }
        Err(e) => (None, None, Some(format!("unreadable: {}", e.code()))),
    };
    Ok(Extracted {
        sha256,
        live_score,
        features,
        reason,
    })
}

/// The judged images and their out-of-fold scores from heads trained without their group.
struct CrossValidated {
    /// The item of each judged row.
    rows: Vec<usize>,
    x: Vec<Vec<f32>>,
    live: Vec<bool>,
    groups: Vec<String>,
    /// The fold of every item.
    folds: Vec<usize>,
    k: usize,
    /// The adapted pack's out-of-fold score of each judged row.
    oof: Vec<f32>,
    /// The penalty each fold's inner cross-validation chose.
    l2: Vec<f64>,
}

impl CrossValidated {
    fn run(
        items: &[Item],
        groups: &[String],
        extracted: &[Extracted],
        judges: &[String],
        a: &AdaptArgs,
    ) -> anyhow::Result<Self> {
        let all = facelive_adapt::grouped_folds(&refs(groups), a.folds, a.seed)?;
        let rows: Vec<usize> = (0..items.len())
            .filter(|&i| extracted[i].features.is_some())
            .collect();
        let x: Vec<Vec<f32>> = rows
            .iter()
            .map(|&i| {
                extracted[i]
                    .features
                    .clone()
                    .expect("judged rows have features")
            })
            .collect();
        let live: Vec<bool> = rows
            .iter()
            .map(|&i| items[i].label == SetLabel::Live)
            .collect();
        let row_groups: Vec<String> = rows.iter().map(|&i| groups[i].clone()).collect();
        facelive_adapt::check_size(&live, &refs(&row_groups)).with_context(|| {
            format!(
                "only {} of {} images were judged by the base pack (the others failed its quality checks)",
                rows.len(),
                items.len()
            )
        })?;
        let row_folds = facelive_adapt::Folds {
            of: rows.iter().map(|&i| all.of[i]).collect(),
            k: all.k,
        };
        let (oof, l2) = facelive_adapt::out_of_fold(
            &x,
            &live,
            &refs(&row_groups),
            &row_folds,
            judges,
            a.folds,
            a.seed,
        )?;
        Ok(Self {
            rows,
            x,
            live,
            groups: row_groups,
            folds: all.of,
            k: all.k,
            oof,
            l2,
        })
    }
}

fn failure_of(reason: &str) -> Failure {
    match reason {
        "no_face" => Failure::NoFace,
        r if r.starts_with("unreadable") => Failure::Unreadable,
        _ => Failure::Quality,
    }
}

/// Each item's result given the scores of the judged rows; the others keep their retry.
fn scored(
    items: &[Item],
    extracted: &[Extracted],
    score: impl Fn(usize) -> Option<f32>,
) -> Vec<Scored> {
    items
        .iter()
        .zip(extracted)
        .enumerate()
        .map(|(i, (item, e))| {
            let reason = e.reason.clone().unwrap_or_default();
            let s = score(i).ok_or_else(|| failure_of(&reason));
            (
                Sample {
                    label: item.truth(),
                    score: s,
                },
                reason,
            )
        })
        .collect()
}

/// The base pack against the adapted one on the same images. Both are judged at
/// thresholds calibrated by one rule on the set's scores (the base pack's as `calibrate`
/// would set them, the adapted pack's on its out-of-fold scores): at the same target APCER,
/// so ACER compares how well each separates, not how near each threshold sits to its EER.
/// The base pack at its shipped thresholds is reported beside them.
struct Comparison {
    base_samples: Vec<Scored>,
    adapted_samples: Vec<Scored>,
    /// The base pack's thresholds as configured (shipped, or the config file's).
    shipped_t: Thresholds,
    base_t: Thresholds,
    adapted_t: Thresholds,
    base: AtThreshold,
    adapted: AtThreshold,
    /// At balanced: images only the base pack decides wrongly, and only the adapted one.
    only_base_wrong: usize,
    only_adapted_wrong: usize,
    /// One-sided exact McNemar p of the adapted pack being better on those.
    p: f64,
}

/// Whether a result is a wrong decision at threshold `t` (an image not judged is a
/// rejection: wrong for a live one, right for an attack).
fn wrong(s: &Sample, t: f32) -> bool {
    let accepted = matches!(s.score, Ok(v) if v >= t);
    accepted != (s.label == Label::BonaFide)
}

fn samples(s: &[Scored]) -> Vec<Sample> {
    s.iter().map(|(s, _)| s.clone()).collect()
}

impl Comparison {
    /// The base pack against out-of-fold scores `oof` of the judged `rows`.
    fn new(
        rows: &[usize],
        oof: &[f32],
        items: &[Item],
        extracted: &[Extracted],
        shipped_t: Thresholds,
    ) -> anyhow::Result<Self> {
        let base_samples = scored(items, extracted, |i| {
            extracted[i].features.as_ref().and(extracted[i].live_score)
        });
        let oof: BTreeMap<usize, f32> = rows.iter().copied().zip(oof.iter().copied()).collect();
        let adapted_samples = scored(items, extracted, |i| oof.get(&i).copied());
        let adapted_t = calibrated(&samples(&adapted_samples));
        let base_t = calibrated(&samples(&base_samples));
        let at = |s: &[Scored], t: &Thresholds| {
            Evaluation::new(&samples(s)).at(t.get(OperatingPoint::Balanced))
        };
        let (mut only_base_wrong, mut only_adapted_wrong) = (0, 0);
        for ((b, _), (a, _)) in base_samples.iter().zip(&adapted_samples) {
            match (wrong(b, base_t.balanced), wrong(a, adapted_t.balanced)) {
                (true, false) => only_base_wrong += 1,
                (false, true) => only_adapted_wrong += 1,
                _ => {}
            }
        }
        Ok(Self {
            base: at(&base_samples, &base_t),
            adapted: at(&adapted_samples, &adapted_t),
            only_base_wrong,
            only_adapted_wrong,
            p: facelive_eval::mcnemar_one_sided(only_base_wrong, only_adapted_wrong),
            base_samples,
            adapted_samples,
            shipped_t,
            base_t,
            adapted_t,
        })
    }
}

/// Thresholds meeting the target pooled APCERs on these (out-of-fold) scores.
fn calibrated(s: &[Sample]) -> Thresholds {
    let e = Evaluation::new(s);
    let t: Vec<f32> = TARGETS
        .iter()
        .map(|(_, target)| {
            e.threshold_for(*target, STEP, |r| r.apcer_pooled.value)
                .threshold
        })
        .collect();
    // A target no threshold meets gives a threshold just above 1: keep the pack usable.
    let t: Vec<f32> = t.into_iter().map(|v| v.min(1.0)).collect();
    Thresholds {
        weak: t[0],
        balanced: t[1],
        strict: t[2],
    }
}

impl Comparison {
    /// The pack is worth writing: a lower ACER, and better beyond chance.
    fn wins(&self) -> bool {
        self.adapted.acer < self.base.acer && self.p < SIGNIFICANCE
    }

    /// The outcome in one plain sentence with both figures.
    fn conclusion(&self) -> String {
        format!(
            "At balanced, the adapted pack's out-of-fold ACER is {:.1}% against the base pack's \
             {:.1}% at the same target APCER; of the {} images they decide differently, the \
             adapted pack is right on {} and the base pack on {} (one-sided exact McNemar \
             p = {:.3}; written when the ACER is lower and p < {SIGNIFICANCE}): {}.",
            self.adapted.acer * 100.0,
            self.base.acer * 100.0,
            self.only_base_wrong + self.only_adapted_wrong,
            self.only_base_wrong,
            self.only_adapted_wrong,
            self.p,
            if self.wins() {
                "the adapted pack is better"
            } else {
                "the adapted pack is not shown to be better"
            }
        )
    }

    /// OUT/report.md: the two packs side by side, what adapting cannot change, per group.
    fn summary(
        &self,
        a: &AdaptArgs,
        items: &[Item],
        cv: &CrossValidated,
        extracted: &[Extracted],
        times: &Times,
    ) -> anyhow::Result<String> {
        let mut md = String::new();
        let n_live = items.iter().filter(|i| i.label == SetLabel::Live).count();
        writeln!(md, "# facelive adapt: `{}`\n", a.set.display())?;
        writeln!(md, "{} images ({} live, {} spoof) in {} groups by `{}`; grouped {}-fold cross-validation (seed {}): every score below is out of fold, from a head trained without the image's group (the penalty chosen by grouped cross-validation inside the training folds: {}). Rates with 95% Wilson intervals. Both packs are compared at thresholds calibrated by one rule (target pooled APCER 5%, 2.5%, 1% for weak, balanced, strict, as `facelive calibrate` sets them): the base pack's on its scores, the adapted pack's on its out-of-fold scores; the base pack at its shipped thresholds is shown too.\n",
            items.len(), n_live, items.len() - n_live,
            { let mut g = cv.groups.clone(); g.sort(); g.dedup(); g.len() },
            a.group_by, cv.k, a.seed,
            cv.l2.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(", "))?;
        writeln!(md, "| pack | point | threshold | BPCER | of which rejected by the judges | of which not judged (retry) | APCER (pooled) | ACER |\n|---|---|---|---|---|---|---|---|")?;
        for (name, s, t) in [
            (
                "base, shipped thresholds",
                &self.base_samples,
                &self.shipped_t,
            ),
            ("base, calibrated", &self.base_samples, &self.base_t),
            (
                "adapted, calibrated",
                &self.adapted_samples,
                &self.adapted_t,
            ),
        ] {
            let all = samples(s);
            let e = Evaluation::new(&all);
            for p in OperatingPoint::ALL {
                let r = e.at(t.get(p));
                let live: Vec<&Sample> = s
                    .iter()
                    .map(|(s, _)| s)
                    .filter(|s| s.label == Label::BonaFide)
                    .collect();
                let retried = live.iter().filter(|s| s.score.is_err()).count();
                writeln!(
                    md,
                    "| {name} | {} | {:.2} | {} | {} | {} | {} | {:.1}% |",
                    p.as_str(),
                    r.threshold,
                    pct(&r.bpcer),
                    r.bpcer.count - retried,
                    retried,
                    pct(&r.apcer_pooled),
                    r.acer * 100.0
                )?;
            }
        }
        self.retries(&mut md, items, extracted)?;
        self.per_group(&mut md, a, items)?;
        writeln!(
            md,
            "\nFolds: {}.\n",
            (0..cv.k)
                .map(|f| fold_groups(items, &cv.folds, f, &a.group_by))
                .collect::<Vec<_>>()
                .join("; ")
        )?;
        writeln!(md, "Time on this machine: features of {} images in {:.1} s ({} of them from the cache, {FEATURE_CACHE}), cross-validation and the final head ({} features) in {:.1} s.\n",
            items.len(), times.extract_s, times.cached, cv.x.first().map_or(0, Vec::len), times.train_s)?;
        writeln!(md, "Full reports: [adapted, out of fold](cv/adapted/report.md) (DET overlay with the base pack: cv/adapted/det.svg), [base pack](cv/base/report.md).\n")?;
        writeln!(md, "{}", self.conclusion())?;
        Ok(md)
    }

    /// The images neither pack judges: adapting the judges cannot change a retry.
    fn retries(
        &self,
        md: &mut String,
        items: &[Item],
        extracted: &[Extracted],
    ) -> anyhow::Result<()> {
        let mut by: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (item, e) in items.iter().zip(extracted) {
            if let Some(r) = e.reason.as_deref() {
                let c = by.entry(r).or_default();
                if item.label == SetLabel::Live {
                    c.0 += 1
                } else {
                    c.1 += 1
                }
            }
        }
        let total: usize = by.values().map(|(l, s)| l + s).sum();
        writeln!(md, "\n{total} images were not judged by either pack: the base pack's quality checks sent them back (retry), which adapting the judges cannot change; the quality policy is yours to set (docs/QUALITY.md).\n\n| reason | live | spoof |\n|---|---|---|")?;
        for (r, (l, s)) in by {
            writeln!(md, "| {r} | {l} | {s} |")?;
        }
        Ok(())
    }

    fn per_group(&self, md: &mut String, a: &AdaptArgs, items: &[Item]) -> anyhow::Result<()> {
        writeln!(md, "\nPer group, at balanced (each pack at its calibrated threshold):\n\n| {} | images | base BPCER | base APCER | adapted BPCER | adapted APCER |\n|---|---|---|---|---|---|", dataset::md_cell(&a.group_by))?;
        let mut values: Vec<&str> = items
            .iter()
            .filter_map(|i| i.columns.get(&a.group_by))
            .map(String::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        for v in values {
            let keep = |s: &[Scored]| -> Vec<Sample> {
                items
                    .iter()
                    .zip(s)
                    .filter(|(i, _)| i.columns.get(&a.group_by).map(String::as_str) == Some(v))
                    .map(|(_, (s, _))| s.clone())
                    .collect()
            };
            let b = Evaluation::new(&keep(&self.base_samples)).at(self.base_t.balanced);
            let ad = Evaluation::new(&keep(&self.adapted_samples)).at(self.adapted_t.balanced);
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                dataset::md_cell(v),
                b.bpcer.total + b.apcer_pooled.total,
                pct(&b.bpcer),
                pct(&b.apcer_pooled),
                pct(&ad.bpcer),
                pct(&ad.apcer_pooled)
            )?;
        }
        Ok(())
    }

    /// The full eval report of each pack, each with the other's DET curve beside it.
    fn reports(
        &self,
        a: &AdaptArgs,
        items: &[Item],
        base_pack: &facelive_pipeline::ModelPack,
    ) -> anyhow::Result<()> {
        let by = [a.group_by.clone()];
        let sides = [
            (
                "adapted",
                "adapted (out of fold)",
                &self.adapted_samples,
                self.adapted_t,
                &self.base_samples,
                "base pack",
            ),
            (
                "base",
                "base pack",
                &self.base_samples,
                self.base_t,
                &self.adapted_samples,
                "adapted (out of fold)",
            ),
        ];
        for (dir, name, results, thresholds, other, other_name) in sides {
            let report = Report {
                source: &a.set,
                system: format!(
                    "{name}: grouped {}-fold cross-validation by `{}`",
                    a.folds, a.group_by
                ),
                name: name.to_string(),
                items,
                results,
                thresholds,
                extra_point: None,
                min_species: 10,
                compared: vec![(other_name.to_string(), samples(other))],
                by: &by,
                model_pack: serde_json::to_value(base_pack)?,
            };
            report.write(Some(&a.out.join("cv").join(dir)))?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn pack(
        &self,
        a: &AdaptArgs,
        pipeline: &Pipeline,
        args: &PipelineArgs,
        head: facelive_adapt::FittedHead,
        cv: &CrossValidated,
        items: &[Item],
        forced: bool,
    ) -> anyhow::Result<AdaptedPack> {
        let m = args.manifest()?;
        let backbones = m
            .liveness_models()
            .into_iter()
            .map(|s| Backbone {
                name: s.name.clone(),
                file: s.file.clone(),
                sha256: s.sha256.clone(),
            })
            .collect();
        let out_name = a
            .out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let t = self.adapted_t;
        Ok(AdaptedPack {
            pack: PackInfo {
                name: a
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("adapted-{out_name}")),
                version: AdaptedPack::head_version(&head.spec),
                base: format!(
                    "{} {}",
                    pipeline.model_pack().name,
                    pipeline.model_pack().version
                ),
                forced,
                trained_by: format!("facelive {}", env!("CARGO_PKG_VERSION")),
            },
            backbones,
            head: head.spec,
            thresholds: PackThresholds {
                weak: t.weak,
                balanced: t.balanced,
                strict: t.strict,
            },
            training: Training {
                set: a
                    .set
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                images: items.len(),
                judged: cv.rows.len(),
                group_by: a.group_by.clone(),
                groups: {
                    let mut g = cv.groups.clone();
                    g.sort();
                    g.dedup();
                    g.len()
                },
                folds: cv.k,
                seed: a.seed,
                l2: head.l2,
            },
            cv: CrossValidation {
                base_acer: self.base.acer,
                base_apcer: self.base.apcer_pooled.value,
                base_bpcer: self.base.bpcer.value,
                adapted_acer: self.adapted.acer,
                adapted_apcer: self.adapted.apcer_pooled.value,
                adapted_bpcer: self.adapted.bpcer.value,
                only_base_wrong: self.only_base_wrong,
                only_adapted_wrong: self.only_adapted_wrong,
                mcnemar_p: self.p,
            },
        })
    }
}

/// The groups of fold `f` (numbered from 1), by name when there are few.
fn fold_groups(items: &[Item], folds: &[usize], f: usize, column: &str) -> String {
    let mut g: Vec<&str> = items
        .iter()
        .zip(folds)
        .filter(|(_, x)| **x == f)
        .filter_map(|(i, _)| i.columns.get(column).map(String::as_str))
        .collect();
    g.sort_unstable();
    g.dedup();
    match g.len() {
        0..=8 => format!("{} = {}", f + 1, g.join(" + ")),
        n => format!("{} = {n} groups", f + 1),
    }
}

/// OUT/training_scores.csv: the final head's score of every judged training image, which
/// `facelive --pack OUT` reproduces.
fn write_training_scores(
    out: &Path,
    items: &[Item],
    cv: &CrossValidated,
    head: &facelive_models::HeadSpec,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let mut w = csv::Writer::from_path(out.join("training_scores.csv"))?;
    w.write_record(["file", "live_score"])?;
    for (&i, x) in cv.rows.iter().zip(&cv.x) {
        w.write_record([items[i].name.as_str(), &head.score(x).to_string()])?;
    }
    w.flush()?;
    Ok(())
}

/// Fine-tuning measured against the head on the same folds and images.
#[cfg(feature = "fine-tune")]
struct FineTuneResult {
    ft: crate::finetune::FineTuned,
    against_base: Comparison,
    head: AtThreshold,
    /// At balanced: images only the head decides wrongly, and only the fine-tuned judges.
    only_head_wrong: usize,
    only_ft_wrong: usize,
    p: f64,
}

#[cfg(feature = "fine-tune")]
impl FineTuneResult {
    fn run(
        args: &PipelineArgs,
        a: &AdaptArgs,
        items: &[Item],
        cv: &CrossValidated,
        extracted: &[Extracted],
        head: &Comparison,
    ) -> anyhow::Result<Self> {
        let row_fold: Vec<usize> = cv.rows.iter().map(|&i| cv.folds[i]).collect();
        let t = &a.tuning;
        let how = FineTune {
            epochs: t.epochs,
            learning_rate: t.learning_rate,
            pull: t.pull,
            seed: a.seed,
            ..FineTune::default()
        };
        let ft =
            crate::finetune::out_of_fold(args, items, &cv.rows, &row_fold, &cv.live, t.views, how)?;
        let against_base = Comparison::new(&cv.rows, &ft.oof, items, extracted, head.shipped_t)?;
        let (mut only_head_wrong, mut only_ft_wrong) = (0, 0);
        for ((h, _), (f, _)) in head
            .adapted_samples
            .iter()
            .zip(&against_base.adapted_samples)
        {
            match (
                wrong(h, head.adapted_t.balanced),
                wrong(f, against_base.adapted_t.balanced),
            ) {
                (true, false) => only_head_wrong += 1,
                (false, true) => only_ft_wrong += 1,
                _ => {}
            }
        }
        Ok(Self {
            ft,
            head: head.adapted.clone(),
            p: facelive_eval::mcnemar_one_sided(only_head_wrong, only_ft_wrong),
            against_base,
            only_head_wrong,
            only_ft_wrong,
        })
    }

    fn summary(&self) -> anyhow::Result<String> {
        let mut md = String::new();
        let h = &self.ft.how;
        let f = &self.against_base.adapted;
        writeln!(md, "\n## Fine-tuning the judges' last block\n")?;
        writeln!(md, "Each judge's last block and classifier trained on {} views of every training-fold face ({} epochs of Adam, batch {}, learning rate {}, L2 pull to the pretrained weights {}), on the same folds; scored as served, calibrated by the same rule.\n", self.ft.views, h.epochs, h.batch, h.learning_rate, h.pull)?;
        writeln!(
            md,
            "| at balanced | ACER | APCER (pooled) | BPCER |\n|---|---|---|---|"
        )?;
        for (name, r) in [
            ("base, calibrated", &self.against_base.base),
            ("head (adapted)", &self.head),
            ("fine-tuned judges", f),
        ] {
            writeln!(
                md,
                "| {name} | {:.1}% | {} | {} |",
                r.acer * 100.0,
                pct(&r.apcer_pooled),
                pct(&r.bpcer)
            )?;
        }
        writeln!(md, "\nOf the images the fine-tuned judges and the head decide differently, the fine-tuned judges are right on {} and the head on {} (one-sided exact McNemar p = {:.3}). Against the base pack: {}\n", self.only_head_wrong, self.only_ft_wrong, self.p, self.against_base.conclusion())?;
        writeln!(md, "The fine-tuned judges are measured here, never written: on the domain set, split by project, they did not beat the head (docs/ADAPT.md), so a pack holds the head on the shipped backbones.\n")?;
        writeln!(md, "Time on this machine: trunks of the judged images in {} views in {:.1} s, fine-tuning out of fold in {:.1} s.\n", self.ft.views, self.ft.extract_s, self.ft.train_s)?;
        Ok(md)
    }
}
