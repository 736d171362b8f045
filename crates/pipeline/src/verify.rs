//! Liveness with verify: is the live face in the selfie the person in the reference?
//!
//! One pass binds the answers: the selfie is decoded, detected, checked and judged once, and
//! the face that was judged is the face that is embedded, from the same pixels; the reference
//! (an ID photo: no liveness, its own quality checks, its largest face) is decoded and
//! embedded, or given as an embedding already (a template). `verified` only when the selfie
//! is live and the two faces match.

use std::time::Instant;

use facelive_models::MatchThresholds;
use serde::Serialize;

use crate::check::{blocking, ms, CheckOptions, JudgedFace, Outcome, Pipeline, Verdict};
use crate::decide::OperatingPoint;
use crate::embed::{Embedder, Embedding};
use crate::error::PipelineError;
use crate::face::Landmarks;
use crate::ingest::{self, ImageInfo};
use crate::quality::{self, QualityCheck, RetryReason};

/// What the selfie is matched against.
pub enum Reference<'a> {
    /// A photo of the claimed person (an ID document's, a record's).
    Image(&'a [u8]),
    /// An embedding made before by this pipeline's embedder (an unsealed template).
    Embedding(Embedding),
}

/// The answer of liveness with verify: a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerifyOutcome {
    /// Live, and the same person as the reference.
    Verified,
    /// The selfie is a presentation attack (whoever it shows).
    Attack,
    /// Live, but not the person in the reference.
    NotSamePerson,
    /// One of the images cannot be judged: `retry_image` says which, `retry_reason` why.
    Retry,
}

impl VerifyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Attack => "attack",
            Self::NotSamePerson => "not_same_person",
            Self::Retry => "retry",
        }
    }
}

/// Which of the two images a retry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum WhichImage {
    Image,
    Reference,
}

/// The reference's face, when the reference was an image.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceFace {
    /// Its largest face, in its original pixels; absent when none was found.
    pub face: Option<JudgedFace>,
    pub image: ImageInfo,
    pub quality: Vec<QualityCheck>,
    pub retry_reason: Option<RetryReason>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyVerdict {
    pub outcome: VerifyOutcome,
    pub retry_image: Option<WhichImage>,
    pub retry_reason: Option<RetryReason>,
    /// The selfie's liveness verdict, as `check` gives it.
    pub liveness: Verdict,
    /// Absent when the reference was an embedding.
    pub reference: Option<ReferenceFace>,
    /// Cosine similarity of the two faces; absent when either has no face to embed.
    pub similarity: Option<f32>,
    pub match_threshold: f32,
    pub same_person: Option<bool>,
    pub verified: bool,
    /// Time spent on the reference: decoding, detecting and embedding it (none for a template).
    pub reference_ms: f64,
}

/// What a verify request asks beyond a check's options.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatchRule {
    /// The caller's match threshold; otherwise the operating point's.
    threshold: Option<f32>,
}

impl MatchRule {
    /// The caller's match threshold (a cosine similarity, -1..1), or `None` for the
    /// operating point's.
    pub fn new(threshold: Option<f32>) -> Result<Self, PipelineError> {
        let threshold = threshold.map(checked_threshold).transpose()?;
        Ok(Self { threshold })
    }
}

fn match_threshold(t: &MatchThresholds, p: OperatingPoint) -> f32 {
    match p {
        OperatingPoint::Weak => t.weak,
        OperatingPoint::Balanced => t.balanced,
        OperatingPoint::Strict => t.strict,
    }
}

/// A reference photo embedded: its face and the embedding (absent when it cannot be used).
pub(crate) struct EmbeddedReference {
    pub face: ReferenceFace,
    pub embedding: Option<Embedding>,
}

impl Pipeline {
    pub fn embedder(&self) -> Result<&Embedder, PipelineError> {
        self.embedder.as_ref().ok_or_else(|| {
            PipelineError::InvalidRequest(
                "the model pack has no face embedder, so it cannot verify identity".into(),
            )
        })
    }

    /// The match thresholds in force: the configuration's, else the embedder's manifest entry.
    pub fn match_thresholds(&self) -> Option<MatchThresholds> {
        self.cfg
            .match_thresholds
            .or_else(|| self.embedder.as_ref().map(|e| e.thresholds()))
    }

    /// Judges the selfie's largest face and matches that same face against `reference`.
    pub fn verify(
        &self,
        selfie: &[u8],
        reference: Reference<'_>,
        opts: &CheckOptions,
        rule: MatchRule,
    ) -> Result<VerifyVerdict, PipelineError> {
        let threshold = self.match_threshold(opts, rule)?;
        let (liveness, selfie_embedding) = self.judge_and_embed(selfie, opts)?;
        let t = Instant::now();
        let (reference, ref_embedding) = match reference {
            Reference::Image(bytes) => {
                let r = self.embed_reference(self.embedder()?, bytes, opts)?;
                (Some(r.face), r.embedding)
            }
            Reference::Embedding(e) => (None, Some(self.check_embedding(e)?)),
        };
        let mut v = matched(
            liveness,
            reference,
            selfie_embedding.as_ref(),
            ref_embedding.as_ref(),
            threshold,
        );
        v.reference_ms = ms(t);
        Ok(v)
    }

    /// The selfie judged as [`check`](Pipeline::check) does, and the judged face embedded
    /// from the same pixels (absent when no face with landmarks was found).
    pub fn judge_and_embed(
        &self,
        selfie: &[u8],
        opts: &CheckOptions,
    ) -> Result<(Verdict, Option<Embedding>), PipelineError> {
        let embedder = self.embedder()?;
        if opts.face_box.is_some() {
            return Err(PipelineError::InvalidRequest(
                "a verify needs the detector's landmarks to align the face: give no face box"
                    .into(),
            ));
        }
        let opts = CheckOptions {
            reference_detection: true,
            ..opts.clone()
        };
        let (liveness, ing) = self.check_ingested(selfie, &opts)?;
        let embedding = match &liveness.face {
            Some(JudgedFace {
                landmarks: Some(l), ..
            }) => Some(embed_judged(embedder, &ing, l)?),
            _ => None,
        };
        Ok((liveness, embedding))
    }

    /// An embedding given by the caller (a template's), if it is this embedder's size.
    fn check_embedding(&self, e: Embedding) -> Result<Embedding, PipelineError> {
        let embedder = self.embedder()?;
        if e.values().len() != embedder.dims() {
            return Err(PipelineError::InvalidRequest(format!(
                "the reference embedding has {} values, the embedder {} makes {}",
                e.values().len(),
                embedder.name(),
                embedder.dims()
            )));
        }
        Ok(e)
    }

    /// The caller's match threshold, or the operating point's (balanced when the liveness
    /// decision was given as a bare threshold).
    pub fn match_threshold(
        &self,
        opts: &CheckOptions,
        rule: MatchRule,
    ) -> Result<f32, PipelineError> {
        let point = opts
            .rule
            .operating_point()
            .unwrap_or(OperatingPoint::Balanced);
        let table = self
            .cfg
            .match_thresholds
            .unwrap_or(self.embedder()?.thresholds());
        // The table's own values are checked too: a configuration may be wrong.
        checked_threshold(rule.threshold.unwrap_or(match_threshold(&table, point)))
    }

    /// The reference photo: decoded, its own image and face checks, its largest face
    /// embedded. A reference that cannot be decoded is the request's error, named as the
    /// reference's.
    pub(crate) fn embed_reference(
        &self,
        embedder: &Embedder,
        bytes: &[u8],
        opts: &CheckOptions,
    ) -> Result<EmbeddedReference, PipelineError> {
        let in_reference = |e: PipelineError| match e {
            e if e.is_client_error() => PipelineError::InvalidReference(Box::new(e)),
            e => e,
        };
        let ing = self.decode(bytes, opts).map_err(in_reference)?;
        let mut face = ReferenceFace {
            face: None,
            image: ing.info.clone(),
            quality: quality::image_checks(&self.cfg.quality, ing.info.width, ing.info.height),
            retry_reason: None,
        };
        face.retry_reason = blocking(&face.quality);
        if face.retry_reason.is_some() {
            return Ok(EmbeddedReference {
                face,
                embedding: None,
            });
        }
        let (sx, sy) = ing.scale();
        let faces = self.detect(&ing, true)?;
        let Some(largest) = faces.first().copied() else {
            face.retry_reason = Some(RetryReason::NoFace);
            return Ok(EmbeddedReference {
                face,
                embedding: None,
            });
        };
        let context = quality::FaceContext {
            image: &ing.image,
            work_box: largest.bbox.scaled(sx, sy),
            bbox: largest.bbox,
            landmarks: Some(&largest.landmarks),
            image_width: ing.info.width,
            image_height: ing.info.height,
            faces: faces.len(),
        };
        face.quality
            .extend(quality::judged_face_checks(&self.cfg.quality, &context));
        face.face = Some(JudgedFace {
            bbox: largest.bbox,
            landmarks: Some(largest.landmarks),
            detection_score: Some(largest.score),
        });
        face.retry_reason = blocking(&face.quality);
        if face.retry_reason.is_some() {
            return Ok(EmbeddedReference {
                face,
                embedding: None,
            });
        }
        let embedding = embed_judged(embedder, &ing, &largest.landmarks)?;
        Ok(EmbeddedReference {
            face,
            embedding: Some(embedding),
        })
    }

    /// A reference photo's face and, when it is fit to use, its embedding (for templates);
    /// why it is not fit is the face's `retry_reason`.
    pub fn reference_embedding(
        &self,
        bytes: &[u8],
        auto_rotate: Option<bool>,
    ) -> Result<(ReferenceFace, Option<Embedding>), PipelineError> {
        let opts = CheckOptions {
            auto_rotate,
            ..CheckOptions::default()
        };
        let r = self.embed_reference(self.embedder()?, bytes, &opts)?;
        Ok((r.face, r.embedding))
    }
}

/// The face with `landmarks` (original pixels) embedded from the sharpest pixels kept: the
/// full-resolution image when ingest kept it, as the reference recipe aligns on it.
pub(crate) fn embed_judged(
    embedder: &Embedder,
    ing: &ingest::Ingested,
    landmarks: &Landmarks,
) -> Result<Embedding, PipelineError> {
    let (image, (jx, jy)) = ing.for_judges();
    embedder.embed(image, &landmarks.scaled(jx, jy))
}

/// The verdict of a selfie judged and embedded and a reference embedded (by
/// [`Pipeline::judge_and_embed`] and [`Pipeline::reference_embedding`]), matched at
/// `threshold`: what `verify` answers, for callers that embed each image once for many pairs.
pub fn matched(
    liveness: Verdict,
    reference: Option<ReferenceFace>,
    selfie: Option<&Embedding>,
    reference_embedding: Option<&Embedding>,
    threshold: f32,
) -> VerifyVerdict {
    let similarity = selfie
        .zip(reference_embedding)
        .map(|(a, b)| a.similarity(b));
    let mut v = VerifyVerdict {
        outcome: VerifyOutcome::Retry,
        retry_image: None,
        retry_reason: None,
        liveness,
        reference,
        similarity,
        match_threshold: threshold,
        same_person: similarity.map(|s| s >= threshold),
        verified: false,
        reference_ms: 0.0,
    };
    decide(&mut v);
    v
}

/// The outcome from the liveness verdict, the reference and the match: a selfie that
/// cannot be judged first, then an attack (whoever it shows), then a reference that cannot
/// be used, then the match.
fn decide(v: &mut VerifyVerdict) {
    let reference_retry = v.reference.as_ref().and_then(|r| r.retry_reason);
    (v.outcome, v.retry_image, v.retry_reason) = match (v.liveness.outcome, reference_retry) {
        (Outcome::Retry, _) => (
            VerifyOutcome::Retry,
            Some(WhichImage::Image),
            v.liveness.retry_reason,
        ),
        (Outcome::Spoof, _) => (VerifyOutcome::Attack, None, None),
        (Outcome::Live, Some(r)) => (VerifyOutcome::Retry, Some(WhichImage::Reference), Some(r)),
        (Outcome::Live, None) if v.same_person == Some(true) => {
            (VerifyOutcome::Verified, None, None)
        }
        (Outcome::Live, None) => (VerifyOutcome::NotSamePerson, None, None),
    };
    v.verified = v.outcome == VerifyOutcome::Verified;
}

/// A match threshold is a cosine similarity: -1..1.
pub(crate) fn checked_threshold(t: f32) -> Result<f32, PipelineError> {
    if (-1.0..=1.0).contains(&t) {
        Ok(t)
    } else {
        Err(PipelineError::InvalidRequest(format!(
            "match threshold must be within -1..1, got {t}"
        )))
    }
}
