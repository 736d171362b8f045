//! `facelive verify SELFIE REFERENCE`: liveness with verify on two files. The selfie is
//! judged; the face judged is the face matched against the reference's largest face.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use facelive_pipeline::{MatchRule, Reference, VerifyOutcome, VerifyVerdict};
use serde::Serialize;

use crate::check::DecisionArgs;
use crate::config::PipelineArgs;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The selfie: judged for liveness, its largest face matched.
    pub selfie: PathBuf,
    /// The reference photo of the claimed person (an ID photo): its largest face.
    pub reference: PathBuf,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// Cosine similarity at or above which the faces are the same person (-1..1);
    /// overrides the operating point's.
    #[arg(long, env = "FACELIVE_MATCH_THRESHOLD")]
    pub match_threshold: Option<f32>,
}

/// The exit status of each outcome (docs/CLI.md): 0 verified, 3 attack, 4 retry, 6 not
/// the same person; 5 when an image cannot be read or decoded.
fn exit_code(o: VerifyOutcome) -> u8 {
    match o {
        VerifyOutcome::Verified => 0,
        VerifyOutcome::Attack => 3,
        VerifyOutcome::Retry => 4,
        VerifyOutcome::NotSamePerson => 6,
    }
}

#[derive(Serialize)]
struct Record<'a> {
    selfie: String,
    reference: String,
    #[serde(flatten)]
    verdict: &'a VerifyVerdict,
}

#[derive(Serialize)]
struct ErrorRecord {
    selfie: String,
    reference: String,
    outcome: &'static str,
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: &'static str,
    message: String,
}

pub fn run(args: &PipelineArgs, a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let pipeline = crate::load_pipeline(args)?;
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (selfie, reference) = (read(&a.selfie)?, read(&a.reference)?);
    let opts = a.decision.options(None);
    let rule = MatchRule::new(a.match_threshold)?;
    let names = (
        a.selfie.display().to_string(),
        a.reference.display().to_string(),
    );
    match pipeline.verify(&selfie, Reference::Image(&reference), &opts, rule) {
        Ok(v) => {
            if a.json {
                let r = Record {
                    selfie: names.0,
                    reference: names.1,
                    verdict: &v,
                };
                println!("{}", serde_json::to_string(&r)?);
            } else {
                print_verdict(&names.0, &names.1, &v);
            }
            Ok(ExitCode::from(exit_code(v.outcome)))
        }
        Err(e) => {
            if a.json {
                let r = ErrorRecord {
                    selfie: names.0,
                    reference: names.1,
                    outcome: "error",
                    error: ErrorDetail {
                        code: e.code(),
                        message: e.to_string(),
                    },
                };
                println!("{}", serde_json::to_string(&r)?);
            } else {
                eprintln!("facelive: {}: {e} ({})", names.0, e.code());
            }
            Ok(ExitCode::from(5))
        }
    }
}

fn print_verdict(selfie: &str, reference: &str, v: &VerifyVerdict) {
    let sim = v.similarity.map_or("-".to_string(), |s| format!("{s:.3}"));
    println!(
        "{selfie} vs {reference}: {} (similarity {sim}, match at >= {:.3})",
        v.outcome.as_str().to_uppercase(),
        v.match_threshold
    );
    let l = &v.liveness;
    let live = l.live_score.map_or("-".to_string(), |s| format!("{s:.3}"));
    println!(
        "  liveness  {} score {live} (threshold {:.3})",
        l.outcome.as_str(),
        l.threshold
    );
    if let (Some(which), Some(reason)) = (v.retry_image, v.retry_reason) {
        println!(
            "  retry     the {} image: {reason}",
            match which {
                facelive_pipeline::WhichImage::Image => "selfie",
                facelive_pipeline::WhichImage::Reference => "reference",
            }
        );
    }
}
