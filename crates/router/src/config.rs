use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use ipnet::IpNet;

/// A key or secret: readable where it is used (it derefs to `str`), never printed. Its
/// `Debug` is redacted, so no `{:?}` of a settings struct puts it in a log or a panic.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// API keys per dialect. `None` for a dialect means it is refused unless the server was
/// started with authentication explicitly off.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// Native API: `Authorization: Bearer <key>`.
    pub native: Option<Secret>,
    /// NHN: the `{appKey}` path segment and the `Authorization: <secretKey>` header.
    pub nhn_app_key: Option<Secret>,
    pub nhn_secret_key: Option<Secret>,
    /// Accura: `Api-Key` header.
    pub accura: Option<Secret>,
    /// JCV: `X-API-Key` header.
    pub jcv: Option<Secret>,
    /// SpoofSense: `x-api-key` header.
    pub spoofsense: Option<Secret>,
}

impl Keys {
    /// The value a dialect's requests are checked against (NHN's: its secret key).
    pub(crate) fn get(&self, key: crate::auth::ApiKey) -> Option<&str> {
        use crate::auth::ApiKey;
        match key {
            ApiKey::Native => self.native.as_deref(),
            ApiKey::Nhn => self.nhn_secret_key.as_deref(),
            ApiKey::Accura => self.accura.as_deref(),
            ApiKey::Jcv => self.jcv.as_deref(),
            ApiKey::SpoofSense => self.spoofsense.as_deref(),
        }
    }
}

/// Largest request body each dialect accepts, in bytes, and the largest image file.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Slowest average upload rate accepted once [`Limits::body_grace`] has passed, bytes/s.
    pub min_body_rate: u64,
    pub body_grace: Duration,
    /// Pixels (width x height from the headers) decoded at once across the server.
    pub decode_budget_pixels: u64,
    /// Requests one API key may have in flight at once (0: no limit).
    pub per_key_requests: usize,
    /// Requests one capture session token may have in flight at once, apart from its key's.
    pub per_token_requests: usize,
    /// Requests all session tokens together may have in flight at once.
    pub token_requests: usize,
    pub native_body: usize,
    pub nhn_file: usize,
    pub accura_file: usize,
    pub jcv_file: usize,
    pub spoofsense_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // A phone on a bad 3G link still sends 20 kB/s or more; 1 byte/s does not get
            // to hold a connection for the whole request deadline.
            min_body_rate: 8_000,
            body_grace: Duration::from_secs(5),
            // One 40 Mpx image (the pixel limit) and a few camera frames: an RGBA PNG costs
            // about 7.5 bytes a pixel at its peak while decoding (300 MB at 40 Mpx).
            decode_budget_pixels: 48_000_000,
            // Far above what two workers and a queue of 16 judge at once, so a single
            // tenant is never limited before the server's own 503; low enough that one key's
            // slow uploads cannot hold 1024 connections and their buffers.
            per_key_requests: 64,
            // One capture needs one at a time (guidance, then the check); two leave room
            // for a page that retries while its last call is still answered.
            per_token_requests: 2,
            // Every capture page of a busy integrator at once, well under what a key's
            // slow uploads may hold; tokens cannot take the key's own places anyway.
            token_requests: 64,
            native_body: 15_000_000,
            nhn_file: 3_000_000,
            accura_file: 1_000_000,
            jcv_file: 4_000_000,
            // SpoofSense's gateway limit, "HTTP content length exceeded 10485760 bytes."
            spoofsense_body: 10_485_760,
        }
    }
}

impl Limits {
    /// A body carrying a file of at most `file` bytes in a multipart form or as base64 in
    /// JSON, whichever is larger (NHN, Accura).
    pub fn json_or_form_body(file: usize) -> usize {
        Self::json_body_for(file).max(file + 64 * 1024)
    }

    /// A base64 body carries 4/3 of the file plus some JSON. Clients wrap base64 in lines
    /// (`base64` at 76 columns, Android at 76, iOS at 64 with CRLF) and JSON escapes the
    /// breaks: up to 4 more characters per 64, which must not turn a file within the
    /// limit into a body over it.
    pub fn json_body_for(file: usize) -> usize {
        let base64 = file.div_ceil(3) * 4;
        base64 + base64.div_ceil(64) * 4 + 64 * 1024
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// `false` only when the operator explicitly chose to run without authentication.
    pub auth: bool,
    pub keys: Keys,
    pub limits: Limits,
    /// Images judged at once (defaults to the number of cores).
    pub workers: usize,
    /// Requests allowed to wait for a worker; beyond this they get 503 at once.
    pub queue: usize,
    pub request_timeout: Duration,
    pub fetch: FetchRules,
    pub connections: Connections,
    pub sessions: SessionConfig,
    pub audit: crate::audit::AuditConfig,
}

/// Capture session tokens (the capture page's credential; see `sessions`).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// HMAC secret shared by every replica; `None`: a random one per process.
    pub secret: Option<Secret>,
    pub ttl: Duration,
    /// The key sealing face templates, shared by every replica; `None`: a random one per
    /// process (templates then open only where they were made).
    pub template_secret: Option<Secret>,
    /// The Ed25519 key (PKCS#8 PEM) signing session attestations, shared by every replica;
    /// `None`: one generated at start.
    pub attestation_key: Option<std::path::PathBuf>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            secret: None,
            // Minutes: long enough to frame a selfie, short enough to be useless if stolen.
            ttl: Duration::from_secs(300),
            template_secret: None,
            attestation_key: None,
        }
    }
}

/// Bounds on connections, whatever their requests do.
#[derive(Debug, Clone)]
pub struct Connections {
    /// Open connections at once; beyond, the one idle the longest is closed to make room
    /// (a new one is closed at once only when every open one is busy).
    pub max_connections: usize,
    /// Time a client has to send a request's headers (HTTP/1), and time a new connection
    /// may stay without a request.
    pub header_read_timeout: Duration,
    /// Time a connection may stay with no request in flight after its last answer (HTTP/2;
    /// HTTP/1 waits at most `header_read_timeout` for its next request); also the HTTP/2
    /// keep-alive ping interval (a peer that stops answering is dropped).
    pub idle_timeout: Duration,
    /// After the stop signal, how long `/ready` answers 503 while requests are still
    /// accepted and served, so that load balancers and Kubernetes take the server out of
    /// rotation before its listener closes. Requests in flight then finish.
    pub drain: Duration,
    /// After the drain, how long connections with requests in flight have to finish
    /// (hyper closes idle ones at once); then the server stops, whatever a client that
    /// never reads its answers still holds. Drain + this + [`crate::AUDIT_DRAIN`] stays
    /// under the Deployment's grace period.
    pub shutdown_timeout: Duration,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            // Above the 60 s idle timeout of common load balancers, so that they, not
            // facelive, close the pooled connections they keep to it.
            idle_timeout: Duration::from_secs(75),
            // Endpoint removal reaches kube-proxy and ingresses within a few seconds; a
            // load balancer checking `/ready` every second sees it sooner.
            drain: Duration::from_secs(5),
            // The request timeout's worth: every request admitted can still finish.
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// A network `addr/prefix` (or one address) that URL fetches may reach despite the
/// default refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Network(IpNet);

impl From<Network> for String {
    fn from(n: Network) -> String {
        n.0.to_string()
    }
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map(Network)
            .map_err(|_| format!("{s:?}: not an IP address or network"))
    }
}

impl TryFrom<String> for Network {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl Network {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

#[derive(Debug, Clone)]
pub struct FetchRules {
    pub ports: Vec<RangeInclusive<u16>>,
    pub allow: Vec<Network>,
    pub timeout: Duration,
    pub max_redirects: usize,
}

impl Default for FetchRules {
    fn default() -> Self {
        Self {
            // NHN's rule: 80, 443 and 10000-12000.
            ports: vec![80..=80, 443..=443, 10000..=12000],
            allow: Vec::new(),
            timeout: Duration::from_secs(10),
            max_redirects: 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let keys = Keys {
            native: Some("native-secret-1".into()),
            nhn_app_key: Some("nhn-app-2".into()),
            nhn_secret_key: Some("nhn-secret-3".into()),
            accura: Some("accura-secret-4".into()),
            jcv: Some("jcv-secret-5".into()),
            spoofsense: Some("ss-secret-6".into()),
        };
        let sessions = SessionConfig {
            secret: Some("hmac-secret-7".into()),
            ..SessionConfig::default()
        };
        let shown = format!("{keys:?} {sessions:?} {:#?}", keys.clone());
        for s in [
            "secret-1", "app-2", "secret-3", "secret-4", "secret-5", "secret-6", "secret-7",
        ] {
            assert!(!shown.contains(s), "{s} shown: {shown}");
        }
        assert!(shown.contains("redacted"));
        // Where it is used, it is the key.
        assert_eq!(keys.native.as_deref(), Some("native-secret-1"));
    }
}
