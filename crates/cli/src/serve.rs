//! `facelive serve`: the HTTP service.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgMatches, Args};
use facelive_router::{
    AppState, AuditConfig, Connections, FetchRules, Keys, Limits, Network, Secret, ServerConfig,
    SessionConfig,
};
use figment::providers::Serialized;
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::config::PipelineArgs;

/// The server's settings. Also `[serve]` in facelive.toml, field for field: a flag or an
/// environment variable beats the file; the file beats the defaults.
#[derive(Debug, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "FACELIVE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Run without API keys. Authentication is on unless this is given.
    #[arg(long, env = "FACELIVE_NO_AUTH", default_value_t = false)]
    pub no_auth: bool,
    /// Native API key (`Authorization: Bearer <key>`).
    #[arg(long, env = "FACELIVE_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,
    /// NHN appKey (the path segment).
    #[arg(long, env = "FACELIVE_NHN_APP_KEY", hide_env_values = true)]
    pub nhn_app_key: Option<Secret>,
    /// NHN secretKey (`Authorization` header).
    #[arg(long, env = "FACELIVE_NHN_SECRET_KEY", hide_env_values = true)]
    pub nhn_secret_key: Option<Secret>,
    /// Accura key (`Api-Key` header).
    #[arg(long, env = "FACELIVE_ACCURA_API_KEY", hide_env_values = true)]
    pub accura_api_key: Option<Secret>,
    /// JCV key (`X-API-Key` header).
    #[arg(long, env = "FACELIVE_JCV_API_KEY", hide_env_values = true)]
    pub jcv_api_key: Option<Secret>,
    /// SpoofSense key (`x-api-key` header).
    #[arg(long, env = "FACELIVE_SPOOFSENSE_API_KEY", hide_env_values = true)]
    pub spoofsense_api_key: Option<Secret>,
    /// Secret signing capture session tokens (`POST /v1/sessions`); give every replica the
    /// same one. Default: a random secret per process (tokens work only on the replica that
    /// issued them).
    #[arg(long, env = "FACELIVE_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<Secret>,
    /// Secret sealing face templates (`POST /v1/templates`); give every replica the same one.
    /// Default: a random secret per process (templates open only where they were made).
    #[arg(long, env = "FACELIVE_TEMPLATE_SECRET", hide_env_values = true)]
    pub template_secret: Option<Secret>,
    /// Ed25519 private key, PKCS#8 PEM (`openssl genpkey -algorithm ed25519`), signing the
    /// attestation of every capture session's answer; give every replica the same one.
    /// Default: a key generated at start (a warning says so).
    #[arg(long, env = "FACELIVE_ATTESTATION_KEY", value_name = "PEM")]
    pub attestation_key: Option<std::path::PathBuf>,
    /// Seconds a capture session token stays valid.
    #[arg(long, env = "FACELIVE_SESSION_TTL", default_value_t = SessionConfig::default().ttl.as_secs())]
    pub session_ttl: u64,
    /// The decision audit trail: one JSON line per judged request (no image, key, token or
    /// URL), to this file or `-` for standard output. Default: none.
    #[arg(long, env = "FACELIVE_AUDIT_LOG", value_name = "PATH")]
    pub audit_log: Option<std::path::PathBuf>,
    /// The audit file is rotated before it passes this many bytes.
    #[arg(long, env = "FACELIVE_AUDIT_LOG_MAX_BYTES", default_value_t = AuditConfig::default().max_bytes)]
    pub audit_log_max_bytes: u64,
    /// Rotated audit files kept (PATH.1 is the newest; at most 1000).
    #[arg(long, env = "FACELIVE_AUDIT_LOG_KEEP", default_value_t = AuditConfig::default().keep)]
    pub audit_log_keep: usize,
    /// Images judged at once (0: the number of cores).
    #[arg(long, env = "FACELIVE_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Requests allowed to wait for a worker; beyond that, 503 with Retry-After at once.
    #[arg(long, env = "FACELIVE_QUEUE", default_value_t = 16)]
    pub queue: usize,
    /// Deadline of one request, in seconds (503 with Retry-After when exceeded).
    #[arg(long, env = "FACELIVE_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,
    /// Slowest average upload rate accepted after the grace period, bytes/s (408 below).
    #[arg(long, env = "FACELIVE_MIN_BODY_RATE", default_value_t = Limits::default().min_body_rate)]
    pub min_body_rate: u64,
    /// Seconds a request body may take before its average rate is checked.
    #[arg(long, env = "FACELIVE_BODY_GRACE", default_value_t = Limits::default().body_grace.as_secs())]
    pub body_grace: u64,
    /// Pixels (from the images' headers) decoded at once across the server; larger images
    /// wait for each other.
    #[arg(long, env = "FACELIVE_DECODE_BUDGET_PIXELS", default_value_t = Limits::default().decode_budget_pixels)]
    pub decode_budget_pixels: u64,
    /// Requests one API key may have in flight at once, from the first byte of the body to
    /// the answer (429 `too_many_requests` beyond); 0 for no limit.
    #[arg(long, env = "FACELIVE_PER_KEY_REQUESTS", default_value_t = Limits::default().per_key_requests)]
    pub per_key_requests: usize,
    /// Requests one capture session token may have in flight at once; tokens have places of
    /// their own, apart from the key that made them (429 beyond); 0 for no limit.
    #[arg(long, env = "FACELIVE_PER_TOKEN_REQUESTS", default_value_t = Limits::default().per_token_requests)]
    pub per_token_requests: usize,
    /// Requests all session tokens together may have in flight at once; 0 for no limit.
    #[arg(long, env = "FACELIVE_TOKEN_REQUESTS", default_value_t = Limits::default().token_requests)]
    pub token_requests: usize,
    /// Open connections at once; beyond, new ones are closed at once.
    #[arg(long, env = "FACELIVE_MAX_CONNECTIONS", default_value_t = Connections::default().max_connections)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers; also how long a new connection
    /// may stay without a request (its first byte included) before it is closed.
    #[arg(long, env = "FACELIVE_HEADER_TIMEOUT", default_value_t = Connections::default().header_read_timeout.as_secs())]
    pub header_timeout: u64,
    /// Seconds an HTTP/2 connection may stay with no stream in flight after its last
    /// answer before it is closed (pings do not count; an HTTP/1 connection waits at most
    /// the header timeout for its next request).
    #[arg(long, env = "FACELIVE_IDLE_TIMEOUT", default_value_t = Connections::default().idle_timeout.as_secs())]
    pub idle_timeout: u64,
    /// Seconds between the stop signal (SIGTERM) and closing the listener, during which
    /// `/ready` answers 503 and requests are still served; requests in flight then finish.
    /// A second signal stops at once.
    #[arg(long, env = "FACELIVE_DRAIN", default_value_t = Connections::default().drain.as_secs())]
    pub drain: u64,
    /// Seconds after the drain that requests in flight have to finish before the server
    /// stops regardless (idle connections close at once; the audit trail then gets 3 s
    /// more). drain + this + 3 must stay under the pod's termination grace period.
    #[arg(long, env = "FACELIVE_SHUTDOWN_TIMEOUT", default_value_t = Connections::default().shutdown_timeout.as_secs())]
    pub shutdown_timeout: u64,
    /// Native API body limit, bytes.
    #[arg(long, env = "FACELIVE_NATIVE_MAX_BODY", default_value_t = Limits::default().native_body)]
    pub native_max_body: usize,
    /// NHN image file limit, bytes.
    #[arg(long, env = "FACELIVE_NHN_MAX_FILE", default_value_t = Limits::default().nhn_file)]
    pub nhn_max_file: usize,
    /// Accura image file limit, bytes.
    #[arg(long, env = "FACELIVE_ACCURA_MAX_FILE", default_value_t = Limits::default().accura_file)]
    pub accura_max_file: usize,
    /// JCV image file limit, bytes.
    #[arg(long, env = "FACELIVE_JCV_MAX_FILE", default_value_t = Limits::default().jcv_file)]
    pub jcv_max_file: usize,
    /// SpoofSense body limit, bytes (413 above).
    #[arg(long, env = "FACELIVE_SPOOFSENSE_MAX_BODY", default_value_t = Limits::default().spoofsense_body)]
    pub spoofsense_max_body: usize,
    /// Image URL download deadline, seconds.
    #[arg(long, env = "FACELIVE_URL_TIMEOUT", default_value_t = 10)]
    pub url_timeout: u64,
    /// Ports image URLs may name (comma-separated ports or ranges).
    #[arg(long, env = "FACELIVE_URL_PORTS", default_value = "80,443,10000-12000")]
    pub url_ports: String,
    /// Networks image URLs may reach although private or loopback (CIDR, comma-separated),
    /// for private deployments and tests. Default: none.
    #[arg(long, env = "FACELIVE_URL_ALLOW_NETWORKS", value_delimiter = ',', num_args = 0..)]
    pub url_allow_network: Vec<Network>,
}

impl ServeArgs {
    /// Layers `[serve]` from the file over the defaults, and the flags and environment
    /// variables that were given over both.
    pub fn merge_file(self, file: toml::Table, m: &ArgMatches) -> anyhow::Result<Self> {
        let given = crate::config::only_given(&self, &[m])?;
        Figment::from(Serialized::defaults(self))
            .merge(Serialized::defaults(file))
            .merge(Serialized::defaults(given))
            .extract()
            .context("[serve] in the config file")
    }
}

fn parse_ports(s: &str) -> anyhow::Result<Vec<std::ops::RangeInclusive<u16>>> {
    s.split(',')
        .map(|p| {
            let p = p.trim();
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
            anyhow::ensure!(a <= b, "port range {p} is backwards");
            Ok(a..=b)
        })
        .collect::<anyhow::Result<_>>()
        .with_context(|| format!("--url-ports {s:?}"))
}

impl ServeArgs {
    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        anyhow::ensure!(
            self.audit_log_keep <= facelive_router::audit::MAX_KEEP,
            "--audit-log-keep {} is above {}: each rotation renames every kept file",
            self.audit_log_keep,
            facelive_router::audit::MAX_KEEP
        );
        let keys = Keys {
            native: self.api_key.clone(),
            nhn_app_key: self.nhn_app_key.clone(),
            nhn_secret_key: self.nhn_secret_key.clone(),
            accura: self.accura_api_key.clone(),
            jcv: self.jcv_api_key.clone(),
            spoofsense: self.spoofsense_api_key.clone(),
        };
        let any_key = keys.native.is_some()
            || keys.nhn_secret_key.is_some()
            || keys.accura.is_some()
            || keys.jcv.is_some()
            || keys.spoofsense.is_some();
        anyhow::ensure!(
            self.no_auth || any_key,
            "no API key is configured: set at least one (e.g. FACELIVE_API_KEY), or pass \
             --no-auth to run without authentication"
        );
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(ServerConfig {
            listen: self.listen,
            auth: !self.no_auth,
            keys,
            limits: Limits {
                min_body_rate: self.min_body_rate,
                body_grace: Duration::from_secs(self.body_grace),
                decode_budget_pixels: self.decode_budget_pixels,
                per_key_requests: self.per_key_requests,
                per_token_requests: self.per_token_requests,
                token_requests: self.token_requests,
                native_body: self.native_max_body,
                nhn_file: self.nhn_max_file,
                accura_file: self.accura_max_file,
                jcv_file: self.jcv_max_file,
                spoofsense_body: self.spoofsense_max_body,
            },
            workers: if self.workers == 0 {
                cores
            } else {
                self.workers
            },
            queue: self.queue,
            request_timeout: Duration::from_secs(self.request_timeout),
            fetch: FetchRules {
                ports: parse_ports(&self.url_ports)?,
                allow: self.url_allow_network.clone(),
                timeout: Duration::from_secs(self.url_timeout),
                ..FetchRules::default()
            },
            connections: Connections {
                max_connections: self.max_connections.max(1),
                header_read_timeout: Duration::from_secs(self.header_timeout.max(1)),
                idle_timeout: Duration::from_secs(self.idle_timeout.max(1)),
                drain: Duration::from_secs(self.drain),
                shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            },
            sessions: SessionConfig {
                secret: self.session_secret.clone(),
                ttl: Duration::from_secs(self.session_ttl.max(1)),
                template_secret: self.template_secret.clone(),
                attestation_key: self.attestation_key.clone(),
            },
            audit: AuditConfig {
                path: self.audit_log.clone(),
                max_bytes: self.audit_log_max_bytes,
                keep: self.audit_log_keep,
            },
        })
    }
}

/// Buffers of 1 MB and more that C code allocates with glibc (libjpeg-turbo's, ONNX
/// Runtime's) are mapped and unmapped on their own, so they go back after a burst of large
/// images; glibc otherwise raises this threshold after the first large free and keeps them.
/// Rust's own allocations go to mimalloc (main.rs), not through this.
fn return_large_buffers_at_once() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

pub fn run(args: &PipelineArgs, mut a: ServeArgs, m: &ArgMatches) -> anyhow::Result<ExitCode> {
    if let Some(file) = args.sections.serve.clone() {
        a = a.merge_file(file, m)?;
    }
    let cfg = a.server_config()?;
    return_large_buffers_at_once();
    let pipeline = crate::load_pipeline(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("listening on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        let auth = cfg.auth;
        let state = AppState::new(pipeline, cfg).map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!(%addr, auth, "facelive serving");
        eprintln!(
            "facelive listening on http://{addr} (authentication {})",
            if auth { "on" } else { "OFF" }
        );
        facelive_router::serve(state, listener, shutdown_signal()).await?;
        eprintln!("facelive stopped");
        Ok(ExitCode::SUCCESS)
    });
    // Connections past the shutdown deadline are abandoned, not waited for.
    rt.shutdown_timeout(Duration::from_secs(1));
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    eprintln!("facelive draining (a second signal stops at once)");
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
    #[cfg(unix)]
    tokio::spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut s) = signal(SignalKind::terminate()) {
            s.recv().await;
            std::process::exit(143);
        }
    });
}
