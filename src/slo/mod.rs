//! SLO sources (SPEC §8): where a canary's SLIs come from. The stub synthesises them from config; the
//! Prometheus source (a later issue) queries a server. Either answers every query with a value or the
//! no-decision reason there is none — never an error that could crash a caller or decide a canary.

mod prometheus;
mod stub;

use std::time::Duration;

use futures_util::future::{self, LocalBoxFuture};
use serde_json::Value;

pub use prometheus::{PrometheusSettings, PrometheusSource};
pub use stub::{GateOverride, StubSettings, StubSource};

use crate::canary::rules::{Observation, Sample};
use crate::clock::Timestamp;

/// What to measure: a model's traffic at a gate over a window, as of a due time.
#[derive(Debug, Clone)]
pub struct SloQuery {
    pub model_id: String,
    pub gate: String,
    /// PromQL range text, e.g. `300s`.
    pub window: String,
    pub at: Timestamp,
    /// The canary's interval: no query may take longer.
    pub budget: Duration,
}

/// The values of one check and the evidence behind them.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub observation: Observation,
    /// Exactly what the source said for latency, error rate and requests (e.g. `"NaN"`), or the reason
    /// there was nothing.
    pub raw: [String; 3],
    /// The rendered queries, stored with the check so the decision can be reproduced.
    pub query: Value,
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

/// The configured source: Prometheus when `PROM_URL` is set, else the stub.
pub fn from_settings(
    stub: &StubSettings,
    prometheus: &PrometheusSettings,
) -> Result<Box<dyn SloSource>, crate::config::ConfigError> {
    if prometheus.url.trim().is_empty() {
        Ok(Box::new(StubSource::new(stub.clone())))
    } else {
        Ok(Box::new(PrometheusSource::new(prometheus)?))
    }
}
