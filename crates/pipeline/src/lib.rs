//! The facelive pipeline: image bytes in, a liveness verdict for the largest face out.
//!
//! `ingest` (format, limits, decode, EXIF) -> `detect` (faces, landmarks) -> `quality`
//! (fit to judge?) -> `judge` (anti-spoof models) -> `decide` (operating point). It knows
//! nothing of HTTP; the CLI and the server are thin layers over [`Pipeline::check`].

mod check;
mod compare;
pub mod decide;
pub mod detect;
pub mod embed;
mod error;
pub mod face;
pub mod image;
pub mod imageops;
pub mod ingest;
pub mod judge;
pub mod quality;
mod tensor;
mod verify;

pub use decide::{DecisionRule, OperatingPoint, Thresholds};
pub use error::PipelineError;
pub use face::{BBox, Face, Landmarks, Point};
pub use ingest::{ImageInfo, IngestOptions};
pub use judge::{JudgeScores, ModelScore};
pub use quality::{CheckName, Policy, QualityCheck, QualityConfig, RetryReason};

pub use check::{
    CheckOptions, EngineNames, JudgedFace, ModelPack, Outcome, Pipeline, PipelineConfig, Timings,
    Verdict,
};
pub use compare::{ComparedFace, Comparison, MAX_COMPARED_FACES};
pub use detect::DetectMode;
pub use embed::{Embedder, Embedding};
pub use facelive_models::MatchThresholds;
pub use judge::{Head, View};
pub use verify::{
    matched, MatchRule, Reference, ReferenceFace, VerifyOutcome, VerifyVerdict, WhichImage,
};
