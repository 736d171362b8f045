//! Configuration: flags, environment (`FACELIVE_*`) and an optional TOML file, in that
//! order of precedence, over documented defaults.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use std::sync::Arc;

use facelive_backends::{Backend, EngineKind, Engines, TractBackend};
use facelive_pipeline::{DetectMode, IngestOptions, PipelineConfig, QualityConfig, Thresholds};
use serde::Deserialize;

/// Settings shared by every command that runs the pipeline.
#[derive(Debug, Clone, Args)]
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
    /// How the detector looks at an image: `full` (the whole image at the detector size) or
    /// `two-pass` (a quarter-size pass finds the face, a full-resolution pass around it
    /// gives the box).
    #[arg(long, env = "FACELIVE_DETECT_MODE", global = true, default_value_t = DetectMode::default())]
    pub detect_mode: DetectMode,
    /// Engine for the face detector: `tract` (pure Rust, built in) or `ort` (ONNX Runtime,
    /// loaded from libonnxruntime.so at run time; about 3x faster on the detector).
    #[arg(long, env = "FACELIVE_BACKEND", global = true, value_enum, default_value_t = Engine::Tract)]
    pub backend: Engine,
    /// Engine for the anti-spoof models (default: tract, whatever `--backend` says: with
    /// facelive's PReLU rewrite it runs MiniFASNet faster than ONNX Runtime, see
    /// docs/BENCHMARKS.md).
    #[arg(long, env = "FACELIVE_JUDGE_BACKEND", global = true, value_enum)]
    pub judge_backend: Option<Engine>,
    /// The ONNX Runtime library for `--backend ort` (default: libonnxruntime.so from the
    /// dynamic loader's search path).
    #[arg(long, env = "ORT_DYLIB_PATH", global = true)]
    pub ort_library: Option<PathBuf>,
    /// Anti-spoof models to run instead of the default pack's (comma-separated manifest
    /// names, e.g. a model registered with `facelive models add`); fused by their weights.
    #[arg(long, env = "FACELIVE_JUDGES", global = true, value_delimiter = ',')]
    pub judges: Vec<String>,
    /// An adapted pack's folder (`facelive adapt --out DIR`): its judges' features go through
    /// its head, with its thresholds (docs/ADAPT.md). Default: the built-in pack.
    #[arg(long, env = "FACELIVE_PACK", global = true)]
    pub pack: Option<PathBuf>,
    /// ONNX Runtime threads inside one model run (facelive runs requests in parallel).
    #[arg(long, env = "FACELIVE_ORT_THREADS", global = true, default_value_t = 1)]
    pub ort_threads: usize,
    /// Which of the settings above were given as flags or environment variables (these
    /// beat the file; the others are defaults the file may replace).
    #[arg(skip)]
    pub explicit: Vec<String>,
}

/// The engines chosen for inference, a closed set of the build's engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Tract,
    Ort,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        EngineKind::from(self).as_str()
    }
}

impl From<Engine> for EngineKind {
    fn from(e: Engine) -> Self {
        match e {
            Engine::Tract => EngineKind::Tract,
            Engine::Ort => EngineKind::Ort,
        }
    }
}

/// The TOML file. Every field is optional; missing ones keep their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub models_dir: Option<PathBuf>,
    pub max_pixels: Option<u64>,
    pub max_side: Option<u32>,
    pub detector_size: Option<usize>,
    pub detect_mode: Option<DetectMode>,
    pub backend: Option<Engine>,
    pub judge_backend: Option<Engine>,
    pub ort_library: Option<PathBuf>,
    pub ort_threads: Option<usize>,
    pub judges: Option<Vec<String>>,
    pub pack: Option<PathBuf>,
    pub thresholds: Option<Thresholds>,
    pub quality: Option<QualityConfig>,
    /// `[serve]`: checked field by field when layered over `facelive serve`'s settings.
    pub serve: Option<toml::Table>,
}

pub const DEFAULT_CONFIG_FILE: &str = "facelive.toml";
pub const DEFAULT_MODELS_DIR: &str = "models";

impl PipelineArgs {
    pub fn file_config(&self) -> anyhow::Result<FileConfig> {
        let (path, required) = match &self.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        if !required && !path.exists() {
            return Ok(FileConfig::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let mut cfg: FileConfig = toml::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))?;
        // A relative folder in a file is relative to that file.
        let base = path.parent().unwrap_or(Path::new("."));
        for d in [&mut cfg.models_dir, &mut cfg.pack].into_iter().flatten() {
            if d.is_relative() {
                *d = base.join(&*d);
            }
        }
        Ok(cfg)
    }

    /// Records which settings the command line or environment gave.
    pub fn note_explicit(&mut self, m: &clap::ArgMatches) {
        use clap::parser::ValueSource;
        for id in [
            "models_dir",
            "max_pixels",
            "max_side",
            "detector_size",
            "detect_mode",
            "backend",
            "judge_backend",
            "ort_library",
            "ort_threads",
            "judges",
            "pack",
        ] {
            if matches!(
                m.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                self.explicit.push(id.to_string());
            }
        }
    }

    /// The file's value where the flag or variable was not given.
    fn pick<T>(&self, id: &str, given: T, file: Option<T>) -> T {
        match file {
            Some(v) if !self.explicit.iter().any(|e| e == id) => v,
            _ => given,
        }
    }

    /// The manifest: built-in, the models registered in the models directory, and the
    /// judges `--judges` names, or the adapted pack `--pack` names.
    pub fn manifest(&self) -> anyhow::Result<facelive_models::Manifest> {
        let file = self.file_config()?;
        let judges = self.pick("judges", self.judges.clone(), file.judges);
        let m = facelive_models::Manifest::with_local(&self.models_dir()?)?;
        match self.adapted_pack()? {
            Some((dir, pack)) => {
                anyhow::ensure!(
                    judges.is_empty(),
                    "--judges and --pack both choose the judges: give one"
                );
                Ok(pack.apply(m, &dir)?)
            }
            None => Ok(m.with_judges(&judges)?),
        }
    }

    /// The adapted pack `--pack` (or `FACELIVE_PACK`, or `pack` in the file) names, read.
    pub fn adapted_pack(&self) -> anyhow::Result<Option<(PathBuf, facelive_models::AdaptedPack)>> {
        let file = self.file_config()?.pack;
        let Some(dir) = self.pick("pack", self.pack.clone(), file.map(Some)) else {
            return Ok(None);
        };
        let pack = facelive_models::AdaptedPack::load(&dir)
            .with_context(|| format!("reading the adapted pack in {}", dir.display()))?;
        Ok(Some((dir, pack)))
    }

    pub fn models_dir(&self) -> anyhow::Result<PathBuf> {
        let file = self.file_config()?.models_dir;
        Ok(self.pick("models_dir", self.models_dir.clone(), file))
    }

    pub fn pipeline_config(&self) -> anyhow::Result<PipelineConfig> {
        let file = self.file_config()?;
        let mut cfg =
            PipelineConfig::new(self.pick("models_dir", self.models_dir.clone(), file.models_dir));
        cfg.ingest.max_pixels = self.pick("max_pixels", self.max_pixels, file.max_pixels);
        cfg.ingest.max_side = self.pick("max_side", self.max_side, file.max_side);
        cfg.detector_size = self.pick("detector_size", self.detector_size, file.detector_size);
        cfg.detect_mode = self.pick("detect_mode", self.detect_mode, file.detect_mode);
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
        cfg.quality = file.quality.unwrap_or_default();
        Ok(cfg)
    }

    /// The engines chosen for the detector and the judges, from flags, environment and file.
    pub fn engine_choice(&self) -> anyhow::Result<(Engine, Engine)> {
        let file = self.file_config()?;
        let backend = self.pick("backend", self.backend, file.backend);
        let judge_backend = match self.explicit.iter().any(|e| e == "judge_backend") {
            true => self.judge_backend,
            false => file.judge_backend.or(self.judge_backend),
        }
        .unwrap_or(Engine::Tract);
        Ok((backend, judge_backend))
    }

    /// The engines that run the detector and the judges, loaded.
    pub fn engines(&self) -> anyhow::Result<Engines> {
        let file = self.file_config()?;
        let (backend, judge_backend) = self.engine_choice()?;
        let ort = OrtSettings {
            library: match self.explicit.iter().any(|e| e == "ort_library") {
                true => self.ort_library.clone(),
                false => file.ort_library.or_else(|| self.ort_library.clone()),
            },
            threads: self.pick("ort_threads", self.ort_threads, file.ort_threads),
        };
        let detector = ort.backend(backend.into())?;
        let judge = if judge_backend == backend {
            detector.clone()
        } else {
            ort.backend(judge_backend.into())?
        };
        Ok(Engines { detector, judge })
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
