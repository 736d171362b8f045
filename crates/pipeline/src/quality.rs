//! Quality: is the capture fit to judge? Each check has a stable name, the measured value,
//! the bounds it must meet, pass/fail, its policy and a hint a client app can show. A failed
//! check under the `enforce` policy makes the outcome "retry" (cannot judge), never "spoof".

use serde::{Deserialize, Serialize};

use crate::face::{BBox, Landmarks};
use crate::image::RgbImage;
use crate::imageops::downscale_region;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Off,
    Warn,
    #[default]
    Enforce,
}

/// The quality checks, by the stable names answers carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    ImageSize,
    FaceSize,
    FacePadding,
    FaceShare,
    EyeDistance,
    Yaw,
    Pitch,
    Roll,
    Brightness,
    Exposure,
    Sharpness,
    FaceCount,
}

impl CheckName {
    pub const ALL: [CheckName; 12] = [
        CheckName::ImageSize,
        CheckName::FaceSize,
        CheckName::FacePadding,
        CheckName::FaceShare,
        CheckName::EyeDistance,
        CheckName::Yaw,
        CheckName::Pitch,
        CheckName::Roll,
        CheckName::Brightness,
        CheckName::Exposure,
        CheckName::Sharpness,
        CheckName::FaceCount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::ImageSize => "image_size",
            CheckName::FaceSize => "face_size",
            CheckName::FacePadding => "face_padding",
            CheckName::FaceShare => "face_share",
            CheckName::EyeDistance => "eye_distance",
            CheckName::Yaw => "yaw",
            CheckName::Pitch => "pitch",
            CheckName::Roll => "roll",
            CheckName::Brightness => "brightness",
            CheckName::Exposure => "exposure",
            CheckName::Sharpness => "sharpness",
            CheckName::FaceCount => "face_count",
        }
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an image cannot be judged: no face was found, or an enforced check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryReason {
    NoFace,
    Check(CheckName),
}

impl RetryReason {
    /// The stable name answers carry: `no_face` or the check's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::NoFace => "no_face",
            RetryReason::Check(c) => c.as_str(),
        }
    }

    /// What to tell the user when no face was found (a failed check carries its own hint);
    /// the capture client shows the same words.
    pub const NO_FACE_HINT: &'static str = "put your face inside the frame";
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RetryReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Bounds and policies of every check. Defaults enforce what the models cannot judge
/// (tiny, turned, dark, blown-out or blurred faces) and only warn about composition
/// preferences that vary by vendor (padding, face share, eye distance, several faces).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Shorter image side, pixels (NHN refuses images under 80x80).
    pub min_image_side: u32,
    pub image_size: Policy,
    /// Shorter face box side, pixels. NHN does not analyse faces under 60x60, and the models
    /// score tiny faces live.
    pub min_face_side: f32,
    pub face_size: Policy,
    /// Smallest distance from the face box to the image border, pixels (SpoofSense: 15).
    pub min_face_padding: f32,
    pub face_padding: Policy,
    /// Distance between the eye centres, pixels.
    pub min_eye_distance: f32,
    pub eye_distance: Policy,
    /// Face box area over image area (SpoofSense: 20%).
    pub min_face_share: f32,
    pub face_share: Policy,
    /// Head pose estimated from the five landmarks, degrees (NHN: yaw and pitch within 45).
    pub max_yaw: f32,
    pub max_pitch: f32,
    pub max_roll: f32,
    pub pose: Policy,
    /// Mean luma of the face region, 0..255.
    pub min_brightness: f32,
    pub max_brightness: f32,
    pub brightness: Policy,
    /// Share of the face region's pixels that are clipped black or white.
    pub max_clipped: f32,
    pub exposure: Policy,
    /// Variance of the Laplacian of the face region at a fixed scale.
    pub min_sharpness: f32,
    pub sharpness: Policy,
    /// Faces found in the image.
    pub max_faces: usize,
    pub face_count: Policy,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            min_image_side: 80,
            image_size: Policy::Enforce,
            min_face_side: 60.0,
            face_size: Policy::Enforce,
            min_face_padding: 15.0,
            face_padding: Policy::Warn,
            min_eye_distance: 40.0,
            eye_distance: Policy::Warn,
            min_face_share: 0.2,
            face_share: Policy::Warn,
            max_yaw: 45.0,
            max_pitch: 45.0,
            max_roll: 45.0,
            pose: Policy::Enforce,
            min_brightness: 20.0,
            max_brightness: 235.0,
            brightness: Policy::Enforce,
            max_clipped: 0.5,
            exposure: Policy::Enforce,
            min_sharpness: 15.0,
            sharpness: Policy::Enforce,
            max_faces: 1,
            face_count: Policy::Warn,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityCheck {
    /// Stable name.
    pub name: CheckName,
    pub value: f64,
    /// Bounds the value must lie within (inclusive); `None` where unbounded.
    pub min: Option<f64>,
    pub max: Option<f64>,
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

fn check(
    name: CheckName,
    value: f64,
    min: Option<f64>,
    max: Option<f64>,
    policy: Policy,
    hint: &'static str,
) -> Option<QualityCheck> {
    if policy == Policy::Off {
        return None;
    }
    let pass = min.is_none_or(|m| value >= m) && max.is_none_or(|m| value <= m);
    Some(QualityCheck {
        name,
        value,
        min,
        max,
        pass,
        policy,
        hint,
    })
}

/// Checks of the image alone, before any face is found.
pub fn image_checks(cfg: &QualityConfig, width: u32, height: u32) -> Vec<QualityCheck> {
    check(
        CheckName::ImageSize,
        width.min(height) as f64,
        Some(cfg.min_image_side as f64),
        None,
        cfg.image_size,
        "use a larger photo",
    )
    .into_iter()
    .collect()
}

/// Whether a face other than the judged one is fit to look at (no enforced check of its
/// box fails): NHN judges and compares only such faces.
pub fn face_fit(cfg: &QualityConfig, face: &BBox) -> bool {
    !face_checks(cfg, face).iter().any(|c| c.blocks())
}

/// Checks of a face box alone (original pixels): used for every face.
pub fn face_checks(cfg: &QualityConfig, face: &BBox) -> Vec<QualityCheck> {
    check(
        CheckName::FaceSize,
        face.width.min(face.height) as f64,
        Some(cfg.min_face_side as f64),
        None,
        cfg.face_size,
        "move closer",
    )
    .into_iter()
    .collect()
}

/// Head pose in degrees, estimated from five landmarks: roll from the eye line, yaw from
/// where the nose sits between the eyes, pitch from where it sits between the eye line and
/// the mouth. A rough estimate (a few degrees near frontal, coarser beyond 30), enough to
/// tell a turned head from a frontal one.
pub fn pose(lm: &Landmarks) -> (f32, f32, f32) {
    let (le, re) = (lm.left_eye, lm.right_eye);
    let roll = (re.y - le.y).atan2(re.x - le.x);
    // Undo the roll around the eye midpoint.
    let (mx, my) = ((le.x + re.x) / 2.0, (le.y + re.y) / 2.0);
    let (c, s) = (roll.cos(), roll.sin());
    let un = |p: crate::face::Point| {
        let (dx, dy) = (p.x - mx, p.y - my);
        (dx * c + dy * s, -dx * s + dy * c)
    };
    let half_eyes = ((re.x - le.x).hypot(re.y - le.y) / 2.0).max(1e-3);
    let (nx, ny) = un(lm.nose);
    let (_, ml) = un(lm.mouth_left);
    let (_, mr) = un(lm.mouth_right);
    let mouth_y = ((ml + mr) / 2.0).max(1e-3);
    let yaw = (nx / half_eyes).clamp(-1.0, 1.0).asin();
    // On a frontal face the nose tip sits a little over half-way from eyes to mouth.
    let pitch = ((ny / mouth_y - 0.55) * 2.0).clamp(-1.0, 1.0).asin();
    (yaw.to_degrees(), pitch.to_degrees(), roll.to_degrees())
}

/// Luma statistics and sharpness of the face region of the working image.
struct FaceStats {
    brightness: f64,
    clipped: f64,
    sharpness: f64,
}

/// Side of the square the face region is shrunk to before measuring sharpness, so the
/// measure does not depend on the face's size in pixels.
const SHARPNESS_SIDE: u32 = 112;

fn face_stats(img: &RgbImage, b: &BBox) -> Option<FaceStats> {
    let x0 = (b.x.max(0.0) as u32).min(img.width - 1);
    let y0 = (b.y.max(0.0) as u32).min(img.height - 1);
    let x1 = ((b.x + b.width).ceil().max(0.0) as u32).min(img.width);
    let y1 = ((b.y + b.height).ceil().max(0.0) as u32).min(img.height);
    if x1 <= x0 + 2 || y1 <= y0 + 2 {
        return None;
    }
    let (w, h) = (x1 - x0, y1 - y0);
    // Everything is measured on the face region shrunk to a fixed square: the cost does not
    // grow with the photo, and sharpness does not depend on the face's size in pixels.
    let side = SHARPNESS_SIDE.min(w).min(h);
    let small = downscale_region(img, (x0, y0, w, h), side, side);
    let luma = |p: &[u8]| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64;
    let g: Vec<f64> = small.data.chunks_exact(3).map(luma).collect();
    let n = g.len() as f64;
    let sum: f64 = g.iter().sum();
    let clipped = g.iter().filter(|l| !(8.0..=247.0).contains(*l)).count();
    let s = side as usize;
    let mut lap = Vec::with_capacity(s * s);
    for y in 1..s - 1 {
        for x in 1..s - 1 {
            let i = y * s + x;
            lap.push(g[i - 1] + g[i + 1] + g[i - s] + g[i + s] - 4.0 * g[i]);
        }
    }
    let mean = lap.iter().sum::<f64>() / lap.len() as f64;
    let var = lap.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / lap.len() as f64;
    Some(FaceStats {
        brightness: sum / n,
        clipped: clipped as f64 / n,
        sharpness: var,
    })
}

/// What the judged face is measured on.
pub struct FaceContext<'a> {
    /// The working image and the face box in its pixels.
    pub image: &'a RgbImage,
    pub work_box: BBox,
    /// The face box and landmarks in original pixels (landmarks absent for a given box).
    pub bbox: BBox,
    pub landmarks: Option<&'a Landmarks>,
    pub image_width: u32,
    pub image_height: u32,
    pub faces: usize,
}

/// The checks the landmarks measure: eye distance and head pose.
fn landmark_checks(cfg: &QualityConfig, lm: &Landmarks) -> Vec<QualityCheck> {
    let mut v = Vec::new();
    let eyes = (lm.right_eye.x - lm.left_eye.x).hypot(lm.right_eye.y - lm.left_eye.y);
    v.extend(check(
        CheckName::EyeDistance,
        eyes as f64,
        Some(cfg.min_eye_distance as f64),
        None,
        cfg.eye_distance,
        "move closer",
    ));
    let (yaw, pitch, roll) = pose(lm);
    let both = |m: f32| (Some(-m as f64), Some(m as f64));
    let (lo, hi) = both(cfg.max_yaw);
    v.extend(check(
        CheckName::Yaw,
        yaw as f64,
        lo,
        hi,
        cfg.pose,
        "face the camera",
    ));
    let (lo, hi) = both(cfg.max_pitch);
    v.extend(check(
        CheckName::Pitch,
        pitch as f64,
        lo,
        hi,
        cfg.pose,
        "face the camera",
    ));
    let (lo, hi) = both(cfg.max_roll);
    v.extend(check(
        CheckName::Roll,
        roll as f64,
        lo,
        hi,
        cfg.pose,
        "hold your head straight",
    ));
    v
}

/// The checks of the face's pixels: brightness, exposure, sharpness.
fn appearance_checks(cfg: &QualityConfig, s: &FaceStats) -> Vec<QualityCheck> {
    let mut v = Vec::new();
    let hint = if s.brightness < cfg.min_brightness as f64 {
        "more light"
    } else {
        "less light"
    };
    v.extend(check(
        CheckName::Brightness,
        s.brightness,
        Some(cfg.min_brightness as f64),
        Some(cfg.max_brightness as f64),
        cfg.brightness,
        hint,
    ));
    v.extend(check(
        CheckName::Exposure,
        s.clipped,
        None,
        Some(cfg.max_clipped as f64),
        cfg.exposure,
        "avoid strong light or deep shadow on your face",
    ));
    v.extend(check(
        CheckName::Sharpness,
        s.sharpness,
        Some(cfg.min_sharpness as f64),
        None,
        cfg.sharpness,
        "hold still",
    ));
    v
}

/// Every check of the judged face, in a stable order.
pub fn judged_face_checks(cfg: &QualityConfig, f: &FaceContext) -> Vec<QualityCheck> {
    let b = &f.bbox;
    let (w, h) = (f.image_width as f32, f.image_height as f32);
    let mut v = face_checks(cfg, b);
    let padding =
        b.x.min(b.y)
            .min(w - (b.x + b.width))
            .min(h - (b.y + b.height));
    v.extend(check(
        CheckName::FacePadding,
        padding as f64,
        Some(cfg.min_face_padding as f64),
        None,
        cfg.face_padding,
        "move back so your whole face is inside the frame",
    ));
    v.extend(check(
        CheckName::FaceShare,
        (b.area() / (w * h)) as f64,
        Some(cfg.min_face_share as f64),
        None,
        cfg.face_share,
        "move closer",
    ));
    if let Some(lm) = f.landmarks {
        v.extend(landmark_checks(cfg, lm));
    }
    if let Some(stats) = face_stats(f.image, &f.work_box) {
        v.extend(appearance_checks(cfg, &stats));
    }
    v.extend(check(
        CheckName::FaceCount,
        f.faces as f64,
        None,
        Some(cfg.max_faces as f64),
        cfg.face_count,
        "make sure only your face is in the picture",
    ));
    v
}

#[cfg(test)]
mod tests {
    use super::{pose, CheckName, RetryReason};

    #[test]
    fn names_serialise_as_their_stable_strings() {
        for c in CheckName::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            let reason = serde_json::to_string(&RetryReason::Check(c)).unwrap();
            assert_eq!(reason, json);
        }
        let no_face = serde_json::to_string(&RetryReason::NoFace).unwrap();
        assert_eq!(no_face, "\"no_face\"");
    }

    use crate::face::{Landmarks, Point};

    /// A face with eyes 100 px apart, mouth 100 px below them, the nose at (dx, dy) from the
    /// eye midpoint, rotated by `roll` degrees about that midpoint.
    fn face(dx: f32, dy: f32, roll: f32) -> Landmarks {
        let (c, s) = (roll.to_radians().cos(), roll.to_radians().sin());
        let p = |x: f32, y: f32| Point {
            x: 300.0 + x * c - y * s,
            y: 200.0 + x * s + y * c,
        };
        Landmarks {
            left_eye: p(-50.0, 0.0),
            right_eye: p(50.0, 0.0),
            nose: p(dx, dy),
            mouth_left: p(-35.0, 100.0),
            mouth_right: p(35.0, 100.0),
        }
    }

    fn close(a: (f32, f32, f32), b: (f32, f32, f32)) -> bool {
        (a.0 - b.0).abs() < 0.01 && (a.1 - b.1).abs() < 0.01 && (a.2 - b.2).abs() < 0.01
    }

    #[test]
    fn pose_reads_yaw_pitch_and_roll_from_the_landmark_geometry() {
        // Frontal: nose centred, 55% of the way down to the mouth.
        assert!(close(pose(&face(0.0, 55.0, 0.0)), (0.0, 0.0, 0.0)));
        // Nose half-way to the right eye: sin(yaw) = 0.5.
        assert!(close(pose(&face(25.0, 55.0, 0.0)), (30.0, 0.0, 0.0)));
        // Nose at 80%: sin(pitch) = 2 * (0.80 - 0.55) = 0.5.
        assert!(close(pose(&face(0.0, 80.0, 0.0)), (0.0, 30.0, 0.0)));
        // Rolling the whole face changes roll only.
        let rolled = pose(&face(-25.0, 30.0, 20.0));
        assert!(close(rolled, (-30.0, -30.0, 20.0)), "{rolled:?}");
    }
}
