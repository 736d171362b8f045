//! Quality: is the capture fit to judge? Each check has a stable name, the measured and
//! required values, and a hint a client app can show. An enforced failure makes the outcome
//! "retry" (cannot judge), never "spoof".

use serde::{Deserialize, Serialize};

use crate::face::BBox;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Off,
    Warn,
    #[default]
    Enforce,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Shorter image side, pixels (NHN: images under 80x80 are refused).
    pub min_image_side: u32,
    pub image_size: Policy,
    /// Shorter face box side, pixels. The models were trained on faces far larger; NHN does
    /// not analyse faces under 60x60, and tiny faces are scored live by the models.
    pub min_face_side: f32,
    pub face_size: Policy,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            min_image_side: 80,
            image_size: Policy::Enforce,
            min_face_side: 60.0,
            face_size: Policy::Enforce,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QualityCheck {
    /// Stable name.
    pub name: &'static str,
    pub value: f64,
    /// The bound the value is compared with; `comparison` says how.
    pub required: f64,
    pub comparison: &'static str,
    pub pass: bool,
    pub policy: Policy,
    /// What the user should do when it fails.
    pub hint: &'static str,
}

impl QualityCheck {
    /// Failed under an enforce policy: the image cannot be judged.
    pub fn blocks(&self) -> bool {
        !self.pass && self.policy == Policy::Enforce
    }
}

fn at_least(
    name: &'static str,
    value: f64,
    required: f64,
    policy: Policy,
    hint: &'static str,
) -> QualityCheck {
    QualityCheck {
        name,
        value,
        required,
        comparison: ">=",
        pass: value >= required,
        policy,
        hint,
    }
}

/// Checks of the image alone, before any face is found.
pub fn image_checks(cfg: &QualityConfig, width: u32, height: u32) -> Vec<QualityCheck> {
    let mut v = Vec::new();
    if cfg.image_size != Policy::Off {
        v.push(at_least(
            "image_size",
            width.min(height) as f64,
            cfg.min_image_side as f64,
            cfg.image_size,
            "use a larger photo",
        ));
    }
    v
}

/// Checks of the judged face, in original-image pixels.
pub fn face_checks(cfg: &QualityConfig, face: &BBox) -> Vec<QualityCheck> {
    let mut v = Vec::new();
    if cfg.face_size != Policy::Off {
        v.push(at_least(
            "face_size",
            face.width.min(face.height) as f64,
            cfg.min_face_side as f64,
            cfg.face_size,
            "move closer",
        ));
    }
    v
}
