use std::path::Path;

use serde::Deserialize;

use crate::ModelsError;

const BUILTIN: &str = include_str!("../manifest.toml");

/// The customer's models, registered by `facelive models add`, in the models directory.
pub const LOCAL_MANIFEST: &str = "local-models.toml";

/// A model name fit for a file name, a flag value and a log line: 1-64 of `[A-Za-z0-9._-]`,
/// not starting with a dot (`models add` stores the file as `NAME.onnx`).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `local-models.toml`: model entries only (the pack stays the built-in one unless
/// `--judges` names others).
#[derive(Debug, Default, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Local {
    #[serde(rename = "model", default)]
    models: Vec<toml::Value>,
}

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
    /// The face embedder that matches the judged face against a reference (liveness with
    /// verify); a pack without one answers liveness only.
    #[serde(default)]
    pub embedder: Option<String>,
    /// An adapted pack's head: the live score comes from the judges' features through it
    /// instead of the weighted mean of their scores (`facelive adapt`, docs/ADAPT.md).
    #[serde(default)]
    pub head: Option<HeadSpec>,
}

/// A logistic head over the judges' standardised, concatenated features:
/// live score = sigmoid(bias + sum_i weights_i * (x_i - mean_i) / std_i).
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// The judges whose features are concatenated, in this order.
    pub judges: Vec<String>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
}

impl HeadSpec {
    /// The live score of one row of features, in the head's order: sigmoid(bias +
    /// sum w_i (x_i - mean_i) / std_i), in f64. The one place the formula is written: the
    /// training and the pipeline both call it, so a pack reproduces its training scores.
    pub fn score(&self, x: &[f32]) -> f32 {
        let z = x
            .iter()
            .zip(&self.mean)
            .zip(&self.std)
            .zip(&self.weights)
            .fold(self.bias, |z, (((x, m), sd), w)| {
                z + w * (*x as f64 - m) / sd
            });
        (1.0 / (1.0 + (-z).exp())) as f32
    }

    fn check(&self) -> Result<(), String> {
        let n = self.weights.len();
        if n == 0 || self.mean.len() != n || self.std.len() != n {
            return Err(format!(
                "the head's mean, std and weights must have one value per feature ({} {} {})",
                self.mean.len(),
                self.std.len(),
                n
            ));
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !(finite(&self.mean) && finite(&self.weights) && self.bias.is_finite())
            || self.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err("the head's numbers must be finite, its std above 0".into());
        }
        Ok(())
    }
}

/// The model families a manifest may list: a manifest naming another fails to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// The YuNet face detector (boxes, five landmarks, scores at three strides).
    Yunet,
    /// RetinaFace: listed, pulled and verified as an alternative detector; the pipeline has
    /// no decoder for it, so a pack naming it fails at load.
    Retinaface,
    /// A single-image anti-spoof classifier described by its `[model.judge]` entry.
    Classifier,
    /// A face embedder fed a landmark-aligned crop, described by its `[model.embedder]`
    /// entry (MobileFaceNet, SFace, ArcFace-style models).
    Embedder,
}

/// What a model does in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Detector,
    Judge,
    Embedder,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Yunet => "yunet",
            Family::Retinaface => "retinaface",
            Family::Classifier => "classifier",
            Family::Embedder => "embedder",
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Detector => "detector",
            Role::Judge => "judge",
            Role::Embedder => "embedder",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub file: String,
    /// Which code runs this model and reads its outputs.
    pub family: Family,
    pub role: Role,
    pub license: String,
    pub bytes: u64,
    pub sha256: String,
    pub url: String,
    pub input: InputSpec,
    pub detector: Option<DetectorSpec>,
    pub judge: Option<JudgeSpec>,
    pub embedder: Option<EmbedderSpec>,
}

/// A face embedder: the crop is the image warped by the least-squares similarity transform
/// (rotation, uniform scale, translation) that takes the detector's five landmarks onto
/// `template`, `input.size` pixels square (OpenCV's `FaceRecognizerSF::alignCrop`); the
/// output is L2-normalised and compared by cosine similarity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderSpec {
    /// Where each landmark goes in the crop, in facelive's order (image-left eye, image-right
    /// eye, nose, image-left mouth corner, image-right mouth corner).
    pub template: [[f32; 2]; 5],
    /// The output holding the embedding.
    pub output: String,
    /// Its length.
    pub dims: usize,
    /// The cosine similarity at or above which two faces are the same person, per
    /// operating point: thresholds belong to a pipeline (detector, alignment, model).
    pub thresholds: MatchThresholds,
}

/// Match thresholds on cosine similarity, one per operating point.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatchThresholds {
    pub weak: f32,
    pub balanced: f32,
    pub strict: f32,
}

/// Tensor memory order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Layout {
    NCHW,
    NHWC,
}

/// Channel order the model was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Colour {
    BGR,
    RGB,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub layout: Layout,
    pub colour: Colour,
    /// Tensor value = (pixel (0..255) * scale - mean) / std, per channel in model order.
    pub scale: f32,
    pub mean: [f32; 3],
    #[serde(default = "unit_std")]
    pub std: [f32; 3],
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

fn unit_std() -> [f32; 3] {
    [1.0; 3]
}

fn unit_weight() -> f32 {
    1.0
}

/// A single-image anti-spoof classifier, fully described: the crop around the detector's
/// box, the resize, and how to read the output. (Its input is `InputSpec`.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    pub crop: CropSpec,
    #[serde(default)]
    pub resize: Resize,
    pub output: OutputSpec,
    /// Weight in the pack's fused score (a weighted mean of the judges' live scores).
    #[serde(default = "unit_weight")]
    pub weight: f32,
    /// Where the features feeding the final classifier are, for adaptation.
    #[serde(default)]
    pub features: Option<FeatureSpec>,
}

/// A judge's features: the tensor its final classifier reads, returned by the same run as
/// its score.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// The node output holding them (e.g. MiniFASNet's 128 values after its BatchNorm).
    pub node: String,
    /// The final classifier's weight, `[features, classes]`, with no bias: the output is
    /// the features times this matrix.
    pub classifier: String,
    /// The tensor entering the last block (for MiniFASNet, the 128x5x5 map before
    /// `final_expand`): what fine-tuning starts from. The ops after it are read from the
    /// graph itself.
    #[serde(default)]
    pub trunk: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropSpec {
    /// Context around the face box: the crop is this many times the box.
    pub scale: f32,
    /// Make the box square with its longer side first.
    #[serde(default)]
    pub square: bool,
    /// Truncate the box, and the enlarged side, to whole pixels first (as a recipe written
    /// with Python's `int()` does).
    #[serde(default)]
    pub whole_pixels: bool,
    /// What happens where the crop leaves the image.
    pub outside: Outside,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outside {
    /// Silent-Face: the scale is capped so the crop fits, and the crop shifted inside.
    Shift,
    /// Mirror without repeating the edge pixel (OpenCV BORDER_REFLECT_101).
    Reflect,
    /// Repeat the edge pixel.
    Replicate,
    /// Black.
    Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// OpenCV INTER_LINEAR: plain bilinear, no antialiasing.
    #[default]
    Bilinear,
    /// OpenCV INTER_AREA when shrinking, Lanczos when enlarging.
    AreaLanczos,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// What turns the output into probabilities.
    pub activation: Activation,
    /// Which output is the live class.
    pub live_index: usize,
    /// Outputs expected.
    pub classes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Logits over the classes.
    Softmax,
    /// One logit per output, each its own probability.
    Sigmoid,
    /// Already probabilities.
    None,
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

    /// The built-in manifest and the models registered in `dir` (`local-models.toml`).
    pub fn with_local(dir: &Path) -> Result<Self, ModelsError> {
        let path = dir.join(LOCAL_MANIFEST);
        if path.exists() {
            Self::builtin_and(&path)
        } else {
            Ok(Self::builtin())
        }
    }

    /// The built-in manifest with the model entries of the file at `path` added.
    fn builtin_and(path: &Path) -> Result<Self, ModelsError> {
        let bad =
            |e: &dyn std::fmt::Display| ModelsError::Manifest(format!("{}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|source| ModelsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let local: Local = toml::from_str(&text).map_err(|e| bad(&e))?;
        let mut m = Self::builtin();
        for v in local.models {
            let spec: ModelSpec = v.try_into().map_err(|e| bad(&e))?;
            if m.get(&spec.name).is_ok() {
                return Err(bad(&format!("a model named {} already exists", spec.name)));
            }
            m.models.push(spec);
        }
        m.check()?;
        Ok(m)
    }

    /// This manifest with the pack's judges replaced (and the pack renamed after them).
    pub fn with_judges(mut self, judges: &[String]) -> Result<Self, ModelsError> {
        if judges.is_empty() {
            return Ok(self);
        }
        self.pack.judges = judges.to_vec();
        self.pack.name = format!("{}+{}", self.pack.detector, judges.join("+"));
        self.pack.version = "custom".into();
        self.check()?;
        Ok(self)
    }

    /// This manifest with the pack's embedder replaced.
    pub fn with_embedder(mut self, embedder: &str) -> Result<Self, ModelsError> {
        self.pack.embedder = Some(embedder.to_string());
        self.check()?;
        Ok(self)
    }

    /// Adds one model entry to `dir/local-models.toml`, checked first: a bad entry leaves
    /// the file as it was.
    pub fn register_local(dir: &Path, entry: toml::Table) -> Result<(), ModelsError> {
        let path = dir.join(LOCAL_MANIFEST);
        let mut local: Local = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| ModelsError::Manifest(format!("{}: {e}", path.display())))?,
            Err(_) => Local::default(),
        };
        local.models.push(toml::Value::Table(entry));
        let text = toml::to_string(&local).map_err(|e| ModelsError::Manifest(e.to_string()))?;
        let tmp = dir.join(format!(".{LOCAL_MANIFEST}.tmp"));
        let io = |source| ModelsError::Io {
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, &text).map_err(io)?;
        if let Err(e) = Self::builtin_and(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &path).map_err(io)
    }

    pub fn load(path: &Path) -> Result<Self, ModelsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Every entry well-formed and the pack consistent (also after an adapted pack is laid
    /// over it).
    pub(crate) fn check(&self) -> Result<(), ModelsError> {
        let bad = |msg: String| Err(ModelsError::Manifest(msg));
        for m in &self.models {
            if m.sha256.len() != 64 || hex::decode(&m.sha256).is_err() {
                return bad(format!("{}: sha256 must be 64 hex digits", m.name));
            }
            if !valid_name(&m.name) {
                return bad(format!(
                    "model name {:?}: use 1-64 of A-Z a-z 0-9 . _ -, not starting with a dot",
                    m.name
                ));
            }
            if m.file.contains('/') || m.file.contains('\\') || m.file.starts_with('.') {
                return bad(format!("{}: file must be a plain file name", m.name));
            }
            if let Some(j) = &m.judge {
                if j.output.live_index >= j.output.classes || j.crop.scale <= 0.0 || j.weight <= 0.0
                {
                    return bad(format!(
                        "{}: live_index must be under classes, crop scale and weight above 0",
                        m.name
                    ));
                }
            }
            if let Some(e) = &m.embedder {
                let t = e.thresholds;
                let ordered = -1.0 <= t.weak
                    && t.weak <= t.balanced
                    && t.balanced <= t.strict
                    && t.strict <= 1.0;
                if e.dims == 0 || !ordered {
                    return bad(format!(
                        "{}: dims must be above 0 and thresholds -1 <= weak <= balanced <= strict <= 1",
                        m.name
                    ));
                }
            }
            if m.input.std.contains(&0.0) {
                return bad(format!("{}: std must not be 0", m.name));
            }
        }
        let det = self.get(&self.pack.detector)?;
        if det.role != Role::Detector || det.detector.is_none() {
            return bad(format!("pack detector {} is not a detector", det.name));
        }
        if self.pack.judges.is_empty() {
            return bad("the pack needs at least one judge".into());
        }
        if let Some(head) = &self.pack.head {
            head.check().or_else(bad)?;
            for j in &head.judges {
                let declared = self
                    .get(j)?
                    .judge
                    .as_ref()
                    .and_then(|s| s.features.as_ref());
                if !self.pack.judges.contains(j) || declared.is_none() {
                    return bad(format!(
                        "the head reads {j}, which is not a judge of the pack with declared features"
                    ));
                }
            }
        }
        for j in &self.pack.judges {
            let spec = self.get(j)?;
            if spec.role != Role::Judge || spec.judge.is_none() {
                return bad(format!("pack judge {j} is not a judge"));
            }
        }
        if let Some(e) = &self.pack.embedder {
            let spec = self.get(e)?;
            if spec.role != Role::Embedder || spec.embedder.is_none() {
                return bad(format!("pack embedder {e} is not an embedder"));
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

    /// The detector and judges of the pack, in that order: what decides liveness (and what
    /// an adapted pack is trained on).
    pub fn liveness_models(&self) -> Vec<&ModelSpec> {
        std::iter::once(&self.pack.detector)
            .chain(&self.pack.judges)
            .filter_map(|n| self.get(n).ok())
            .collect()
    }

    /// The detector, judges and embedder (if any) of the pack, in that order.
    pub fn pack_models(&self) -> Vec<&ModelSpec> {
        std::iter::once(&self.pack.detector)
            .chain(&self.pack.judges)
            .chain(&self.pack.embedder)
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
        assert_eq!(
            pack,
            [
                "yunet_2023mar",
                "minifasnet_v2",
                "minifasnet_v1se",
                "mobilefacenet"
            ]
        );
        assert_eq!(
            m.get("minifasnet_v1se")
                .unwrap()
                .judge
                .as_ref()
                .unwrap()
                .crop
                .scale,
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

    /// A family or role this build does not know is the manifest's error, named, at load;
    /// never a request's.
    #[test]
    fn an_unknown_family_or_role_fails_at_load_with_its_name() {
        for (from, to, named) in [
            ("family = \"yunet\"", "family = \"mobilenet\"", "mobilenet"),
            ("role = \"judge\"", "role = \"oracle\"", "oracle"),
        ] {
            let text = BUILTIN.replacen(from, to, 1);
            let err = Manifest::parse(&text).unwrap_err().to_string();
            assert!(
                err.contains(named) && err.contains("unknown variant"),
                "{err}"
            );
        }
    }
}
