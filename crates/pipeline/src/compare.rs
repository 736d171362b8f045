//! Face compare (no liveness): the largest face of a source photo against every face of a
//! target photo, as the vendors' compare APIs answer (NHN Cloud Face Recognition).
//!
//! The source is taken as a verify's reference is (its own quality checks, its largest
//! face); each target face fit to use (big enough) is embedded from the same full-resolution
//! pixels and matched. No face is judged live: a compare says nothing of attacks.

use serde::Serialize;

use crate::check::{blocking, CheckOptions, Pipeline};
use crate::embed::Embedding;
use crate::error::PipelineError;
use crate::face::Face;
use crate::ingest::ImageInfo;
use crate::quality::{self, RetryReason};
use crate::verify::{checked_threshold, embed_judged, ReferenceFace};

/// The most target faces compared in one request (NHN recognises up to 20 a photo): the
/// cost of a request stays bounded whatever crowd its photo shows.
pub const MAX_COMPARED_FACES: usize = 20;

/// One target face and how it compares with the source's face.
#[derive(Debug, Clone, Serialize)]
pub struct ComparedFace {
    pub face: Face,
    /// Cosine similarity with the source's face, -1..1.
    pub similarity: f32,
    /// `similarity` at or above the match threshold.
    pub same_person: bool,
}

/// The answer of a compare.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The source's largest face; its `retry_reason` says why it cannot be used (then
    /// nothing was compared).
    pub source: ReferenceFace,
    pub target_image: ImageInfo,
    /// Why the target photo cannot be used (its own image checks), if so.
    pub target_retry_reason: Option<RetryReason>,
    /// The target's faces fit to use, most similar first.
    pub faces: Vec<ComparedFace>,
    pub match_threshold: f32,
}

impl Pipeline {
    /// Compares the largest face of `source` with every face of `target` at the cosine
    /// `threshold`.
    pub fn compare(
        &self,
        source: &[u8],
        target: &[u8],
        opts: &CheckOptions,
        threshold: f32,
    ) -> Result<Comparison, PipelineError> {
        let embedder = self.embedder()?;
        let threshold = checked_threshold(threshold)?;
        let reference = self.embed_reference(embedder, source, opts)?;
        let ing = self.decode(target, opts)?;
        let mut answer = Comparison {
            source: reference.face,
            target_image: ing.info.clone(),
            target_retry_reason: None,
            faces: Vec::new(),
            match_threshold: threshold,
        };
        let Some(source_embedding) = reference.embedding else {
            return Ok(answer);
        };
        let checks = quality::image_checks(&self.cfg.quality, ing.info.width, ing.info.height);
        answer.target_retry_reason = blocking(&checks);
        if answer.target_retry_reason.is_some() {
            return Ok(answer);
        }
        for face in self
            .detect(&ing, true)?
            .into_iter()
            .take(MAX_COMPARED_FACES)
        {
            if quality::face_fit(&self.cfg.quality, &face.bbox) {
                let e = embed_judged(embedder, &ing, &face.landmarks)?;
                answer
                    .faces
                    .push(compared(face, &e, &source_embedding, threshold));
            }
        }
        answer
            .faces
            .sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        Ok(answer)
    }
}

fn compared(face: Face, e: &Embedding, source: &Embedding, threshold: f32) -> ComparedFace {
    let similarity = e.similarity(source);
    ComparedFace {
        face,
        similarity,
        same_person: similarity >= threshold,
    }
}
