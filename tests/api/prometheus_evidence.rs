//! Canary decisions that rest on evidence the canary produced, against a real Prometheus: a gate that turns
//! bad at the start is rolled back whatever its healthy past, a trickle of traffic is never enough to
//! promote, a held canary still rolls back on a critical check, frozen samples are stale, and Prometheus's
//! own error message is kept.

use serde_json::{json, Value};

use crate::helpers::{names, spawn_app_with, SseEvent};
use crate::prom_harness::{start_canary, start_exporter, until_verdict, Mode, Prometheus};

fn metrics(events: &[SseEvent]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e.event == "metric")
        .map(|e| &e.data)
        .collect()
}

#[actix_web::test]
async fn a_gate_that_turns_bad_at_the_start_is_rolled_back_whatever_its_healthy_past() {
    let dir = tempfile::tempdir().expect("dir");
    let (port, exporter) = start_exporter(&[("turning", Mode::Healthy)]);
    let prometheus = Prometheus::start(dir.path(), port);
    let url = prometheus.url();
    let app = spawn_app_with(|s| s.slo.prometheus.url = url.clone()).await;
    // A minute of healthy history: over the default 5-minute window it would dilute 10 s of 5x errors to
    // well under the SLO.
    prometheus.until_history("turning", 60).await;
    exporter.set("turning", Mode::Breaching);
    // The default policy: window 5m, interval 10s, 3 passes to promote.
    let id = start_canary(
        &app,
        "turning",
        json!({"latency_p95_ms": 800, "error_rate": 0.01}),
    )
    .await;
    let events = app.canary_events(&id).await;
    let end = events.last().expect("events");
    assert_eq!(end.event, "rolled_back", "{:?}", names(&events));
    assert!(!metrics(&events).iter().any(|m| m["verdict"] == "pass"));
    let first = metrics(&events)[0];
    assert!(
        first["error_rate"].as_f64().expect("rate") > 0.03,
        "the first check saw only the canary's 5%: {first}"
    );
}

#[actix_web::test]
async fn a_trickle_of_traffic_with_errors_above_the_slo_is_never_promoted() {
    let dir = tempfile::tempdir().expect("dir");
    let (port, _exporter) = start_exporter(&[("trickle", Mode::Trickle)]);
    let prometheus = Prometheus::start(dir.path(), port);
    let url = prometheus.url();
    let app = spawn_app_with(|s| s.slo.prometheus.url = url.clone()).await;
    prometheus.until_scraped("trickle", 3).await;
    let id = start_canary(
        &app,
        "trickle",
        json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1s"}),
    )
    .await;
    let events = app
        .sse(&format!("topic=canary/{id}"), &[])
        .await
        .until_event("held")
        .await;
    let checks = metrics(&events);
    assert_eq!(checks.len(), 6, "held after maxNoDecision undecided checks");
    // The first check looks back 1 s (canary-era): no rate yet; then a request or two, never enough.
    assert!(
        checks.iter().all(|m| m["verdict"] == "no_decision"
            && (m["reasonCode"] == "insufficient_evidence" || m["reasonCode"] == "no_data")),
        "{checks:?}"
    );
    assert_eq!(checks[5]["reasonCode"], "insufficient_evidence");
    let why = app.tool_ok("why_math", json!({"id": id})).await;
    let last = why["checks"]
        .as_array()
        .expect("checks")
        .last()
        .cloned()
        .expect("a check");
    assert!(
        last["error_rate_upper"].as_f64().expect("upper") > 0.01,
        "{last}"
    );
    assert!(last["requests"].as_f64().expect("n") < 10.0, "{last}");
}

#[actix_web::test]
async fn a_held_canary_whose_gate_returns_with_critical_errors_is_rolled_back() {
    let dir = tempfile::tempdir().expect("dir");
    let (port, exporter) = start_exporter(&[("quiet", Mode::Silent)]);
    let prometheus = Prometheus::start(dir.path(), port);
    let url = prometheus.url();
    let app = spawn_app_with(|s| s.slo.prometheus.url = url.clone()).await;
    prometheus.until_scraped("quiet", 3).await;
    let id = start_canary(
        &app,
        "quiet",
        json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1s", "window": "5s", "maxNoDecision": 3}),
    )
    .await;
    let mut stream = app.sse(&format!("topic=canary/{id}"), &[]).await;
    stream.until_event("held").await;
    exporter.set("quiet", Mode::Failing);
    let rest = stream.until_end().await;
    let end = rest.last().expect("events");
    assert_eq!(
        (end.event.as_str(), end.data["reasonCode"].as_str()),
        ("rolled_back", Some("critical")),
        "{:?}",
        names(&rest)
    );
    let before: Vec<&Value> = metrics(&rest);
    let (deciding, earlier) = before.split_last().expect("a critical check");
    assert_eq!(deciding["reasonCode"], "critical_error_rate");
    assert!(
        earlier.iter().all(|m| m["verdict"] == "no_decision"),
        "rolled back on the first check that saw the errors: {earlier:?}"
    );
}

#[actix_web::test]
async fn frozen_samples_are_stale_data_never_passes() {
    let dir = tempfile::tempdir().expect("dir");
    let (port, exporter) = start_exporter(&[("stuck", Mode::Healthy)]);
    let prometheus = Prometheus::start(dir.path(), port);
    let url = prometheus.url();
    let app = spawn_app_with(|s| s.slo.prometheus.url = url.clone()).await;
    until_verdict(&app, "stuck", "pass").await;
    exporter.set("stuck", Mode::Frozen);
    let id = start_canary(
        &app,
        "stuck",
        json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1s", "maxStaleness": "3s"}),
    )
    .await;
    let events = app
        .sse(&format!("topic=canary/{id}"), &[])
        .await
        .until_event_where(|e| e.event == "metric" && e.data["reasonCode"] == "stale_data")
        .await;
    assert!(
        !metrics(&events).iter().any(|m| m["verdict"] == "pass"),
        "{:?}",
        metrics(&events)
    );
    let why = app.tool_ok("why_math", json!({"id": id})).await;
    let stale = why["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["reasonCode"] == "stale_data")
        .cloned()
        .expect("a stale check");
    assert!(stale["newest_sample_at"].as_f64().is_some(), "{stale}");
}

#[actix_web::test]
async fn a_malformed_query_is_a_query_error_with_prometheus_s_message_and_prometheus_stays_up() {
    let dir = tempfile::tempdir().expect("dir");
    let (port, _exporter) = start_exporter(&[("healthy", Mode::Healthy)]);
    let prometheus = Prometheus::start(dir.path(), port);
    let url = prometheus.url();
    let app = spawn_app_with(|s| {
        s.slo.prometheus.url = url.clone();
        s.slo.prometheus.latency_query =
            r#"histogram_quantile(0.95, sum(rate(model_latency_bucket{gate="$__gate"}[$__window])) by (le)"#
                .into();
    })
    .await;
    prometheus.until_scraped("healthy", 3).await;
    let result = app
        .tool_ok(
            "evaluate_slo",
            json!({"gate": "healthy", "sloPolicy": {"latency_p95_ms": 800, "error_rate": 0.01}}),
        )
        .await;
    assert_eq!(result["reasonCode"], "query_error", "{result}");
    let raw = result["raw"]["latency"].as_str().expect("raw");
    assert!(
        raw.starts_with("bad_data: ") && raw.contains("parse error"),
        "{raw}"
    );
    let mut metrics = app.get("/metrics", &[]).await;
    let text = String::from_utf8(metrics.body().await.expect("body").to_vec()).expect("utf-8");
    assert!(
        text.lines().any(|l| l == "cockpit_prometheus_up 1"),
        "{text}"
    );
}
