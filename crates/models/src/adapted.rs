//! An adapted pack (`facelive adapt`): data, like a registered model. `DIR/pack.toml` names
//! the backbone model files it was trained on (by sha256), its head's weights and
//! standardisation, its thresholds, and how it was trained and measured. It changes no
//! model file: the pipeline runs the same judges and reads their features through the head.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::HeadSpec;
use crate::{Manifest, ModelsError};

/// The file an adapted pack is, inside its folder.
pub const PACK_FILE: &str = "pack.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptedPack {
    pub pack: PackInfo,
    /// The models it runs: the base pack's detector and judges, exactly these files.
    #[serde(rename = "backbone")]
    pub backbones: Vec<Backbone>,
    pub head: HeadSpec,
    pub thresholds: PackThresholds,
    pub training: Training,
    pub cv: CrossValidation,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackInfo {
    pub name: String,
    /// The first 12 hex digits of the head's sha256: any edit of the head is seen.
    pub version: String,
    /// The pack it was adapted from (name and version).
    pub base: String,
    /// Written with `--force` although it did not beat the base pack out of fold.
    pub forced: bool,
    /// The facelive that trained it.
    pub trained_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backbone {
    pub name: String,
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackThresholds {
    pub weak: f32,
    pub balanced: f32,
    pub strict: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// The set's file name, as given to `adapt`.
    pub set: String,
    pub images: usize,
    /// Images the judges scored (the others were quality retries or had no face).
    pub judged: usize,
    pub group_by: String,
    pub groups: usize,
    pub folds: usize,
    pub seed: u64,
    /// The L2 penalty chosen by grouped cross-validation on the whole set.
    pub l2: f64,
}

/// Out-of-fold figures at the balanced point, both packs at thresholds calibrated by one
/// rule (the base pack's on its scores, the adapted pack's on its out-of-fold scores), and
/// the paired test on the images they decide differently.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossValidation {
    pub base_acer: f64,
    pub base_apcer: f64,
    pub base_bpcer: f64,
    pub adapted_acer: f64,
    pub adapted_apcer: f64,
    pub adapted_bpcer: f64,
    pub only_base_wrong: usize,
    pub only_adapted_wrong: usize,
    /// One-sided exact McNemar p of the adapted pack being better.
    pub mcnemar_p: f64,
}

fn bad(dir: &Path, msg: impl std::fmt::Display) -> ModelsError {
    ModelsError::Manifest(format!("{}: {msg}", dir.join(PACK_FILE).display()))
}

impl AdaptedPack {
    /// The version a head gets: its sha256 in short.
    pub fn head_version(head: &HeadSpec) -> String {
        let text = toml::to_string(head).expect("a head serialises");
        hex::encode(Sha256::digest(text.as_bytes()))[..12].to_string()
    }

    pub fn load(dir: &Path) -> Result<Self, ModelsError> {
        let path = dir.join(PACK_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ModelsError::Io {
            path: path.clone(),
            source,
        })?;
        let pack: AdaptedPack = toml::from_str(&text).map_err(|e| bad(dir, e))?;
        if pack.pack.version != Self::head_version(&pack.head) {
            return Err(bad(
                dir,
                "the head does not match the pack's version (edited after training?)",
            ));
        }
        Ok(pack)
    }

    /// Writes `dir/pack.toml` (through a temporary file, so a reader never sees half).
    pub fn write(&self, dir: &Path) -> Result<(), ModelsError> {
        let io = |source| ModelsError::Io {
            path: dir.join(PACK_FILE),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = toml::to_string(self).map_err(|e| bad(dir, e))?;
        let tmp = dir.join(format!(".{PACK_FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, dir.join(PACK_FILE)).map_err(io)
    }

    /// The manifest's pack replaced by this one: the same detector and judges (each file's
    /// sha256 as trained on), read through the head.
    pub fn apply(&self, mut manifest: Manifest, dir: &Path) -> Result<Manifest, ModelsError> {
        for b in &self.backbones {
            let spec = manifest.get(&b.name)?;
            if spec.sha256 != b.sha256 || spec.file != b.file {
                return Err(bad(
                    dir,
                    format!(
                        "trained on {} {} (sha256 {}), but the manifest has {} (sha256 {})",
                        b.name, b.file, b.sha256, spec.file, spec.sha256
                    ),
                ));
            }
        }
        let names: Vec<&str> = self.backbones.iter().map(|b| b.name.as_str()).collect();
        let (detector, judges) = names
            .split_first()
            .ok_or_else(|| bad(dir, "no backbone models"))?;
        manifest.pack.name = self.pack.name.clone();
        manifest.pack.version = self.pack.version.clone();
        manifest.pack.detector = detector.to_string();
        manifest.pack.judges = judges.iter().map(|s| s.to_string()).collect();
        manifest.pack.head = Some(self.head.clone());
        manifest.check()?;
        Ok(manifest)
    }
}
