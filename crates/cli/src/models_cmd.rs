//! `facelive models list | verify | pull`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use facelive_models::{pull, verify, FileStatus, Manifest, PullOutcome};

use crate::config::PipelineArgs;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every model of the manifest: role, file, licence, sha256, upstream URL.
    List,
    /// Check that model files are present with the right size and sha256 (default: the pack).
    Verify {
        /// Model names (default: the models of the default pack).
        names: Vec<String>,
    },
    /// Download missing or damaged model files, verify their sha256, install atomically.
    Pull {
        /// Model names (default: the models of the default pack).
        names: Vec<String>,
        /// Fetch `{mirror}/{file}` instead of the upstream URLs.
        #[arg(long, env = "FACELIVE_MODELS_MIRROR")]
        mirror: Option<String>,
        /// Time allowed for each download, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
}

pub fn run(args: &PipelineArgs, cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::builtin();
    let dir = args.models_dir()?;
    match cmd {
        ModelsCommand::List => {
            println!(
                "pack {} {}: detector {}, judges {}",
                manifest.pack.name,
                manifest.pack.version,
                manifest.pack.detector,
                manifest.pack.judges.join(", ")
            );
            println!("models directory: {}", dir.display());
            let (detector, judges) = args.engine_choice()?;
            println!(
                "engines: detector {}, judges {}",
                detector.as_str(),
                judges.as_str()
            );
            for m in &manifest.models {
                let in_pack = manifest.pack_models().iter().any(|p| p.name == m.name);
                println!(
                    "\n{}{}\n  file     {} ({} bytes)\n  role     {} ({})\n  licence  {}\n  sha256   {}\n  url      {}",
                    m.name,
                    if in_pack { "  [default pack]" } else { "" },
                    m.file,
                    m.bytes,
                    m.role,
                    m.family,
                    m.license,
                    m.sha256,
                    m.url
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify { names } => {
            let specs = manifest.select(&names)?;
            let mut bad = 0;
            for (spec, status) in verify(&dir, &specs) {
                if status != FileStatus::Ok {
                    bad += 1;
                }
                println!("{:<28} {}", spec.name, status);
            }
            if bad > 0 {
                eprintln!(
                    "{bad} model file(s) in {} are missing or wrong; run `facelive models pull`",
                    dir.display()
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Pull {
            names,
            mirror,
            timeout,
        } => {
            let specs = manifest.select(&names)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(pull(
                &dir,
                &specs,
                mirror.as_deref(),
                Duration::from_secs(timeout),
            ))?;
            let mut failed = 0;
            for (name, outcome) in report {
                match outcome {
                    Ok(PullOutcome::AlreadyPresent) => println!("{name:<28} ok (already present)"),
                    Ok(PullOutcome::Downloaded { bytes }) => {
                        println!("{name:<28} downloaded {bytes} bytes, sha256 ok")
                    }
                    Err(e) => {
                        failed += 1;
                        println!("{name:<28} FAILED: {e}");
                    }
                }
            }
            println!("models directory: {}", dir.display());
            let (detector, judges) = args.engine_choice()?;
            println!(
                "engines: detector {}, judges {}",
                detector.as_str(),
                judges.as_str()
            );
            Ok(if failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
