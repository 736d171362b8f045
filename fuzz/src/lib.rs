//! What the fuzz targets share: where the models are.

use std::path::PathBuf;

/// `FACELIVE_MODELS_DIR`, else `../shared/models` beside the repository.
pub fn models_dir() -> PathBuf {
    std::env::var_os("FACELIVE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"))
}
