//! Image URLs, fetched without becoming a way into the server's network (SSRF).
//!
//! Only http and https on allowed ports; every address the host resolves to is checked, by
//! the client's own resolver, so the check holds for the connection actually made and again
//! for every redirect (few are followed, each URL checked too). Loopback, private,
//! link-local (cloud metadata lives there), unique-local, shared (CGNAT), multicast and
//! unspecified addresses are refused unless an operator allows a network explicitly. The
//! download has a deadline and a size cap.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use crate::error::ApiError;

/// A network `addr/prefix` that URL fetches may reach despite the default refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.parse().map_err(|_| format!("{s:?}: not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s:?}: bad prefix"))?
        };
        Ok(Network { addr, prefix })
    }
}

impl TryFrom<String> for Network {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
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

/// Why an address is refused, or `None` when it may be reached.
pub fn refused_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            refused_v6(v6)
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("shared address space")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_unique_local() {
        Some("unique-local")
    } else if ip.is_unicast_link_local() {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

impl FetchRules {
    fn address_allowed(&self, ip: IpAddr) -> Result<(), String> {
        match refused_reason(ip) {
            Some(why) if !self.allow.iter().any(|n| n.contains(ip)) => {
                Err(format!("{why} address {ip}"))
            }
            _ => Ok(()),
        }
    }

    /// Scheme, port and (for IP literals) address of a URL.
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("scheme {:?} (http or https only)", url.scheme()));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "no port".to_string())?;
        if !self.ports.iter().any(|r| r.contains(&port)) {
            return Err(format!("port {port} is not allowed"));
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.address_allowed(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.address_allowed(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err("no host".into()),
        }
    }
}

/// The marker error of a refused address, found again in reqwest's error chain.
#[derive(Debug)]
struct Refused(String);
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl StdError for Refused {}

struct CheckingResolver(Arc<FetchRules>);

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(Box::new(Refused(format!("{host} has no address"))) as _);
            }
            // One refused address refuses the host: a name that resolves to both a public
            // and a private address is a rebinding trick.
            for a in &addrs {
                if let Err(why) = rules.address_allowed(a.ip()) {
                    return Err(Box::new(Refused(format!("{host} resolves to a {why}"))) as _);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

pub struct Fetcher {
    client: reqwest::Client,
    rules: Arc<FetchRules>,
}

impl Fetcher {
    pub fn new(rules: FetchRules) -> Result<Self, ApiError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rules = Arc::new(rules);
        let redirect_rules = rules.clone();
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(CheckingResolver(rules.clone()))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > redirect_rules.max_redirects {
                    return attempt.error(Refused("too many redirects".into()));
                }
                match redirect_rules.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(why) => attempt.error(Refused(format!("redirect to {why}"))),
                }
            }))
            .connect_timeout(rules.timeout)
            .user_agent(concat!("facelive/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Internal(format!("HTTP client: {e}")))?;
        Ok(Self { client, rules })
    }

    /// Downloads at most `max_bytes` from `url` within the configured deadline.
    pub async fn fetch(&self, url: &str, max_bytes: usize) -> Result<Vec<u8>, ApiError> {
        let parsed =
            Url::parse(url).map_err(|_| ApiError::UrlForbidden("not a valid URL".into()))?;
        self.rules
            .check_url(&parsed)
            .map_err(ApiError::UrlForbidden)?;
        match tokio::time::timeout(self.rules.timeout, self.download(parsed, max_bytes)).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::UrlTimeout),
        }
    }

    async fn download(&self, url: Url, max_bytes: usize) -> Result<Vec<u8>, ApiError> {
        let mut resp = self.client.get(url).send().await.map_err(classify)?;
        if !resp.status().is_success() {
            return Err(ApiError::UrlFetch(format!(
                "the server answered {}",
                resp.status()
            )));
        }
        if resp
            .content_length()
            .is_some_and(|n| n as usize > max_bytes)
        {
            return Err(ApiError::ImageTooLarge {
                size: resp.content_length().unwrap_or(0) as usize,
                limit: max_bytes,
            });
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if buf.len() + chunk.len() > max_bytes {
                return Err(ApiError::ImageTooLarge {
                    size: buf.len() + chunk.len(),
                    limit: max_bytes,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }
}

fn classify(e: reqwest::Error) -> ApiError {
    let mut cur: Option<&dyn StdError> = Some(&e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return ApiError::UrlForbidden(r.0.clone());
        }
        cur = err.source();
    }
    if e.is_timeout() {
        return ApiError::UrlTimeout;
    }
    ApiError::UrlFetch(if e.is_connect() {
        "could not connect".into()
    } else {
        "the transfer failed".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses_are_refused_and_public_ones_pass() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(
                refused_reason(ip.parse().unwrap()).is_some(),
                "{ip} must be refused"
            );
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                refused_reason(ip.parse().unwrap()).is_none(),
                "{ip} must pass"
            );
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_port_and_literal_address() {
        let rules = FetchRules::default();
        let ok = |u: &str| rules.check_url(&Url::parse(u).unwrap());
        assert!(ok("https://example.com/a.jpg").is_ok());
        assert!(ok("http://example.com:10500/a.jpg").is_ok());
        assert!(ok("http://example.com:8080/a.jpg")
            .unwrap_err()
            .contains("port 8080"));
        assert!(ok("ftp://example.com/a.jpg")
            .unwrap_err()
            .contains("scheme"));
        assert!(ok("http://127.0.0.1/a.jpg")
            .unwrap_err()
            .contains("loopback"));
        assert!(ok("http://[::1]:443/a.jpg")
            .unwrap_err()
            .contains("loopback"));
        let allowed = FetchRules {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        assert!(allowed
            .check_url(&Url::parse("http://127.0.0.1/a.jpg").unwrap())
            .is_ok());
    }
}
