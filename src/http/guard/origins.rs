//! Which browsers' pages may call us (`Origin`) and which names we answer to (`Host`): the MCP DNS-rebinding
//! rules of SPEC §2. Pure functions over header values, so every rule is unit-tested.

use std::net::IpAddr;

use crate::config::net::{default_port, split_host_port, HostName, OriginPattern};
use crate::config::SecuritySettings;

/// An origin as browsers send it, split and normalised (lower case, default port filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
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
    allowed_hosts: Vec<HostName>,
    loopback_bind: bool,
}

impl SitePolicy {
    pub fn from_settings(s: &SecuritySettings, bind_ip: IpAddr) -> Self {
        Self {
            allowed_origins: s.allowed_origins.clone(),
            allowed_hosts: s.allowed_hosts.clone(),
            loopback_bind: bind_ip.is_loopback(),
        }
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
        if same_origin
            || self
                .allowed_origins
                .iter()
                .any(|p| p.matches(&origin.scheme, &origin.host, origin.port))
        {
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
        self.allowed_hosts.iter().any(|allowed| {
            allowed.as_str() == name || Some(allowed.as_str()) == with_port.as_deref()
        })
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
            allowed_origins: origins
                .iter()
                .map(|s| OriginPattern::parse(s).expect("origin"))
                .collect(),
            allowed_hosts: hosts
                .iter()
                .map(|s| HostName::parse(s).expect("host"))
                .collect(),
            trusted_proxies: vec![],
            allow_null_origin: false,
            max_streams_per_client: 1,
        };
        SitePolicy::from_settings(&settings, bind.parse().expect("ip"))
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
}
