//! Environment overrides: the kit's variable names keep their meaning; new ones use the `COCKPIT_` prefix.

use std::collections::HashMap;

use super::net::{parse_bind, HostName, OriginPattern, ProxyNet};
use super::{ConfigError, LogFormat, Settings};
use crate::failpoints::Failpoint;

/// Where environment values come from: the process environment, or a map (tests).
pub struct EnvSource(HashMap<String, String>);

impl EnvSource {
    pub fn process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn empty() -> Self {
        Self(HashMap::new())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

pub(super) fn apply(settings: &mut Settings, env: &EnvSource) -> Result<(), ConfigError> {
    if let Some(bind) = env.get("COCKPIT_BIND") {
        settings.server.bind =
            parse_bind(bind).map_err(|problem| ConfigError::new("COCKPIT_BIND", problem))?;
    }
    if let Some(port) = env.get("PORT") {
        let port: u16 = port.trim().parse().map_err(|_| {
            ConfigError::new("PORT", format!("`{port}` is not a port number (0-65535)"))
        })?;
        settings.server.bind.set_port(port);
    }
    if let Some(root) = env.get("LUKHAS_REPO_ROOT") {
        settings.evals.repo_root = root.to_string();
    }
    if let Some(keys) = env.get("LUKHAS_MCP_API_KEYS") {
        settings.auth.api_keys = list(keys).into_iter().map(Into::into).collect();
    }
    if let Some(origins) = env.get("COCKPIT_ALLOWED_ORIGINS") {
        settings.security.allowed_origins =
            parsed("COCKPIT_ALLOWED_ORIGINS", origins, OriginPattern::parse)?;
    }
    if let Some(hosts) = env.get("COCKPIT_ALLOWED_HOSTS") {
        settings.security.allowed_hosts = parsed("COCKPIT_ALLOWED_HOSTS", hosts, HostName::parse)?;
    }
    if let Some(proxies) = env.get("COCKPIT_TRUSTED_PROXIES") {
        settings.security.trusted_proxies =
            parsed("COCKPIT_TRUSTED_PROXIES", proxies, ProxyNet::parse)?;
    }
    if let Some(allow) = env.get("COCKPIT_ALLOW_NULL_ORIGIN") {
        settings.security.allow_null_origin = match allow.trim() {
            "1" | "true" => true,
            "0" | "false" | "" => false,
            other => {
                return Err(ConfigError::new(
                    "COCKPIT_ALLOW_NULL_ORIGIN",
                    format!("`{other}` is not true or false"),
                ))
            }
        };
    }
    if let Some(streams) = env.get("COCKPIT_MAX_STREAMS_PER_CLIENT") {
        settings.security.max_streams_per_client =
            number("COCKPIT_MAX_STREAMS_PER_CLIENT", streams)?;
    }
    if let Some(bucket) = env.get("MCP_RL_BUCKET") {
        settings.rate_limit.bucket = number("MCP_RL_BUCKET", bucket)?;
    }
    if let Some(window) = env.get("MCP_RL_WINDOW_MS") {
        settings.rate_limit.window_ms = number("MCP_RL_WINDOW_MS", window)?;
    }
    if let Some(ttl) = env.get("MCP_JOB_TTL_MS") {
        settings.retention.job_ttl_ms = number("MCP_JOB_TTL_MS", ttl)?;
    }
    if let Some(ttl) = env.get("COCKPIT_CANARY_TTL_MS") {
        settings.retention.canary_ttl_ms = number("COCKPIT_CANARY_TTL_MS", ttl)?;
    }
    let prometheus = &mut settings.slo.prometheus;
    for (name, field) in [
        ("PROM_URL", &mut prometheus.url),
        ("PROM_QUERY_LAT", &mut prometheus.latency_query),
        ("PROM_QUERY_ERR", &mut prometheus.error_rate_query),
        ("COCKPIT_PROM_QUERY_ERRORS", &mut prometheus.errors_query),
        ("COCKPIT_PROM_QUERY_REQ", &mut prometheus.requests_query),
        (
            "COCKPIT_PROM_QUERY_FRESHNESS",
            &mut prometheus.freshness_query,
        ),
        ("COCKPIT_PROM_CA_FILE", &mut prometheus.ca_file),
        ("COCKPIT_WEBHOOK_URL", &mut settings.webhooks.url),
    ] {
        if let Some(value) = env.get(name) {
            *field = value.to_string();
        }
    }
    if let Some(bearer) = env.get("PROM_BEARER") {
        settings.slo.prometheus.bearer = bearer.into();
    }
    if let Some(db) = env.get("LUKHAS_MCP_DB") {
        settings.storage.db_path = db.to_string();
    }
    if let Some(url) = env.get("COCKPIT_DATABASE_URL") {
        settings.storage.database_url = url.trim().into();
    }
    if let Some(format) = env.get("COCKPIT_LOG_FORMAT") {
        settings.log_format = match format.trim() {
            "json" => LogFormat::Json,
            "text" | "" => LogFormat::Text,
            other => {
                return Err(ConfigError::new(
                    "COCKPIT_LOG_FORMAT",
                    format!("`{other}` is not `text` or `json`"),
                ))
            }
        };
    }
    if let Some(point) = env.get("COCKPIT_FAILPOINT").filter(|p| !p.is_empty()) {
        if !cfg!(feature = "failpoints") {
            return Err(ConfigError::new(
                "COCKPIT_FAILPOINT",
                "failpoints are compiled only with the `failpoints` cargo feature",
            ));
        }
        let known = Failpoint::ALL.map(Failpoint::name).join(", ");
        settings.failpoint = Some(Failpoint::parse(point.trim()).ok_or_else(|| {
            ConfigError::new(
                "COCKPIT_FAILPOINT",
                format!("`{point}` is not one of {known}"),
            )
        })?);
    }
    Ok(())
}

/// A comma-separated list; blanks dropped.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect()
}

/// A comma-separated list whose every entry parses; the first bad one is the error.
fn parsed<T>(
    name: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    list(value)
        .iter()
        .map(|entry| parse(entry).map_err(|problem| ConfigError::new(name, problem)))
        .collect()
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(name, format!("`{value}` is not a whole number 0 or more")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_replaces_only_the_port_of_the_bind_address() {
        for (bind, port, expected) in [
            ("127.0.0.1:8766", "9000", "127.0.0.1:9000"),
            ("[::1]:8766", "1", "[::1]:1"),
        ] {
            let env = EnvSource::from_pairs([("COCKPIT_BIND", bind), ("PORT", port)]);
            let settings = Settings::load(None, &env).expect("valid");
            assert_eq!(settings.server.bind.to_string(), expected);
        }
    }

    #[test]
    fn kit_variables_keep_their_meaning() {
        let root = tempfile::tempdir().expect("tempdir");
        let root_text = root.path().to_str().expect("utf-8");
        let env = EnvSource::from_pairs([
            ("PORT", "9100"),
            ("LUKHAS_MCP_API_KEYS", " a, b ,,"),
            ("LUKHAS_REPO_ROOT", root_text),
        ]);
        let settings = Settings::load(None, &env).expect("valid");
        assert_eq!(settings.server.bind.to_string(), "127.0.0.1:9100");
        let keys: Vec<&str> = settings
            .auth
            .api_keys
            .iter()
            .map(secrecy::ExposeSecret::expose_secret)
            .collect();
        assert_eq!(keys, vec!["a", "b"]);
        assert_eq!(settings.database_path(), root.path().join(".mcp-state.db"));
    }

    #[test]
    fn a_repo_root_that_is_not_a_directory_is_refused_before_any_database_is_made() {
        let env = EnvSource::from_pairs([("LUKHAS_REPO_ROOT", "/nonexistent/lukhas")]);
        let err = Settings::load(None, &env).expect_err("missing root");
        assert_eq!(err.key, "evals.repo_root");
        assert!(err.problem.contains("/nonexistent/lukhas"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_a_key_or_the_prometheus_token() {
        let env = EnvSource::from_pairs([
            ("LUKHAS_MCP_API_KEYS", "key-0123456789abcdef"),
            ("PROM_BEARER", "Bearer tok-secret-123"),
        ]);
        let shown = format!("{:?}", Settings::load(None, &env).expect("valid"));
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains("tok-secret-123"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn a_bad_port_names_the_variable() {
        let err =
            Settings::load(None, &EnvSource::from_pairs([("PORT", "http")])).expect_err("invalid");
        assert_eq!(err.key, "PORT");
    }
}
