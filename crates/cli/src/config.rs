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
    #[arg(long, env = "FACELIVE_MODELS_DIR", global = true)]
    pub models_dir: Option<PathBuf>,
    /// TOML configuration file (models_dir, thresholds, limits, quality). Default:
    /// `facelive.toml` in the working directory, if present.
    #[arg(long, env = "FACELIVE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Refuse images with more pixels than this, from the header, before decoding.
    #[arg(long, env = "FACELIVE_MAX_PIXELS", global = true)]
    pub max_pixels: Option<u64>,
    /// Largest working image side; larger photos are reduced while decoding.
    #[arg(long, env = "FACELIVE_MAX_SIDE", global = true)]
    pub max_side: Option<u32>,
    /// Largest square side the detector sees (a multiple of 32).
    #[arg(long, env = "FACELIVE_DETECTOR_SIZE", global = true)]
    pub detector_size: Option<usize>,
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

    pub fn models_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(self
            .models_dir
            .clone()
            .or(self.file_config()?.models_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODELS_DIR)))
    }

    pub fn pipeline_config(&self) -> anyhow::Result<PipelineConfig> {
        let file = self.file_config()?;
        let mut cfg = PipelineConfig::new(self.models_dir()?);
        let defaults = IngestOptions::default();
        cfg.ingest.max_pixels = self
            .max_pixels
            .or(file.max_pixels)
            .unwrap_or(defaults.max_pixels);
        cfg.ingest.max_side = self.max_side.or(file.max_side).unwrap_or(defaults.max_side);
        cfg.detector_size = self
            .detector_size
            .or(file.detector_size)
            .unwrap_or(cfg.detector_size);
        cfg.thresholds = file.thresholds.unwrap_or_default();
        cfg.quality = file.quality.unwrap_or_default();
        Ok(cfg)
    }
}
