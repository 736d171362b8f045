//! Configuration: flags, environment (`FACELIVE_*`) and an optional TOML file, in that
//! order of precedence, over documented defaults.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use std::sync::Arc;

use clap::parser::ValueSource;
use facelive_backends::{Backend, EngineKind, Engines, TractBackend};
use facelive_pipeline::{DetectMode, IngestOptions, PipelineConfig, QualityConfig, Thresholds};
use figment::providers::Serialized;
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Settings shared by every command that runs the pipeline. [`PipelineArgs::layered`] puts
/// the file under the flags and environment once, at start; every method then reads the
/// fields as they stand.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
// A key of the file that is no setting is refused by name.
#[serde(deny_unknown_fields)]
pub struct PipelineArgs {
    /// Directory holding the model files (see `facelive models list`).
    #[arg(long, env = "FACELIVE_MODELS_DIR", global = true, default_value = DEFAULT_MODELS_DIR)]
    pub models_dir: PathBuf,
    /// TOML configuration file (models_dir, max_pixels, max_side, detector_size, [thresholds],
    /// [quality], [serve]). Default: `facelive.toml` in the working directory, if present.
    #[arg(long, env = "FACELIVE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Refuse images with more pixels than this, from the header, before decoding.
    #[arg(long, env = "FACELIVE_MAX_PIXELS", global = true, default_value_t = IngestOptions::default().max_pixels)]
    pub max_pixels: u64,
    /// Largest working image side; larger photos are reduced while decoding.
    #[arg(long, env = "FACELIVE_MAX_SIDE", global = true, default_value_t = IngestOptions::default().max_side)]
    pub max_side: u32,
    /// Largest side the face detector sees (a multiple of 32).
    #[arg(long, env = "FACELIVE_DETECTOR_SIZE", global = true, default_value_t = PipelineConfig::new("").detector_size)]
    pub detector_size: usize,
    /// How the detector looks at an image: `two-pass` (a third-size pass finds the faces,
    /// a full-resolution pass around each gives its box; faster) or `full` (the whole image
    /// at the detector size, as the reference pipeline does).
    #[arg(long, env = "FACELIVE_DETECT_MODE", global = true, default_value_t = DetectMode::default())]
    pub detect_mode: DetectMode,
    /// Engine for the face detector: `tract` (pure Rust, built in) or `ort` (ONNX Runtime,
    /// loaded from libonnxruntime.so at run time; about 3x faster on the detector).
    #[arg(long, env = "FACELIVE_BACKEND", global = true, value_parser = engine, default_value_t = EngineKind::Tract)]
    pub backend: EngineKind,
    /// Engine for the anti-spoof models (default: tract, whatever `--backend` says: with
    /// facelive's PReLU rewrite it runs MiniFASNet faster than ONNX Runtime, see
    /// docs/BENCHMARKS.md).
    #[arg(long, env = "FACELIVE_JUDGE_BACKEND", global = true, value_parser = engine)]
    pub judge_backend: Option<EngineKind>,
    /// The ONNX Runtime library for `--backend ort` (default: libonnxruntime.so from the
    /// dynamic loader's search path).
    #[arg(long, env = "ORT_DYLIB_PATH", global = true)]
    pub ort_library: Option<PathBuf>,
    /// Anti-spoof models to run instead of the default pack's (comma-separated manifest
    /// names, e.g. a model registered with `facelive models add`); fused by their weights.
    #[arg(long, env = "FACELIVE_JUDGES", global = true, value_delimiter = ',')]
    pub judges: Vec<String>,
    /// The face embedder for liveness with verify instead of the pack's (a manifest name,
    /// e.g. one registered with `facelive models add`); its match thresholds come with it.
    #[arg(long, env = "FACELIVE_EMBEDDER", global = true)]
    pub embedder: Option<String>,
    /// An adapted pack's folder (`facelive adapt --out DIR`): its judges' features go through
    /// its head, with its thresholds (docs/ADAPT.md). Default: the built-in pack.
    #[arg(long, env = "FACELIVE_PACK", global = true)]
    pub pack: Option<PathBuf>,
    /// ONNX Runtime threads inside one model run (facelive runs requests in parallel).
    #[arg(long, env = "FACELIVE_ORT_THREADS", global = true, default_value_t = 1)]
    pub ort_threads: usize,
    /// The file's `[thresholds]`, `[quality]` and `[serve]`, read with the rest of it.
    #[arg(skip)]
    #[serde(skip)]
    pub sections: Sections,
}

/// The file's sections that are not flags of their own.
#[derive(Debug, Clone, Default)]
pub struct Sections {
    pub thresholds: Option<Thresholds>,
    /// `[match_thresholds]`: the embedder's cosine thresholds (`calibrate --pairs`).
    pub match_thresholds: Option<facelive_pipeline::MatchThresholds>,
    pub quality: Option<QualityConfig>,
    /// `[serve]`: layered over `facelive serve`'s settings the same way.
    pub serve: Option<toml::Table>,
}

/// `--backend` and `--judge-backend`: one of the build's engines, by name.
fn engine(name: &str) -> Result<EngineKind, String> {
    EngineKind::parse(name).ok_or_else(|| {
        let names: Vec<&str> = EngineKind::ALL.iter().map(|e| e.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

pub const DEFAULT_CONFIG_FILE: &str = "facelive.toml";
pub const DEFAULT_MODELS_DIR: &str = "models";

/// Whether any of `matches` (the command's, a subcommand's) had `id` from the command line
/// or the environment.
pub fn given(matches: &[&clap::ArgMatches], id: &str) -> bool {
    matches.iter().any(|m| {
        matches!(
            m.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    })
}

/// `all` (a settings struct serialised) keeping only what `matches` say was given.
pub fn only_given<T: Serialize>(
    all: &T,
    matches: &[&clap::ArgMatches],
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(all)? {
        serde_json::Value::Object(map) => {
            Ok(map.into_iter().filter(|(k, _)| given(matches, k)).collect())
        }
        _ => anyhow::bail!("settings serialise to a map"),
    }
}

impl PipelineArgs {
    /// The settings with the config file layered in: defaults, then the file, then the
    /// flags and environment variables `matches` say were given. The file is read here,
    /// once.
    pub fn layered(self, matches: &[&clap::ArgMatches]) -> anyhow::Result<Self> {
        let Some((path, mut table)) = self.read_file()? else {
            return Ok(self);
        };
        let section = |t: &mut toml::Table, k: &str| t.remove(k);
        let sections = Sections {
            thresholds: section(&mut table, "thresholds")
                .map(|v| v.try_into())
                .transpose()
                .with_context(|| format!("[thresholds] in {}", path.display()))?,
            match_thresholds: section(&mut table, "match_thresholds")
                .map(|v| v.try_into())
                .transpose()
                .with_context(|| format!("[match_thresholds] in {}", path.display()))?,
            quality: section(&mut table, "quality")
                .map(|v| v.try_into())
                .transpose()
                .with_context(|| format!("[quality] in {}", path.display()))?,
            serve: section(&mut table, "serve")
                .map(|v| v.try_into())
                .transpose()
                .with_context(|| format!("[serve] in {}", path.display()))?,
        };
        relative_to_file(&mut table, &path);
        let given = only_given(&self, matches)?;
        let mut merged: Self = Figment::from(Serialized::defaults(&self))
            .merge(Serialized::defaults(table))
            .merge(Serialized::defaults(given))
            .extract()
            .with_context(|| format!("config file {}", path.display()))?;
        merged.sections = sections;
        Ok(merged)
    }

    /// The file `--config` names, or `facelive.toml` here if there is one.
    fn read_file(&self) -> anyhow::Result<Option<(PathBuf, toml::Table)>> {
        let (path, required) = match &self.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        if !required && !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))?;
        Ok(Some((path, table)))
    }

    /// The manifest: built-in, the models registered in the models directory, and the
    /// judges `--judges` names, or the adapted pack `--pack` names.
    pub fn manifest(&self) -> anyhow::Result<facelive_models::Manifest> {
        let judges = &self.judges;
        let mut m = facelive_models::Manifest::with_local(&self.models_dir)?;
        if let Some(e) = &self.embedder {
            m = m.with_embedder(e)?;
        }
        match self.adapted_pack()? {
            Some((dir, pack)) => {
                anyhow::ensure!(
                    judges.is_empty(),
                    "--judges and --pack both choose the judges: give one"
                );
                Ok(pack.apply(m, &dir)?)
            }
            None => Ok(m.with_judges(judges)?),
        }
    }

    /// The adapted pack `--pack` (or `FACELIVE_PACK`, or `pack` in the file) names, read.
    pub fn adapted_pack(&self) -> anyhow::Result<Option<(PathBuf, facelive_models::AdaptedPack)>> {
        let Some(dir) = self.pack.clone() else {
            return Ok(None);
        };
        let pack = facelive_models::AdaptedPack::load(&dir)
            .with_context(|| format!("reading the adapted pack in {}", dir.display()))?;
        Ok(Some((dir, pack)))
    }

    pub fn pipeline_config(&self) -> anyhow::Result<PipelineConfig> {
        let file = &self.sections;
        let mut cfg = PipelineConfig::new(self.models_dir.clone());
        cfg.ingest.max_pixels = self.max_pixels;
        cfg.ingest.max_side = self.max_side;
        cfg.detector_size = self.detector_size;
        cfg.detect_mode = self.detect_mode;
        // An adapted pack's thresholds were calibrated for its scores: they replace the
        // file's, which were chosen for another pack's.
        cfg.thresholds = match self.adapted_pack()? {
            Some((_, p)) => {
                if file.thresholds.is_some() {
                    tracing::warn!(
                        "the adapted pack's thresholds replace [thresholds] of the config file"
                    );
                }
                let t = p.thresholds;
                Thresholds {
                    weak: t.weak,
                    balanced: t.balanced,
                    strict: t.strict,
                }
            }
            None => file.thresholds.unwrap_or_default(),
        };
        cfg.quality = file.quality.clone().unwrap_or_default();
        cfg.match_thresholds = file.match_thresholds;
        Ok(cfg)
    }

    /// The engines chosen for the detector and the judges, from flags, environment and file.
    pub fn engine_choice(&self) -> anyhow::Result<(EngineKind, EngineKind)> {
        Ok((
            self.backend,
            self.judge_backend.unwrap_or(EngineKind::Tract),
        ))
    }

    /// The engines that run the detector and the judges, loaded.
    pub fn engines(&self) -> anyhow::Result<Engines> {
        let (backend, judge_backend) = self.engine_choice()?;
        let ort = OrtSettings {
            library: self.ort_library.clone(),
            threads: self.ort_threads,
        };
        let detector = ort.backend(backend)?;
        let judge = if judge_backend == backend {
            detector.clone()
        } else {
            ort.backend(judge_backend)?
        };
        Ok(Engines { detector, judge })
    }
}

/// A relative folder in a file is relative to that file.
fn relative_to_file(table: &mut toml::Table, file: &Path) {
    let base = file.parent().unwrap_or(Path::new("."));
    for key in ["models_dir", "pack"] {
        if let Some(toml::Value::String(d)) = table.get_mut(key) {
            if Path::new(d.as_str()).is_relative() {
                *d = base.join(&*d).to_string_lossy().into_owned();
            }
        }
    }
}

struct OrtSettings {
    library: Option<PathBuf>,
    threads: usize,
}

impl OrtSettings {
    fn backend(&self, kind: EngineKind) -> anyhow::Result<Arc<dyn Backend>> {
        match kind {
            EngineKind::Tract => Ok(Arc::new(TractBackend)),
            #[cfg(feature = "ort")]
            EngineKind::Ort => {
                let opts = facelive_backends::OrtOptions {
                    library: self.library.clone(),
                    intra_threads: self.threads,
                    ..Default::default()
                };
                Ok(Arc::new(facelive_backends::OrtBackend::new(opts)?))
            }
            #[cfg(not(feature = "ort"))]
            EngineKind::Ort => anyhow::bail!(
                "this facelive was built without ONNX Runtime support (cargo feature `ort`)"
            ),
        }
    }
}
