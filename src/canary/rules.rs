//! The decision rules of SPEC §7 as plain functions: one check's verdict from the gathered values, and what a
//! verdict does to a canary's counters. No I/O, no clock — the canary actor supplies both.

use std::fmt;

use super::policy::Policy;

/// Every reason a check or a canary can give: one closed list (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    // No decision.
    NoData,
    Nan,
    Inf,
    MultiSeries,
    BelowMinRequests,
    Warmup,
    QueryError,
    QueryTimeout,
    HttpError,
    // Fail.
    LatencyAboveSlo,
    ErrorRateAboveSlo,
    CriticalLatency,
    CriticalErrorRate,
    // A passing check, and the end of a promoted canary.
    SloMet,
    // End of a canary.
    ConsecutiveFailures,
    Critical,
    Deadline,
    Manual,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::NoData => "no_data",
            ReasonCode::Nan => "nan",
            ReasonCode::Inf => "inf",
            ReasonCode::MultiSeries => "multi_series",
            ReasonCode::BelowMinRequests => "below_min_requests",
            ReasonCode::Warmup => "warmup",
            ReasonCode::QueryError => "query_error",
            ReasonCode::QueryTimeout => "query_timeout",
            ReasonCode::HttpError => "http_error",
            ReasonCode::LatencyAboveSlo => "latency_above_slo",
            ReasonCode::ErrorRateAboveSlo => "error_rate_above_slo",
            ReasonCode::CriticalLatency => "critical_latency",
            ReasonCode::CriticalErrorRate => "critical_error_rate",
            ReasonCode::SloMet => "slo_met",
            ReasonCode::ConsecutiveFailures => "consecutive_failures",
            ReasonCode::Critical => "critical",
            ReasonCode::Deadline => "deadline",
            ReasonCode::Manual => "manual",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    NoDecision,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NoDecision => "no_decision",
        }
    }
}

/// One SLI as the source gave it: a finite number, or the no-decision reason there is none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    Value(f64),
    Missing(ReasonCode),
}

impl Sample {
    pub fn value(self) -> Option<f64> {
        match self {
            Sample::Value(v) => Some(v),
            Sample::Missing(_) => None,
        }
    }
}

/// The SLIs gathered for one check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub latency_p95_ms: Sample,
    pub error_rate: Sample,
    pub requests: Sample,
}

/// One check's verdict and the reason that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub verdict: Verdict,
    pub reason: ReasonCode,
}

impl Check {
    fn new(verdict: Verdict, reason: ReasonCode) -> Self {
        Self { verdict, reason }
    }

    pub fn is_critical(self) -> bool {
        matches!(
            self.reason,
            ReasonCode::CriticalLatency | ReasonCode::CriticalErrorRate
        )
    }
}

/// Judges one value against its SLO: greater fails (equal passes), above `criticalFactor` × SLO with traffic
/// is critical.
fn judge_value(
    sample: Sample,
    slo: f64,
    policy: &Policy,
    has_traffic: bool,
    above: ReasonCode,
    critical: ReasonCode,
) -> Check {
    match sample {
        Sample::Missing(reason) => Check::new(Verdict::NoDecision, reason),
        Sample::Value(v) if has_traffic && v > slo * policy.critical_factor => {
            Check::new(Verdict::Fail, critical)
        }
        Sample::Value(v) if v > slo => Check::new(Verdict::Fail, above),
        Sample::Value(_) => Check::new(Verdict::Pass, ReasonCode::SloMet),
    }
}

/// One check, one verdict: during warm-up it is `no_decision`/`warmup`; with too little traffic it is
/// `no_decision` (values measured on a handful of requests decide nothing); otherwise it fails if any value
/// fails (critical first), else is `no_decision` if any value is, else passes.
pub fn judge(policy: &Policy, observed: &Observation, warming_up: bool) -> Check {
    if warming_up {
        return Check::new(Verdict::NoDecision, ReasonCode::Warmup);
    }
    let requests = observed.requests.value();
    if policy.min_requests > 0.0 {
        match observed.requests {
            Sample::Missing(reason) => return Check::new(Verdict::NoDecision, reason),
            Sample::Value(r) if r < policy.min_requests => {
                return Check::new(Verdict::NoDecision, ReasonCode::BelowMinRequests)
            }
            Sample::Value(_) => {}
        }
    }
    let has_traffic = requests.is_some_and(|r| r >= policy.min_requests.max(1.0));
    let values = [
        judge_value(
            observed.latency_p95_ms,
            policy.latency_p95_ms,
            policy,
            has_traffic,
            ReasonCode::LatencyAboveSlo,
            ReasonCode::CriticalLatency,
        ),
        judge_value(
            observed.error_rate,
            policy.error_rate,
            policy,
            has_traffic,
            ReasonCode::ErrorRateAboveSlo,
            ReasonCode::CriticalErrorRate,
        ),
    ];
    values
        .iter()
        .find(|c| c.is_critical())
        .or_else(|| values.iter().find(|c| c.verdict == Verdict::Fail))
        .or_else(|| values.iter().find(|c| c.verdict == Verdict::NoDecision))
        .copied()
        .unwrap_or(Check::new(Verdict::Pass, ReasonCode::SloMet))
}

/// A canary's running tallies. Passes and failures are consecutive; `no_decision` counts consecutive
/// undecided (non-warm-up) checks toward `held`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub checks: u32,
    pub passes: u32,
    pub failures: u32,
    pub no_decision: u32,
}

/// What a check means for the canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// `maxNoDecision` undecided checks in a row: stop deciding until an operator acts or the deadline.
    Hold,
    Promote,
    RollBack(ReasonCode),
}

/// Applies one check to the counters of a deciding (running) canary. A held canary's checks are recorded
/// but never reach this: nothing is decided while held.
pub fn step(policy: &Policy, counters: Counters, check: Check) -> (Counters, Step) {
    let mut next = Counters {
        checks: counters.checks + 1,
        ..counters
    };
    let step = match check.verdict {
        Verdict::Pass => {
            next.passes += 1;
            next.failures = 0;
            next.no_decision = 0;
            if next.passes >= policy.successes_to_promote {
                Step::Promote
            } else {
                Step::Continue
            }
        }
        Verdict::Fail => {
            next.failures += 1;
            next.passes = 0;
            next.no_decision = 0;
            if check.is_critical() {
                Step::RollBack(ReasonCode::Critical)
            } else if next.failures >= policy.failure_limit {
                Step::RollBack(ReasonCode::ConsecutiveFailures)
            } else {
                Step::Continue
            }
        }
        Verdict::NoDecision if check.reason == ReasonCode::Warmup => Step::Continue,
        Verdict::NoDecision => {
            next.no_decision += 1;
            if next.no_decision >= policy.max_no_decision {
                Step::Hold
            } else {
                Step::Continue
            }
        }
    };
    (next, step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::policy::{effective, PolicyPatch, PolicyTable};
    use serde_json::json;

    fn policy(extra: serde_json::Value) -> Policy {
        let mut fields = json!({"latency_p95_ms": 800, "error_rate": 0.01});
        if let (Some(base), Some(more)) = (fields.as_object_mut(), extra.as_object()) {
            base.extend(more.clone());
        }
        let patch: PolicyPatch = serde_json::from_value(fields).expect("patch");
        effective(&PolicyTable::new(), "m", "g", &patch).expect("policy")
    }

    fn seen(latency: Sample, error_rate: Sample, requests: Sample) -> Observation {
        Observation {
            latency_p95_ms: latency,
            error_rate,
            requests,
        }
    }

    fn values(latency: f64, error_rate: f64, requests: f64) -> Observation {
        seen(
            Sample::Value(latency),
            Sample::Value(error_rate),
            Sample::Value(requests),
        )
    }

    fn judged(p: &Policy, o: Observation) -> (Verdict, &'static str) {
        let c = judge(p, &o, false);
        (c.verdict, c.reason.as_str())
    }

    #[test]
    fn greater_than_the_slo_fails_and_equal_passes() {
        let p = policy(json!({}));
        assert_eq!(
            judged(&p, values(800.0, 0.01, 100.0)),
            (Verdict::Pass, "slo_met")
        );
        assert_eq!(
            judged(&p, values(800.1, 0.0, 100.0)),
            (Verdict::Fail, "latency_above_slo")
        );
        assert_eq!(
            judged(&p, values(100.0, 0.011, 100.0)),
            (Verdict::Fail, "error_rate_above_slo")
        );
    }

    #[test]
    fn a_breach_beyond_the_critical_factor_with_traffic_is_critical() {
        let p = policy(json!({}));
        assert_eq!(
            judged(&p, values(1601.0, 0.0, 100.0)),
            (Verdict::Fail, "critical_latency")
        );
        assert_eq!(
            judged(&p, values(100.0, 0.03, 100.0)),
            (Verdict::Fail, "critical_error_rate")
        );
        assert_eq!(
            judged(&p, values(1601.0, 0.0, 0.0)),
            (Verdict::Fail, "latency_above_slo"),
            "without traffic a breach is not critical"
        );
        // One verdict: a critical value decides over a plain breach of the other.
        assert_eq!(
            judged(&p, values(900.0, 0.05, 100.0)),
            (Verdict::Fail, "critical_error_rate")
        );
    }

    #[test]
    fn missing_values_never_pass_and_a_failing_value_still_fails() {
        let p = policy(json!({}));
        for reason in [
            ReasonCode::NoData,
            ReasonCode::Nan,
            ReasonCode::Inf,
            ReasonCode::MultiSeries,
            ReasonCode::QueryError,
            ReasonCode::QueryTimeout,
            ReasonCode::HttpError,
        ] {
            let o = seen(
                Sample::Missing(reason),
                Sample::Value(0.0),
                Sample::Value(100.0),
            );
            assert_eq!(judged(&p, o), (Verdict::NoDecision, reason.as_str()));
            let o = seen(
                Sample::Value(100.0),
                Sample::Missing(reason),
                Sample::Value(100.0),
            );
            assert_eq!(judged(&p, o), (Verdict::NoDecision, reason.as_str()));
        }
        let o = seen(
            Sample::Missing(ReasonCode::Nan),
            Sample::Value(0.5),
            Sample::Value(100.0),
        );
        assert_eq!(judged(&p, o).0, Verdict::Fail);
    }

    #[test]
    fn too_little_traffic_decides_nothing() {
        let p = policy(json!({"minRequests": 50}));
        assert_eq!(
            judged(&p, values(5000.0, 0.5, 49.0)),
            (Verdict::NoDecision, "below_min_requests")
        );
        let silent = seen(
            Sample::Value(1.0),
            Sample::Value(0.0),
            Sample::Missing(ReasonCode::NoData),
        );
        assert_eq!(judged(&p, silent), (Verdict::NoDecision, "no_data"));
        assert_eq!(
            judged(&p, values(100.0, 0.0, 50.0)),
            (Verdict::Pass, "slo_met")
        );
    }

    #[test]
    fn warm_up_checks_are_undecided_and_do_not_count_toward_held() {
        let p = policy(json!({"warmupChecks": 2, "maxNoDecision": 1}));
        let warm = judge(&p, &values(5000.0, 0.5, 100.0), true);
        assert_eq!(
            (warm.verdict, warm.reason),
            (Verdict::NoDecision, ReasonCode::Warmup)
        );
        let (counters, outcome) = step(&p, Counters::default(), warm);
        assert_eq!(outcome, Step::Continue);
        assert_eq!(
            counters,
            Counters {
                checks: 1,
                ..Counters::default()
            }
        );
    }

    fn run(p: &Policy, verdicts: &[Check]) -> (Counters, Vec<Step>) {
        let mut counters = Counters::default();
        let mut steps = Vec::new();
        for check in verdicts {
            let (next, s) = step(p, counters, *check);
            counters = next;
            steps.push(s);
        }
        (counters, steps)
    }

    const PASS: Check = Check {
        verdict: Verdict::Pass,
        reason: ReasonCode::SloMet,
    };
    const FAIL: Check = Check {
        verdict: Verdict::Fail,
        reason: ReasonCode::LatencyAboveSlo,
    };
    const CRIT: Check = Check {
        verdict: Verdict::Fail,
        reason: ReasonCode::CriticalLatency,
    };
    const NONE: Check = Check {
        verdict: Verdict::NoDecision,
        reason: ReasonCode::NoData,
    };

    #[test]
    fn consecutive_passes_promote_and_a_failure_resets_them() {
        let p = policy(json!({"successesToPromote": 3}));
        let (_, steps) = run(&p, &[PASS, PASS, FAIL, PASS, PASS, PASS]);
        assert_eq!(steps.last(), Some(&Step::Promote));
        assert!(!steps[..5].contains(&Step::Promote));
    }

    #[test]
    fn failures_must_be_consecutive_and_no_decision_is_not_a_failure() {
        let p = policy(json!({"failureLimit": 2}));
        let (_, steps) = run(&p, &[FAIL, PASS, FAIL, NONE, NONE]);
        assert!(steps.iter().all(|s| *s == Step::Continue), "{steps:?}");
        let (_, steps) = run(&p, &[FAIL, NONE, FAIL]);
        assert_eq!(
            steps.last(),
            Some(&Step::RollBack(ReasonCode::ConsecutiveFailures)),
            "no_decision leaves the failure count alone"
        );
    }

    #[test]
    fn a_critical_breach_rolls_back_on_the_first_check() {
        let p = policy(json!({"failureLimit": 5}));
        assert_eq!(run(&p, &[CRIT]).1, [Step::RollBack(ReasonCode::Critical)]);
    }

    #[test]
    fn consecutive_undecided_checks_hold_the_canary() {
        let p = policy(json!({"maxNoDecision": 3}));
        let (_, steps) = run(&p, &[NONE, NONE, PASS, NONE, NONE, NONE]);
        assert_eq!(steps.iter().filter(|s| **s == Step::Hold).count(), 1);
        assert_eq!(steps.last(), Some(&Step::Hold));
        let (counters, _) = run(&p, &[PASS, NONE, NONE]);
        assert_eq!(
            counters.passes, 1,
            "no_decision leaves the pass count alone"
        );
    }
}
