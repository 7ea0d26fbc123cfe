//! Canaries judged by a real Prometheus with the default queries, against the test's exporter whose gates are
//! healthy, slow, erroring or silent. Prometheus is also stopped mid-canary and started again.

use serde_json::{json, Value};

use crate::helpers::{names, spawn_app_with};
use crate::prom_harness::{start_canary, start_exporter, until_verdict, Mode, Prometheus};

fn policy(extra: Value) -> Value {
    let mut policy =
        json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1s", "window": "10s"});
    if let (Some(p), Some(e)) = (policy.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    policy
}

#[actix_web::test]
async fn canaries_are_judged_on_what_a_real_prometheus_says() {
    let dir = tempfile::tempdir().expect("dir");
    let (exporter, _) = start_exporter(&[
        ("healthy", Mode::Healthy),
        ("steady", Mode::Healthy),
        ("slow", Mode::Slow),
        ("erroring", Mode::Erroring),
        ("silent", Mode::Silent),
    ]);
    let mut prometheus = Prometheus::start(dir.path(), exporter);
    let url = prometheus.url();
    let app = spawn_app_with(|s| s.slo.prometheus.url = url.clone()).await;
    until_verdict(&app, "healthy", "pass").await;
    // /readyz reports the poller's last probe (every few seconds), taken while Prometheus was still starting.
    let mut ready = Value::Null;
    for _ in 0..100 {
        ready = app.get("/readyz", &[]).await.json().await.expect("json");
        if ready["prometheus"] == "ok" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ready["prometheus"], "ok");

    let healthy = start_canary(&app, "healthy", policy(json!({}))).await;
    let slow = start_canary(&app, "slow", policy(json!({}))).await;
    let erroring = start_canary(&app, "erroring", policy(json!({}))).await;
    let silent = start_canary(&app, "silent", policy(json!({"maxNoDecision": 3}))).await;

    let promoted = app.canary_events(&healthy).await;
    assert_eq!(names(&promoted).last(), Some(&"promoted"), "{promoted:?}");
    for (id, reason) in [
        (&slow, "latency_above_slo"),
        (&erroring, "error_rate_above_slo"),
    ] {
        let stream = app.canary_events(id).await;
        let end = stream.last().expect("events");
        assert_eq!(end.event, "rolled_back", "{stream:?}");
        assert_eq!(end.data["reasonCode"], "consecutive_failures");
        let failures: Vec<&str> = stream
            .iter()
            .filter(|e| e.data["verdict"] == "fail")
            .filter_map(|e| e.data["reasonCode"].as_str())
            .collect();
        assert_eq!(failures, [reason, reason]);
    }
    let slow_checks = app.tool_ok("why_math", json!({"id": slow})).await;
    let checks = slow_checks["checks"].as_array().expect("checks");
    let p95 = checks
        .iter()
        .find_map(|c| c["latency_p95_ms"].as_f64())
        .expect("a check with a p95");
    assert!(
        (900.0..1000.0).contains(&p95),
        "p95 from the 500-1000 ms bucket: {p95}"
    );
    // Canary-era windows: the first check (1 s after the start) looks back 1 s, not the policy's 5 s.
    assert!(checks[0]["query"]["latency"]
        .as_str()
        .expect("query")
        .starts_with(
            "histogram_quantile(0.95, sum(rate(model_latency_bucket{gate=\"slow\"}[1s]))"
        ));

    let mut quiet = app.sse(&format!("topic=canary/{silent}"), &[]).await;
    let held = quiet.until_event("held").await;
    assert!(held
        .iter()
        .filter(|e| e.event == "metric")
        .all(|e| e.data["verdict"] == "no_decision"));
    let later = quiet.next_event().await.expect("checks go on while held");
    assert_eq!(
        (later.event.as_str(), later.data["verdict"].as_str()),
        ("metric", Some("no_decision"))
    );
    assert_eq!(
        app.tool_ok("canary_status", json!({"canaryId": silent}))
            .await["status"],
        "held"
    );

    // Prometheus goes away mid-canary: http_error checks hold the canary, which decides nothing.
    let steady = start_canary(
        &app,
        "steady",
        policy(json!({"successesToPromote": 4, "maxNoDecision": 3, "warmupChecks": 6})),
    )
    .await;
    let mut stream = app.sse(&format!("topic=canary/{steady}"), &[]).await;
    // The first checks see too few requests to judge a 1% SLO (canary-era windows): warm-up, then passes.
    stream
        .until_event_where(|e| e.event == "metric" && e.data["verdict"] == "pass")
        .await;
    prometheus.stop();
    let outage = stream.until_event("held").await;
    assert!(
        outage.iter().any(|e| e.data["reasonCode"] == "http_error"),
        "{outage:?}"
    );
    assert!(!names(&outage).contains(&"promoted") && !names(&outage).contains(&"rolled_back"));
    let held = app
        .tool_ok("canary_status", json!({"canaryId": steady}))
        .await;
    assert_eq!(held["status"], "held");
    let passes_before = held["consecutivePasses"].as_i64().expect("passes");
    assert!(passes_before >= 1);

    // Back again: resume_canary continues with the counters kept, and the canary is promoted. First wait
    // until the window holds only samples scraped since the restart, so the next checks see no gap.
    prometheus.run();
    prometheus.until_scraped("steady", 5).await;
    until_verdict(&app, "steady", "pass").await;
    let resumed = app
        .tool_ok("resume_canary", json!({"canaryId": steady}))
        .await;
    assert_eq!(resumed["status"], "running");
    assert_eq!(resumed["consecutivePasses"].as_i64(), Some(passes_before));
    let rest = stream.until_end().await;
    assert_eq!(names(&rest).last(), Some(&"promoted"), "{rest:?}");
    // Checks while held pass too, but decide nothing; count from the resume on.
    let passes_after_resume = rest
        .iter()
        .skip_while(|e| e.event != "resumed")
        .filter(|e| e.data["verdict"] == "pass")
        .count() as i64;
    assert_eq!(
        passes_after_resume,
        4 - passes_before,
        "the passes before the outage counted"
    );
}
