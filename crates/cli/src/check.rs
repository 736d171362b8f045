//! `facelive check`: one verdict per image, readable or as JSON lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use facelive_pipeline::{
    BBox, CheckOptions, DecisionRule, OperatingPoint, Outcome, Pipeline, PipelineError,
    RetryReason, Verdict,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::config::PipelineArgs;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// One JSON object per image, one per line, in input order.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// Explicit live-score threshold (0..1); overrides the operating point.
    #[arg(long, conflicts_with = "operating_point")]
    pub threshold: Option<f32>,
    /// Skip detection and judge this region: X,Y,W,H in original pixels after EXIF
    /// orientation.
    #[arg(long = "box", value_name = "X,Y,W,H", value_parser = parse_box)]
    pub face_box: Option<BBox>,
    /// Images judged at once (default: the number of cores).
    #[arg(long, env = "FACELIVE_THREADS")]
    pub threads: Option<usize>,
}

/// How `check` and `verify` decide: the operating point and the EXIF orientation.
#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// Named operating point (`verify`: for the liveness and the match thresholds alike).
    #[arg(
        long,
        value_name = "weak|balanced|strict",
        default_value = "balanced",
        env = "FACELIVE_OPERATING_POINT"
    )]
    pub operating_point: OperatingPoint,
    /// Do not apply the EXIF orientation (`verify`: to either image).
    #[arg(long)]
    pub no_auto_rotate: bool,
}

impl DecisionArgs {
    /// The pipeline's options: decided by `threshold` when given, else the operating point.
    pub fn options(&self, threshold: Option<f32>) -> CheckOptions {
        CheckOptions {
            rule: threshold.map_or(
                DecisionRule::Point(self.operating_point),
                DecisionRule::Threshold,
            ),
            auto_rotate: self.no_auto_rotate.then_some(false),
            ..Default::default()
        }
    }
}

fn parse_box(s: &str) -> Result<BBox, String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|e| format!("{p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match v[..] {
        [x, y, width, height] if v.iter().all(|f| f.is_finite()) => Ok(BBox {
            x,
            y,
            width,
            height,
        }),
        _ => Err("expected four numbers X,Y,W,H".into()),
    }
}

/// What became of one image: the verdict's outcome, or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordOutcome {
    Error,
    #[serde(untagged)]
    Verdict(Outcome),
}

impl From<Outcome> for RecordOutcome {
    fn from(o: Outcome) -> Self {
        RecordOutcome::Verdict(o)
    }
}

impl RecordOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOutcome::Verdict(o) => o.as_str(),
            RecordOutcome::Error => "error",
        }
    }

    /// The process exit code it asks for (the highest of all images applies).
    fn exit_code(self) -> u8 {
        match self {
            RecordOutcome::Verdict(Outcome::Live) => 0,
            RecordOutcome::Verdict(Outcome::Spoof) => 3,
            RecordOutcome::Verdict(Outcome::Retry) => 4,
            RecordOutcome::Error => 5,
        }
    }
}

/// The stable `--json` record (docs/CLI.md).
#[derive(Debug, Serialize)]
pub struct Record {
    pub file: String,
    pub outcome: RecordOutcome,
    pub live_score: Option<f32>,
    pub threshold: f32,
    pub operating_point: Option<OperatingPoint>,
    pub retry_reason: Option<RetryReason>,
    pub face: Option<facelive_pipeline::JudgedFace>,
    pub faces: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictDetail>,
    pub error: Option<ErrorRecord>,
}

#[derive(Debug, Serialize)]
pub struct VerdictDetail {
    pub per_model: Vec<facelive_pipeline::ModelScore>,
    pub other_faces: Vec<facelive_pipeline::Face>,
    pub image: facelive_pipeline::ImageInfo,
    pub quality: Vec<facelive_pipeline::QualityCheck>,
    pub timings: facelive_pipeline::Timings,
    pub model_pack: facelive_pipeline::ModelPack,
}

#[derive(Debug, Serialize)]
pub struct ErrorRecord {
    pub code: &'static str,
    pub message: String,
}

impl Record {
    pub fn new(
        file: String,
        res: Result<Verdict, PipelineError>,
        threshold: f32,
        opts: &CheckOptions,
    ) -> Self {
        match res {
            Ok(v) => Record {
                file,
                outcome: v.outcome.into(),
                live_score: v.live_score,
                threshold: v.threshold,
                operating_point: v.operating_point,
                retry_reason: v.retry_reason,
                // A box given with --box counts as the one face.
                faces: if opts.face_box.is_some() {
                    1
                } else {
                    v.faces.len()
                },
                face: v.face,
                verdict: Some(VerdictDetail {
                    per_model: v.per_model,
                    other_faces: v.faces.into_iter().skip(1).collect(),
                    image: v.image,
                    quality: v.quality,
                    timings: v.timings,
                    model_pack: v.model_pack,
                }),
                error: None,
            },
            Err(e) => Record {
                file,
                outcome: RecordOutcome::Error,
                live_score: None,
                threshold,
                operating_point: opts.rule.operating_point(),
                retry_reason: None,
                face: None,
                faces: 0,
                verdict: None,
                error: Some(ErrorRecord {
                    code: e.code(),
                    message: e.to_string(),
                }),
            },
        }
    }
}

pub fn check_file(pipeline: &Pipeline, path: &PathBuf, opts: &CheckOptions) -> Record {
    let threshold = opts.rule.threshold(&pipeline.config().thresholds);
    let file = path.display().to_string();
    let res = match std::fs::read(path) {
        Ok(bytes) => pipeline.check(&bytes, opts),
        Err(e) => {
            return Record {
                error: Some(ErrorRecord {
                    code: "unreadable_file",
                    message: format!("cannot read the file: {e}"),
                }),
                ..Record::new(file, Err(PipelineError::EmptyInput), threshold, opts)
            }
        }
    };
    Record::new(file, res, threshold, opts)
}

pub fn run(args: &PipelineArgs, a: CheckArgs) -> anyhow::Result<ExitCode> {
    let pipeline = crate::load_pipeline(args)?;
    let opts = CheckOptions {
        face_box: a.face_box,
        ..a.decision.options(a.threshold)
    };
    if let Some(t) = a.threshold {
        anyhow::ensure!((0.0..=1.0).contains(&t), "--threshold must be within 0..1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()?;
    let records: Vec<Record> = pool.install(|| {
        a.images
            .par_iter()
            .map(|p| check_file(&pipeline, p, &opts))
            .collect()
    });
    let mut out = std::io::stdout().lock();
    for r in &records {
        if a.json {
            serde_json::to_writer(&mut out, r)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", summary(r))?;
        }
    }
    Ok(exit_code(&records))
}

/// 0: every image live; 3: some judged an attack; 4: some could not be judged (retry);
/// 5: some failed (error). The highest applies.
pub fn exit_code(records: &[Record]) -> ExitCode {
    let worst = records
        .iter()
        .map(|r| r.outcome.exit_code())
        .max()
        .unwrap_or(0);
    ExitCode::from(worst)
}

fn summary(r: &Record) -> String {
    let mut s = format!("{}: ", r.file);
    if let Some(e) = &r.error {
        s += &format!("ERROR {} — {}", e.code, e.message);
        return s;
    }
    s += &decision_line(r);
    if let Some(f) = &r.face {
        let b = f.bbox;
        s += &format!(
            "\n  face      {:.0},{:.0} {:.0}x{:.0} px",
            b.x, b.y, b.width, b.height
        );
        if let Some(d) = f.detection_score {
            s += &format!(", detection {d:.2}");
        }
        s += &format!(", {} face(s) found", r.faces);
    }
    if let Some(v) = &r.verdict {
        s += &detail_lines(v);
    }
    s
}

/// `LIVE score 0.912 >= 0.500 (balanced)`, or why the image cannot be judged.
fn decision_line(r: &Record) -> String {
    let point = r
        .operating_point
        .map(|p| format!(" ({})", p.as_str()))
        .unwrap_or_default();
    match r.live_score {
        Some(score) => {
            let cmp = if score >= r.threshold { ">=" } else { "<" };
            format!(
                "{} score {score:.3} {cmp} {:.3}{point}",
                r.outcome.as_str().to_uppercase(),
                r.threshold
            )
        }
        None => format!(
            "RETRY ({}) — cannot judge this image",
            r.retry_reason.map_or("unknown", RetryReason::as_str)
        ),
    }
}

/// The image, per-model scores, quality and timings lines.
fn detail_lines(v: &VerdictDetail) -> String {
    let i = &v.image;
    let mut s = format!(
        "\n  image     {} {}x{}{}",
        i.format.name(),
        i.width,
        i.height,
        if i.orientation_applied {
            format!(", EXIF orientation {} applied", i.exif_orientation)
        } else {
            String::new()
        }
    );
    if !v.per_model.is_empty() {
        let per: Vec<String> = v
            .per_model
            .iter()
            .map(|m| format!("{} {:.3}", m.model, m.live_score))
            .collect();
        s += &format!("\n  models    {}", per.join(", "));
    }
    let failed: Vec<String> = v
        .quality
        .iter()
        .filter(|c| !c.pass)
        .map(failed_check)
        .collect();
    if failed.is_empty() {
        s += &format!("\n  quality   all {} checks pass", v.quality.len());
    } else {
        s += &format!("\n  quality   {}", failed.join("\n            "));
    }
    let t = &v.timings;
    s += &format!(
        "\n  timings   decode {:.1} ms, detect {:.1} ms, judge {:.1} ms, total {:.1} ms",
        t.decode_ms, t.detect_ms, t.judge_ms, t.total_ms
    );
    s
}

/// `FAIL sharpness 12 (>= 40): hold still`.
fn failed_check(c: &facelive_pipeline::QualityCheck) -> String {
    let bounds = match (c.min, c.max) {
        (Some(lo), Some(hi)) => format!("{} to {}", num(lo), num(hi)),
        (Some(lo), None) => format!(">= {}", num(lo)),
        (None, Some(hi)) => format!("<= {}", num(hi)),
        (None, None) => String::new(),
    };
    let level = if c.blocks() { "FAIL" } else { "warn" };
    format!("{level} {} {} ({bounds}): {}", c.name, num(c.value), c.hint)
}

/// A measured value, with as many decimals as its size needs.
fn num(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
