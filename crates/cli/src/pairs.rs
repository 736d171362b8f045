//! `facelive eval --pairs` and `facelive calibrate --pairs`: liveness with verify over a
//! pairs file (`a,b,same_person,kind`, paths relative to the file; `a` is the selfie, `b`
//! the reference), in ISO/IEC 19795-1 terms: FMR, FNMR and failures to acquire with 95%
//! intervals, FNMR at FMR 1% and 0.1%, a DET picture, and what no peer reports: how many
//! attack pairs (a print of a person against that person's reference) came out verified.
//!
//! Each image is judged (as a selfie) or embedded (as a reference) once, whatever the
//! number of pairs it is in; a pair's verdict is then exactly what `verify` answers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use facelive_eval::matching::{Comparison, MatchRates, Matching};
use facelive_eval::{plot, Rate};
use facelive_pipeline::{
    matched, CheckOptions, Embedding, MatchThresholds, OperatingPoint, Pipeline, ReferenceFace,
    Verdict, VerifyOutcome, VerifyVerdict,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::{self, SetPaths};

/// One row of a pairs file.
#[derive(Debug, Clone, Deserialize)]
pub struct PairRow {
    pub a: String,
    pub b: String,
    pub same_person: u8,
    pub kind: String,
}

/// A pair's verdict, or the error that stopped one of its images.
pub struct PairResult {
    pub row: PairRow,
    pub verdict: Result<VerifyVerdict, String>,
}

/// The pairs of `path`, their images' paths checked to stay inside its folder.
pub fn read_pairs(path: &Path, paths: SetPaths) -> anyhow::Result<(PathBuf, Vec<PairRow>)> {
    let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut rows = Vec::new();
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    for (i, row) in r.deserialize::<PairRow>().enumerate() {
        let row = row.with_context(|| format!("{} row {}", path.display(), i + 2))?;
        for p in [&row.a, &row.b] {
            paths
                .resolve(&root, p)
                .with_context(|| format!("{} row {}", path.display(), i + 2))?;
        }
        anyhow::ensure!(
            row.same_person <= 1,
            "{} row {}: same_person must be 0 or 1",
            path.display(),
            i + 2
        );
        rows.push(row);
    }
    anyhow::ensure!(!rows.is_empty(), "{} has no pairs", path.display());
    Ok((root, rows))
}

type Selfie = Result<(Verdict, Option<Embedding>), String>;
type Reference = Result<(ReferenceFace, Option<Embedding>), String>;

/// Every pair's verdict at `threshold`, each image judged or embedded once.
pub fn run_pairs(
    pipeline: &Pipeline,
    root: &Path,
    rows: &[PairRow],
    threshold: f32,
    threads: Option<usize>,
) -> anyhow::Result<Vec<PairResult>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()?;
    let distinct = |f: fn(&PairRow) -> &String| {
        let mut v: Vec<String> = rows.iter().map(|r| f(r).clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    let read = |p: &str| std::fs::read(root.join(p)).map_err(|e| format!("unreadable: {e}"));
    let opts = CheckOptions::default();
    let (selfies, references): (HashMap<String, Selfie>, HashMap<String, Reference>) = pool
        .install(|| {
            let s = distinct(|r| &r.a)
                .into_par_iter()
                .map(|p| {
                    let r = read(&p).and_then(|b| {
                        pipeline
                            .judge_and_embed(&b, &opts)
                            .map_err(|e| e.code().to_string())
                    });
                    (p, r)
                })
                .collect();
            let r = distinct(|r| &r.b)
                .into_par_iter()
                .map(|p| {
                    let r = read(&p).and_then(|b| {
                        pipeline
                            .reference_embedding(&b, None)
                            .map_err(|e| e.code().to_string())
                    });
                    (p, r)
                })
                .collect();
            (s, r)
        });
    Ok(rows
        .iter()
        .map(|row| {
            let verdict = match (&selfies[&row.a], &references[&row.b]) {
                (Ok((v, a)), Ok((face, b))) => Ok(matched(
                    v.clone(),
                    Some(face.clone()),
                    a.as_ref(),
                    b.as_ref(),
                    threshold,
                )),
                (Err(e), _) => Err(format!("error_image:{e}")),
                (_, Err(e)) => Err(format!("error_reference:{e}")),
            };
            PairResult {
                row: row.clone(),
                verdict,
            }
        })
        .collect())
}

/// `status` of a pair in pairs_scores.csv: `ok` when compared, else which image stopped it
/// and why.
fn status(r: &PairResult) -> String {
    match &r.verdict {
        Err(e) => e.clone(),
        Ok(v) if v.similarity.is_some() => "ok".into(),
        Ok(v) => {
            let lf = &v.liveness;
            match (&lf.face, v.reference.as_ref().and_then(|f| f.retry_reason)) {
                (None, _) => format!(
                    "not_acquired_image:{}",
                    lf.retry_reason.map_or("no_face".into(), |r| r.to_string())
                ),
                (_, Some(reason)) => format!("not_acquired_reference:{reason}"),
                _ => "not_acquired".into(),
            }
        }
    }
}

fn comparisons(results: &[PairResult], kinds: &[&str]) -> Vec<Comparison> {
    results
        .iter()
        .filter(|r| kinds.contains(&r.row.kind.as_str()))
        .map(|r| Comparison {
            genuine: r.row.same_person == 1,
            similarity: r.verdict.as_ref().ok().and_then(|v| v.similarity),
        })
        .collect()
}

#[derive(Serialize)]
struct Report {
    pairs: usize,
    genuine: usize,
    impostor: usize,
    attack: usize,
    match_thresholds: MatchThresholds,
    at_operating_points: Vec<(OperatingPoint, MatchRates)>,
    fnmr_at_fmr: Vec<(f64, f32, MatchRates)>,
    fta_genuine: Rate,
    fta_impostor: Rate,
    /// Attack pairs whose faces match (only liveness can stop them).
    attack_matched: Rate,
    /// Attack pairs that came out verified: liveness with verify's own failure.
    attack_verified: Rate,
    /// Genuine pairs verified end to end (live and matched).
    genuine_verified: Rate,
}

pub struct PairsEval<'a> {
    pub pipeline: &'a Pipeline,
    pub pairs: &'a Path,
    pub out: Option<&'a Path>,
    pub threads: Option<usize>,
    pub paths: SetPaths,
}

/// `facelive eval --pairs`.
pub fn eval(e: PairsEval) -> anyhow::Result<()> {
    let (root, rows) = read_pairs(e.pairs, e.paths)?;
    let table = e
        .pipeline
        .match_thresholds()
        .context("the model pack has no face embedder")?;
    let results = run_pairs(e.pipeline, &root, &rows, table.balanced, e.threads)?;
    let report = report(&results, table);
    let md = markdown(&report, e.pairs);
    print!("{md}");
    if let Some(dir) = e.out {
        std::fs::create_dir_all(dir)?;
        write_scores(&dir.join("pairs_scores.csv"), &results)?;
        std::fs::write(dir.join("pairs_report.md"), &md)?;
        std::fs::write(
            dir.join("pairs_report.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        let m = Matching::new(&comparisons(&results, &["genuine", "impostor"]));
        let points = m.curve();
        let svg = plot::det_svg_on(
            "Face verification: DET",
            &format!(
                "{} genuine and {} impostor pairs",
                report.genuine, report.impostor
            ),
            &[plot::Curve {
                name: "facelive",
                points: &points,
                colour: 0,
                dashed: false,
            }],
            &[],
            plot::Axes {
                x: "FMR, impostor pairs matched (%)",
                y: "FNMR, genuine pairs not matched (%)",
            },
        );
        std::fs::write(dir.join("pairs_det.svg"), &svg)?;
        std::fs::write(dir.join("pairs_det.png"), plot::png(&svg, 2.0)?)?;
    }
    Ok(())
}

fn report(results: &[PairResult], table: MatchThresholds) -> Report {
    let count = |k: &str| results.iter().filter(|r| r.row.kind == k).count();
    let m = Matching::new(&comparisons(results, &["genuine", "impostor"]));
    let (fta_genuine, fta_impostor) = m.failures_to_acquire();
    let attacks: Vec<&PairResult> = results.iter().filter(|r| r.row.kind == "attack").collect();
    let ok_attacks: Vec<&VerifyVerdict> = attacks
        .iter()
        .filter_map(|r| r.verdict.as_ref().ok())
        .collect();
    let genuine: Vec<&VerifyVerdict> = results
        .iter()
        .filter(|r| r.row.kind == "genuine")
        .filter_map(|r| r.verdict.as_ref().ok())
        .collect();
    let point = |p| match p {
        OperatingPoint::Weak => table.weak,
        OperatingPoint::Balanced => table.balanced,
        OperatingPoint::Strict => table.strict,
    };
    Report {
        pairs: results.len(),
        genuine: count("genuine"),
        impostor: count("impostor"),
        attack: attacks.len(),
        match_thresholds: table,
        at_operating_points: OperatingPoint::ALL
            .iter()
            .map(|&p| (p, m.at(point(p))))
            .collect(),
        fnmr_at_fmr: [0.01, 0.001]
            .iter()
            .map(|&f| {
                let t = m.threshold_for_fmr(f);
                (f, t, m.at(t))
            })
            .collect(),
        fta_genuine,
        fta_impostor,
        attack_matched: Rate::new(
            ok_attacks
                .iter()
                .filter(|v| v.same_person == Some(true))
                .count(),
            attacks.len(),
        ),
        attack_verified: Rate::new(
            ok_attacks
                .iter()
                .filter(|v| v.outcome == VerifyOutcome::Verified)
                .count(),
            attacks.len(),
        ),
        genuine_verified: Rate::new(genuine.iter().filter(|v| v.verified).count(), genuine.len()),
    }
}

fn pct(r: &Rate) -> String {
    format!(
        "{:.2}% ({}/{}, 95% CI {:.2}-{:.2}%)",
        100.0 * r.value,
        r.count,
        r.total,
        100.0 * r.ci_low,
        100.0 * r.ci_high
    )
}

fn markdown(r: &Report, source: &Path) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Liveness with verify: {}\n", source.display());
    let _ = writeln!(
        md,
        "{} pairs: {} genuine, {} impostor, {} attack (a presentation attack of a person against that person's reference).\n",
        r.pairs, r.genuine, r.impostor, r.attack
    );
    let _ = writeln!(
        md,
        "| operating point | match threshold | FMR | FNMR |\n|---|---|---|---|"
    );
    for (p, m) in &r.at_operating_points {
        let _ = writeln!(
            md,
            "| {} | {:.3} | {} | {} |",
            p.as_str(),
            m.threshold,
            pct(&m.fmr),
            pct(&m.fnmr)
        );
    }
    let _ = writeln!(
        md,
        "\n| target | threshold | FMR | FNMR |\n|---|---|---|---|"
    );
    for (f, t, m) in &r.fnmr_at_fmr {
        let _ = writeln!(
            md,
            "| FMR <= {}% | {t:.3} | {} | {} |",
            f * 100.0,
            pct(&m.fmr),
            pct(&m.fnmr)
        );
    }
    let _ = writeln!(
        md,
        "\nFailures to acquire (not in FMR or FNMR): genuine {}, impostor {}.\n",
        pct(&r.fta_genuine),
        pct(&r.fta_impostor)
    );
    let _ = writeln!(
        md,
        "Attack pairs whose faces match: {}; verified (live and matched): {}.\nGenuine pairs verified end to end (live and matched): {}.",
        pct(&r.attack_matched),
        pct(&r.attack_verified),
        pct(&r.genuine_verified)
    );
    md
}

fn write_scores(path: &Path, results: &[PairResult]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record([
        "a",
        "b",
        "same_person",
        "kind",
        "status",
        "similarity",
        "match_threshold",
        "live_score",
        "verified",
    ])?;
    let num = |v: Option<f32>| v.map_or(String::new(), |s| format!("{s:.5}"));
    for r in results {
        let v = r.verdict.as_ref().ok();
        w.write_record([
            dataset::csv_cell(&r.row.a),
            dataset::csv_cell(&r.row.b),
            r.row.same_person.to_string(),
            dataset::csv_cell(&r.row.kind),
            status(r),
            num(v.and_then(|v| v.similarity)),
            num(v.map(|v| v.match_threshold)),
            num(v.and_then(|v| v.liveness.live_score)),
            v.map_or(String::new(), |v| v.verified.to_string()),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// `facelive calibrate --pairs`: the match thresholds for target FMRs.
pub fn calibrate(
    pipeline: &Pipeline,
    pairs: &Path,
    targets: [f64; 3],
    threads: Option<usize>,
    paths: SetPaths,
) -> anyhow::Result<MatchThresholds> {
    let (root, rows) = read_pairs(pairs, paths)?;
    let results = run_pairs(pipeline, &root, &rows, 0.0, threads)?;
    let m = Matching::new(&comparisons(&results, &["genuine", "impostor"]));
    let mut chosen = [0f32; 3];
    for (i, (name, target)) in ["weak", "balanced", "strict"]
        .iter()
        .zip(targets)
        .enumerate()
    {
        let t = m.threshold_for_fmr(target);
        let r = m.at(t);
        println!(
            "{name:<9} target FMR <= {target}: match threshold {t:.4} (FMR {}, FNMR {})",
            pct(&r.fmr),
            pct(&r.fnmr)
        );
        chosen[i] = t;
    }
    anyhow::ensure!(
        chosen[0] <= chosen[1] && chosen[1] <= chosen[2],
        "the targets give thresholds out of order ({chosen:?}): weak's FMR target must be the loosest"
    );
    Ok(MatchThresholds {
        weak: chosen[0],
        balanced: chosen[1],
        strict: chosen[2],
    })
}
