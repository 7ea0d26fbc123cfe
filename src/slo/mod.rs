//! SLO sources (SPEC §8): where a canary's SLIs come from. The stub synthesises them from config; the
//! Prometheus source (a later issue) queries a server. Either answers every query with a value or the
//! no-decision reason there is none — never an error that could crash a caller or decide a canary.

pub(crate) mod prometheus;
mod stub;
mod vocabulary;

use std::time::Duration;

use futures_util::future::{self, LocalBoxFuture};
use serde_json::Value;

pub use prometheus::{prime_metrics, PrometheusSource, PrometheusSpec};
pub use stub::StubSource;

use crate::clock::Timestamp;
pub use vocabulary::{Observation, ReasonCode, Sample};

use crate::config::{PrometheusSettings, StubSettings};

/// What to measure: a model's traffic at a gate over a window, as of a due time.
#[derive(Debug, Clone)]
pub struct SloQuery {
    pub model_id: String,
    pub gate: String,
    /// PromQL range text (`$__window`), e.g. `300s`: never reaching back before the canary started.
    pub window: String,
    /// The canary's age at the due time (`$__since`), e.g. `42s`.
    pub since: String,
    pub at: Timestamp,
    /// The canary's interval: no query may take longer.
    pub budget: Duration,
}

impl SloQuery {
    /// The query for a check due at `at` of a canary started at `started`: `$__window` is
    /// `min(window, at - started)` in whole seconds (at least 1 s), so evidence from before the canary never
    /// counts; `$__since` is the canary's age.
    pub fn canary_era(
        (model_id, gate): (&str, &str),
        window: Duration,
        started: Timestamp,
        at: Timestamp,
        budget: Duration,
    ) -> Self {
        let age = (at - started).to_std().unwrap_or(Duration::ZERO);
        let whole_seconds = |d: Duration| format!("{}s", d.as_secs().max(1));
        SloQuery {
            model_id: model_id.to_string(),
            gate: gate.to_string(),
            window: whole_seconds(window.min(age)),
            since: whole_seconds(age),
            at,
            budget,
        }
    }
}

/// Exactly what the source said for each value (e.g. `"NaN"`, or Prometheus's error message), or the reason
/// there was nothing: stored beside the numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawAnswers {
    pub latency: String,
    pub error_rate: String,
    pub errors: String,
    pub requests: String,
    pub newest: String,
}

/// The values of one check and the evidence behind them.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub observation: Observation,
    pub raw: RawAnswers,
    /// The rendered queries, stored with the check so the decision can be reproduced.
    pub query: Value,
}

/// Values no SLI can have are the query's fault, not evidence: a negative latency or count, an error rate
/// outside 0-1, more errors than requests.
pub fn out_of_range(observation: Observation) -> Observation {
    let bad = |sample: Sample, ok: &dyn Fn(f64) -> bool| match sample {
        Sample::Value(v) if !ok(v) => Sample::Missing(ReasonCode::QueryError),
        other => other,
    };
    let non_negative = |v: f64| v >= 0.0;
    let requests = bad(observation.requests, &non_negative);
    let errors = observation.errors.map(|errors| {
        let within = |k: f64| k >= 0.0 && requests.value().is_none_or(|n| k <= n);
        bad(errors, &within)
    });
    Observation {
        latency_p95_ms: bad(observation.latency_p95_ms, &non_negative),
        error_rate: bad(observation.error_rate, &|v| (0.0..=1.0).contains(&v)),
        errors,
        requests,
        newest: observation.newest,
    }
}

/// How a sample is written in `raw`: the number as given, or the reason code.
pub fn raw_text(sample: Sample) -> String {
    match sample {
        Sample::Value(v) => v.to_string(),
        Sample::Missing(reason) => reason.to_string(),
    }
}

/// Whether the source's server answers (for `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// The stub source has no server.
    NotApplicable,
    /// Not probed yet (the first probe is under way).
    Unknown,
    Up,
    Down(String),
}

pub trait SloSource {
    /// One check's SLIs. Runs on the poller's arbiter.
    fn gather(&self, query: SloQuery) -> LocalBoxFuture<'static, Gathered>;

    fn probe(&self) -> LocalBoxFuture<'static, Reachability> {
        Box::pin(future::ready(Reachability::NotApplicable))
    }
}

/// Whether every SLO query names `$__model`, so canaries of two models into one gate each see their own
/// traffic. The stub's values are per model already.
pub fn queries_name_model(prometheus: &PrometheusSettings) -> bool {
    if prometheus.url.trim().is_empty() {
        return true;
    }
    let errors = if prometheus.error_rate_query.trim().is_empty() {
        &prometheus.errors_query
    } else {
        &prometheus.error_rate_query
    };
    [
        &prometheus.latency_query,
        errors,
        &prometheus.requests_query,
    ]
    .iter()
    .all(|query| query.contains("$__model"))
}

/// What every `start_canary` should tell its caller about how it will be judged.
pub fn canary_warnings(prometheus: &PrometheusSettings) -> Vec<String> {
    let ratio = !prometheus.url.trim().is_empty() && !prometheus.error_rate_query.trim().is_empty();
    if ratio {
        vec![prometheus::RATIO_WARNING.to_string()]
    } else {
        Vec::new()
    }
}

/// The configured source: Prometheus when `PROM_URL` is set, else the stub.
pub fn from_settings(
    stub: &StubSettings,
    prometheus: &PrometheusSettings,
) -> Result<SourceSpec, crate::config::ConfigError> {
    if prometheus.url.trim().is_empty() {
        Ok(SourceSpec::Stub(stub.clone()))
    } else {
        Ok(SourceSpec::Prometheus(PrometheusSpec::prepare(prometheus)?))
    }
}

/// The configured source, checked, to be built on the thread that runs it (see [`SourceSpec::build`]).
pub enum SourceSpec {
    Stub(StubSettings),
    Prometheus(PrometheusSpec),
}

impl SourceSpec {
    pub fn build(self) -> Box<dyn SloSource> {
        match self {
            SourceSpec::Stub(settings) => Box::new(StubSource::new(settings)),
            SourceSpec::Prometheus(spec) => Box::new(spec.connect()),
        }
    }
}
