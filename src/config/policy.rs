//! A canary's SLO policy as written: a layer of any subset of the fields, from config
//! (`[policies."<modelId>"."<gate>"]`) or a tool's `sloPolicy`, with the duration syntax both use. How the
//! layers merge into a policy to judge with is the canary's business (`canary::policy`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The longest `deadline` a canary may have.
pub const MAX_DEADLINE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The original server's `targets` object, accepted as an alias.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub latency_p95_ms: Option<f64>,
    pub max_error_rate: Option<f64>,
}

/// A layer of policy: any subset of the fields. Deserialized from a tool's `sloPolicy` and from config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    pub latency_p95_ms: Option<f64>,
    pub error_rate: Option<f64>,
    #[serde(default, deserialize_with = "duration")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub window: Option<Duration>,
    /// The original server's name for `window`, in seconds.
    #[serde(rename = "windowSeconds", default, deserialize_with = "duration")]
    pub window_seconds: Option<Duration>,
    pub targets: Option<Targets>,
    #[serde(rename = "successesToPromote")]
    pub successes_to_promote: Option<u32>,
    #[serde(rename = "failureLimit")]
    pub failure_limit: Option<u32>,
    #[serde(rename = "minRequests")]
    pub min_requests: Option<f64>,
    #[serde(rename = "warmupChecks")]
    pub warmup_checks: Option<u32>,
    #[serde(rename = "maxNoDecision")]
    pub max_no_decision: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub deadline: Option<Duration>,
    #[serde(rename = "criticalFactor")]
    pub critical_factor: Option<f64>,
    pub confidence: Option<f64>,
    #[serde(rename = "maxStaleness", default, deserialize_with = "duration")]
    pub max_staleness: Option<Duration>,
}

/// Policy defaults from config: `[policies."<modelId>"."<gate>"]`, `*` matching any.
pub type PolicyTable = BTreeMap<String, BTreeMap<String, PolicyPatch>>;

/// A duration as `"250ms"`, `"30s"`, `"1h5m"` or a number of seconds (fractions allowed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    // Fallible all the way: `1e20` or `1e300` seconds is an error, never a panic.
    let parsed = match text.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds).map_err(|_| ()),
        Err(_) => humantime::parse_duration(text).map_err(|_| ()),
    };
    parsed.map_err(|()| {
        let shown: String = text.chars().take(40).collect();
        format!("`{shown}` is not a duration; use e.g. \"250ms\", \"30s\", \"5m\", \"1h5m\" or a number of seconds (at most {} days)", MAX_DEADLINE.as_secs() / 86_400)
    })
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Spec {
        Seconds(f64),
        Text(String),
    }
    let parsed = match Spec::deserialize(deserializer)? {
        Spec::Seconds(s) => parse_duration(&s.to_string()),
        Spec::Text(t) => parse_duration(&t),
    };
    parsed.map(Some).map_err(serde::de::Error::custom)
}

/// A duration a config key must have (`"1s"`, `"250ms"` or seconds).
pub fn required_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    duration(deserializer)?.ok_or_else(|| serde::de::Error::custom("a duration is required"))
}

/// Shown for durations: `100ms`, `10s`, `1h 5m` (which `parse_duration` reads back).
pub fn show_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
