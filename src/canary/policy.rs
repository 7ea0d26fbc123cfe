//! SLO policies: the fields a canary is judged by, their defaults, and how the layers merge field by field —
//! built-in → `[policies."*"."*"]` → `[policies."*".<gate>]` → `[policies.<model>."*"]` →
//! `[policies.<model>.<gate>]` → the call's `sloPolicy` (SPEC §7).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

/// A policy ready to judge with: every field set and valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// p95 latency SLO in ms; a check fails when the value is greater.
    pub latency_p95_ms: f64,
    /// Error-rate SLO as a fraction 0–1; a check fails when the value is greater.
    pub error_rate: f64,
    pub interval: Duration,
    /// PromQL range of the queries (`$__window`).
    pub window: Duration,
    pub successes_to_promote: u32,
    pub failure_limit: u32,
    pub min_requests: f64,
    pub warmup_checks: u32,
    pub max_no_decision: u32,
    pub deadline: Duration,
    pub critical_factor: f64,
}

/// The original server's `targets` object, accepted as an alias.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    latency_p95_ms: Option<f64>,
    max_error_rate: Option<f64>,
}

/// A layer of policy: any subset of the fields. Deserialized from a tool's `sloPolicy` and from config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    latency_p95_ms: Option<f64>,
    error_rate: Option<f64>,
    #[serde(default, deserialize_with = "duration")]
    interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    window: Option<Duration>,
    /// The original server's name for `window`, in seconds.
    #[serde(rename = "windowSeconds", default, deserialize_with = "duration")]
    window_seconds: Option<Duration>,
    targets: Option<Targets>,
    #[serde(rename = "successesToPromote")]
    successes_to_promote: Option<u32>,
    #[serde(rename = "failureLimit")]
    failure_limit: Option<u32>,
    #[serde(rename = "minRequests")]
    min_requests: Option<f64>,
    #[serde(rename = "warmupChecks")]
    warmup_checks: Option<u32>,
    #[serde(rename = "maxNoDecision")]
    max_no_decision: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    deadline: Option<Duration>,
    #[serde(rename = "criticalFactor")]
    critical_factor: Option<f64>,
}

/// Policy defaults from config: `[policies."<modelId>"."<gate>"]`, `*` matching any.
pub type PolicyTable = BTreeMap<String, BTreeMap<String, PolicyPatch>>;

/// A duration as `"250ms"`, `"30s"`, `"1h5m"` or a number of seconds (fractions allowed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let parsed = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Ok(Duration::from_secs_f64(seconds))
        }
        Ok(_) => Err(()),
        Err(_) => humantime::parse_duration(text).map_err(|_| ()),
    };
    parsed.map_err(|()| {
        format!("`{text}` is not a duration; use e.g. \"250ms\", \"30s\", \"5m\", \"1h5m\" or a number of seconds")
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

/// Shown for durations: `100ms`, `10s`, `1h 5m` (which `parse_duration` reads back).
pub fn show_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A policy field that is missing or out of range: the field's name (as the caller wrote it) and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub field: &'static str,
    pub problem: String,
}

impl PolicyPatch {
    /// `over` wins field by field.
    fn merged(self, over: &PolicyPatch) -> PolicyPatch {
        let targets = over.targets.clone().unwrap_or_default();
        PolicyPatch {
            latency_p95_ms: over
                .latency_p95_ms
                .or(targets.latency_p95_ms)
                .or(self.latency_p95_ms),
            error_rate: over
                .error_rate
                .or(targets.max_error_rate)
                .or(self.error_rate),
            interval: over.interval.or(self.interval),
            window: over.window.or(over.window_seconds).or(self.window),
            window_seconds: None,
            targets: None,
            successes_to_promote: over.successes_to_promote.or(self.successes_to_promote),
            failure_limit: over.failure_limit.or(self.failure_limit),
            min_requests: over.min_requests.or(self.min_requests),
            warmup_checks: over.warmup_checks.or(self.warmup_checks),
            max_no_decision: over.max_no_decision.or(self.max_no_decision),
            deadline: over.deadline.or(self.deadline),
            critical_factor: over.critical_factor.or(self.critical_factor),
        }
    }

    /// The built-in defaults (SPEC §7); the two thresholds have none.
    fn built_in() -> PolicyPatch {
        PolicyPatch {
            interval: Some(Duration::from_secs(10)),
            window: Some(Duration::from_secs(300)),
            successes_to_promote: Some(3),
            failure_limit: Some(2),
            min_requests: Some(0.0),
            warmup_checks: Some(0),
            max_no_decision: Some(6),
            deadline: Some(Duration::from_secs(3600)),
            critical_factor: Some(2.0),
            ..PolicyPatch::default()
        }
    }

    fn resolve(self) -> Result<Policy, PolicyError> {
        let err = |field, problem: &str| PolicyError {
            field,
            problem: problem.to_string(),
        };
        let latency = self.latency_p95_ms.ok_or_else(|| {
            err(
                "latency_p95_ms",
                "is required: the p95 latency SLO in milliseconds, e.g. 800",
            )
        })?;
        if !(latency.is_finite() && latency > 0.0) {
            return Err(err(
                "latency_p95_ms",
                "must be a number of milliseconds greater than 0",
            ));
        }
        let error_rate = self.error_rate.ok_or_else(|| {
            err(
                "error_rate",
                "is required: the error-rate SLO as a fraction 0-1, e.g. 0.01",
            )
        })?;
        if !(error_rate.is_finite() && (0.0..=1.0).contains(&error_rate)) {
            return Err(err(
                "error_rate",
                "must be a fraction from 0 to 1 (0.01 = 1%)",
            ));
        }
        let positive = |field, d: Option<Duration>| match d {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(err(field, "must be a duration greater than 0")),
        };
        let at_least_one = |field, n: Option<u32>| match n {
            Some(n) if n >= 1 => Ok(n),
            _ => Err(err(field, "must be a whole number of at least 1")),
        };
        let min_requests = self.min_requests.unwrap_or(0.0);
        if !(min_requests.is_finite() && min_requests >= 0.0) {
            return Err(err(
                "minRequests",
                "must be a number of requests, 0 or more",
            ));
        }
        let critical_factor = self.critical_factor.unwrap_or(2.0);
        if !(critical_factor.is_finite() && critical_factor > 1.0) {
            return Err(err(
                "criticalFactor",
                "must be a number greater than 1, e.g. 2.0",
            ));
        }
        Ok(Policy {
            latency_p95_ms: latency,
            error_rate,
            interval: positive("interval", self.interval)?,
            window: positive("window", self.window)?,
            successes_to_promote: at_least_one("successesToPromote", self.successes_to_promote)?,
            failure_limit: at_least_one("failureLimit", self.failure_limit)?,
            min_requests,
            warmup_checks: self.warmup_checks.unwrap_or(0),
            max_no_decision: at_least_one("maxNoDecision", self.max_no_decision)?,
            deadline: positive("deadline", self.deadline)?,
            critical_factor,
        })
    }
}

/// The effective policy of a canary for `model` moving to `gate`.
pub fn effective(
    table: &PolicyTable,
    model: &str,
    gate: &str,
    call: &PolicyPatch,
) -> Result<Policy, PolicyError> {
    let layer = |m: &str, g: &str| table.get(m).and_then(|gates| gates.get(g));
    let layers = [
        layer("*", "*"),
        layer("*", gate),
        layer(model, "*"),
        layer(model, gate),
        Some(call),
    ];
    layers
        .into_iter()
        .flatten()
        .fold(PolicyPatch::built_in(), |acc, over| acc.merged(over))
        .resolve()
}

impl Policy {
    /// How the policy is shown and stored: the kit's threshold names, durations as text.
    pub fn to_json(&self) -> Value {
        json!({
            "latency_p95_ms": self.latency_p95_ms,
            "error_rate": self.error_rate,
            "interval": show_duration(self.interval),
            "window": show_duration(self.window),
            "successesToPromote": self.successes_to_promote,
            "failureLimit": self.failure_limit,
            "minRequests": self.min_requests,
            "warmupChecks": self.warmup_checks,
            "maxNoDecision": self.max_no_decision,
            "deadline": show_duration(self.deadline),
            "criticalFactor": self.critical_factor,
        })
    }

    /// Reads back what [`Policy::to_json`] stored.
    pub fn from_json(value: &Value) -> Result<Policy, String> {
        let patch: PolicyPatch =
            serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        patch
            .resolve()
            .map_err(|e| format!("{}: {}", e.field, e.problem))
    }

    /// The PromQL `$__window` value: whole seconds when possible, else milliseconds.
    pub fn window_text(&self) -> String {
        let ms = self.window.as_millis();
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }
}

/// So `Policy` can be part of serialized views.
impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(value: Value) -> PolicyPatch {
        serde_json::from_value(value).expect("valid patch")
    }

    #[test]
    fn the_kits_policy_gets_the_built_in_defaults() {
        let policy = effective(
            &PolicyTable::new(),
            "lukhas-v2",
            "production",
            &patch(json!({"latency_p95_ms": 800, "error_rate": 0.01})),
        )
        .expect("valid");
        assert_eq!(policy.interval, Duration::from_secs(10));
        assert_eq!(policy.window_text(), "300s");
        assert_eq!(
            (
                policy.successes_to_promote,
                policy.failure_limit,
                policy.max_no_decision
            ),
            (3, 2, 6)
        );
        assert_eq!(policy.deadline, Duration::from_secs(3600));
        assert_eq!(
            Policy::from_json(&policy.to_json()).expect("round trip"),
            policy
        );
    }

    #[test]
    fn layers_merge_field_by_field_and_the_call_wins() {
        let mut table = PolicyTable::new();
        let mut any = BTreeMap::new();
        any.insert(
            "*".to_string(),
            patch(json!({"interval": "100ms", "error_rate": 0.05})),
        );
        table.insert("*".into(), any);
        let mut model = BTreeMap::new();
        model.insert(
            "production".to_string(),
            patch(json!({"successesToPromote": 5})),
        );
        table.insert("lukhas-v2".into(), model);
        let call = patch(json!({"latency_p95_ms": 800, "successesToPromote": 2}));
        let p = effective(&table, "lukhas-v2", "production", &call).expect("valid");
        assert_eq!(p.interval, Duration::from_millis(100));
        assert_eq!(p.error_rate, 0.05);
        assert_eq!(p.successes_to_promote, 2);
        let other = effective(&table, "other", "production", &call).expect("valid");
        assert_eq!(other.successes_to_promote, 2);
        let from_config = effective(
            &table,
            "lukhas-v2",
            "production",
            &patch(json!({"latency_p95_ms": 1})),
        )
        .expect("valid");
        assert_eq!(from_config.successes_to_promote, 5);
    }

    #[test]
    fn the_original_servers_aliases_are_accepted() {
        let call = patch(
            json!({"targets": {"latency_p95_ms": 500, "max_error_rate": 0.02}, "windowSeconds": 120}),
        );
        let p = effective(&PolicyTable::new(), "m", "g", &call).expect("valid");
        assert_eq!((p.latency_p95_ms, p.error_rate), (500.0, 0.02));
        assert_eq!(p.window, Duration::from_secs(120));
    }

    #[test]
    fn durations_take_text_or_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h5m"), Ok(Duration::from_secs(3900)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(serde_json::from_value::<PolicyPatch>(json!({"interval": "often"})).is_err());
        assert_eq!(show_duration(Duration::from_secs(3900)), "1h 5m");
    }

    #[test]
    fn missing_or_out_of_range_fields_are_named() {
        let field = |v: Value| {
            effective(&PolicyTable::new(), "m", "g", &patch(v))
                .expect_err("invalid")
                .field
        };
        assert_eq!(field(json!({"error_rate": 0.01})), "latency_p95_ms");
        assert_eq!(
            field(json!({"latency_p95_ms": -1, "error_rate": 0.01})),
            "latency_p95_ms"
        );
        assert_eq!(field(json!({"latency_p95_ms": 800})), "error_rate");
        assert_eq!(
            field(json!({"latency_p95_ms": 800, "error_rate": 1.5})),
            "error_rate"
        );
        assert_eq!(
            field(json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": 0})),
            "interval"
        );
        assert_eq!(
            field(json!({"latency_p95_ms": 800, "error_rate": 0.01, "criticalFactor": 1})),
            "criticalFactor"
        );
        assert!(serde_json::from_value::<PolicyPatch>(json!({"failureLimit": -1})).is_err());
    }
}
