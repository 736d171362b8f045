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
    /// Register your own anti-spoof model: FILE is copied into the models directory with
    /// its sha256, SPEC (a manifest entry: name, licence, input, judge; docs/MODELS.md) is
    /// checked, and the model is run once. Then `--judges NAME` runs it (eval, calibrate,
    /// check, serve).
    Add {
        file: std::path::PathBuf,
        #[arg(long)]
        spec: std::path::PathBuf,
    },
}

pub fn run(args: &PipelineArgs, cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    let dir = args.models_dir.clone();
    let manifest = args.manifest()?;
    match cmd {
        ModelsCommand::Add { file, spec } => add(args, &dir, &file, &spec),
        ModelsCommand::List => list(args, &manifest),
        ModelsCommand::Verify { names } => verify_files(args, &manifest, &names),
        ModelsCommand::Pull {
            names,
            mirror,
            timeout,
        } => pull_files(args, &manifest, &names, mirror.as_deref(), timeout),
    }
}

/// The engines line every listing ends or starts with.
fn print_engines(args: &PipelineArgs) -> anyhow::Result<()> {
    let (detector, judges) = args.engine_choice()?;
    println!(
        "engines: detector {}, judges {}",
        detector.as_str(),
        judges.as_str()
    );
    Ok(())
}

/// `models list`: the pack, then every model with its file, role, licence and origin.
fn list(args: &PipelineArgs, manifest: &Manifest) -> anyhow::Result<ExitCode> {
    println!(
        "pack {} {}: detector {}, judges {}",
        manifest.pack.name,
        manifest.pack.version,
        manifest.pack.detector,
        manifest.pack.judges.join(", ")
    );
    println!("models directory: {}", args.models_dir.display());
    print_engines(args)?;
    for m in &manifest.models {
        let in_pack = manifest.pack_models().iter().any(|p| p.name == m.name);
        println!(
            "\n{}{}\n  file     {} ({} bytes)\n  role     {} ({})\n  licence  {}\n  sha256   {}\n  url      {}",
            m.name,
            if in_pack { "  [default pack]" } else { "" },
            m.file,
            m.bytes,
            m.role.as_str(),
            m.family.as_str(),
            m.license,
            m.sha256,
            m.url
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `models verify`: every file's sha256, and an adapted pack's fit to its judges.
fn verify_files(
    args: &PipelineArgs,
    manifest: &Manifest,
    names: &[String],
) -> anyhow::Result<ExitCode> {
    let dir = &args.models_dir;
    let specs = manifest.select(names)?;
    let mut bad = 0;
    for (spec, status) in verify(dir, &specs) {
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
    if let Some((pack_dir, pack)) = args.adapted_pack()? {
        // The files are the ones it was trained on (checked when the manifest was
        // made); its head must also fit the judges' features.
        crate::load_pipeline(args)?;
        println!(
            "pack {} {} ({}): adapted from {}, {} head inputs, fits its judges{}",
            pack.pack.name,
            pack.pack.version,
            pack_dir.display(),
            pack.pack.base,
            pack.head.weights.len(),
            if pack.pack.forced {
                "; FORCED: it did not beat the base pack out of fold"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `models pull`: downloads what is missing, each file checked against its sha256.
fn pull_files(
    args: &PipelineArgs,
    manifest: &Manifest,
    names: &[String],
    mirror: Option<&str>,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    let dir = &args.models_dir;
    let specs = manifest.select(names)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(pull(dir, &specs, mirror, Duration::from_secs(timeout)))?;
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
    print_engines(args)?;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Loads and runs once the pack with `name` as what it declares: a judge in place of the
/// pack's, or the pack's embedder.
fn try_model(args: &PipelineArgs, name: &str, embedder: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let m = args.manifest()?;
    let m = match embedder {
        true => m.with_embedder(name)?,
        false => m.with_judges(&[name.to_string()])?,
    };
    facelive_pipeline::Pipeline::load(args.pipeline_config()?, &m, args.engines()?)
        .and_then(|p| p.warm_up())
        .context("it does not run as declared")
}

/// `models add`: the entry completed with the file's name, size and sha256, registered,
/// then loaded and run once; a model that does not run is unregistered again.
fn add(
    args: &PipelineArgs,
    dir: &std::path::Path,
    file: &std::path::Path,
    spec: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    use sha2::Digest;
    let text =
        std::fs::read_to_string(spec).with_context(|| format!("reading {}", spec.display()))?;
    let mut entry: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", spec.display()))?;
    let name = entry
        .get("name")
        .and_then(|v| v.as_str())
        .context("the spec needs a name")?
        .to_string();
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let stored = format!("{name}.onnx");
    for (k, v) in [
        ("file", toml::Value::from(stored.clone())),
        ("bytes", toml::Value::from(bytes.len() as i64)),
        (
            "sha256",
            toml::Value::from(format!("{:x}", sha2::Sha256::digest(&bytes))),
        ),
    ] {
        entry.insert(k.into(), v);
    }
    for (k, v) in [("family", "classifier"), ("role", "judge"), ("url", "")] {
        entry.entry(k).or_insert_with(|| toml::Value::from(v));
    }
    let embedder = entry.get("role").and_then(|v| v.as_str()) == Some("embedder");
    anyhow::ensure!(
        facelive_models::valid_name(&name),
        "model name {name:?}: use 1-64 of A-Z a-z 0-9 . _ -, not starting with a dot"
    );
    let target = dir.join(&stored);
    anyhow::ensure!(!target.exists(), "{} already exists", target.display());
    let local = dir.join(facelive_models::LOCAL_MANIFEST);
    let before = std::fs::read_to_string(&local).ok();
    let registered = Manifest::register_local(dir, entry)
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(std::fs::copy(file, &target).map(drop)?))
        .and_then(|()| try_model(args, &name, embedder));
    if let Err(e) = registered {
        // Whatever step failed, the directory is left as it was found.
        let _ = std::fs::remove_file(&target);
        match before {
            Some(b) => std::fs::write(&local, b)?,
            None if local.exists() => std::fs::remove_file(&local)?,
            None => {}
        }
        return Err(e.context(format!("{name} not registered")));
    }
    let flag = if embedder { "--embedder" } else { "--judges" };
    println!(
        "registered {name} in {}; run it with {flag} {name}",
        local.display()
    );
    Ok(ExitCode::SUCCESS)
}
