//! The models facelive runs: the built-in manifest (names, files, sha256, upstream URLs,
//! input specs), the models directory, and `verify` / `pull`.

mod adapted;
mod manifest;
mod pull;
mod verify;

pub use adapted::{
    AdaptedPack, Backbone, CrossValidation, PackInfo, PackThresholds, Training, PACK_FILE,
};
pub use manifest::{
    valid_name, Activation, Colour, CropSpec, DetectorSpec, EmbedderSpec, Family, FeatureSpec,
    HeadSpec, InputSpec, JudgeSpec, Layout, Manifest, MatchThresholds, ModelSpec, OutputSpec,
    Outside, Pack, Resize, Role, LOCAL_MANIFEST,
};
pub use pull::{pull, PullOutcome, PullReport};
pub use verify::{verify, verify_file, FileStatus};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("the model manifest is invalid: {0}")]
    Manifest(String),
    #[error("no model named {0:?} in the manifest")]
    UnknownModel(String),
    #[error("model file {path} is {status}")]
    BadFile { path: PathBuf, status: FileStatus },
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error("{url}: expected sha256 {expected}, got {actual}")]
    HashMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
