//! The server's state, shared by every request: the pipeline, the worker pool, the key and
//! token places, sessions, templates, attestations and the audit trail, and the one
//! request shell (`handle`) that times, counts, logs and audits each decision.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use facelive_pipeline::{
    CheckOptions, Comparison, Embedding, MatchRule, Pipeline, Reference, Verdict, VerifyVerdict,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::auth::{self, ApiKey, KeyLimits};
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::input::fetch::Fetcher;
use crate::refusals::{self, Refusals};
use crate::work::Workers;
use crate::{attest, audit, sessions, templates};

pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub cfg: ServerConfig,
    pub(crate) workers: Workers,
    pub(crate) fetcher: Fetcher,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) refusals: Refusals,
    pub(crate) key_limits: KeyLimits,
    pub(crate) ready: AtomicBool,
    /// Set at the stop signal: `/ready` fails while requests are still served.
    pub(crate) draining: AtomicBool,
    pub(crate) sessions: sessions::Sessions,
    pub(crate) templates: templates::Templates,
    pub(crate) attestor: attest::Attestor,
    pub(crate) audit: Option<audit::Audit>,
    /// How the trail names each dialect's key: a short hash of its value.
    pub(crate) key_ids: [String; ApiKey::ALL.len()],
}

impl AppState {
    pub fn new(pipeline: Arc<Pipeline>, cfg: ServerConfig) -> Result<Arc<Self>, ApiError> {
        let metrics = metrics_recorder();
        Ok(Arc::new(Self {
            workers: Workers::new(cfg.workers, cfg.queue, cfg.limits.decode_budget_pixels),
            fetcher: Fetcher::new(cfg.fetch.clone())?,
            key_limits: KeyLimits::new(
                cfg.limits.per_key_requests,
                cfg.limits.per_token_requests,
                cfg.limits.token_requests,
            ),
            sessions: sessions::Sessions::new(cfg.sessions.secret.as_deref(), cfg.sessions.ttl),
            templates: templates::Templates::new(cfg.sessions.template_secret.as_deref()),
            attestor: attestor(&cfg)?,
            audit: audit::Audit::start(&cfg.audit)
                .map_err(|e| ApiError::Internal(format!("cannot open the audit log: {e}")))?,
            key_ids: ApiKey::ALL.map(|k| auth::key_id(cfg.auth, cfg.keys.get(k))),
            pipeline,
            cfg,
            metrics,
            refusals: Refusals::new(refusals::INTERVAL),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }))
    }

    /// Admits a request whose image is in hand (or refuses it at once when the places are
    /// full) and runs the pipeline on the worker pool. Reading a body or downloading a URL
    /// takes no place: a slow client cannot keep others out.
    pub(crate) async fn judge(
        &self,
        bytes: Vec<u8>,
        opts: CheckOptions,
    ) -> Result<Verdict, ApiError> {
        let _place = self.workers.admit()?;
        // The pixels this image will decode, from its header, are reserved before decoding:
        // concurrent large images wait for each other instead of multiplying memory. A bad
        // header reserves nothing (decoding refuses it).
        let pixels = facelive_pipeline::ingest::header_pixels(&bytes).unwrap_or(0);
        let _pixels = self.workers.reserve_pixels(pixels).await?;
        let p = self.pipeline.clone();
        Ok(self.workers.run(move || p.check(&bytes, &opts)).await??)
    }

    /// As [`judge`](Self::judge), for liveness with verify: the selfie judged and its judged
    /// face matched against the reference (both images' pixels reserved).
    pub(crate) async fn verify(
        &self,
        selfie: Vec<u8>,
        reference: ReferenceInput,
        opts: CheckOptions,
        rule: MatchRule,
    ) -> Result<VerifyVerdict, ApiError> {
        let _place = self.workers.admit()?;
        let mut pixels = facelive_pipeline::ingest::header_pixels(&selfie).unwrap_or(0);
        if let ReferenceInput::Image(r) = &reference {
            pixels += facelive_pipeline::ingest::header_pixels(r).unwrap_or(0);
        }
        let _pixels = self.workers.reserve_pixels(pixels).await?;
        let p = self.pipeline.clone();
        let run = move || {
            let reference = match &reference {
                ReferenceInput::Image(bytes) => Reference::Image(bytes),
                ReferenceInput::Embedding(e) => Reference::Embedding(e.clone()),
            };
            p.verify(&selfie, reference, &opts, rule)
        };
        Ok(self.workers.run(run).await??)
    }

    /// A compare: the largest face of `source` against every face of `target`, at the cosine
    /// `threshold` (both images' pixels reserved). A source with no usable face is refused.
    pub(crate) async fn compare(
        &self,
        source: Vec<u8>,
        target: Vec<u8>,
        opts: CheckOptions,
        threshold: f32,
    ) -> Result<Comparison, ApiError> {
        let _place = self.workers.admit()?;
        let pixels = [&source, &target]
            .iter()
            .map(|b| facelive_pipeline::ingest::header_pixels(b).unwrap_or(0))
            .sum();
        let _pixels = self.workers.reserve_pixels(pixels).await?;
        let p = self.pipeline.clone();
        let run = move || p.compare(&source, &target, &opts, threshold);
        let c = self.workers.run(run).await??;
        match c.source.retry_reason {
            Some(r) => Err(ApiError::ReferenceUnusable(r.as_str())),
            None => Ok(c),
        }
    }

    /// A reference photo's sealed template, or why the photo cannot be one.
    pub(crate) async fn template(
        &self,
        bytes: Vec<u8>,
        auto_rotate: Option<bool>,
    ) -> Result<Sealed, ApiError> {
        let _place = self.workers.admit()?;
        let pixels = facelive_pipeline::ingest::header_pixels(&bytes).unwrap_or(0);
        let _pixels = self.workers.reserve_pixels(pixels).await?;
        let p = self.pipeline.clone();
        let (face, embedding) = self
            .workers
            .run(move || p.reference_embedding(&bytes, auto_rotate))
            .await??;
        let Some(e) = embedding else {
            return Err(ApiError::ReferenceUnusable(
                face.retry_reason.map_or("no usable face", |r| r.as_str()),
            ));
        };
        let sha = self.pipeline.embedder()?.sha256().to_string();
        Ok(Sealed {
            template: self.templates.seal(&e, &sha),
            face,
        })
    }

    /// The embedding a template seals, if it is this server's and this embedder's.
    pub(crate) fn open_template(&self, template: &str) -> Result<Embedding, ApiError> {
        let sha = self.pipeline.embedder()?.sha256();
        self.templates
            .open(template, sha)
            .map_err(ApiError::Template)
    }

    /// Whether the audit trail's last write failed (`/ready` then says so).
    pub(crate) fn audit_failing(&self) -> bool {
        self.audit.as_ref().is_some_and(|a| a.failing())
    }

    /// One of `key`'s in-flight places, held by the caller until it answers.
    pub(crate) fn admit_key(&self, key: ApiKey) -> Result<auth::Place, ApiError> {
        self.key_limits.admit(key)
    }

    /// One of the session token `id`'s places (apart from its key's), held until it answers.
    pub(crate) fn admit_token(&self, id: &str) -> Result<auth::Place, ApiError> {
        self.key_limits.admit_token(id)
    }

    pub(crate) async fn fetch(&self, url: &str, max_bytes: usize) -> Result<Vec<u8>, ApiError> {
        self.fetcher.fetch(url, max_bytes).await
    }

    /// Runs one dialect request under the request deadline and records its outcome.
    pub(crate) async fn handle<D: Decided>(
        &self,
        dialect: &'static str,
        request_id: &str,
        // `None`: not a decision (capture guidance), so not in the audit trail.
        who: Option<audit::Who>,
        fut: impl std::future::Future<Output = Result<D, ApiError>>,
    ) -> Result<D, ApiError> {
        let t0 = Instant::now();
        let res = match tokio::time::timeout(self.cfg.request_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::Timeout),
        };
        let label = match &res {
            Ok(d) => {
                if let Some(v) = d.liveness() {
                    record_stage_timings(v);
                }
                d.label()
            }
            Err(e) => e.mapping().code,
        };
        let secs = t0.elapsed().as_secs_f64();
        if let (Some(trail), Some(who), Ok(v)) = (&self.audit, &who, &res) {
            let key_id = match who {
                audit::Who::Key(k) => self.key_ids[k.index()].clone(),
                audit::Who::Session(id) => format!("session:{id}"),
            };
            trail.record(request_id, dialect, &key_id, v.liveness(), v.matched());
        }
        metrics::counter!("facelive_requests_total", "dialect" => dialect, "outcome" => label)
            .increment(1);
        metrics::histogram!("facelive_request_duration_seconds", "dialect" => dialect).record(secs);
        match &res {
            Err(e) if refusals::is_summarised(e) => self.refusals.note(label),
            // Overload, not a fault: a warning, like the refusals.
            Err(ApiError::Timeout) => {
                tracing::warn!(
                    request_id,
                    dialect,
                    outcome = label,
                    ms = secs * 1e3,
                    "request timed out"
                )
            }
            Err(e) if e.mapping().status.is_server_error() => {
                tracing::error!(request_id, dialect, outcome = label, ms = secs * 1e3, error = %e, "request failed")
            }
            _ => tracing::info!(
                request_id,
                dialect,
                outcome = label,
                ms = secs * 1e3,
                "request"
            ),
        }
        res
    }
}

/// A reference as a request gives it: a photo, or a template already opened.
pub(crate) enum ReferenceInput {
    Image(Vec<u8>),
    Embedding(Embedding),
}

/// What a request decided: a liveness verdict, one with a match, or a match alone (a
/// compare). The one request shell (`handle`) counts, logs and audits each.
pub(crate) trait Decided {
    /// The liveness verdict; `None` for a compare.
    fn liveness(&self) -> Option<&Verdict>;
    /// Its outcome's name in metrics and logs.
    fn label(&self) -> &'static str;
    /// The match, for the audit trail (never the embeddings).
    fn matched(&self) -> Option<audit::Match>;
}

impl Decided for Verdict {
    fn liveness(&self) -> Option<&Verdict> {
        Some(self)
    }
    fn label(&self) -> &'static str {
        self.outcome.as_str()
    }
    fn matched(&self) -> Option<audit::Match> {
        None
    }
}

impl Decided for VerifyVerdict {
    fn liveness(&self) -> Option<&Verdict> {
        Some(&self.liveness)
    }
    fn label(&self) -> &'static str {
        self.outcome.as_str()
    }
    fn matched(&self) -> Option<audit::Match> {
        Some(audit::Match {
            outcome: self.outcome.as_str(),
            similarity: self.similarity,
            match_threshold: self.match_threshold,
        })
    }
}

impl Decided for Comparison {
    fn liveness(&self) -> Option<&Verdict> {
        None
    }
    fn label(&self) -> &'static str {
        compare_outcome(self)
    }
    /// The most similar target face's match.
    fn matched(&self) -> Option<audit::Match> {
        Some(audit::Match {
            outcome: compare_outcome(self),
            similarity: self.faces.first().map(|f| f.similarity),
            match_threshold: self.match_threshold,
        })
    }
}

/// A reference photo sealed into a template: no decision, so nothing to audit.
pub(crate) struct Sealed {
    pub face: facelive_pipeline::ReferenceFace,
    pub template: String,
}

impl Decided for Sealed {
    fn liveness(&self) -> Option<&Verdict> {
        None
    }
    fn label(&self) -> &'static str {
        "template"
    }
    fn matched(&self) -> Option<audit::Match> {
        None
    }
}

/// A compare's outcome: a closed set of names for metrics, logs and the trail.
fn compare_outcome(c: &Comparison) -> &'static str {
    match c.faces.first() {
        Some(f) if f.same_person => "matched",
        Some(_) => "not_matched",
        // The target cannot be used (too small): nothing was looked for.
        None if c.target_retry_reason.is_some() => "retry",
        None => "no_face",
    }
}

/// The attestation signer: the configured key, or one generated at start, said loudly.
fn attestor(cfg: &ServerConfig) -> Result<attest::Attestor, ApiError> {
    let a = attest::Attestor::new(cfg.sessions.attestation_key.as_deref())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if a.ephemeral {
        tracing::warn!(
            "no --attestation-key: session attestations are signed with a key generated at \
             start, which other replicas do not share and a restart forgets"
        );
    }
    Ok(a)
}

fn record_stage_timings(v: &Verdict) {
    let t = &v.timings;
    for (stage, ms) in [
        ("decode", t.decode_ms),
        ("detect", t.detect_ms),
        ("judge", t.judge_ms),
        ("total", t.total_ms),
    ] {
        metrics::histogram!("facelive_stage_seconds", "stage" => stage).record(ms / 1e3);
    }
}

/// One Prometheus recorder per process (tests start several servers in one process).
fn metrics_recorder() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Buckets make real Prometheus histograms (aggregatable across instances) instead
            // of the exporter's default client-side summaries.
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ])
                .expect("bucket list is not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}
