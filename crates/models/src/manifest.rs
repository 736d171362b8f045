use std::path::Path;

use serde::Deserialize;

use crate::ModelsError;

const BUILTIN: &str = include_str!("../manifest.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub pack: Pack,
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

/// The set of models the pipeline runs together, reported with every verdict.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    pub name: String,
    pub version: String,
    pub detector: String,
    pub judges: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub file: String,
    /// Which decoder module reads this model's outputs (`yunet`, `minifasnet`, ...).
    pub family: String,
    pub role: String,
    pub license: String,
    pub bytes: u64,
    pub sha256: String,
    pub url: String,
    pub input: InputSpec,
    pub detector: Option<DetectorSpec>,
    pub judge: Option<JudgeSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub layout: String,
    /// Channel order the model was trained on: `BGR` or `RGB`.
    pub colour: String,
    /// Tensor value = pixel (0..255) * scale - mean.
    pub scale: f32,
    pub mean: [f32; 3],
    /// Square input side in pixels.
    pub size: usize,
    #[serde(default)]
    pub multiple_of: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    pub strides: Vec<usize>,
    pub score_threshold: f32,
    pub nms_iou: f32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    /// Context around the face box: the crop is this many times the box.
    pub crop_scale: f32,
    pub live_class: usize,
    pub classes: usize,
}

impl Manifest {
    /// The manifest compiled into this build.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN).expect("the built-in model manifest is checked by tests")
    }

    pub fn parse(text: &str) -> Result<Self, ModelsError> {
        let m: Manifest = toml::from_str(text).map_err(|e| ModelsError::Manifest(e.to_string()))?;
        m.check()?;
        Ok(m)
    }

    pub fn load(path: &Path) -> Result<Self, ModelsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    fn check(&self) -> Result<(), ModelsError> {
        let bad = |msg: String| Err(ModelsError::Manifest(msg));
        for m in &self.models {
            if m.sha256.len() != 64 || hex::decode(&m.sha256).is_err() {
                return bad(format!("{}: sha256 must be 64 hex digits", m.name));
            }
            if m.file.contains('/') || m.file.contains('\\') || m.file.starts_with('.') {
                return bad(format!("{}: file must be a plain file name", m.name));
            }
            match m.role.as_str() {
                "detector" | "judge" => {}
                other => return bad(format!("{}: unknown role {other:?}", m.name)),
            }
            if !matches!(m.input.colour.as_str(), "BGR" | "RGB") {
                return bad(format!("{}: colour must be BGR or RGB", m.name));
            }
        }
        let det = self.get(&self.pack.detector)?;
        if det.role != "detector" || det.detector.is_none() {
            return bad(format!("pack detector {} is not a detector", det.name));
        }
        if self.pack.judges.is_empty() {
            return bad("the pack needs at least one judge".into());
        }
        for j in &self.pack.judges {
            let spec = self.get(j)?;
            if spec.role != "judge" || spec.judge.is_none() {
                return bad(format!("pack judge {j} is not a judge"));
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&ModelSpec, ModelsError> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| ModelsError::UnknownModel(name.to_string()))
    }

    /// The detector and judges of the default pack, in that order.
    pub fn pack_models(&self) -> Vec<&ModelSpec> {
        std::iter::once(&self.pack.detector)
            .chain(&self.pack.judges)
            .filter_map(|n| self.get(n).ok())
            .collect()
    }

    /// Models chosen by name; all of the pack when `names` is empty.
    pub fn select(&self, names: &[String]) -> Result<Vec<&ModelSpec>, ModelsError> {
        if names.is_empty() {
            return Ok(self.pack_models());
        }
        names.iter().map(|n| self.get(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses_and_names_a_complete_pack() {
        let m = Manifest::builtin();
        let pack: Vec<_> = m.pack_models().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(pack, ["yunet_2023mar", "minifasnet_v2", "minifasnet_v1se"]);
        assert_eq!(
            m.get("minifasnet_v1se")
                .unwrap()
                .judge
                .as_ref()
                .unwrap()
                .crop_scale,
            4.0
        );
    }

    #[test]
    fn manifest_rejects_path_traversal_in_file_names() {
        let text = BUILTIN.replace("file = \"yunet_2023mar.onnx\"", "file = \"../etc/passwd\"");
        assert!(matches!(
            Manifest::parse(&text),
            Err(ModelsError::Manifest(_))
        ));
    }
}
