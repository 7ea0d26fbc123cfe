//! The decision rules of SPEC §7 as plain functions: one check's verdict from the gathered values, and what a
//! verdict does to a canary's counters. No I/O, no clock — the canary actor supplies both.

use super::policy::Policy;
pub use crate::slo::{Observation, ReasonCode, Sample};

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

/// A two-sided confidence interval of a proportion: the Wilson score interval (better than the normal
/// approximation for small counts and rates near 0, which is where canaries live).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// The Wilson interval of `errors` out of `requests` at `confidence` (e.g. 0.95); `None` without requests.
pub fn wilson(errors: f64, requests: f64, confidence: f64) -> Option<Interval> {
    if !(requests >= 1.0 && errors >= 0.0 && errors <= requests) {
        return None;
    }
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let (n, p, z2) = (requests, errors / requests, z * z);
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some(Interval {
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    })
}

/// The standard normal quantile Φ⁻¹(p) for 0 < p < 1 (Acklam's rational approximation, relative error below
/// 1.2e-9: far finer than any count a canary sees). Hand-written: twenty lines of our decision core, where a
/// statistics crate would bring hundreds of functions we do not use.
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    const LOW: f64 = 0.024_25;
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
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

/// Judges the error count with the Wilson interval: fail only when even the lower bound is above the SLO
/// (critical above `criticalFactor` × SLO), pass only when even the upper bound is at or below it, and
/// otherwise there is not yet evidence either way.
fn judge_errors(errors: Sample, requests: Sample, policy: &Policy) -> Check {
    let (k, n) = match (errors, requests) {
        (Sample::Missing(reason), _) | (_, Sample::Missing(reason)) => {
            return Check::new(Verdict::NoDecision, reason)
        }
        (Sample::Value(k), Sample::Value(n)) => (k, n),
    };
    let Some(interval) = wilson(k, n, policy.confidence) else {
        let reason = if n < 1.0 {
            ReasonCode::InsufficientEvidence
        } else {
            ReasonCode::QueryError
        };
        return Check::new(Verdict::NoDecision, reason);
    };
    if interval.lower > policy.error_rate * policy.critical_factor {
        Check::new(Verdict::Fail, ReasonCode::CriticalErrorRate)
    } else if interval.lower > policy.error_rate {
        Check::new(Verdict::Fail, ReasonCode::ErrorRateAboveSlo)
    } else if interval.upper <= policy.error_rate {
        Check::new(Verdict::Pass, ReasonCode::SloMet)
    } else {
        Check::new(Verdict::NoDecision, ReasonCode::InsufficientEvidence)
    }
}

/// One check, one verdict, for the check due at `due_unix` (seconds). During warm-up it is
/// `no_decision`/`warmup`; on evidence older than `maxStaleness` it is `stale_data`; with too little traffic
/// it is `no_decision` (values measured on a handful of requests decide nothing); otherwise it fails if any
/// value fails (critical first), else is `no_decision` if any value is, else passes.
pub fn judge(policy: &Policy, observed: &Observation, warming_up: bool, due_unix: f64) -> Check {
    if warming_up {
        return Check::new(Verdict::NoDecision, ReasonCode::Warmup);
    }
    match observed.newest {
        Sample::Missing(reason) => return Check::new(Verdict::NoDecision, reason),
        Sample::Value(newest) if due_unix - newest > policy.max_staleness.as_secs_f64() => {
            return Check::new(Verdict::NoDecision, ReasonCode::StaleData)
        }
        Sample::Value(_) => {}
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
    let errors = match observed.errors {
        Some(errors) => judge_errors(errors, observed.requests, policy),
        None => judge_value(
            observed.error_rate,
            policy.error_rate,
            policy,
            has_traffic,
            ReasonCode::ErrorRateAboveSlo,
            ReasonCode::CriticalErrorRate,
        ),
    };
    let values = [
        judge_value(
            observed.latency_p95_ms,
            policy.latency_p95_ms,
            policy,
            has_traffic,
            ReasonCode::LatencyAboveSlo,
            ReasonCode::CriticalLatency,
        ),
        errors,
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

/// What one check does to an active canary, whatever its state: a check at or after the deadline ends it
/// with `deadline` (never a promotion); a held canary counts the check and decides nothing — except that a
/// critical check still rolls it back, since holding must never shield a bad model; a running one steps.
pub fn decide(
    policy: &Policy,
    held: bool,
    past_deadline: bool,
    counters: Counters,
    check: Check,
) -> (Counters, Step) {
    if past_deadline {
        let counted = Counters {
            checks: counters.checks + 1,
            ..counters
        };
        return (counted, Step::RollBack(ReasonCode::Deadline));
    }
    if held {
        let counted = Counters {
            checks: counters.checks + 1,
            ..counters
        };
        let step = if check.is_critical() {
            Step::RollBack(ReasonCode::Critical)
        } else {
            Step::Continue
        };
        return (counted, step);
    }
    step(policy, counters, check)
}

/// Applies one check to the counters of a deciding (running) canary.
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

    /// The due time of every check in these tests (Unix seconds); evidence is fresh unless a test says not.
    const NOW: f64 = 1_800_000_000.0;

    /// An observation with a ratio error rate (a `PROM_QUERY_ERR` user's), judged as a point value.
    fn seen(latency: Sample, error_rate: Sample, requests: Sample) -> Observation {
        Observation {
            latency_p95_ms: latency,
            error_rate,
            errors: None,
            requests,
            newest: Sample::Value(NOW),
        }
    }

    /// An observation with error counts: `errors` out of `requests`, judged with the Wilson interval.
    fn counted(errors: f64, requests: f64) -> Observation {
        let (k, n) = (Sample::Value(errors), Sample::Value(requests));
        Observation {
            latency_p95_ms: Sample::Value(100.0),
            error_rate: Observation::rate_of(k, n),
            errors: Some(k),
            requests: n,
            newest: Sample::Value(NOW),
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
        let c = judge(p, &o, false, NOW);
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
        for reason in ReasonCode::NO_VALUE {
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
        let warm = judge(&p, &values(5000.0, 0.5, 100.0), true, NOW);
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

    #[test]
    fn error_counts_are_judged_by_their_wilson_interval() {
        let p = policy(json!({}));
        for (errors, requests, expected) in [
            (0.0, 100.0, (Verdict::NoDecision, "insufficient_evidence")),
            (0.0, 400.0, (Verdict::Pass, "slo_met")),
            (3.0, 100.0, (Verdict::Fail, "error_rate_above_slo")),
            (20.0, 1000.0, (Verdict::Fail, "error_rate_above_slo")),
            (60.0, 6000.0, (Verdict::NoDecision, "insufficient_evidence")),
            (150.0, 10000.0, (Verdict::Fail, "error_rate_above_slo")),
            (60.0, 1000.0, (Verdict::Fail, "critical_error_rate")),
            (0.0, 0.0, (Verdict::NoDecision, "insufficient_evidence")),
            (5.0, 3.0, (Verdict::NoDecision, "query_error")),
        ] {
            assert_eq!(
                judged(&p, counted(errors, requests)),
                expected,
                "{errors}/{requests}"
            );
        }
    }

    #[test]
    fn the_wilson_interval_matches_its_textbook_values() {
        let i = wilson(3.0, 100.0, 0.95).expect("interval");
        assert!((i.lower - 0.010_25).abs() < 1e-4, "{i:?}");
        assert!((i.upper - 0.084_6).abs() < 1e-3, "{i:?}");
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-6);
        assert!((normal_quantile(0.995) - 2.575_829).abs() < 1e-6);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-6);
        assert_eq!(wilson(1.0, 0.0, 0.95), None);
    }

    #[test]
    fn evidence_older_than_max_staleness_decides_nothing() {
        let p = policy(json!({"interval": "10s"}));
        assert_eq!(p.max_staleness, std::time::Duration::from_secs(30));
        let mut breach = counted(500.0, 1000.0);
        breach.newest = Sample::Value(NOW - 31.0);
        assert_eq!(judged(&p, breach), (Verdict::NoDecision, "stale_data"));
        breach.newest = Sample::Value(NOW - 30.0);
        assert_eq!(
            judged(&p, breach).0,
            Verdict::Fail,
            "30 s old is fresh enough"
        );
        breach.newest = Sample::Missing(ReasonCode::NoData);
        assert_eq!(judged(&p, breach), (Verdict::NoDecision, "no_data"));
    }

    #[test]
    fn a_held_canary_still_rolls_back_on_a_critical_check_and_decides_nothing_else() {
        let p = policy(json!({}));
        let held = Counters {
            checks: 9,
            no_decision: 6,
            ..Counters::default()
        };
        for check in [PASS, FAIL, NONE] {
            let (counters, outcome) = decide(&p, true, false, held, check);
            assert_eq!(
                (counters.checks, outcome),
                (10, Step::Continue),
                "{check:?}"
            );
        }
        assert_eq!(
            decide(&p, true, false, held, CRIT).1,
            Step::RollBack(ReasonCode::Critical)
        );
    }

    #[test]
    fn a_check_at_or_after_the_deadline_ends_the_canary_and_never_promotes_it() {
        let p = policy(json!({"successesToPromote": 1}));
        assert_eq!(
            decide(&p, false, false, Counters::default(), PASS).1,
            Step::Promote
        );
        for held in [false, true] {
            assert_eq!(
                decide(&p, held, true, Counters::default(), PASS).1,
                Step::RollBack(ReasonCode::Deadline)
            );
        }
    }

    /// A seeded generator (SplitMix64) and a binomial draw, so the simulation needs no I/O and no crate.
    struct Seeded(u64);

    impl Seeded {
        fn unit(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Errors among `n` requests that each fail with probability `p` (normal approximation, n·p ≥ 5).
        fn errors(&mut self, n: f64, p: f64) -> f64 {
            let (u1, u2) = (self.unit().max(1e-300), self.unit());
            let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (n * p + normal * (n * p * (1.0 - p)).sqrt())
                .round()
                .clamp(0.0, n)
        }
    }

    /// Runs one canary of the default policy to its end (or 360 checks, the default deadline at 10 s).
    fn simulate(rng: &mut Seeded, true_rate: f64, requests: f64) -> Step {
        let p = policy(json!({}));
        let mut counters = Counters::default();
        let mut held = false;
        for _ in 0..360 {
            let check = judge(
                &p,
                &counted(rng.errors(requests, true_rate), requests),
                false,
                NOW,
            );
            let (next, outcome) = decide(&p, held, false, counters, check);
            counters = next;
            match outcome {
                Step::Continue => {}
                Step::Hold => held = true,
                ended => return ended,
            }
        }
        Step::RollBack(ReasonCode::Deadline)
    }

    #[test]
    fn simulated_canaries_at_the_slo_rarely_promote_and_at_twice_it_roll_back() {
        let mut rng = Seeded(20_261_129);
        let runs = 10_000;
        let promoted = (0..runs)
            .filter(|_| simulate(&mut rng, 0.01, 2000.0) == Step::Promote)
            .count();
        assert!(
            promoted * 20 <= runs,
            "{promoted} of {runs} canaries at the SLO were promoted"
        );
        let rolled_back = (0..runs)
            .filter(|_| matches!(simulate(&mut rng, 0.02, 2000.0), Step::RollBack(_)))
            .count();
        assert!(
            rolled_back * 100 >= runs * 95,
            "only {rolled_back} of {runs} canaries at twice the SLO were rolled back"
        );
    }
}
