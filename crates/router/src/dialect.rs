//! The dialect table's types: every fact about an API dialect that more than one place
//! reads (its credential, bodies, formats, byte limits, error statuses and endpoints). Each
//! dialect module owns its entry; admission, the API description and `/info` read them.
//! A handler is told which entry it serves ([`Route`]) rather than naming it, so the table
//! can point at the handlers without the handlers pointing back.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::MethodRouter;
use facelive_pipeline::ingest::Formats;
use facelive_pipeline::{CheckOptions, DecisionRule};

use crate::auth::ApiKey;
use crate::config::Limits;
use crate::error::ApiError;
use crate::state::AppState;

/// How a dialect's requests carry their credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <key>`, or a capture session token (native).
    BearerOrSessionToken,
    /// The app key as the `{appKey}` path segment and the secret key as `Authorization` (NHN).
    AppKeyInPathAndSecret,
    /// The key in the first of these headers that holds it.
    Header(&'static [&'static str]),
}

/// The request bodies a dialect takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bodies {
    JsonOrMultipart,
    Json,
}

/// Byte limits of one dialect's requests, from the server's [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The whole request body.
    pub body: usize,
    /// The image file in it (the body's limit where the vendor sets none apart).
    pub file: usize,
}

/// How an endpoint decides live or spoof.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// facelive's operating points (or the caller's threshold, native).
    OperatingPoints,
    /// The vendor's fixed threshold on the 0..1 live score.
    Vendor(f32),
}

impl Decision {
    /// The vendor's threshold, if it has one.
    pub fn threshold(self) -> Option<f32> {
        match self {
            Decision::OperatingPoints => None,
            Decision::Vendor(t) => Some(t),
        }
    }
}

/// What a request is for: a verdict (audited; it spends a session token) or capture
/// guidance (neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verdict,
    Guidance,
}

/// One endpoint of a dialect: the paths it answers at and how it decides.
pub struct Endpoint {
    /// `POST` paths (the first is the one the vendor documents).
    pub paths: &'static [&'static str],
    /// Its name in metrics, logs and the audit trail.
    pub label: &'static str,
    pub purpose: Purpose,
    pub decision: Decision,
    pub(crate) handler: fn() -> MethodRouter<Arc<AppState>>,
}

/// One API dialect: every fact about it that more than one place reads.
pub struct Dialect {
    pub name: &'static str,
    pub key: ApiKey,
    pub credential: Credential,
    pub bodies: Bodies,
    /// The image formats the vendor documents.
    pub formats: Formats,
    pub sizes: fn(&Limits) -> Sizes,
    /// The HTTP status of an error's answer (NHN answers 200 for all, SpoofSense for most).
    pub error_status: fn(&ApiError) -> StatusCode,
    pub endpoints: &'static [&'static Endpoint],
}

impl Dialect {
    /// The pipeline's options for a request of this dialect decided by `rule`.
    pub(crate) fn options(&self, rule: DecisionRule) -> CheckOptions {
        CheckOptions {
            rule,
            formats: self.formats,
            ..Default::default()
        }
    }
}

impl Dialect {
    /// What `/info` says of it.
    pub(crate) fn describe(&self, limits: &Limits) -> serde_json::Value {
        let sizes = (self.sizes)(limits);
        let endpoints: Vec<String> = self
            .endpoints
            .iter()
            .flat_map(|e| e.paths.iter().map(|p| format!("POST {p}")))
            .collect();
        let thresholds: serde_json::Map<String, serde_json::Value> = self
            .endpoints
            .iter()
            .filter_map(|e| Some((e.paths[0].to_string(), e.decision.threshold()?.into())))
            .collect();
        serde_json::json!({
            "name": self.name,
            "endpoints": endpoints,
            "max_body_bytes": sizes.body,
            "max_file_bytes": sizes.file,
            "formats": self.formats.names(),
            "multipart": self.bodies == Bodies::JsonOrMultipart,
            "vendor_thresholds": thresholds,
        })
    }
}

/// The table entry a request came in by, given to its handler as a request extension.
#[derive(Clone, Copy)]
pub(crate) struct Route {
    pub dialect: &'static Dialect,
    pub endpoint: &'static Endpoint,
}
