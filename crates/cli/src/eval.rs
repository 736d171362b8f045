//! `facelive eval`: the pipeline over a labelled set, in ISO/IEC 30107-3 terms.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use facelive_eval::{AtThreshold, Evaluation, Failure, Label, Rate, Sample};
use facelive_pipeline::{CheckOptions, DecisionRule, OperatingPoint, Outcome};
use rayon::prelude::*;
use serde_json::json;

use crate::config::PipelineArgs;
use crate::dataset;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A manifest CSV (`file,label,attack_type,...`) or a folder with live/ and spoof/.
    pub source: PathBuf,
    /// Write report.md, report.json and scores.csv into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Images judged at once (default: all cores).
    #[arg(long, env = "FACELIVE_THREADS")]
    pub threads: Option<usize>,
    /// Evaluate another system's scores instead of running the pipeline: a CSV with
    /// `file,label,attack_type,status,live_score` (the reference pipeline's format; status
    /// `ok`, `no_face` or `decode_error`).
    #[arg(long, value_name = "CSV")]
    pub scores: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
struct ScoreRow {
    file: String,
    label: String,
    attack_type: String,
    status: String,
    live_score: Option<f32>,
}

/// Samples from a score file, for the rows of the set being evaluated.
fn samples_from_scores(
    path: &std::path::Path,
    items: &[dataset::Item],
) -> anyhow::Result<Vec<(Sample, String)>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let rows: std::collections::HashMap<String, ScoreRow> = rdr
        .deserialize::<ScoreRow>()
        .map(|r| r.map(|r| (r.file.clone(), r)))
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    items
        .iter()
        .map(|item| {
            let r = rows
                .get(&item.name)
                .with_context(|| format!("{} has no row for {}", path.display(), item.name))?;
            let label = if r.label == "live" {
                Label::BonaFide
            } else {
                Label::Attack {
                    species: r.attack_type.clone(),
                }
            };
            let score = match (r.status.as_str(), r.live_score) {
                ("ok", Some(v)) => Ok(v),
                ("no_face", _) => Err(Failure::NoFace),
                ("ok", None) | ("decode_error", _) => Err(Failure::Unreadable),
                _ => Err(Failure::Quality),
            };
            Ok((Sample { label, score }, r.status.clone()))
        })
        .collect()
}

fn pct(r: &Rate) -> String {
    format!(
        "{:.1}% [{:.1}, {:.1}] ({}/{})",
        r.value * 100.0,
        r.ci_low * 100.0,
        r.ci_high * 100.0,
        r.count,
        r.total
    )
}

pub fn run(args: &PipelineArgs, a: EvalArgs) -> anyhow::Result<ExitCode> {
    let pipeline = crate::load_pipeline(args)?;
    let items: Vec<_> = dataset::load(&a.source)?
        .into_iter()
        .filter(|i| i.label == "live" || i.label == "spoof")
        .collect();
    anyhow::ensure!(
        !items.is_empty(),
        "no live or spoof images in {}",
        a.source.display()
    );
    let bar = indicatif::ProgressBar::new(items.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images, {eta} left")
            .expect("valid template"),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()?;
    // Threshold 0: every judged image gets its score; decisions are made here.
    let opts = CheckOptions {
        rule: DecisionRule::Threshold(0.0),
        ..Default::default()
    };
    let results: Vec<(Sample, String)> = if let Some(path) = &a.scores {
        samples_from_scores(path, &items)?
    } else {
        pool.install(|| {
            items
                .par_iter()
                .map(|item| {
                    let res = std::fs::read(&item.path)
                        .map_err(|_| Failure::Unreadable)
                        .and_then(|b| pipeline.check(&b, &opts).map_err(|_| Failure::Unreadable));
                    let (score, note) = match res {
                        Ok(v) if v.outcome != Outcome::Retry => {
                            (Ok(v.live_score.unwrap_or(0.0)), String::new())
                        }
                        Ok(v) => {
                            let reason = v.retry_reason.unwrap_or_default();
                            let f = if reason == "no_face" {
                                Failure::NoFace
                            } else {
                                Failure::Quality
                            };
                            (Err(f), reason)
                        }
                        Err(f) => (Err(f), "unreadable".to_string()),
                    };
                    bar.inc(1);
                    let label = if item.label == "live" {
                        Label::BonaFide
                    } else {
                        Label::Attack {
                            species: item.attack_type.clone(),
                        }
                    };
                    (Sample { label, score }, note)
                })
                .collect()
        })
    };
    bar.finish_and_clear();
    let samples: Vec<Sample> = results.iter().map(|(s, _)| s.clone()).collect();
    let e = Evaluation::new(&samples);
    let thresholds = &pipeline.config().thresholds;
    let points: Vec<(String, AtThreshold)> = OperatingPoint::ALL
        .iter()
        .map(|p| (p.as_str().to_string(), e.at(thresholds.get(*p))))
        .chain(std::iter::once(("0.5".to_string(), e.at(0.5))))
        .collect();
    let targets: Vec<(f64, AtThreshold)> = [0.01, 0.05, 0.10]
        .iter()
        .map(|&t| (t, e.at_apcer(t)))
        .collect();
    let (eer_t, eer) = e.eer();
    let fta = e.acquisition();

    let mut md = String::new();
    writeln!(md, "# facelive evaluation\n")?;
    let system = match &a.scores {
        Some(p) => format!("Scores from `{}`", p.display()),
        None => format!(
            "Model pack {} {}",
            pipeline.model_pack().name,
            pipeline.model_pack().version
        ),
    };
    writeln!(md, "Set: `{}` — {} images ({} bona fide, {} attacks). {system}. Rates with 95% Wilson intervals; a bona fide image not acquired (no face, unreadable, failed quality) counts as rejected, an attack not acquired as not accepted.\n",
        a.source.display(), samples.len(),
        samples.iter().filter(|s| s.label == Label::BonaFide).count(),
        samples.iter().filter(|s| s.label != Label::BonaFide).count())?;
    let species: Vec<String> = points[0].1.apcer_by_species.keys().cloned().collect();
    writeln!(
        md,
        "| point | threshold | BPCER | APCER (worst species) | {} | ACER |",
        species
            .iter()
            .map(|s| format!("APCER {s}"))
            .collect::<Vec<_>>()
            .join(" | ")
    )?;
    writeln!(md, "|---|---|---|---|{}---|", "---|".repeat(species.len()))?;
    for (name, r) in &points {
        writeln!(
            md,
            "| {name} | {:.3} | {} | {} | {} | {:.1}% |",
            r.threshold,
            pct(&r.bpcer),
            pct(&r.apcer_worst),
            species
                .iter()
                .map(|s| pct(&r.apcer_by_species[s]))
                .collect::<Vec<_>>()
                .join(" | "),
            r.acer * 100.0
        )?;
    }
    writeln!(
        md,
        "\n| BPCER@APCER | threshold | BPCER | APCER (worst species) |\n|---|---|---|---|"
    )?;
    for (t, r) in &targets {
        writeln!(
            md,
            "| {:.0}% | {:.4} | {} | {} |",
            t * 100.0,
            r.threshold,
            pct(&r.bpcer),
            pct(&r.apcer_worst)
        )?;
    }
    writeln!(md, "\nEER {:.1}% at threshold {:.4}.\n", eer * 100.0, eer_t)?;
    writeln!(
        md,
        "| failures to acquire | bona fide | attacks |\n|---|---|---|"
    )?;
    for (f, r) in &fta.bona_fide {
        writeln!(
            md,
            "| {} | {} | {} |",
            serde_json::to_value(f)?.as_str().unwrap_or(""),
            pct(r),
            pct(&fta.attacks[f])
        )?;
    }
    print!("{md}");

    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("report.md"), &md)?;
        let report = json!({
            "source": a.source.display().to_string(),
            "model_pack": pipeline.model_pack(),
            "operating_points": points.iter().map(|(n, r)| json!({"name": n, "rates": r})).collect::<Vec<_>>(),
            "bpcer_at_apcer": targets.iter().map(|(t, r)| json!({"target_apcer": t, "rates": r})).collect::<Vec<_>>(),
            "eer": {"value": eer, "threshold": eer_t},
            "failures_to_acquire": fta,
        });
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        let mut csv = String::from("file,label,attack_type,live_score,failure\n");
        for (item, (s, note)) in items.iter().zip(&results) {
            let score = s.score.map(|v| format!("{v:.6}")).unwrap_or_default();
            writeln!(
                csv,
                "{},{},{},{score},{note}",
                item.name, item.label, item.attack_type
            )?;
        }
        std::fs::write(dir.join("scores.csv"), csv)?;
        eprintln!("report written to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
