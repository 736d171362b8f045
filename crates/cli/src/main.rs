//! `facelive`: self-hosted passive face liveness.

mod adapt;
mod bench;
mod check;
mod config;
mod dataset;
mod endpoint;
mod eval;
#[cfg(feature = "fine-tune")]
mod finetune;
mod models_cmd;
mod pairs;
mod serve;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use facelive_pipeline::Pipeline;

use crate::config::PipelineArgs;

/// mimalloc keeps freed pages for reuse. With glibc's malloc, tract's per-run tensors (tens
/// of MB for a detector pass) went back to the kernel and were faulted in again on the next
/// run: a 640x480 image's detection took 60-70 ms in the server instead of 20.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off for this process. mimalloc asks for them on its arenas; each
/// page it later frees and touches again then comes back as a fresh 2 MB page the kernel
/// zeroes whole: 0.9-1.2 s of kernel time in a 3-pass `facelive bench` of the dev set
/// (0.3 s without), and the first large photo took 290-405 ms instead of about 120
/// (docs/BENCHMARKS.md). What MIMALLOC_ALLOW_THP=0 does, which only works if set before
/// the process starts.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process; no memory is touched.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[derive(Parser)]
#[command(
    name = "facelive",
    version,
    about = "Self-hosted passive face liveness"
)]
struct Cli {
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge the largest face of each image: live, spoof, or retry (cannot judge).
    Check(check::CheckArgs),
    /// Liveness with verify: is the live face in SELFIE the person in REFERENCE?
    Verify(verify::VerifyArgs),
    /// List, verify or download the model files.
    #[command(subcommand)]
    Models(models_cmd::ModelsCommand),
    /// Measure per-image latency and throughput over a labelled set or folder.
    Bench(bench::BenchArgs),
    /// Evaluate over a labelled set: APCER per species, BPCER, ACER, EER, BPCER@APCER.
    Eval(eval::EvalArgs),
    /// Choose the weak, balanced and strict thresholds for target APCERs on a labelled set.
    Calibrate(eval::CalibrateArgs),
    /// Adapt the judges to your own labelled captures, with grouped cross-validated
    /// evidence; writes an adapted pack only when it beats the base pack out of fold.
    Adapt(adapt::AdaptArgs),
    /// Serve the native API and the NHN, Accura, JCV and SpoofSense dialects over HTTP.
    Serve(serve::ServeArgs),
}

/// A build for x86-64-v3 (.cargo/config.toml) on a CPU without AVX2 or FMA would die on an
/// illegal instruction somewhere inside inference; say so at start instead.
fn cpu_supported() -> Result<(), &'static str> {
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
    {
        return Err(
            "this facelive build needs a CPU with AVX2 and FMA (x86-64-v3); \
                    rebuild with RUSTFLAGS=\"-C target-cpu=x86-64\"",
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    if let Err(e) = cpu_supported() {
        eprintln!("facelive: {e}");
        return ExitCode::from(1);
    }
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    // Global flags may be given after the subcommand: look in both places.
    let mut given = vec![&matches];
    given.extend(matches.subcommand().map(|(_, sub)| sub));
    cli.pipeline = match cli.pipeline.layered(&given) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("facelive: {e:#}");
            return ExitCode::from(1);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FACELIVE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Check(args) => check::run(&cli.pipeline, args),
        Command::Verify(args) => verify::run(&cli.pipeline, args),
        Command::Models(cmd) => models_cmd::run(&cli.pipeline, cmd),
        Command::Bench(args) => bench::run(&cli.pipeline, args),
        Command::Eval(args) => eval::run(&cli.pipeline, args),
        Command::Calibrate(args) => eval::calibrate(&cli.pipeline, args),
        Command::Adapt(args) => adapt::run(&cli.pipeline, args),
        Command::Serve(args) => {
            let sub = matches
                .subcommand_matches("serve")
                .expect("serve was parsed");
            serve::run(&cli.pipeline, args, sub)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("facelive: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Loads the default pack from the configured models directory.
pub(crate) fn load_pipeline(args: &PipelineArgs) -> anyhow::Result<Arc<Pipeline>> {
    let cfg = args.pipeline_config()?;
    let dir = cfg.models_dir.clone();
    let pipeline = Pipeline::load(cfg, &args.manifest()?, args.engines()?).with_context(|| {
        format!(
            "loading models from {} (set --models-dir or FACELIVE_MODELS_DIR, or run \
                 `facelive models pull`)",
            dir.display()
        )
    })?;
    Ok(Arc::new(pipeline))
}
