//! Which browsers' pages may call us (`Origin`) and which names we answer to (`Host`): the MCP DNS-rebinding
//! rules of SPEC §2. Pure functions over header values, so every rule is unit-tested.

use std::net::IpAddr;

use crate::config::{ConfigError, SecuritySettings};

/// One entry of `allowed_origins`: `scheme://host[:port]`, where port `*` matches any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: String,
    /// `None` matches any port.
    port: Option<u16>,
}

/// An origin as browsers send it, split and normalised (lower case, default port filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]`, keeping IPv6 brackets (`[::1]:8766` → `[::1]`, 8766).
fn split_host_port(authority: &str) -> Option<(String, Option<&str>)> {
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

impl Origin {
    fn parse(text: &str) -> Option<Self> {
        let (scheme, authority) = text.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => default_port(&scheme)?,
        };
        Some(Self { scheme, host, port })
    }
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

    fn matches(&self, origin: &Origin) -> bool {
        self.scheme == origin.scheme
            && self.host == origin.host
            && self.port.is_none_or(|p| p == origin.port)
    }
}

/// The request facts the origin rules look at.
pub struct RequestSite<'a> {
    /// The `Origin` header, if any.
    pub origin: Option<&'a str>,
    /// Scheme the client used: `http`, or `X-Forwarded-Proto` from a trusted proxy.
    pub scheme: &'a str,
    /// Host the client used: `Host`, or `X-Forwarded-Host` from a trusted proxy.
    pub host: Option<&'a str>,
}

/// What an `Origin` header means for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginVerdict {
    /// No `Origin`: not a cross-origin browser request (curl, SDK clients).
    Absent,
    /// An allowed or same origin: served, with CORS headers naming it.
    Allowed,
    /// `Origin: null` (file pages, sandboxed frames): allowed only where the route says so.
    Null,
    Foreign,
}

#[derive(Debug, Clone)]
pub struct SitePolicy {
    allowed_origins: Vec<OriginPattern>,
    allowed_hosts: Vec<String>,
    loopback_bind: bool,
}

impl SitePolicy {
    pub fn from_settings(s: &SecuritySettings, bind_ip: IpAddr) -> Result<Self, ConfigError> {
        let allowed_origins = s
            .allowed_origins
            .iter()
            .map(|o| OriginPattern::parse(o))
            .collect::<Result<_, _>>()
            .map_err(|problem| ConfigError::new("security.allowed_origins", problem))?;
        let allowed_hosts = s
            .allowed_hosts
            .iter()
            .map(|h| {
                split_host_port(h.trim())
                    .map(|(host, port)| match port {
                        Some(p) => format!("{host}:{p}"),
                        None => host,
                    })
                    .ok_or_else(|| {
                        ConfigError::new(
                            "security.allowed_hosts",
                            format!("`{h}` is not a host name like cockpit.example.com[:port]"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allowed_origins,
            allowed_hosts,
            loopback_bind: bind_ip.is_loopback(),
        })
    }

    pub fn judge_origin(&self, site: &RequestSite<'_>) -> OriginVerdict {
        let Some(text) = site.origin else {
            return OriginVerdict::Absent;
        };
        if text.trim() == "null" {
            return OriginVerdict::Null;
        }
        let Some(origin) = Origin::parse(text) else {
            return OriginVerdict::Foreign;
        };
        let same_origin = site
            .host
            .and_then(|host| Origin::parse(&format!("{}://{host}", site.scheme)))
            .is_some_and(|own| own == origin);
        if same_origin || self.allowed_origins.iter().any(|p| p.matches(&origin)) {
            OriginVerdict::Allowed
        } else {
            OriginVerdict::Foreign
        }
    }

    /// On a loopback bind the `Host` must be a loopback name or an allowed host (DNS-rebinding protection);
    /// a request without one is not from a browser and passes.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        if !self.loopback_bind {
            return true;
        }
        let Some((name, port)) = host.and_then(|h| split_host_port(h.trim())) else {
            return host.is_none();
        };
        if is_loopback_name(&name) {
            return true;
        }
        let with_port = port.map(|p| format!("{name}:{p}"));
        self.allowed_hosts
            .iter()
            .any(|allowed| *allowed == name || Some(allowed) == with_port.as_ref())
    }
}

fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str], hosts: &[&str], bind: &str) -> SitePolicy {
        let settings = SecuritySettings {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            trusted_proxies: vec![],
            allow_null_origin: false,
            max_streams_per_client: 1,
        };
        SitePolicy::from_settings(&settings, bind.parse().expect("ip")).expect("valid")
    }

    fn judge(p: &SitePolicy, origin: &str, scheme: &str, host: &str) -> OriginVerdict {
        p.judge_origin(&RequestSite {
            origin: Some(origin),
            scheme,
            host: Some(host),
        })
    }

    #[test]
    fn loopback_origins_on_any_port_and_exact_origins_are_allowed() {
        let p = policy(
            &["http://localhost:*", "https://cockpit.example.com"],
            &[],
            "127.0.0.1",
        );
        let host = "127.0.0.1:8766";
        for (origin, verdict) in [
            ("http://localhost:3000", OriginVerdict::Allowed),
            ("https://cockpit.example.com", OriginVerdict::Allowed),
            ("https://cockpit.example.com:8443", OriginVerdict::Foreign),
            ("https://evil.example", OriginVerdict::Foreign),
            ("http://localhost.evil.example", OriginVerdict::Foreign),
            ("null", OriginVerdict::Null),
            ("garbage", OriginVerdict::Foreign),
        ] {
            assert_eq!(judge(&p, origin, "http", host), verdict, "{origin}");
        }
    }

    #[test]
    fn the_request_s_own_origin_is_allowed_behind_a_proxy() {
        let p = policy(&[], &[], "0.0.0.0");
        assert_eq!(
            judge(&p, "https://ops.example.com", "https", "ops.example.com"),
            OriginVerdict::Allowed
        );
        assert_eq!(
            judge(&p, "https://ops.example.com", "http", "ops.example.com"),
            OriginVerdict::Foreign,
            "scheme must match too"
        );
        assert_eq!(
            judge(&p, "http://ops.example.com", "http", "ops.example.com:80"),
            OriginVerdict::Allowed
        );
    }

    #[test]
    fn a_loopback_bind_answers_only_to_loopback_or_allowed_hosts() {
        let p = policy(&[], &["cockpit.internal"], "127.0.0.1");
        for ok in [
            "127.0.0.1:8766",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8766",
            "cockpit.internal:443",
        ] {
            assert!(p.host_allowed(Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8766",
            "127.0.0.1.evil.example",
            "",
        ] {
            assert!(!p.host_allowed(Some(bad)), "{bad}");
        }
        assert!(p.host_allowed(None));
        let public = policy(&[], &[], "0.0.0.0");
        assert!(public.host_allowed(Some("evil.example")));
    }

    #[test]
    fn bad_entries_name_their_key() {
        let settings = SecuritySettings {
            allowed_origins: vec!["localhost:3000".into()],
            allowed_hosts: vec![],
            trusted_proxies: vec![],
            allow_null_origin: false,
            max_streams_per_client: 1,
        };
        let err = SitePolicy::from_settings(&settings, "127.0.0.1".parse().expect("ip"))
            .expect_err("invalid");
        assert_eq!(err.key, "security.allowed_origins");
    }
}
