//! The URL guard: any string as an image URL, and any 16 bytes as an address. Nothing may
//! panic; an IPv6 address that carries an IPv4 one in the IPv4-mapped form is judged as
//! that IPv4 address; a refused address is refused in every URL spelling.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use facelive_router::input::fetch::refused_reason;
use facelive_router::FetchRules;
use url::Url;

fn main() {
    let rules = FetchRules::default();
    afl::fuzz!(|data: &[u8]| {
        if let Ok(s) = std::str::from_utf8(data) {
            if let Ok(u) = Url::parse(s) {
                let _ = rules.check_url(&u);
            }
        }
        if let Ok(bytes) = <[u8; 16]>::try_from(&data[..data.len().min(16)]) {
            let v6 = Ipv6Addr::from(bytes);
            let v4 = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
            let mapped = v4.to_ipv6_mapped();
            assert_eq!(
                refused_reason(IpAddr::V6(mapped)).is_some(),
                refused_reason(IpAddr::V4(v4)).is_some(),
                "{mapped} and {v4}"
            );
            for ip in [IpAddr::V6(v6), IpAddr::V4(v4)] {
                let spelled = match ip {
                    IpAddr::V4(a) => format!("http://{a}/x.jpg"),
                    IpAddr::V6(a) => format!("http://[{a}]/x.jpg"),
                };
                let u = Url::parse(&spelled).expect("an address makes a valid URL");
                if refused_reason(ip).is_some() {
                    assert!(rules.check_url(&u).is_err(), "{spelled} passed the guard");
                }
            }
        }
    });
}
