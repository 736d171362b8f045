//! `Pipeline::check`: the pipeline loaded from a manifest, and one image through it, from
//! bytes to a verdict; what a check is asked and what it answers.

use std::path::{Path, PathBuf};
use std::time::Instant;

use facelive_backends::Engines;
use facelive_models::{verify_file, Family, FileStatus, Manifest, MatchThresholds, ModelsError};
use serde::Serialize;

use crate::decide::{DecisionRule, OperatingPoint, Thresholds};
use crate::detect::{DetectMode, Detector, YuNet};
use crate::embed::Embedder;
use crate::error::PipelineError;
use crate::face::{BBox, Face, Landmarks, Point};
use crate::image;
use crate::ingest::{self, ImageInfo, IngestOptions};
use crate::judge::{
    self, judge_all, judge_views, Classifier, Head, Judge, JudgeScores, ModelScore,
};
use crate::quality::{self, QualityCheck, QualityConfig, RetryReason};

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub models_dir: PathBuf,
    pub ingest: IngestOptions,
    /// Largest square side the detector sees (a multiple of 32). Images are shrunk to fit.
    pub detector_size: usize,
    pub detect_mode: DetectMode,
    pub thresholds: Thresholds,
    pub quality: QualityConfig,
    /// Load the judges to return their trunks too (for fine-tuning; off when serving).
    pub judge_trunks: bool,
    /// Match thresholds replacing the embedder's manifest entry (`facelive calibrate
    /// --pairs` writes them).
    pub match_thresholds: Option<MatchThresholds>,
}

impl PipelineConfig {
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            ingest: IngestOptions::default(),
            detector_size: 640,
            detect_mode: DetectMode::default(),
            thresholds: Thresholds::default(),
            quality: QualityConfig::default(),
            judge_trunks: false,
            match_thresholds: None,
        }
    }
}

/// What one request asks for beyond the image.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub rule: DecisionRule,
    /// Apply EXIF orientation; `None` follows the pipeline's configuration.
    pub auto_rotate: Option<bool>,
    /// Judge this region (original pixels, after orientation) instead of detecting.
    pub face_box: Option<BBox>,
    /// Judge every detected face, not only the largest (NHN reports each face's verdict).
    pub judge_all_faces: bool,
    /// The formats the caller's API accepts (all that facelive decodes by default).
    pub formats: ingest::Formats,
    /// Stop after the quality checks, without the anti-spoof models (capture guidance):
    /// the outcome stays `retry`, with no `retry_reason` when the capture is fit to judge.
    pub skip_judges: bool,
    /// Also judge these perturbed views of the judged face (`Verdict::views`).
    pub views: Vec<judge::View>,
    /// Detect as the reference recipes do: one full pass on the image shrunk straight from
    /// its full-resolution pixels (when ingest kept them). A verify detects so, for the
    /// landmarks its alignment reads: the two-pass landmarks move a face's embedding by up
    /// to 0.14 in cosine similarity (docs/BENCHMARKS.md).
    pub reference_detection: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Live,
    Spoof,
    /// The image cannot be judged (no face, face too small, ...): take another photo.
    Retry,
}

impl Outcome {
    /// The stable name answers, logs and metrics carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Live => "live",
            Outcome::Spoof => "spoof",
            Outcome::Retry => "retry",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JudgedFace {
    #[serde(rename = "box")]
    pub bbox: BBox,
    /// Absent when the caller supplied the box.
    pub landmarks: Option<Landmarks>,
    pub detection_score: Option<f32>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    pub decode_ms: f64,
    pub detect_ms: f64,
    pub judge_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelPack {
    pub name: String,
    pub version: String,
    /// The sha256 of the pack's model files' sha256s and its head's version, in order:
    /// what exactly decided (for the audit trail; not in answers).
    #[serde(skip)]
    pub sha256: String,
}

/// Which inference engine runs each role's models (`tract`, `ort`).
#[derive(Debug, Clone, Serialize)]
pub struct EngineNames {
    pub detector: &'static str,
    pub judges: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Why the image cannot be judged, when `outcome` is `retry`: `no_face` or the name of
    /// the failed quality check.
    pub retry_reason: Option<RetryReason>,
    /// The fused live probability (the judges' weighted mean, or an adapted pack's head);
    /// absent when the face was not judged.
    pub live_score: Option<f32>,
    pub per_model: Vec<ModelScore>,
    pub threshold: f32,
    pub operating_point: Option<OperatingPoint>,
    /// The judged face (the largest), in original-image pixels after orientation.
    pub face: Option<JudgedFace>,
    /// Every detected face, largest first (the judged one included).
    pub faces: Vec<Face>,
    /// Live score of each face in `faces`, same order: the first is `live_score`; the others
    /// are judged only with `judge_all_faces`. `None`: not judged (or too small to judge).
    pub face_scores: Vec<Option<f32>>,
    pub image: ImageInfo,
    pub quality: Vec<QualityCheck>,
    pub timings: Timings,
    pub model_pack: ModelPack,
    /// Every judge's output on each of the asked views, outer by view (not in answers).
    #[serde(skip)]
    pub views: Vec<Vec<ModelScore>>,
}

/// The loaded pipeline: optimised plans built once, shared by every thread.
pub struct Pipeline {
    pub(crate) cfg: PipelineConfig,
    pub(crate) pack: ModelPack,
    pub(crate) engines: EngineNames,
    pub(crate) detector: Box<dyn Detector>,
    pub(crate) judges: Vec<Box<dyn Judge>>,
    pub(crate) head: Option<Head>,
    /// The pack's face embedder (liveness with verify), on the detector's engine: ONNX
    /// Runtime runs MobileFaceNet in 5.2 ms a face against tract's 6.7-7.0
    /// (docs/BENCHMARKS.md), unlike the judges.
    pub(crate) embedder: Option<Embedder>,
}

impl Pipeline {
    /// Verifies the pack's files (size and sha256) and builds the optimised plans.
    pub fn load(
        cfg: PipelineConfig,
        manifest: &Manifest,
        engines: impl Into<Engines>,
    ) -> Result<Self, PipelineError> {
        let engines: Engines = engines.into();
        cfg.thresholds
            .validate()
            .map_err(PipelineError::InvalidRequest)?;
        let dir = cfg.models_dir.as_path();
        for spec in manifest.pack_models() {
            let status = verify_file(dir, spec);
            if status != FileStatus::Ok {
                return Err(ModelsError::BadFile {
                    path: dir.join(&spec.file),
                    status,
                }
                .into());
            }
        }
        let det_spec = manifest.get(&manifest.pack.detector)?;
        let detector: Box<dyn Detector> = match det_spec.family {
            Family::Yunet => Box::new(YuNet::load(
                engines.detector.as_ref(),
                dir,
                det_spec,
                cfg.detector_size,
                cfg.detect_mode,
            )?),
            other => return Err(wrong_family(&det_spec.name, other, "a detector")),
        };
        let judges = manifest
            .pack
            .judges
            .iter()
            .map(|name| {
                let spec = manifest.get(name)?;
                match spec.family {
                    Family::Classifier => Ok(Box::new(Classifier::load(
                        engines.judge.as_ref(),
                        dir,
                        spec,
                        cfg.judge_trunks,
                    )?) as Box<dyn Judge>),
                    other => Err(wrong_family(&spec.name, other, "a judge")),
                }
            })
            .collect::<Result<Vec<_>, PipelineError>>()?;
        let embedder = match &manifest.pack.embedder {
            Some(name) => Some(load_embedder(
                engines.detector.as_ref(),
                dir,
                manifest.get(name)?,
            )?),
            None => None,
        };
        let head = manifest.pack.head.clone().map(Head::new);
        if let Some(h) = &head {
            // A head that does not fit the judges' features fails here, not at a request.
            let img = image::RgbImage::new(64, 64, vec![128; 64 * 64 * 3]);
            let b = BBox {
                x: 16.0,
                y: 16.0,
                width: 32.0,
                height: 32.0,
            };
            judge_all(&judges, Some(h), &img, &b)?;
        }
        Ok(Self {
            pack: ModelPack {
                name: manifest.pack.name.clone(),
                version: manifest.pack.version.clone(),
                sha256: pack_sha256(manifest),
            },
            engines: EngineNames {
                detector: engines.detector.name(),
                judges: engines.judge.name(),
            },
            cfg,
            detector,
            judges,
            head,
            embedder,
        })
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    pub fn model_pack(&self) -> &ModelPack {
        &self.pack
    }

    pub fn engines(&self) -> &EngineNames {
        &self.engines
    }

    pub fn models_dir(&self) -> &Path {
        &self.cfg.models_dir
    }

    /// Runs every detector plan once and every stage on a synthetic image, so the first
    /// request of any shape does not pay for lazy set-up.
    pub fn warm_up(&self) -> Result<(), PipelineError> {
        self.detector.warm_up()?;
        let img = image::RgbImage::new(640, 480, vec![128; 640 * 480 * 3]);
        self.detector.detect(&img)?;
        let centre = BBox {
            x: 220.0,
            y: 140.0,
            width: 200.0,
            height: 200.0,
        };
        judge_all(&self.judges, self.head.as_ref(), &img, &centre)?;
        if let Some(e) = &self.embedder {
            let eyes = Landmarks::from_array(
                [
                    (280.0, 220.0),
                    (360.0, 220.0),
                    (320.0, 260.0),
                    (290.0, 300.0),
                    (350.0, 300.0),
                ]
                .map(|(x, y)| Point { x, y }),
            );
            e.embed(&img, &eyes)?;
        }
        Ok(())
    }

    /// Judges the largest face of one image.
    pub fn check(&self, bytes: &[u8], opts: &CheckOptions) -> Result<Verdict, PipelineError> {
        self.check_ingested(bytes, opts).map(|(v, _)| v)
    }

    /// As [`check`](Self::check), also giving the decoded image (what a verify embeds the
    /// judged face from).
    pub(crate) fn check_ingested(
        &self,
        bytes: &[u8],
        opts: &CheckOptions,
    ) -> Result<(Verdict, ingest::Ingested), PipelineError> {
        let t0 = Instant::now();
        let threshold = opts.rule.threshold(&self.cfg.thresholds);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(PipelineError::InvalidRequest(format!(
                "threshold must be within 0..1, got {threshold}"
            )));
        }
        let ing = self.decode(bytes, opts)?;
        let mut timings = Timings {
            decode_ms: ms(t0),
            ..Timings::default()
        };
        let mut verdict = self.unjudged(&ing, opts, threshold);
        self.run_stages(&ing, opts, &mut verdict, &mut timings)?;
        timings.total_ms = ms(t0);
        verdict.timings = timings;
        Ok((verdict, ing))
    }

    /// Ingest: sniff, limits, decode, orientation, reduction.
    pub(crate) fn decode(
        &self,
        bytes: &[u8],
        opts: &CheckOptions,
    ) -> Result<ingest::Ingested, PipelineError> {
        let mut ingest_opts = self.cfg.ingest.clone();
        if let Some(r) = opts.auto_rotate {
            ingest_opts.auto_rotate = r;
        }
        ingest_opts.formats = opts.formats;
        ingest::ingest(bytes, &ingest_opts)
    }

    /// The verdict before any face is found: retry, with the image's own checks.
    fn unjudged(&self, ing: &ingest::Ingested, opts: &CheckOptions, threshold: f32) -> Verdict {
        Verdict {
            outcome: Outcome::Retry,
            retry_reason: None,
            live_score: None,
            per_model: Vec::new(),
            threshold,
            operating_point: opts.rule.operating_point(),
            face: None,
            faces: Vec::new(),
            face_scores: Vec::new(),
            image: ing.info.clone(),
            quality: quality::image_checks(&self.cfg.quality, ing.info.width, ing.info.height),
            timings: Timings::default(),
            model_pack: self.pack.clone(),
            views: Vec::new(),
        }
    }

    /// The stages after decoding, each of which may end the check with a retry: the image's
    /// checks, detection, the face's checks, then the judges and the decision.
    fn run_stages(
        &self,
        ing: &ingest::Ingested,
        opts: &CheckOptions,
        v: &mut Verdict,
        timings: &mut Timings,
    ) -> Result<(), PipelineError> {
        v.retry_reason = blocking(&v.quality);
        if v.retry_reason.is_some() {
            return Ok(());
        }
        let Some(judged) = self.find_face(ing, opts, v, timings)? else {
            v.retry_reason = Some(RetryReason::NoFace);
            return Ok(());
        };
        let (sx, sy) = ing.scale();
        let work_box = judged.bbox.scaled(sx, sy);
        // The judges crop at full resolution when the image kept it, as the reference does.
        let (judged_image, (jx, jy)) = ing.for_judges();
        let judge_box = judged.bbox.scaled(jx, jy);
        let context = quality::FaceContext {
            image: &ing.image,
            work_box,
            bbox: judged.bbox,
            landmarks: judged.landmarks.as_ref(),
            image_width: ing.info.width,
            image_height: ing.info.height,
            faces: v.faces.len().max(1),
        };
        v.quality
            .extend(quality::judged_face_checks(&self.cfg.quality, &context));
        v.face = Some(judged);
        v.retry_reason = blocking(&v.quality);
        if v.retry_reason.is_some() || opts.skip_judges {
            return Ok(());
        }
        let t = Instant::now();
        let scores = self.judge_faces(ing, opts, &judge_box, v)?;
        timings.judge_ms = ms(t);
        v.outcome = if scores.live_score >= v.threshold {
            Outcome::Live
        } else {
            Outcome::Spoof
        };
        v.live_score = Some(scores.live_score);
        v.per_model = scores.per_model;
        v.views = judge_views(&self.judges, judged_image, &judge_box, &opts.views)?;
        Ok(())
    }

    /// The face to judge: the caller's box, or the largest detected (all detected faces go
    /// into `v.faces`, in original pixels). `None`: no face.
    fn find_face(
        &self,
        ing: &ingest::Ingested,
        opts: &CheckOptions,
        v: &mut Verdict,
        timings: &mut Timings,
    ) -> Result<Option<JudgedFace>, PipelineError> {
        if let Some(b) = opts.face_box {
            check_box(&b, &ing.info)?;
            return Ok(Some(JudgedFace {
                bbox: b,
                landmarks: None,
                detection_score: None,
            }));
        }
        let t = Instant::now();
        let faces = self.detect(ing, opts.reference_detection)?;
        timings.detect_ms = ms(t);
        v.faces = faces;
        Ok(v.faces.first().map(|largest| JudgedFace {
            bbox: largest.bbox,
            landmarks: Some(largest.landmarks),
            detection_score: Some(largest.score),
        }))
    }

    /// The judged face's scores; with `judge_all_faces`, every other face fit to judge gets
    /// its live score in `v.face_scores` too.
    fn judge_faces(
        &self,
        ing: &ingest::Ingested,
        opts: &CheckOptions,
        judge_box: &BBox,
        v: &mut Verdict,
    ) -> Result<JudgeScores, PipelineError> {
        let (image, (jx, jy)) = ing.for_judges();
        let scores = judge_all(&self.judges, self.head.as_ref(), image, judge_box)?;
        v.face_scores = vec![None; v.faces.len().max(1)];
        v.face_scores[0] = Some(scores.live_score);
        if !opts.judge_all_faces {
            return Ok(scores);
        }
        for (i, f) in v.faces.iter().enumerate().skip(1) {
            if quality::face_fit(&self.cfg.quality, &f.bbox) {
                let b = f.bbox.scaled(jx, jy);
                let s = judge_all(&self.judges, self.head.as_ref(), image, &b)?;
                v.face_scores[i] = Some(s.live_score);
            }
        }
        Ok(scores)
    }
}

impl Pipeline {
    /// Every face of the image in original pixels, largest first: in the configured mode
    /// on the working image, or (`as_reference`) in one full pass on the full-resolution
    /// pixels when they were kept.
    pub(crate) fn detect(
        &self,
        ing: &ingest::Ingested,
        as_reference: bool,
    ) -> Result<Vec<Face>, PipelineError> {
        let (image, (sx, sy), mode) = match as_reference {
            true => {
                let (image, scale) = ing.for_judges();
                (image, scale, DetectMode::Full)
            }
            false => (&ing.image, ing.scale(), self.detector.mode()),
        };
        let faces = self.detector.detect_in(image, mode)?;
        Ok(faces.iter().map(|f| f.scaled(1.0 / sx, 1.0 / sy)).collect())
    }
}

/// The first check that fails under the enforce policy, as the reason to retry.
pub(crate) fn blocking(checks: &[QualityCheck]) -> Option<RetryReason> {
    checks
        .iter()
        .find(|c| c.blocks())
        .map(|c| RetryReason::Check(c.name))
}

/// sha256 over the pack's files' sha256s (detector, then judges) and its head's version.
fn pack_sha256(manifest: &Manifest) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for spec in manifest.pack_models() {
        h.update(spec.sha256.as_bytes());
        h.update(b"\n");
    }
    if let Some(head) = &manifest.pack.head {
        h.update(facelive_models::AdaptedPack::head_version(head).as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A given box must be a real box overlapping the image; like a detector's, it may run
/// past the border (the crop is shifted inside).
fn check_box(b: &BBox, info: &ImageInfo) -> Result<(), PipelineError> {
    let sane = [b.x, b.y, b.width, b.height].iter().all(|v| v.is_finite())
        && b.width >= 1.0
        && b.height >= 1.0;
    let (w, h) = (info.width as f32, info.height as f32);
    let overlaps = b.x < w && b.y < h && b.x + b.width > 0.0 && b.y + b.height > 0.0;
    if !(sane && overlaps) {
        return Err(PipelineError::InvalidRequest(format!(
            "the face box {},{},{},{} does not overlap the {}x{} image",
            b.x, b.y, b.width, b.height, info.width, info.height
        )));
    }
    Ok(())
}

fn load_embedder(
    backend: &dyn facelive_backends::Backend,
    dir: &Path,
    spec: &facelive_models::ModelSpec,
) -> Result<Embedder, PipelineError> {
    match spec.family {
        Family::Embedder => Embedder::load(backend, dir, spec),
        other => Err(wrong_family(&spec.name, other, "an embedder")),
    }
}

/// A manifest that puts a model where its family cannot serve: the server's
/// misconfiguration, refused at load.
fn wrong_family(name: &str, family: Family, as_what: &str) -> PipelineError {
    ModelsError::Manifest(format!(
        "{name} is of family {}, which this build cannot run as {as_what}",
        family.as_str()
    ))
    .into()
}

pub(crate) fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
