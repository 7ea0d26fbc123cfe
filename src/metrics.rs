//! `/metrics` in Prometheus text format (SPEC §12), through the `prometheus` crate: one registry for the
//! process, written to where things happen (the gate, the broker, the recorder, jobs, canaries, the
//! Prometheus client) and read only here.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub rate_limited: IntCounter,
    pub sse_subscribers: IntGauge,
    pub events_published: IntCounter,
    pub events_dropped: IntCounter,
    pub events_replayed: IntCounter,
    pub commit_group_size: HistogramVec,
    pub commit_retries: IntCounter,
    pub jobs: prometheus::IntGaugeVec,
    pub jobs_ended: IntCounterVec,
    pub job_duration: HistogramVec,
    pub canaries_active: IntGauge,
    pub canary_checks: IntCounterVec,
    pub check_lateness: HistogramVec,
    pub canary_decisions: IntCounterVec,
    pub prometheus_queries: HistogramVec,
    pub prometheus_errors: IntCounterVec,
    pub prometheus_up: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| unreachable!("register {name}: {e}"));
    metric
}

fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| unreachable!("register {name}: {e}"));
    metric
}

fn histograms(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let metric = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| unreachable!("register {name}: {e}"));
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| unreachable!("register {name}: {e}"));
    metric
}

const LATENCY: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
const JOB_SECONDS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0];

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    Metrics {
        http_requests: counters(
            &r,
            "cockpit_http_requests_total",
            "HTTP requests by route and status",
            &["route", "status"],
        ),
        http_duration: histograms(
            &r,
            "cockpit_http_request_duration_seconds",
            "Time to the response head, by route",
            &["route"],
            LATENCY.to_vec(),
        ),
        rate_limited: counter(
            &r,
            "cockpit_rate_limited_total",
            "Requests refused with 429",
        ),
        sse_subscribers: gauge(
            &r,
            "cockpit_sse_subscribers",
            "Open event streams (SSE and MCP session streams)",
        ),
        events_published: counter(
            &r,
            "cockpit_events_published_total",
            "Events committed to the log and handed to the broker",
        ),
        events_dropped: counter(
            &r,
            "cockpit_events_dropped_total",
            "Subscribers cut off because their queue was full",
        ),
        events_replayed: counter(
            &r,
            "cockpit_events_replayed_total",
            "Events read back from the log for a stream (replay, Last-Event-ID)",
        ),
        check_lateness: histograms(
            &r,
            "cockpit_canary_check_lateness_seconds",
            "How late each canary check started after its due time",
            &[],
            vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ],
        ),
        commit_group_size: histograms(
            &r,
            "cockpit_commit_group_size",
            "Changes committed together in one transaction (group commit)",
            &[],
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        ),
        commit_retries: counter(
            &r,
            "cockpit_commit_retries_total",
            "Groups of changes run again after a transient failure (PostgreSQL deadlock, serialization, lock timeout)",
        ),
        jobs: {
            let metric = prometheus::IntGaugeVec::new(
                Opts::new("cockpit_jobs", "Jobs queued and running now"),
                &["state"],
            )
            .unwrap_or_else(|e| unreachable!("metric cockpit_jobs: {e}"));
            r.register(Box::new(metric.clone()))
                .unwrap_or_else(|e| unreachable!("register cockpit_jobs: {e}"));
            metric
        },
        jobs_ended: counters(
            &r,
            "cockpit_jobs_ended_total",
            "Jobs that reached a terminal status",
            &["status"],
        ),
        job_duration: histograms(
            &r,
            "cockpit_job_duration_seconds",
            "Run time of ended jobs, by status",
            &["status"],
            JOB_SECONDS.to_vec(),
        ),
        canaries_active: gauge(
            &r,
            "cockpit_canaries_active",
            "Canaries with an actor now (running, paused or held)",
        ),
        canary_checks: counters(
            &r,
            "cockpit_canary_checks_total",
            "Canary checks by verdict and reasonCode",
            &["verdict", "reason_code"],
        ),
        canary_decisions: counters(
            &r,
            "cockpit_canary_decisions_total",
            "Canaries that ended, by outcome and reasonCode",
            &["outcome", "reason_code"],
        ),
        prometheus_queries: histograms(
            &r,
            "cockpit_prometheus_query_duration_seconds",
            "SLO queries to Prometheus, by outcome",
            &["outcome"],
            LATENCY.to_vec(),
        ),
        prometheus_errors: counters(
            &r,
            "cockpit_prometheus_query_errors_total",
            "SLO queries without a value, by reasonCode",
            &["reason_code"],
        ),
        prometheus_up: gauge(
            &r,
            "cockpit_prometheus_up",
            "1 when the last Prometheus query or probe got an answer, else 0",
        ),
        registry: r,
    }
});

/// The exposition text.
pub fn render() -> String {
    let mut out = Vec::new();
    let families = METRICS.registry.gather();
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        log::error!("metrics encoding failed: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed() {
        METRICS.rate_limited.inc();
        METRICS.jobs_ended.with_label_values(&["completed"]).inc();
        let text = render();
        for name in [
            "cockpit_rate_limited_total 1",
            "cockpit_jobs_ended_total{status=\"completed\"} 1",
            "cockpit_prometheus_up 0",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
    }
}
