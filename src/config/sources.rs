//! Settings of the parts that talk to the outside: the SLO sources (the stub and Prometheus) and webhooks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StubSettings {
    pub latency_p95_ms: f64,
    pub error_rate: f64,
    pub requests: f64,
    /// Relative spread of the values, e.g. 0.1 = ±10%.
    pub jitter: f64,
    pub seed: u64,
    #[serde(default)]
    pub gates: BTreeMap<String, GateOverride>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateOverride {
    pub latency_p95_ms: Option<f64>,
    pub error_rate: Option<f64>,
    pub requests: Option<f64>,
    /// The gate reports nothing: every value is `no_data`.
    #[serde(default)]
    pub silent: bool,
    /// The gate's exporter froze: values come, but the newest sample behind them is an hour old.
    #[serde(default)]
    pub stale: bool,
    /// A flaky exporter: this fraction of checks (0–1) finds no data, the others the gate's values. Which
    /// ones is decided by the same reproducible noise as the jitter.
    #[serde(default)]
    pub gaps: f64,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSettings {
    /// `PROM_URL`; empty = the stub source.
    pub url: String,
    /// `PROM_BEARER`, with or without a leading `Bearer `.
    pub bearer: secrecy::SecretString,
    pub latency_query: String,
    /// `PROM_QUERY_ERR`: a ratio query. Empty (the default) = the error rate is judged on counts,
    /// `errors_query` out of `requests_query`, with a confidence interval.
    pub error_rate_query: String,
    pub errors_query: String,
    pub requests_query: String,
    /// The Unix time of the newest sample behind the values.
    pub freshness_query: String,
    pub ca_file: String,
    #[serde(deserialize_with = "crate::seconds::deserialize")]
    pub timeout_seconds: Duration,
    pub max_response_bytes: usize,
}

/// The bearer token must never be printed, so this is written by hand.
impl std::fmt::Debug for PrometheusSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSettings")
            .field("url", &self.url)
            .field("bearer", &self.bearer)
            .field("ca_file", &self.ca_file)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Empty = no webhooks. Env `COCKPIT_WEBHOOK_URL`.
    pub url: String,
    #[serde(deserialize_with = "crate::seconds::deserialize")]
    pub timeout_seconds: Duration,
    /// Further attempts after the first fails.
    pub retries: u32,
}
