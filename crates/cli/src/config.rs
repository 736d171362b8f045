//! Configuration: flags, environment (`FACELIVE_*`) and an optional TOML file, in that
//! order of precedence, over documented defaults.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use facelive_pipeline::{IngestOptions, PipelineConfig, QualityConfig, Thresholds};
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
    /// Which of the settings above were given as flags or environment variables (these
    /// beat the file; the others are defaults the file may replace).
    #[arg(skip)]
    pub explicit: Vec<String>,
}

/// The TOML file. Every field is optional; missing ones keep their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub models_dir: Option<PathBuf>,
    pub max_pixels: Option<u64>,
    pub max_side: Option<u32>,
    pub detector_size: Option<usize>,
    pub thresholds: Option<Thresholds>,
    pub quality: Option<QualityConfig>,
    pub serve: Option<crate::serve::ServeFile>,
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
        // A relative models_dir in a file is relative to that file.
        if let Some(d) = &cfg.models_dir {
            if d.is_relative() {
                let base = path.parent().unwrap_or(Path::new("."));
                cfg.models_dir = Some(base.join(d));
            }
        }
        Ok(cfg)
    }

    /// Records which settings the command line or environment gave.
    pub fn note_explicit(&mut self, m: &clap::ArgMatches) {
        use clap::parser::ValueSource;
        for id in ["models_dir", "max_pixels", "max_side", "detector_size"] {
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
        cfg.thresholds = file.thresholds.unwrap_or_default();
        cfg.quality = file.quality.unwrap_or_default();
        Ok(cfg)
    }
}
