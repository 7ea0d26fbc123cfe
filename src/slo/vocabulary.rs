//! The vocabulary of what an SLO source reports and what a check concludes: one SLI as a value or the reason
//! there is none (`Sample`), the SLIs of one check (`Observation`), and the closed list of reason codes that
//! checks and canaries give (kept as one list, so metrics and docs enumerate it in one place).

use std::fmt;

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
    /// The newest sample behind the values is older than the policy's `maxStaleness`.
    StaleData,
    /// Too few requests for the error rate's confidence interval to fall on either side of the SLO.
    InsufficientEvidence,
    /// A promotion found the model moved to another gate since the canary started.
    GateMoved,
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
    /// Its stored row could not be read back after a restart.
    Unrecoverable,
}

impl ReasonCode {
    /// The reasons a check of each verdict can carry.
    pub const PASSING: [ReasonCode; 1] = [ReasonCode::SloMet];
    pub const FAILING: [ReasonCode; 4] = [
        ReasonCode::LatencyAboveSlo,
        ReasonCode::ErrorRateAboveSlo,
        ReasonCode::CriticalLatency,
        ReasonCode::CriticalErrorRate,
    ];
    pub const UNDECIDED: [ReasonCode; 12] = [
        ReasonCode::NoData,
        ReasonCode::Nan,
        ReasonCode::Inf,
        ReasonCode::MultiSeries,
        ReasonCode::BelowMinRequests,
        ReasonCode::Warmup,
        ReasonCode::QueryError,
        ReasonCode::QueryTimeout,
        ReasonCode::HttpError,
        ReasonCode::StaleData,
        ReasonCode::InsufficientEvidence,
        ReasonCode::GateMoved,
    ];
    /// The reasons a query can come back without a value.
    pub const NO_VALUE: [ReasonCode; 7] = [
        ReasonCode::NoData,
        ReasonCode::Nan,
        ReasonCode::Inf,
        ReasonCode::MultiSeries,
        ReasonCode::QueryError,
        ReasonCode::QueryTimeout,
        ReasonCode::HttpError,
    ];
    /// The reasons a canary can end with, promoted or rolled back (a dry run with either's).
    pub const PROMOTING: [ReasonCode; 2] = [ReasonCode::SloMet, ReasonCode::Manual];
    pub const ROLLING_BACK: [ReasonCode; 5] = [
        ReasonCode::ConsecutiveFailures,
        ReasonCode::Critical,
        ReasonCode::Deadline,
        ReasonCode::Manual,
        ReasonCode::Unrecoverable,
    ];

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
            ReasonCode::StaleData => "stale_data",
            ReasonCode::InsufficientEvidence => "insufficient_evidence",
            ReasonCode::GateMoved => "gate_moved",
            ReasonCode::LatencyAboveSlo => "latency_above_slo",
            ReasonCode::ErrorRateAboveSlo => "error_rate_above_slo",
            ReasonCode::CriticalLatency => "critical_latency",
            ReasonCode::CriticalErrorRate => "critical_error_rate",
            ReasonCode::SloMet => "slo_met",
            ReasonCode::ConsecutiveFailures => "consecutive_failures",
            ReasonCode::Critical => "critical",
            ReasonCode::Deadline => "deadline",
            ReasonCode::Manual => "manual",
            ReasonCode::Unrecoverable => "unrecoverable",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// The error rate as a point value: errors / requests, or a ratio query's answer (`PROM_QUERY_ERR`).
    pub error_rate: Sample,
    /// Errors in the window; `None` when the error rate comes from a ratio query, which is then judged as a
    /// point value (there is no count to build a confidence interval on).
    pub errors: Option<Sample>,
    pub requests: Sample,
    /// Unix time, in seconds, of the newest sample behind the values.
    pub newest: Sample,
}

impl Observation {
    /// The error rate of counts: k/n, or the reason there is none.
    pub fn rate_of(errors: Sample, requests: Sample) -> Sample {
        match (errors, requests) {
            (Sample::Missing(reason), _) | (_, Sample::Missing(reason)) => Sample::Missing(reason),
            (Sample::Value(_), Sample::Value(n)) if n <= 0.0 => {
                Sample::Missing(ReasonCode::InsufficientEvidence)
            }
            (Sample::Value(k), Sample::Value(n)) => Sample::Value(k / n),
        }
    }
}
