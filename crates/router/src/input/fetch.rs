//! Image URLs, fetched without becoming a way into the server's network (SSRF).
//!
//! Only http and https on allowed ports; every address the host resolves to is checked, by
//! the client's own resolver, so the check holds for the connection actually made and again
//! for every redirect (few are followed, each URL checked too). Every special-purpose block
//! of the IANA registries that is not globally reachable (loopback, private, link-local
//! where cloud metadata lives, shared, documentation, benchmarking, reserved, ...) and
//! multicast are refused unless an operator allows a network explicitly; an IPv6 address
//! that carries an IPv4 one (mapped, compatible, SIIT, NAT64, 6to4) is judged by that IPv4
//! address. The download has a deadline and a size cap.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use crate::config::FetchRules;
use crate::error::ApiError;

/// Special-purpose IPv4 blocks that are not globally reachable (IANA IPv4 Special-Purpose
/// Address Registry), plus multicast, by the reason given when one is refused.
const V4_REFUSED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified (this network)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
];

/// The same for IPv6 (IANA IPv6 Special-Purpose Address Registry, site-local and
/// multicast). Blocks that carry an IPv4 address are in [`V6_EMBEDDING`] instead.
const V6_REFUSED: &[(&str, &str)] = &[
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy prefix"),
    ("2001::/23", "IETF protocol assignments (Teredo included)"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

/// IPv6 blocks that embed an IPv4 address, and the bit offset of its 32 bits: such an
/// address is judged by the IPv4 address it leads to (NAT64 turns
/// `64:ff9b::a9fe:a9fe` into 169.254.169.254).
const V6_EMBEDDING: &[(&str, u32)] = &[
    ("::ffff:0:0/96", 96),   // IPv4-mapped
    ("::/96", 96),           // IPv4-compatible (deprecated)
    ("::ffff:0:0:0/96", 96), // IPv4-translated (SIIT)
    ("64:ff9b::/96", 96),    // NAT64 well-known prefix
    ("2002::/16", 16),       // 6to4
];

struct Table {
    v4: Vec<(Ipv4Net, &'static str)>,
    v6: Vec<(Ipv6Net, &'static str)>,
    embedding: Vec<(Ipv6Net, u32)>,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let net4 = |s: &str| s.parse::<Ipv4Net>().expect("valid IPv4 block");
        let net6 = |s: &str| s.parse::<Ipv6Net>().expect("valid IPv6 block");
        Table {
            v4: V4_REFUSED.iter().map(|(n, r)| (net4(n), *r)).collect(),
            v6: V6_REFUSED.iter().map(|(n, r)| (net6(n), *r)).collect(),
            embedding: V6_EMBEDDING.iter().map(|(n, at)| (net6(n), *at)).collect(),
        }
    })
}

/// Globally routed IPv6 unicast (RFC 4291, IANA's IPv6 Global Unicast Address
/// Assignments): nothing outside it is a public host, whatever a special-purpose list says.
const V6_GLOBAL_UNICAST: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Why an address is refused, or `None` when it may be reached. IPv6 is an allow-list: the
/// forms that carry an IPv4 address are judged by it, anything else must be global unicast
/// (2000::/3) outside the special-purpose blocks.
pub fn refused_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return refused_v4(v4);
            }
            let t = table();
            t.v6.iter()
                .find(|(n, _)| n.contains(&v6))
                .map(|(_, r)| *r)
                .or_else(|| {
                    (!V6_GLOBAL_UNICAST.contains(&v6))
                        .then_some("not global unicast (outside 2000::/3)")
                })
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let t = table();
    t.v4.iter().find(|(n, _)| n.contains(&ip)).map(|(_, r)| *r)
}

/// The IPv4 address an IPv6 address carries, for the forms that carry one (`::` and
/// `::1` are IPv6's own unspecified and loopback addresses, not IPv4-compatible ones).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if ip.is_unspecified() || ip.is_loopback() {
        return None;
    }
    let bits = u128::from(ip);
    table()
        .embedding
        .iter()
        .find(|(n, _)| n.contains(&ip))
        .map(|(_, at)| Ipv4Addr::from((bits >> (96 - at)) as u32))
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
    use crate::config::Network;

    /// One address from every IANA special-purpose block that is not globally reachable
    /// (IPv4 and IPv6 registries), and multicast and site-local.
    #[test]
    fn every_special_purpose_block_is_refused() {
        for ip in [
            "0.1.2.3",
            "10.1.2.3",
            "100.100.100.200",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "64:ff9b:1::a9fe:a9fe",
            "100::1",
            "100:0:0:1::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "3fff::1",
            "5f00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(
                refused_reason(ip.parse().unwrap()).is_some(),
                "{ip} must be refused"
            );
        }
    }

    /// The metadata address and loopback in every IPv6 form that embeds an IPv4 address.
    #[test]
    fn ipv6_forms_that_embed_a_refused_ipv4_address_are_refused() {
        for ip in [
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "::127.0.0.1",
            "::ffff:0:169.254.169.254",
            "::ffff:0:7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::127.0.0.1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
        ] {
            assert!(
                refused_reason(ip.parse().unwrap()).is_some(),
                "{ip} must be refused"
            );
        }
    }

    /// IPv6 outside global unicast, in no special-purpose list: refused all the same.
    #[test]
    fn ipv6_outside_global_unicast_is_refused() {
        for ip in [
            "::ffff:0:0:7f00:2",
            "4000::1",
            "1::1",
            "::1:0:0:7f00:1",
            "8000::1",
            "e000::1",
        ] {
            assert_eq!(
                refused_reason(ip.parse().unwrap()),
                Some("not global unicast (outside 2000::/3)"),
                "{ip}"
            );
        }
    }

    #[test]
    fn public_addresses_pass_in_every_form() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "192.31.196.1",
            "2606:4700::1111",
            "2620:4f:8000::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(
                refused_reason(ip.parse().unwrap()).is_none(),
                "{ip} must pass"
            );
        }
    }

    #[test]
    fn allowed_networks_parse_with_or_without_a_prefix() {
        let n: Network = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.9.8.7".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let one: Network = "fd00::5".parse().unwrap();
        assert!(one.contains("fd00::5".parse().unwrap()));
        assert!(!one.contains("fd00::6".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("example.com".parse::<Network>().is_err());
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
