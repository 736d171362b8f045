//! facelive's HTTP layer: the native API and the NHN, Accura, JCV and SpoofSense dialects,
//! each a thin adapter over the one pipeline, plus health, readiness, info and metrics.
//!
//! The pipeline knows nothing of HTTP, and no dialect knows anything of models: a dialect
//! turns its request into image bytes and [`CheckOptions`], and a [`Verdict`] or an
//! [`ApiError`] into its response.

mod admission;
pub mod attest;
pub mod audit;
pub mod auth;
pub mod config;
mod conn;
pub mod dialects;
pub mod error;
pub mod input;
mod openapi;
mod ops;
mod refusals;
pub mod sessions;
pub mod templates;
mod work;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use facelive_pipeline::{
    CheckOptions, Embedding, MatchRule, Pipeline, Reference, Verdict, VerifyVerdict,
};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

pub use audit::AuditConfig;
pub use config::{Connections, Keys, Limits, Secret, ServerConfig, SessionConfig};
pub use error::ApiError;
pub use input::fetch::{FetchRules, Network};

use auth::{ApiKey, KeyLimits};
use input::fetch::Fetcher;
use refusals::Refusals;
use tokio::sync::OwnedSemaphorePermit;
use work::Workers;

pub const REQUEST_ID: &str = "x-request-id";

/// Capture session tokens are issued here (native key only).
pub const SESSIONS: &str = "/v1/sessions";

/// The public keys of session attestations.
pub const JWKS: &str = "/.well-known/jwks.json";

/// How long the audit trail's queue may take to reach its sink at shutdown, after the
/// connections are done: what is left then is counted and logged.
pub const AUDIT_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// The longest client `X-Request-Id` kept (it goes into logs and answers).
pub const MAX_REQUEST_ID: usize = 128;

/// A client's request id is kept when it is one short value of `[A-Za-z0-9._:-]`.
fn request_id_acceptable(v: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
}

/// Drops a client's `X-Request-Id` that is long, repeated or of unsafe characters, so one
/// is generated (and answered) instead: no client writes kilobytes into every log line.
async fn screen_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    let mut given = req.headers().get_all(REQUEST_ID).iter();
    let keep = match (given.next(), given.next()) {
        (None, _) => true,
        (Some(v), None) => request_id_acceptable(v.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub cfg: ServerConfig,
    workers: Workers,
    fetcher: Fetcher,
    metrics: PrometheusHandle,
    refusals: Refusals,
    key_limits: KeyLimits,
    ready: AtomicBool,
    /// Set at the stop signal: `/ready` fails while requests are still served.
    draining: AtomicBool,
    sessions: sessions::Sessions,
    templates: templates::Templates,
    attestor: attest::Attestor,
    audit: Option<audit::Audit>,
    /// How the trail names each dialect's key: a short hash of its value.
    key_ids: [String; ApiKey::ALL.len()],
    /// `/openapi.json`, rendered once: it depends only on the configuration.
    openapi: axum::body::Bytes,
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
            openapi: openapi::document(&cfg.limits)
                .to_json()
                .map_err(|e| ApiError::Internal(format!("the API description: {e}")))?
                .into(),
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

    /// A reference photo's sealed template, or why the photo cannot be one.
    pub(crate) async fn template(
        &self,
        bytes: Vec<u8>,
        auto_rotate: Option<bool>,
    ) -> Result<(facelive_pipeline::ReferenceFace, String), ApiError> {
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
        Ok((face, self.templates.seal(&e, &sha)))
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
                record_stage_timings(d.liveness());
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

/// What a request decided: a liveness verdict, or one with a match. The one request shell
/// (`handle`) counts, logs and audits either.
pub(crate) trait Decided {
    fn liveness(&self) -> &Verdict;
    /// Its outcome's name in metrics and logs.
    fn label(&self) -> &'static str;
    /// The match, for the audit trail (never the embeddings).
    fn matched(&self) -> Option<audit::Match>;
}

impl Decided for Verdict {
    fn liveness(&self) -> &Verdict {
        self
    }
    fn label(&self) -> &'static str {
        self.outcome.as_str()
    }
    fn matched(&self) -> Option<audit::Match> {
        None
    }
}

impl Decided for VerifyVerdict {
    fn liveness(&self) -> &Verdict {
        &self.liveness
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

/// The attestation signer: the configured key, or one generated at start, said loudly.
fn attestor(cfg: &ServerConfig) -> Result<attest::Attestor, ApiError> {
    let a = attest::Attestor::new(cfg.sessions.attestation_key.as_deref())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if a.ephemeral {
        tracing::warn!(
            "no --attestation-key: session attestations are signed with a key generated at              start, which other replicas do not share and a restart forgets"
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

/// Every dialect's endpoints, each under its dialect's body limit (axum's own extractor
/// limit, backing up the checks made while reading).
fn dialect_routes(limits: &Limits) -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for d in dialects::ALL {
        let body = DefaultBodyLimit::max((d.sizes)(limits).body);
        for e in d.endpoints {
            for path in e.paths {
                router = router.route(path, (e.handler)().layer(body));
            }
        }
    }
    router
}

/// Every route besides the dialects' checks: method, path, handler.
fn others() -> [(Method, &'static str, MethodRouter<Arc<AppState>>); 11] {
    [
        (Method::POST, SESSIONS, post(dialects::native::session)),
        (Method::GET, JWKS, get(dialects::verify::jwks)),
        (Method::GET, ops::CAPTURE, get(ops::capture_page)),
        (Method::GET, ops::CAPTURE_MODULE, get(ops::capture_module)),
        (
            Method::GET,
            ops::CAPTURE_SCRIPT,
            get(ops::capture_page_script),
        ),
        (Method::GET, ops::HEALTH, get(ops::health)),
        (Method::GET, ops::READY, get(ops::ready)),
        (Method::GET, ops::INFO, get(ops::info)),
        (Method::GET, ops::METRICS, get(ops::metrics)),
        (Method::GET, ops::OPENAPI, get(ops::openapi)),
        (Method::GET, ops::DOCS, get(ops::docs)),
    ]
}

fn other_routes() -> Router<Arc<AppState>> {
    others()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
}

/// Every route [`app`] serves, as method and path: what the API description must cover.
pub fn routes() -> Vec<(Method, &'static str)> {
    let checks = dialects::ALL
        .iter()
        .flat_map(|d| d.endpoints.iter())
        .flat_map(|e| e.paths.iter().map(|p| (Method::POST, *p)));
    let others = others().into_iter().map(|(m, p, _)| (m, p));
    checks.chain(others).collect()
}

/// The whole HTTP surface.
pub fn app(state: Arc<AppState>) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    dialect_routes(&state.cfg.limits)
        .merge(other_routes())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(screen_request_id))
        // No answer is to be sniffed into another type or framed by another site (the
        // capture page allows its own origin, as its policy says).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .with_state(state)
}

/// Warms the pipeline (one request through every stage), then marks the server ready.
pub async fn warm_up(state: &AppState) -> Result<(), ApiError> {
    let p = state.pipeline.clone();
    state.workers.run(move || p.warm_up()).await??;
    state.ready.store(true, Ordering::SeqCst);
    Ok(())
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
///
/// The accept loop is facelive's own rather than `axum::serve` for what a server facing
/// the internet needs: a deadline for a request's headers (hyper enforces none without a
/// timer, so connections trickling headers stayed open indefinitely), a deadline for a
/// connection with no request in flight (the first byte, keep-alive, HTTP/2 with no
/// stream: `conn`), and a bound on open connections (beyond it the connection idle the
/// longest is closed, or, when all are busy, the new one).
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    warm_up(&state)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    serve_connections(state.clone(), listener, shutdown).await?;
    if let Some(trail) = &state.audit {
        trail.drain(AUDIT_DRAIN).await;
    }
    Ok(())
}

/// A place for a new connection: a free one, or the one the connection idle the longest
/// gives up; `None` when every open connection is busy.
async fn place(
    open: &Arc<tokio::sync::Semaphore>,
    registry: &conn::Registry,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = open.clone().try_acquire_owned() {
        return Some(p);
    }
    if !registry.evict_oldest_idle() {
        return None;
    }
    // The evicted connection's task ends as soon as it is told: its place follows.
    tokio::time::timeout(
        std::time::Duration::from_secs(1),
        open.clone().acquire_owned(),
    )
    .await
    .ok()?
    .ok()
}

/// [`serve`] without the warm-up: accepts and serves connections until `shutdown`.
pub async fn serve_connections(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let conn = state.cfg.connections.clone();
    let open = Arc::new(tokio::sync::Semaphore::new(conn.max_connections));
    let registry = Arc::new(conn::Registry::default());
    let app = app(state.clone());
    let graceful = GracefulShutdown::new();
    // Stop signal, then the drain: not ready, still serving; then the listener closes.
    let drain = conn.drain;
    let drained = async move {
        shutdown.await;
        state.draining.store(true, Ordering::SeqCst);
        tracing::info!(seconds = drain.as_secs_f32(), "draining");
        tokio::time::sleep(drain).await;
    };
    let mut drained = std::pin::pin!(drained);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut drained => break,
        };
        let Some(place) = place(&open, &registry).await else {
            metrics::counter!("facelive_connections_refused_total").increment(1);
            continue;
        };
        let entry = registry.enter();
        let activity = entry.activity.clone();
        // Each request marks the connection busy until its answer is ready.
        let service = tower::ServiceBuilder::new()
            .map_future(move |fut| {
                let busy = activity.begin();
                async move {
                    let answer = fut.await;
                    drop(busy);
                    answer
                }
            })
            .service(app.clone());
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(conn.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(conn.idle_timeout);
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let served = graceful.watch(served);
        let (first, idle) = (conn.header_read_timeout, conn.idle_timeout);
        tokio::spawn(async move {
            conn::until_idle(served, &entry.activity, first, idle).await;
            drop(entry);
            drop(place);
        });
    }
    // New connections are refused from now on, not accepted by the kernel to hang.
    drop(listener);
    let stopping = graceful.shutdown();
    if tokio::time::timeout(conn.shutdown_timeout, stopping).await.is_err() {
        tracing::warn!(
            seconds = conn.shutdown_timeout.as_secs(),
            "connections still busy at the shutdown deadline are closed"
        );
    }
    Ok(())
}
