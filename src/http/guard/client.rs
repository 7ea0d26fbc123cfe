//! Who is at the other end: the peer address, or — only when the peer is a configured proxy — what the
//! proxy says in `X-Forwarded-For`, `X-Forwarded-Host` and `X-Forwarded-Proto`. Anyone can write those
//! headers, so they are believed from trusted proxies alone.

use std::net::IpAddr;

use crate::config::net::ProxyNet;
use actix_web::http::header::HeaderMap;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ProxyNet>);

impl TrustedProxies {
    pub fn new(proxies: &[ProxyNet]) -> Self {
        Self(proxies.to_vec())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }
}

/// The client as far as we can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSite {
    pub ip: Option<IpAddr>,
    pub scheme: String,
    pub host: Option<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl TrustedProxies {
    pub fn client_site(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> ClientSite {
        let own_host = header(headers, "host").map(String::from);
        let Some(peer_ip) = peer.filter(|ip| self.trusts(*ip)) else {
            return ClientSite {
                ip: peer,
                scheme: "http".into(),
                host: own_host,
            };
        };
        // The client is the right-most address that is not one of our proxies.
        let forwarded_for = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let mut ip = peer_ip;
        for hop in forwarded_for.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(hop_ip) => {
                    ip = hop_ip;
                    if !self.trusts(hop_ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let first = |name| {
            header(headers, name)
                .and_then(|v| v.split(',').next())
                .map(str::trim)
        };
        ClientSite {
            ip: Some(ip),
            scheme: first("x-forwarded-proto")
                .filter(|p| matches!(*p, "http" | "https"))
                .unwrap_or("http")
                .to_string(),
            host: first("x-forwarded-host").map(String::from).or(own_host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::new(
            &["10.0.0.0/8", "127.0.0.1"].map(|p| ProxyNet::parse(p).expect("ok")),
        );
        let h = headers(&[
            ("host", "127.0.0.1:8766"),
            ("x-forwarded-for", "203.0.113.9, 198.51.100.7, 10.1.2.3"),
            ("x-forwarded-host", "ops.example.com"),
            ("x-forwarded-proto", "https"),
        ]);
        let via_proxy = proxies.client_site(Some("127.0.0.1".parse().expect("ip")), &h);
        assert_eq!(via_proxy.ip, Some("198.51.100.7".parse().expect("ip")));
        assert_eq!(via_proxy.scheme, "https");
        assert_eq!(via_proxy.host.as_deref(), Some("ops.example.com"));

        let direct = proxies.client_site(Some("192.0.2.1".parse().expect("ip")), &h);
        assert_eq!(direct.ip, Some("192.0.2.1".parse().expect("ip")));
        assert_eq!(direct.scheme, "http");
        assert_eq!(direct.host.as_deref(), Some("127.0.0.1:8766"));
    }
}
