//! Checks that typing alone cannot express; each failure names its key.

use secrecy::ExposeSecret;
use std::time::Duration;

use super::StubSettings;
use super::{ConfigError, Settings};
use crate::ids::Ident;
use crate::seconds;

pub(super) fn check(s: &Settings) -> Result<(), ConfigError> {
    let bind = s.server.bind;
    if s.auth.api_keys.is_empty() && !bind.ip().is_loopback() {
        return Err(ConfigError::new(
            "auth.api_keys",
            format!(
                "no API keys are configured, so the service may only bind a loopback address, not {bind}; \
                 set LUKHAS_MCP_API_KEYS or bind 127.0.0.1"
            ),
        ));
    }
    for key in &s.auth.api_keys {
        api_key(key.expose_secret(), bind.ip().is_loopback())?;
    }
    if s.rate_limit.bucket > 0 {
        within("rate_limit.window_ms", s.rate_limit.window_ms, 1, DAY_MS)?;
        within(
            "rate_limit.max_clients",
            s.rate_limit.max_clients,
            1,
            MILLION * 10,
        )?;
    }
    for (key, ttl) in [
        ("retention.job_ttl_ms", s.retention.job_ttl_ms),
        ("retention.canary_ttl_ms", s.retention.canary_ttl_ms),
    ] {
        within(key, ttl, 0, 100 * 366 * DAY_MS)?;
    }
    positive(
        "retention.sweep_interval_seconds",
        s.retention.sweep_interval_seconds,
    )?;
    let prometheus = &s.slo.prometheus;
    if !prometheus.url.trim().is_empty() {
        let url = prometheus.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::new(
                "PROM_URL",
                format!("`{url}` must start with http:// or https://"),
            ));
        }
        positive("slo.prometheus.timeout_seconds", prometheus.timeout_seconds)?;
        within(
            "slo.prometheus.max_response_bytes",
            prometheus.max_response_bytes,
            1,
            MAX_BYTES,
        )?;
    }
    stub(&s.slo.stub)?;
    let webhook = s.webhooks.url.trim();
    if !webhook.is_empty() {
        if !(webhook.starts_with("http://") || webhook.starts_with("https://")) {
            return Err(ConfigError::new(
                "webhooks.url",
                format!("`{webhook}` must start with http:// or https://"),
            ));
        }
        positive("webhooks.timeout_seconds", s.webhooks.timeout_seconds)?;
        within("webhooks.retries", s.webhooks.retries, 0, 100)?;
    }
    within("canary.max_active", s.canary.max_active, 1, MILLION)?;
    positive("canary.min_interval", s.canary.min_interval)?;
    for (model, gates) in &s.policies {
        for (gate, patch) in gates {
            patch.check_fields().map_err(|e| {
                ConfigError::new(format!("policies.{model}.{gate}.{}", e.field), e.problem)
            })?;
        }
    }
    within("server.workers", s.server.workers, 0, 1024)?;
    within(
        "server.body_limit_bytes",
        s.server.body_limit_bytes,
        1,
        MAX_BYTES,
    )?;
    positive(
        "server.body_read_timeout_seconds",
        s.server.body_read_timeout_seconds,
    )?;
    within(
        "server.max_connections",
        s.server.max_connections,
        0,
        MILLION,
    )?;
    within(
        "security.max_streams_per_client",
        s.security.max_streams_per_client,
        1,
        MILLION,
    )?;
    within("storage.pool_size", s.storage.pool_size, 1, 64)?;
    database_url(s.storage.database_url.expose_secret())?;
    positive("sse.keep_alive_seconds", s.sse.keep_alive_seconds)?;
    within("sse.retry_ms", s.sse.retry_ms, 0, DAY_MS)?;
    within("sse.subscriber_queue", s.sse.subscriber_queue, 1, MILLION)?;
    within("jobs.max_running", s.jobs.max_running, 1, 1024)?;
    within("jobs.max_queued", s.jobs.max_queued, 0, MILLION)?;
    let root = s.evals.repo_root.trim();
    if !root.is_empty() && !std::path::Path::new(root).is_dir() {
        return Err(ConfigError::new(
            "evals.repo_root",
            format!(
                "`{root}` is not a directory (set by LUKHAS_REPO_ROOT or evals.repo_root): evals run there \
                 and the database defaults to `{root}/.mcp-state.db`"
            ),
        ));
    }
    for (task_id, task) in &s.evals.tasks {
        let key = |field: &str| format!("evals.{task_id}.{field}");
        Ident::parse(task_id).map_err(|rule| ConfigError::new(format!("evals.{task_id}"), rule))?;
        if task.command.is_empty() || task.command[0].is_empty() {
            return Err(ConfigError::new(
                key("command"),
                "must name a program, e.g. [\"python3\", \"eval.py\"]",
            ));
        }
        positive(&key("timeout_seconds"), task.timeout_seconds)?;
        for config_id in task.configs.iter().flatten() {
            Ident::parse(config_id).map_err(|rule| ConfigError::new(key("configs"), rule))?;
        }
    }
    Ok(())
}

/// Shortest API key accepted: 16 characters leave no room for guessing within any rate limit.
pub const MIN_KEY_CHARS: usize = 16;

/// A key is sent in headers and compared byte for byte: visible ASCII only, and long enough where the
/// network can reach it. On a loopback bind a shorter key (the kit's CI uses `ci-test-key`) is accepted
/// with a warning at start.
fn api_key(key: &str, loopback: bool) -> Result<(), ConfigError> {
    let problem = if !key.bytes().all(|b| b.is_ascii_graphic()) {
        "an API key may hold only visible ASCII characters (no spaces, no control or non-ASCII characters)"
    } else if key.len() < MIN_KEY_CHARS && !loopback {
        "an API key must be at least 16 characters long on a non-loopback bind"
    } else {
        return Ok(());
    };
    Err(ConfigError::new(
        "auth.api_keys",
        format!("{problem}; generate one with `openssl rand -hex 24`"),
    ))
}

const DAY_MS: u64 = 24 * 3600 * 1000;
const MILLION: usize = 1_000_000;
/// Largest body or response size a setting may allow: 256 MiB.
const MAX_BYTES: usize = 256 << 20;

/// A duration setting that drives a timer or a deadline: at least a millisecond (the upper bound, a year, is
/// the deserializer's).
fn positive(key: &str, value: Duration) -> Result<(), ConfigError> {
    if value >= seconds::MIN_POSITIVE {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "must be at least 0.001 seconds (got {})",
                value.as_secs_f64()
            ),
        ))
    }
}

/// A count or size: from `lo` to `hi`, so nothing sized from it can hang the start or overflow.
fn within<T>(key: &str, value: T, lo: T, hi: T) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if lo <= value && value <= hi {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be from {lo} to {hi} (got {value})"),
        ))
    }
}

/// The stub source's values: finite, rates and the jitter fractions.
fn stub(stub: &StubSettings) -> Result<(), ConfigError> {
    let fraction = |key: &str, value: f64| {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            Err(ConfigError::new(
                key,
                format!("must be a fraction from 0 to 1 (got {value})"),
            ))
        }
    };
    let amount = |key: &str, value: f64| {
        if value.is_finite() && value >= 0.0 {
            Ok(())
        } else {
            Err(ConfigError::new(
                key,
                format!("must be a finite number 0 or more (got {value})"),
            ))
        }
    };
    fraction("slo.stub.jitter", stub.jitter)?;
    fraction("slo.stub.error_rate", stub.error_rate)?;
    amount("slo.stub.latency_p95_ms", stub.latency_p95_ms)?;
    amount("slo.stub.requests", stub.requests)?;
    for (gate, o) in &stub.gates {
        let key = |field: &str| format!("slo.stub.gates.{gate}.{field}");
        if let Some(rate) = o.error_rate {
            fraction(&key("error_rate"), rate)?;
        }
        fraction(&key("gaps"), o.gaps)?;
        for (field, value) in [
            ("latency_p95_ms", o.latency_p95_ms),
            ("requests", o.requests),
        ] {
            if let Some(value) = value {
                amount(&key(field), value)?;
            }
        }
    }
    Ok(())
}

/// An empty URL (SQLite) or a PostgreSQL URL this build can open; the message never repeats the URL's password.
fn database_url(url: &str) -> Result<(), ConfigError> {
    let field = "storage.database_url";
    if url.is_empty() {
        return Ok(());
    }
    if !super::Database::is_postgres_url(url) {
        return Err(ConfigError::new(
            field,
            format!(
                "`{}` is not a PostgreSQL URL (set by COCKPIT_DATABASE_URL or storage.database_url): \
                 write `postgres://user:password@host:5432/cockpit`, or leave it empty for the SQLite file",
                super::database::redact(url)
            ),
        ));
    }
    if !cfg!(feature = "postgres") {
        return Err(ConfigError::new(
            field,
            "this build has no PostgreSQL support: build it with `cargo build --release --features postgres` \
             (needs libpq-dev), or leave COCKPIT_DATABASE_URL empty for the SQLite file",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvSource;

    #[test]
    fn the_built_in_defaults_are_valid_and_keyless_on_loopback() {
        let s = Settings::defaults().expect("defaults are valid");
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:8766");
        assert!(s.auth.api_keys.is_empty());
        assert!(s.evals.tasks.contains_key("demo") && s.evals.tasks.contains_key("probe"));
    }

    #[test]
    fn keyless_mode_refuses_a_public_bind() {
        let env = EnvSource::from_pairs([("COCKPIT_BIND", "0.0.0.0:8766")]);
        let err = Settings::load(None, &env).expect_err("must refuse");
        assert_eq!(err.key, "auth.api_keys");
        let env = EnvSource::from_pairs([
            ("COCKPIT_BIND", "0.0.0.0:8766"),
            ("LUKHAS_MCP_API_KEYS", "k-0123456789abcdef"),
        ]);
        assert!(Settings::load(None, &env).is_ok());
    }

    #[test]
    fn keys_are_visible_ascii_and_long_enough_where_the_network_reaches_them() {
        let load = |bind: &str, keys: &str| {
            Settings::load(
                None,
                &EnvSource::from_pairs([("COCKPIT_BIND", bind), ("LUKHAS_MCP_API_KEYS", keys)]),
            )
        };
        for bad in [
            "0123456789abcdef\u{7f}",
            "01234567 89abcdef",
            "0123456789abcdéf",
        ] {
            let err = load("127.0.0.1:8766", bad).expect_err(bad);
            assert_eq!(err.key, "auth.api_keys");
            assert!(err.problem.contains("visible ASCII"), "{err}");
        }
        let short = load("0.0.0.0:8766", "ci-test-key").expect_err("short on a public bind");
        assert!(short.problem.contains("16 characters"), "{short}");
        assert!(
            load("127.0.0.1:8766", "ci-test-key").is_ok(),
            "the kit's CI key on loopback"
        );
        assert!(load("0.0.0.0:8766", "0123456789abcdef").is_ok());
    }

    #[test]
    fn a_bad_policy_default_is_refused_at_start_naming_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        for (layer, key) in [
            (
                "[policies.\"*\".\"*\"]\ninterval = \"0s\"\n",
                "policies.*.*.interval",
            ),
            (
                "[policies.lukhas.production]\nerror_rate = 1.5\n",
                "policies.lukhas.production.error_rate",
            ),
            (
                "[policies.m.g]\nconfidence = 1\n",
                "policies.m.g.confidence",
            ),
        ] {
            std::fs::write(&file, layer).expect("write");
            let err = Settings::load(Some(&file), &EnvSource::empty()).expect_err(layer);
            assert_eq!(err.key, key);
        }
        std::fs::write(&file, "[policies.m.g]\ndeadline = 1e20\n").expect("write");
        let err = Settings::load(Some(&file), &EnvSource::empty()).expect_err("1e20");
        assert!(err.to_string().contains("deadline"), "{err}");
    }

    #[test]
    fn a_bad_value_in_a_file_names_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[jobs]\nmax_running = \"many\"\n").expect("write");
        let err = Settings::load(Some(&file), &EnvSource::empty()).expect_err("invalid");
        assert_eq!(err.key, "jobs.max_running");
        std::fs::write(&file, "[jobs]\nmax_running = 0\n").expect("write");
        let err = Settings::load(Some(&file), &EnvSource::empty()).expect_err("invalid");
        assert_eq!(err.key, "jobs.max_running");
        std::fs::write(&file, "[jobz]\n").expect("write");
        let err = Settings::load(Some(&file), &EnvSource::empty()).expect_err("unknown section");
        assert!(err.problem.contains("jobz"), "{err}");
    }
}
