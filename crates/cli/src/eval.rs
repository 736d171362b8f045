//! `facelive eval`: the pipeline over a labelled set, in ISO/IEC 30107-3 terms.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use facelive_eval::{AtThreshold, CurvePoint, Evaluation, Failure, Label, Rate, Sample};
use facelive_pipeline::{CheckOptions, DecisionRule, OperatingPoint, Outcome, RetryReason};
use rayon::prelude::*;
use serde_json::json;

use crate::config::PipelineArgs;
use crate::dataset;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A manifest CSV (`file,label,attack_type,...`) or a folder with live/ and spoof/.
    #[arg(required_unless_present = "pairs")]
    pub source: Option<PathBuf>,
    /// Evaluate liveness with verify instead, over a pairs CSV (`a,b,same_person,kind`,
    /// paths relative to it; `a` the selfie, `b` the reference): FMR, FNMR, failures to
    /// acquire, attack pairs verified (docs/EVALUATION.md).
    #[arg(long, value_name = "CSV", conflicts_with_all = ["source", "scores", "endpoint"])]
    pub pairs: Option<PathBuf>,
    /// Write report.md, report.json, scores.csv, det.csv (the DET curve's points) and the
    /// pictures det.svg/png and histogram.svg/png here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Images judged at once (default: all cores).
    #[arg(long, env = "FACELIVE_THREADS")]
    pub threads: Option<usize>,
    /// Evaluate another system's scores instead of running the pipeline: a CSV with
    /// `file,label,attack_type,status,live_score` (the reference pipeline's format, and that of
    /// the scores.csv `--out` writes; status `ok`, `no_face`, `decode_error` or `quality`).
    #[arg(long, value_name = "CSV", conflicts_with = "endpoint")]
    pub scores: Option<PathBuf>,
    /// Draw another system's DET curve beside this one, from its score file (the `--scores`
    /// format), named NAME in the legend. Repeatable.
    #[arg(long, value_name = "NAME=CSV", value_parser = parse_compare)]
    pub compare: Vec<(String, PathBuf)>,
    /// The evaluated system's name in the pictures (default: facelive, or the stem of the
    /// `--scores` file).
    #[arg(long)]
    pub name: Option<String>,
    /// Attack species with fewer images are flagged and left out of the worst-species
    /// APCER, ACER, EER and BPCER@APCER (the pooled APCER counts them).
    #[arg(long, env = "FACELIVE_MIN_SPECIES_COUNT", default_value_t = 10)]
    pub min_species_count: usize,
    /// Break BPCER and APCER down by these manifest columns (e.g. `capture,source_repo`):
    /// one row per value, with 95% intervals; small groups are flagged.
    #[arg(long, value_delimiter = ',', value_name = "COLUMN[,COLUMN]")]
    pub by: Vec<String>,
    #[command(flatten)]
    pub remote: crate::endpoint::EndpointArgs,
    #[command(flatten)]
    pub paths: dataset::SetPaths,
}

fn parse_compare(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err("expected NAME=CSV, e.g. reference=reference_scores.csv".to_string()),
    }
}

/// A labelled result and why it has no score (a retry reason or the score file's status).
pub(crate) type Scored = (Sample, String);

#[derive(serde::Deserialize)]
struct ScoreRow {
    file: String,
    label: dataset::SetLabel,
    attack_type: String,
    status: String,
    live_score: Option<f32>,
    /// Written by facelive (why not scored); absent from other systems' files.
    #[serde(default)]
    reason: Option<String>,
}

/// A score file's rows by file name (cells facelive made inert read back as written).
fn score_rows(path: &std::path::Path) -> anyhow::Result<HashMap<String, ScoreRow>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    rdr.deserialize::<ScoreRow>()
        .map(|r| {
            r.map(|mut r| {
                r.file = dataset::csv_value(&r.file).to_string();
                r.attack_type = dataset::csv_value(&r.attack_type).to_string();
                r.reason = r.reason.map(|v| dataset::csv_value(&v).to_string());
                (r.file.clone(), r)
            })
        })
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", path.display()))
}

/// A row's score, or why it has none; a score outside [0, 1] (or not a number) is refused
/// by name, since every rate below assumes the scale.
fn row_score(path: &std::path::Path, r: &ScoreRow) -> anyhow::Result<Result<f32, Failure>> {
    Ok(match (r.status.as_str(), r.live_score) {
        ("ok", Some(v)) if (0.0..=1.0).contains(&v) => Ok(v),
        ("ok", Some(v)) => anyhow::bail!(
            "{}: the live_score of {} is {v}, outside [0, 1]",
            path.display(),
            r.file
        ),
        ("no_face", _) => Err(Failure::NoFace),
        ("ok", None) | ("decode_error", _) => Err(Failure::Unreadable),
        ("quality", _) => Err(Failure::Quality),
        (other, _) => anyhow::bail!(
            "{}: unknown status {other:?} for {} (ok, no_face, decode_error, quality)",
            path.display(),
            r.file
        ),
    })
}

/// Samples from a score file, for the rows of the set being evaluated.
fn samples_from_scores(
    path: &std::path::Path,
    items: &[dataset::Item],
) -> anyhow::Result<Vec<Scored>> {
    let rows = score_rows(path)?;
    items
        .iter()
        .map(|item| {
            let r = rows
                .get(&item.name)
                .with_context(|| format!("{} has no row for {}", path.display(), item.name))?;
            Ok((
                Sample {
                    label: dataset::truth(r.label, &r.attack_type),
                    score: row_score(path, r)?,
                },
                r.status.clone(),
            ))
        })
        .collect()
}

/// A running API's answers for the set, continuing from `OUT/scores.csv` if an earlier run
/// stopped.
fn samples_from_endpoint(a: &EvalArgs, items: &[dataset::Item]) -> anyhow::Result<Vec<Scored>> {
    use crate::endpoint::Answer;
    let dir = a.out.as_ref().expect("--endpoint requires --out");
    std::fs::create_dir_all(dir)?;
    let path = dir.join("scores.csv");
    let mut done = HashMap::new();
    if path.exists() {
        for (file, r) in score_rows(&path)? {
            let answer = match row_score(&path, &r)? {
                Ok(v) => Answer::Scored(v),
                Err(f) => Answer::NotAcquired(f, r.reason.clone().unwrap_or_default()),
            };
            done.insert(file, answer);
        }
    }
    let answers = crate::endpoint::evaluate(&a.remote, items, done, &path)?;
    Ok(items
        .iter()
        .zip(answers)
        .map(|(item, answer)| {
            let (score, note) = match answer {
                Answer::Scored(v) => (Ok(v), String::new()),
                Answer::NotAcquired(f, note) => (Err(f), note),
            };
            (
                Sample {
                    label: item.truth(),
                    score,
                },
                note,
            )
        })
        .collect())
}

/// A rate as the reports print it: percent, 95% interval, count over total.
pub(crate) fn pct(r: &Rate) -> String {
    format!(
        "{:.1}% [{:.1}, {:.1}] ({}/{})",
        r.value * 100.0,
        r.ci_low * 100.0,
        r.ci_high * 100.0,
        r.count,
        r.total
    )
}

/// The table of rates at each operating point, one APCER column per species (a dagger
/// marks the species with too few images to trust).
fn write_points(
    md: &mut String,
    points: &[(String, AtThreshold)],
    small: &std::collections::BTreeMap<String, usize>,
) -> anyhow::Result<()> {
    let species: Vec<String> = points[0].1.apcer_by_species.keys().cloned().collect();
    let flag = |s: &String| if small.contains_key(s) { " †" } else { "" };
    writeln!(
        md,
        "| point | threshold | BPCER | APCER (pooled) | APCER (worst species) | {} | ACER |",
        species
            .iter()
            .map(|s| format!("APCER {}{}", dataset::md_cell(s), flag(s)))
            .collect::<Vec<_>>()
            .join(" | ")
    )?;
    writeln!(
        md,
        "|---|---|---|---|---|{}---|",
        "---|".repeat(species.len())
    )?;
    for (name, r) in points {
        writeln!(
            md,
            "| {name} | {:.3} | {} | {} | {} | {} | {:.1}% |",
            r.threshold,
            pct(&r.bpcer),
            pct(&r.apcer_pooled),
            pct(&r.apcer_worst),
            species
                .iter()
                .map(|s| pct(&r.apcer_by_species[s]))
                .collect::<Vec<_>>()
                .join(" | "),
            r.acer * 100.0
        )?;
    }
    Ok(())
}

/// The table of BPCER at fixed worst-species APCER targets.
fn write_targets(md: &mut String, targets: &[(f64, AtThreshold)]) -> anyhow::Result<()> {
    writeln!(
        md,
        "\n| BPCER@APCER (worst species) | threshold | BPCER | APCER (worst species) | APCER (pooled) |\n|---|---|---|---|---|"
    )?;
    for (t, r) in targets {
        writeln!(
            md,
            "| {:.0}% | {:.4} | {} | {} | {} |",
            t * 100.0,
            r.threshold,
            pct(&r.bpcer),
            pct(&r.apcer_worst),
            pct(&r.apcer_pooled)
        )?;
    }
    Ok(())
}

/// The report's own statement of what its figures mean.
fn write_definitions(
    md: &mut String,
    min: usize,
    small: &std::collections::BTreeMap<String, usize>,
) -> std::fmt::Result {
    writeln!(md, "Definitions (ISO/IEC 30107-3): APCER of a species, the share of its attack presentations accepted (score at least the threshold); APCER (pooled), the share of all attack presentations accepted; APCER (worst species), the highest species APCER among species with at least {min} images; BPCER, the share of bona fide presentations rejected; ACER, the mean of the worst-species APCER and BPCER; EER, where an APCER and BPCER are equal. BPCER@APCER is taken at the lowest threshold whose worst-species APCER is at most the target.\n")?;
    if !small.is_empty() {
        let names: Vec<String> = small
            .iter()
            .map(|(k, n)| format!("{} ({n})", dataset::md_cell(k)))
            .collect();
        writeln!(md, "† Species under {min} images, left out of the worst-species APCER, ACER, EER and BPCER@APCER (counted in the pooled APCER; their own APCER can only move in steps of 1/n): {}.\n", names.join(", "))?;
    }
    Ok(())
}

/// Labelled samples of a set: the pipeline's verdicts, or another system's score file.
fn collect(
    pipeline: &facelive_pipeline::Pipeline,
    source: &std::path::Path,
    scores: Option<&std::path::Path>,
    threads: Option<usize>,
    paths: dataset::SetPaths,
) -> anyhow::Result<(Vec<dataset::Item>, Vec<Scored>)> {
    let items = dataset::judged(source, paths)?;
    let bar = crate::dataset::progress(items.len());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()?;
    // Threshold 0: every judged image gets its score; decisions are made here.
    let opts = CheckOptions {
        rule: DecisionRule::Threshold(0.0),
        ..Default::default()
    };
    let results: Vec<Scored> = if let Some(path) = scores {
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
                            let f = match v.retry_reason {
                                Some(RetryReason::NoFace) => Failure::NoFace,
                                _ => Failure::Quality,
                            };
                            let reason = v.retry_reason.map(|r| r.to_string());
                            (Err(f), reason.unwrap_or_default())
                        }
                        Err(f) => (Err(f), "unreadable".to_string()),
                    };
                    bar.inc(1);
                    (
                        Sample {
                            label: item.truth(),
                            score,
                        },
                        note,
                    )
                })
                .collect()
        })
    };
    bar.finish_and_clear();
    Ok((items, results))
}

pub fn run(args: &PipelineArgs, a: EvalArgs) -> anyhow::Result<ExitCode> {
    let pipeline = crate::load_pipeline(args)?;
    if let Some(pairs) = &a.pairs {
        crate::pairs::eval(crate::pairs::PairsEval {
            pipeline: &pipeline,
            pairs,
            out: a.out.as_deref(),
            threads: a.threads,
            paths: a.paths,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let source = a.source.clone().context("give the set to evaluate")?;
    let (items, results) = match a.remote.endpoint {
        Some(_) => {
            let items = dataset::judged(&source, a.paths)?;
            let results = samples_from_endpoint(&a, &items)?;
            (items, results)
        }
        None => collect(&pipeline, &source, a.scores.as_deref(), a.threads, a.paths)?,
    };
    let compared: Vec<(String, Vec<Sample>)> = a
        .compare
        .iter()
        .map(|(name, path)| {
            let s = samples_from_scores(path, &items)?;
            Ok((name.clone(), s.into_iter().map(|(s, _)| s).collect()))
        })
        .collect::<anyhow::Result<_>>()?;
    let system = match (&a.scores, &a.remote.endpoint, a.remote.dialect) {
        (_, Some(url), Some(d)) => format!(
            "Answers of the endpoint `{url}` ({} dialect{})",
            d.name(),
            if d == crate::endpoint::Dialect::Nhn {
                ": a verdict only, read as score 1 for live and 0 for an attack"
            } else {
                ""
            }
        ),
        (Some(p), _, _) => format!("Scores from `{}`", p.display()),
        _ => format!(
            "Model pack {} {}",
            pipeline.model_pack().name,
            pipeline.model_pack().version
        ),
    };
    let name = match (&a.name, &a.scores) {
        (Some(n), _) => n.clone(),
        (None, None) if a.remote.dialect.is_some() => a
            .remote
            .dialect
            .map(|d| d.name())
            .unwrap_or_default()
            .to_string(),
        (None, Some(p)) => p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        (None, None) => "facelive".to_string(),
    };
    let report = Report {
        source: &source,
        system,
        name,
        items: &items,
        results: &results,
        thresholds: pipeline.config().thresholds,
        extra_point: a
            .remote
            .dialect
            .and_then(|d| d.threshold().map(|t| (format!("{} {t}", d.name()), t))),
        min_species: a.min_species_count,
        compared,
        by: &a.by,
        model_pack: serde_json::to_value(pipeline.model_pack())?,
    };
    print!("{}", report.write(a.out.as_deref())?);
    if let Some(dir) = &a.out {
        eprintln!("report written to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// One evaluation report: labelled results of one system (and others' to compare), as
/// report.md, report.json, scores.csv, det.csv and the pictures.
pub(crate) struct Report<'a> {
    pub source: &'a std::path::Path,
    /// What was evaluated, in a sentence.
    pub system: String,
    /// Its name in the pictures.
    pub name: String,
    pub items: &'a [dataset::Item],
    pub results: &'a [Scored],
    pub thresholds: facelive_pipeline::Thresholds,
    /// Another point to report (a dialect's own threshold).
    pub extra_point: Option<(String, f32)>,
    pub min_species: usize,
    pub compared: Vec<(String, Vec<Sample>)>,
    /// Manifest columns to break the error rates down by.
    pub by: &'a [String],
    pub model_pack: serde_json::Value,
}

impl Report<'_> {
    fn samples(&self) -> Vec<Sample> {
        self.results.iter().map(|(s, _)| s.clone()).collect()
    }

    fn points(&self, e: &Evaluation) -> Vec<(String, AtThreshold)> {
        OperatingPoint::ALL
            .iter()
            .map(|p| (p.as_str().to_string(), e.at(self.thresholds.get(*p))))
            .chain(std::iter::once(("0.5".to_string(), e.at(0.5))))
            .chain(self.extra_point.iter().map(|(n, t)| (n.clone(), e.at(*t))))
            .collect()
    }

    /// The report's text; with `out`, every file written there too.
    pub fn write(&self, out: Option<&std::path::Path>) -> anyhow::Result<String> {
        let samples = self.samples();
        let e = Evaluation::with_min_species(&samples, self.min_species);
        let points = self.points(&e);
        let targets: Vec<(f64, AtThreshold)> = [0.01, 0.05, 0.10]
            .iter()
            .map(|&t| (t, e.at_apcer(t)))
            .collect();
        let mut md = String::new();
        self.render(&mut md, &e, &points, &targets, out.is_some())?;
        let Some(dir) = out else {
            return Ok(md);
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("report.md"), &md)?;
        let (eer_t, eer) = e.eer();
        let (eer_pooled_t, eer_pooled) = e.eer_pooled();
        let report = json!({
            "source": self.source.display().to_string(),
            "model_pack": self.model_pack,
            "operating_points": points.iter().map(|(n, r)| json!({"name": n, "rates": r})).collect::<Vec<_>>(),
            "bpcer_at_apcer": targets.iter().map(|(t, r)| json!({"target_apcer": t, "rates": r})).collect::<Vec<_>>(),
            "eer": {"value": eer, "threshold": eer_t},
            "eer_pooled": {"value": eer_pooled, "threshold": eer_pooled_t},
            "min_species_count": self.min_species,
            "small_species": e.small_species(),
            "failures_to_acquire": e.acquisition(),
            "by": self.group_rows()?,
        });
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        write_scores(&dir.join("scores.csv"), self.items, self.results)?;
        let curve = e.curve();
        let mut det = csv::Writer::from_path(dir.join("det.csv"))?;
        for p in &curve {
            det.serialize(p)?;
        }
        det.flush()?;
        // The set's folder and file name, not the whole path it was given by: pictures
        // stay the same wherever the set lies.
        let tail: Vec<_> = self.source.components().rev().take(2).collect();
        let set: std::path::PathBuf = tail.into_iter().rev().collect();
        let set = set.display();
        let title = format!("{} on {set}", self.name);
        let view = Pictures {
            title: &title,
            name: &self.name,
            curve: &curve,
            points: &points[..OperatingPoint::ALL.len()],
            samples: &samples,
            small: &e.small_species(),
            min_species: self.min_species,
            compared: &self.compared,
        };
        view.write(dir)?;
        Ok(md)
    }

    fn render(
        &self,
        md: &mut String,
        e: &Evaluation,
        points: &[(String, AtThreshold)],
        targets: &[(f64, AtThreshold)],
        pictures: bool,
    ) -> anyhow::Result<()> {
        let samples = self.samples();
        let small = e.small_species();
        writeln!(md, "# facelive evaluation\n")?;
        writeln!(md, "Set: `{}` — {} images ({} bona fide, {} attacks). {}. Rates with 95% Wilson intervals; a bona fide image not acquired (no face, unreadable, failed quality) counts as rejected, an attack not acquired as not accepted.\n",
            self.source.display(), samples.len(),
            samples.iter().filter(|s| s.label == Label::BonaFide).count(),
            samples.iter().filter(|s| s.label != Label::BonaFide).count(),
            self.system)?;
        write_definitions(md, self.min_species, &small)?;
        write_points(md, points, &small)?;
        write_targets(md, targets)?;
        let (eer_t, eer) = e.eer();
        let (eer_pooled_t, eer_pooled) = e.eer_pooled();
        writeln!(
            md,
            "\nEER (worst species) {:.1}% at threshold {:.4}; EER (pooled) {:.1}% at threshold {:.4}.\n",
            eer * 100.0,
            eer_t,
            eer_pooled * 100.0,
            eer_pooled_t
        )?;
        let fta = e.acquisition();
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
        self.render_groups(md)?;
        if pictures {
            writeln!(
                md,
                "\n![DET curve](det.svg)\n\n![Live score histograms](histogram.svg)\n\n(also as det.png and histogram.png)"
            )?;
        }
        Ok(())
    }
}

/// One group's error rates at the balanced point.
#[derive(serde::Serialize)]
struct GroupRow {
    column: String,
    value: String,
    bpcer: Rate,
    apcer_pooled: Rate,
    /// Fewer bona fide or attack images than the species minimum: rates move in big steps.
    small: bool,
}

impl Report<'_> {
    /// Per-group BPCER and pooled APCER at the balanced point, for each `--by` column.
    fn group_rows(&self) -> anyhow::Result<Vec<GroupRow>> {
        let t = self.thresholds.get(OperatingPoint::Balanced);
        let mut rows = Vec::new();
        for column in self.by {
            let mut values: Vec<&str> = self
                .items
                .iter()
                .map(|i| i.column(column))
                .collect::<anyhow::Result<_>>()?;
            values.sort_unstable();
            values.dedup();
            for value in values {
                let subset: Vec<Sample> = self
                    .items
                    .iter()
                    .zip(self.results)
                    .filter(|(i, _)| i.columns.get(column).map(String::as_str) == Some(value))
                    .map(|(_, (s, _))| s.clone())
                    .collect();
                let r = Evaluation::new(&subset).at(t);
                let small =
                    r.bpcer.total < self.min_species || r.apcer_pooled.total < self.min_species;
                rows.push(GroupRow {
                    column: column.clone(),
                    value: value.to_string(),
                    bpcer: r.bpcer,
                    apcer_pooled: r.apcer_pooled,
                    small,
                });
            }
        }
        Ok(rows)
    }

    fn render_groups(&self, md: &mut String) -> anyhow::Result<()> {
        let rows = self.group_rows()?;
        if rows.is_empty() {
            return Ok(());
        }
        writeln!(
            md,
            "\nBy group, at the balanced point ({:.3}); † fewer than {} bona fide or attack images in the group (rates move in big steps; a group without attacks or bona fide shows 0/0):\n\n| column | group | BPCER | APCER (pooled) |\n|---|---|---|---|",
            self.thresholds.get(OperatingPoint::Balanced),
            self.min_species
        )?;
        for r in rows {
            writeln!(
                md,
                "| {} | {}{} | {} | {} |",
                dataset::md_cell(&r.column),
                dataset::md_cell(&r.value),
                if r.small { " †" } else { "" },
                pct(&r.bpcer),
                pct(&r.apcer_pooled)
            )?;
        }
        Ok(())
    }
}

/// The `--scores` format (the reference's columns first), so a report can be rebuilt or
/// compared without the models: `eval --scores` / `--compare` read it back.
pub(crate) fn write_scores(
    path: &std::path::Path,
    items: &[dataset::Item],
    results: &[Scored],
) -> anyhow::Result<()> {
    use crate::endpoint::{columns, Answer, SCORE_COLUMNS};
    let mut scores = csv::Writer::from_path(path)?;
    scores.write_record(SCORE_COLUMNS)?;
    for (item, (s, note)) in items.iter().zip(results) {
        let answer = match s.score {
            Ok(v) => Answer::Scored(v),
            Err(f) => Answer::NotAcquired(f, note.clone()),
        };
        let (status, score, reason) = columns(&answer);
        let row = [
            &dataset::csv_cell(&item.name),
            item.label.as_str(),
            &dataset::csv_cell(&item.attack_type),
            status,
            &score,
            &dataset::csv_cell(reason),
        ];
        scores.write_record(row)?;
    }
    scores.flush()?;
    Ok(())
}

/// One DET line: legend name, (APCER, BPCER) points, colour index, dashed.
type DetLine = (String, Vec<(f64, f64)>, usize, bool);

/// What the pictures show: this system's DET curve and operating points (already computed
/// for the report), the compared systems' curves, and every live score.
struct Pictures<'a> {
    title: &'a str,
    name: &'a str,
    curve: &'a [CurvePoint],
    /// (name, rates) of weak, balanced and strict.
    points: &'a [(String, AtThreshold)],
    samples: &'a [Sample],
    /// Species left out of the worst-species figures, grouped in the histogram.
    small: &'a std::collections::BTreeMap<String, usize>,
    min_species: usize,
    compared: &'a [(String, Vec<Sample>)],
}

impl Pictures<'_> {
    /// det.svg/png and histogram.svg/png in `dir`.
    fn write(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        use facelive_eval::plot;
        // Per system: (legend name, points, colour, dashed), worst species then pooled.
        let mut lines: Vec<DetLine> = Vec::new();
        let mut add = |name: &str, c: &[CurvePoint], colour: usize| {
            let worst = c.iter().map(|p| (p.apcer_worst, p.bpcer)).collect();
            let pooled = c.iter().map(|p| (p.apcer_pooled, p.bpcer)).collect();
            lines.push((format!("{name}, worst species"), worst, colour, false));
            lines.push((format!("{name}, pooled"), pooled, colour, true));
        };
        add(self.name, self.curve, 0);
        for (i, (n, s)) in self.compared.iter().enumerate() {
            add(
                n,
                &Evaluation::with_min_species(s, self.min_species).curve(),
                i + 1,
            );
        }
        let curves: Vec<plot::Curve> = lines
            .iter()
            .map(|(n, p, colour, dashed)| plot::Curve {
                name: n,
                points: p,
                colour: *colour,
                dashed: *dashed,
            })
            .collect();
        let labels: Vec<String> = self
            .points
            .iter()
            .map(|(n, r)| format!("{n} {:.2}", r.threshold))
            .collect();
        let markers: Vec<plot::Marker> = self
            .points
            .iter()
            .zip(&labels)
            .map(|((_, r), label)| plot::Marker {
                name: label,
                apcer: r.apcer_worst.value,
                bpcer: r.bpcer.value,
            })
            .collect();
        let det_svg = plot::det_svg(
            &format!("DET: {}", self.title),
            "a bona fide image not acquired counts as rejected; circles: operating points",
            &curves,
            &markers,
        );
        let lines: Vec<plot::Threshold> = self
            .points
            .iter()
            .map(|(n, r)| plot::Threshold {
                name: n,
                value: r.threshold,
            })
            .collect();
        let hist_svg = plot::histogram_svg(
            &format!("Live scores: {}", self.title),
            self.samples,
            &lines,
            self.small,
        );
        for (file, svg) in [("det", det_svg), ("histogram", hist_svg)] {
            std::fs::write(dir.join(format!("{file}.svg")), &svg)?;
            std::fs::write(dir.join(format!("{file}.png")), plot::png(&svg, 2.0)?)?;
        }
        Ok(())
    }
}

/// Which APCER a calibration target holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Apcer {
    /// Over all attacks together.
    Pooled,
    /// The worst species's (ISO/IEC 30107-3's headline).
    Worst,
}

impl Apcer {
    fn as_str(self) -> &'static str {
        match self {
            Apcer::Pooled => "pooled",
            Apcer::Worst => "worst",
        }
    }
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// A manifest CSV or a folder with live/ and spoof/<species>/.
    #[arg(required_unless_present = "pairs")]
    pub source: Option<PathBuf>,
    /// Choose the match thresholds instead (`[match_thresholds]`), for target FMRs, over a
    /// pairs CSV (as `facelive eval --pairs` reads).
    #[arg(long, value_name = "CSV", conflicts_with_all = ["source", "scores"])]
    pub pairs: Option<PathBuf>,
    /// With --pairs: the target FMR of weak, balanced and strict.
    #[arg(long, value_delimiter = ',', num_args = 3, default_values_t = [0.01, 0.001, 0.0001], value_name = "WEAK,BALANCED,STRICT")]
    pub fmr: Vec<f64>,
    /// Target APCER of each operating point.
    #[arg(long, default_value_t = 0.05)]
    pub weak: f64,
    #[arg(long, default_value_t = 0.025)]
    pub balanced: f64,
    #[arg(long, default_value_t = 0.01)]
    pub strict: f64,
    /// Which APCER meets the targets: `pooled` over all attacks, or the `worst` species
    /// (ISO's headline; needs many attacks of every species to be meaningful).
    #[arg(long, value_enum, default_value_t = Apcer::Pooled)]
    pub apcer: Apcer,
    /// Thresholds are multiples of this.
    #[arg(long, default_value_t = 0.05)]
    pub step: f32,
    /// Calibrate from another system's score file (see `facelive eval --scores`).
    #[arg(long, value_name = "CSV")]
    pub scores: Option<PathBuf>,
    /// The TOML file to write the thresholds into (its other settings are kept); default:
    /// the configuration file in use, else facelive.toml.
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Print the thresholds without writing them.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, env = "FACELIVE_THREADS")]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub paths: dataset::SetPaths,
}

/// `facelive calibrate`: thresholds of weak, balanced and strict for target APCERs, written
/// where `check` and `serve` read them.
pub fn calibrate(args: &PipelineArgs, a: CalibrateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        a.step > 0.0 && a.step <= 0.5,
        "--step must be within (0, 0.5]"
    );
    let pipeline = crate::load_pipeline(args)?;
    if let Some(pairs) = &a.pairs {
        let f = &a.fmr;
        let t = crate::pairs::calibrate(&pipeline, pairs, [f[0], f[1], f[2]], a.threads, a.paths)?;
        let chosen = [
            ("weak", t.weak),
            ("balanced", t.balanced),
            ("strict", t.strict),
        ];
        return write_section(args, &a, "match_thresholds", &chosen);
    }
    let source = a.source.clone().context("give the set to calibrate on")?;
    let (_, results) = collect(&pipeline, &source, a.scores.as_deref(), a.threads, a.paths)?;
    let samples: Vec<Sample> = results.into_iter().map(|(s, _)| s).collect();
    let e = Evaluation::new(&samples);
    let pick = |r: &AtThreshold| match a.apcer {
        Apcer::Worst => r.apcer_worst.value,
        Apcer::Pooled => r.apcer_pooled.value,
    };
    let mut chosen = Vec::new();
    for (name, target) in [
        ("weak", a.weak),
        ("balanced", a.balanced),
        ("strict", a.strict),
    ] {
        let r = e.threshold_for(target, a.step, pick);
        println!(
            "{name:<9} target APCER ({}) <= {:.3}: threshold {:.2} (APCER {:.3}, worst species {:.3}, BPCER {:.3})",
            a.apcer.as_str(), target, r.threshold, r.apcer_pooled.value, r.apcer_worst.value, r.bpcer.value
        );
        chosen.push((name, r.threshold));
    }
    let t: Vec<f32> = chosen.iter().map(|c| c.1).collect();
    anyhow::ensure!(
        t[0] <= t[1] && t[1] <= t[2],
        "the targets give thresholds out of order ({t:?}): weak's target must be the loosest"
    );
    write_section(args, &a, "thresholds", &chosen)
}

/// Writes `[section]` with `values` into the configuration file (its other settings kept).
fn write_section(
    args: &PipelineArgs,
    a: &CalibrateArgs,
    section: &str,
    values: &[(&str, f32)],
) -> anyhow::Result<ExitCode> {
    if a.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let path = a
        .write
        .clone()
        .or_else(|| args.config.clone())
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG_FILE));
    let text = if path.exists() {
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
    } else {
        String::new()
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    let mut table = toml_edit::Table::new();
    for (name, v) in values {
        // Round through f32's shortest form so 0.3 is written 0.3.
        let v: f64 = v.to_string().parse().unwrap_or(*v as f64);
        table[*name] = toml_edit::value(v);
    }
    doc[section] = toml_edit::Item::Table(table);
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, doc.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    println!("[{section}] written to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A score file is input: a score off the 0..1 scale, or not a number, is an error
    /// naming its row, not a panic (and not a silent NaN).
    #[test]
    fn a_score_file_off_the_scale_is_refused_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("set.csv");
        std::fs::write(
            &set,
            "file,label,attack_type\na.jpg,live,none\nb.jpg,spoof,print\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("a.jpg"), "").unwrap();
        std::fs::write(dir.path().join("b.jpg"), "").unwrap();
        let items = dataset::judged(&set, dataset::SetPaths::default()).unwrap();
        for bad in ["NaN", "inf", "1.5", "-0.2"] {
            let scores = dir.path().join("scores.csv");
            std::fs::write(
                &scores,
                format!("file,label,attack_type,status,live_score\na.jpg,live,none,ok,0.5\nb.jpg,spoof,print,ok,{bad}\n"),
            )
            .unwrap();
            let e = samples_from_scores(&scores, &items).unwrap_err();
            assert!(format!("{e:#}").contains("b.jpg"), "{bad}: {e:#}");
        }
    }
}
