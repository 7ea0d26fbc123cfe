//! Network names in `[security]`, parsed once when the settings are read: the origins whose pages may call
//! us, the extra `Host` names we answer to, and the proxies whose forwarded headers we believe. Each parses
//! from its text form (config file or environment), so a bad entry is an error naming its key at start.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::Deserialize;

/// Splits `host[:port]`, keeping IPv6 brackets (`[::1]:8766` → `[::1]`, 8766); the host in lower case.
pub fn split_host_port(authority: &str) -> Option<(String, Option<&str>)> {
    if authority.is_empty() {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// The listen address, e.g. `127.0.0.1:8766` or `[::1]:8766`.
pub fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an address like 127.0.0.1:8766"))
}

/// `server.bind` in the config file, through [`parse_bind`].
pub fn deserialize_bind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_bind(&text).map_err(serde::de::Error::custom)
}

/// The port a scheme implies.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// One entry of `allowed_origins`: `scheme://host[:port]`, where port `*` matches any port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct OriginPattern {
    scheme: String,
    host: String,
    /// `None` matches any port.
    port: Option<u16>,
}

impl OriginPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{text}` is not an origin like https://cockpit.example.com or http://localhost:*"
            )
        };
        let (scheme, authority) = text.trim().split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = split_host_port(authority).ok_or_else(bad)?;
        let port = match port {
            Some("*") => None,
            Some(p) => Some(p.parse().map_err(|_| bad())?),
            None => Some(default_port(&scheme).ok_or_else(bad)?),
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether an origin (already split and lower-cased) is this pattern's.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme == scheme && self.host == host && self.port.is_none_or(|p| p == port)
    }
}

impl TryFrom<String> for OriginPattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

/// One entry of `allowed_hosts`: `name` or `name:port`, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HostName(String);

impl HostName {
    pub fn parse(text: &str) -> Result<Self, String> {
        split_host_port(text.trim())
            .map(|(host, port)| match port {
                Some(p) => Self(format!("{host}:{p}")),
                None => Self(host),
            })
            .ok_or_else(|| format!("`{text}` is not a host name like cockpit.example.com[:port]"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HostName {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

/// One entry of `trusted_proxies`: an IP address or a CIDR range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ProxyNet(IpNet);

impl ProxyNet {
    pub fn parse(text: &str) -> Result<Self, String> {
        let entry = text.trim();
        entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
            .map(Self)
            .map_err(|_| format!("`{entry}` is not an IP address or CIDR range like 10.0.0.0/8"))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl TryFrom<String> for ProxyNet {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_to_their_normal_form_and_bad_ones_say_what_is_expected() {
        let any_port = OriginPattern::parse("HTTP://LocalHost:*").expect("valid");
        assert!(any_port.matches("http", "localhost", 3000));
        let exact = OriginPattern::parse("https://cockpit.example.com").expect("valid");
        assert!(exact.matches("https", "cockpit.example.com", 443));
        assert!(!exact.matches("https", "cockpit.example.com", 8443));
        assert!(OriginPattern::parse("localhost:3000")
            .expect_err("no scheme")
            .contains("is not an origin like"));
        assert_eq!(
            HostName::parse("Cockpit.Internal:443")
                .expect("valid")
                .as_str(),
            "cockpit.internal:443"
        );
        assert!(ProxyNet::parse("10.0.0.0/8")
            .expect("valid")
            .contains("10.1.2.3".parse().expect("ip")));
        assert!(ProxyNet::parse("127.0.0.1").is_ok());
        assert!(ProxyNet::parse("proxy.local")
            .expect_err("a name")
            .contains("CIDR"));
    }
}
