//! SLO policies: the fields a canary is judged by, their defaults, and how the layers merge field by field —
//! built-in → `[policies."*"."*"]` → `[policies."*".<gate>]` → `[policies.<model>."*"]` →
//! `[policies.<model>.<gate>]` → the call's `sloPolicy` (SPEC §7).

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

pub use crate::config::policy::{
    parse_duration, show_duration, PolicyPatch, PolicyTable, MAX_DEADLINE,
};

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
    /// Confidence of the error rate's Wilson interval (0.95 = 95%).
    pub confidence: f64,
    /// Evidence whose newest sample is older than this at the due time decides nothing (`stale_data`).
    pub max_staleness: Duration,
}

/// Bounds every policy a caller starts must keep, from config `[canary]` (the built-in ones are fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The shortest `interval` (each check costs queries against Prometheus).
    pub min_interval: Duration,
}

/// Upper bounds of the other policy numbers: far past any real policy, short of any overflow.
const MAX_LATENCY_MS: f64 = 86_400_000.0;
const MAX_CHECKS: u32 = 10_000;
const MAX_REQUESTS: f64 = 1e12;
const MAX_CRITICAL_FACTOR: f64 = 1000.0;

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
            confidence: over.confidence.or(self.confidence),
            max_staleness: over.max_staleness.or(self.max_staleness),
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
            confidence: Some(0.95),
            ..PolicyPatch::default()
        }
    }

    /// Checks the fields this layer sets, each on its own: what a config file's layer can be checked for
    /// before any call supplies the rest.
    pub fn check_fields(&self) -> Result<(), PolicyError> {
        let err = |field, problem: &str| {
            Err(PolicyError {
                field,
                problem: problem.to_string(),
            })
        };
        if self
            .latency_p95_ms
            .is_some_and(|v| !(v.is_finite() && v > 0.0 && v <= MAX_LATENCY_MS))
        {
            return err(
                "latency_p95_ms",
                "must be a number of milliseconds greater than 0 and at most 86400000 (a day)",
            );
        }
        if self
            .error_rate
            .is_some_and(|v| !(v.is_finite() && (0.0..=1.0).contains(&v)))
        {
            return err("error_rate", "must be a fraction from 0 to 1 (0.01 = 1%)");
        }
        for (field, value) in [
            ("interval", self.interval),
            ("window", self.window),
            ("windowSeconds", self.window_seconds),
            ("deadline", self.deadline),
            ("maxStaleness", self.max_staleness),
        ] {
            if value.is_some_and(|d| d.is_zero() || d > MAX_DEADLINE) {
                return err(
                    field,
                    "must be a duration greater than 0 and at most 30 days",
                );
            }
        }
        for (field, value, least) in [
            ("successesToPromote", self.successes_to_promote, 1),
            ("failureLimit", self.failure_limit, 1),
            ("maxNoDecision", self.max_no_decision, 1),
            ("warmupChecks", self.warmup_checks, 0),
        ] {
            if value.is_some_and(|v| !(least..=MAX_CHECKS).contains(&v)) {
                return Err(PolicyError {
                    field,
                    problem: format!("must be a whole number from {least} to {MAX_CHECKS}"),
                });
            }
        }
        if self
            .min_requests
            .is_some_and(|v| !(v.is_finite() && (0.0..=MAX_REQUESTS).contains(&v)))
        {
            return err(
                "minRequests",
                "must be a number of requests from 0 to 1000000000000",
            );
        }
        if self
            .critical_factor
            .is_some_and(|v| !(v.is_finite() && v > 1.0 && v <= MAX_CRITICAL_FACTOR))
        {
            return err(
                "criticalFactor",
                "must be a number greater than 1 and at most 1000, e.g. 2.0",
            );
        }
        if self
            .confidence
            .is_some_and(|v| !(v.is_finite() && v > 0.0 && v < 1.0))
        {
            return err(
                "confidence",
                "must be a fraction between 0 and 1, e.g. 0.95 for a 95% interval",
            );
        }
        Ok(())
    }

    /// The policy of a fully merged patch (the built-in layer supplies every default).
    fn resolve(self) -> Result<Policy, PolicyError> {
        self.check_fields()?;
        fn need<T>(field: &'static str, value: Option<T>, what: &str) -> Result<T, PolicyError> {
            value.ok_or_else(|| PolicyError {
                field,
                problem: format!("is required: {what}"),
            })
        }
        let interval = need("interval", self.interval, "e.g. \"10s\"")?;
        Ok(Policy {
            latency_p95_ms: need(
                "latency_p95_ms",
                self.latency_p95_ms,
                "the p95 latency SLO in milliseconds, e.g. 800",
            )?,
            error_rate: need(
                "error_rate",
                self.error_rate,
                "the error-rate SLO as a fraction 0-1, e.g. 0.01",
            )?,
            interval,
            window: need("window", self.window, "e.g. \"5m\"")?,
            successes_to_promote: need("successesToPromote", self.successes_to_promote, "e.g. 3")?,
            failure_limit: need("failureLimit", self.failure_limit, "e.g. 2")?,
            min_requests: need("minRequests", self.min_requests, "e.g. 0")?,
            warmup_checks: need("warmupChecks", self.warmup_checks, "e.g. 0")?,
            max_no_decision: need("maxNoDecision", self.max_no_decision, "e.g. 6")?,
            deadline: need("deadline", self.deadline, "e.g. \"1h\"")?,
            critical_factor: need("criticalFactor", self.critical_factor, "e.g. 2.0")?,
            confidence: need("confidence", self.confidence, "e.g. 0.95")?,
            // Two intervals, so one late scrape is not stale, and never under 30 s (a common scrape interval).
            max_staleness: self
                .max_staleness
                .unwrap_or_else(|| (interval * 2).max(Duration::from_secs(30))),
        })
    }
}

impl Policy {
    /// The bounds a started canary must keep, beyond each field's own range.
    pub fn within(&self, limits: &Limits) -> Result<(), PolicyError> {
        let err = |field, problem: String| Err(PolicyError { field, problem });
        if self.interval < limits.min_interval {
            return err(
                "interval",
                format!(
                    "must be at least {} (config canary.min_interval)",
                    show_duration(limits.min_interval)
                ),
            );
        }
        if self.window < self.interval {
            return err(
                "window",
                format!(
                    "must be at least the interval ({}): each check must see the traffic since the last",
                    show_duration(self.interval)
                ),
            );
        }
        let checks = self.warmup_checks.saturating_add(self.successes_to_promote);
        let fastest = self.interval.saturating_mul(checks);
        if self.deadline < fastest {
            return err(
                "deadline",
                format!(
                    "is shorter than the fastest possible promotion: {checks} checks (warmupChecks + \
                     successesToPromote) every {} take {}; the canary could never promote",
                    show_duration(self.interval),
                    show_duration(fastest)
                ),
            );
        }
        Ok(())
    }
}

/// The effective policy for `model` at `gate` (a canary's still has to be [`Policy::within`] the limits).
pub fn effective(
    table: &PolicyTable,
    model: &str,
    gate: &str,
    call: &PolicyPatch,
) -> Result<Policy, PolicyError> {
    // The call's own fields first, so an error names the field as the caller wrote it (`windowSeconds`),
    // not as it reads once merged.
    call.check_fields()?;
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
        .fold(
            PolicyPatch::built_in(),
            super::super::config::policy::PolicyPatch::merged,
        )
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
            "confidence": self.confidence,
            "maxStaleness": show_duration(self.max_staleness),
        })
    }

    /// Reads back what [`Policy::to_json`] stored, leniently: it was valid when accepted, so the limits of
    /// today's config are not applied again, and fields added since take their defaults.
    pub fn from_json(value: &Value) -> Result<Policy, String> {
        let patch: PolicyPatch =
            serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        PolicyPatch::built_in()
            .merged(&patch)
            .resolve()
            .map_err(|e| format!("{}: {}", e.field, e.problem))
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
    use std::collections::BTreeMap;

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
        assert_eq!(policy.window, Duration::from_secs(300));
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
        for too_big in [
            json!({"deadline": "31d"}),
            json!({"window": 1e15}),
            json!({"latency_p95_ms": 1e20}),
            json!({"successesToPromote": 10_001}),
            json!({"minRequests": 1e300}),
            json!({"criticalFactor": 1e6}),
        ] {
            let name = too_big.as_object().and_then(|o| o.keys().next().cloned());
            let mut v = json!({"latency_p95_ms": 800, "error_rate": 0.01});
            v.as_object_mut()
                .expect("object")
                .extend(too_big.as_object().expect("object").clone());
            assert_eq!(Some(field(v).to_string()), name);
        }
    }

    #[test]
    fn a_started_canary_keeps_the_limits() {
        let limits = Limits {
            min_interval: Duration::from_secs(1),
        };
        let problem = |v: Value| {
            effective(&PolicyTable::new(), "m", "g", &patch(v))
                .expect("valid fields")
                .within(&limits)
                .map_err(|e| e.field)
        };
        let base = |extra: Value| {
            let mut v = json!({"latency_p95_ms": 800, "error_rate": 0.01});
            if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
                v.extend(extra.clone());
            }
            v
        };
        assert_eq!(problem(base(json!({}))), Ok(()));
        assert_eq!(problem(base(json!({"interval": "500ms"}))), Err("interval"));
        assert_eq!(problem(base(json!({"interval": "10m"}))), Err("window"));
        assert_eq!(
            problem(base(json!({"interval": "1m", "deadline": "2m"}))),
            Err("deadline"),
            "3 passes a minute apart cannot fit in 2 minutes"
        );
        assert_eq!(
            problem(base(
                json!({"interval": "1m", "successesToPromote": 1, "deadline": "2m"})
            )),
            Ok(())
        );
    }

    #[test]
    fn durations_too_large_or_negative_are_errors_never_panics() {
        for bad in [
            json!(1e20),
            json!("1e20"),
            json!(1e300),
            json!(-1),
            json!("-1"),
        ] {
            let parsed = serde_json::from_value::<PolicyPatch>(json!({ "deadline": bad }));
            assert!(parsed.is_err(), "{bad}");
        }
        let zero = patch(json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "0s"}));
        assert_eq!(
            effective(&PolicyTable::new(), "m", "g", &zero).map_err(|e| e.field),
            Err("interval")
        );
    }

    #[test]
    fn a_stored_policy_from_before_the_evidence_fields_still_reads() {
        let old = json!({"latency_p95_ms": 800.0, "error_rate": 0.01, "interval": "10s", "window": "5m",
            "successesToPromote": 3, "failureLimit": 2, "minRequests": 0.0, "warmupChecks": 0,
            "maxNoDecision": 6, "deadline": "1h", "criticalFactor": 2.0});
        let policy = Policy::from_json(&old).expect("lenient");
        assert_eq!(policy.confidence, 0.95);
        assert_eq!(policy.max_staleness, Duration::from_secs(30));
    }
}
