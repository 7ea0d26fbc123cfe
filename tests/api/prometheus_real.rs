//! Canaries judged by a real Prometheus (Debian's `prometheus`, started here with its own config on a free
//! loopback port) with the kit's default queries, scraping every second a small exporter this test runs,
//! whose gates are healthy, slow, erroring or silent. Prometheus is also stopped mid-canary and started again.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::helpers::{names, serve, spawn_app_with, TestApp};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Healthy,
    Slow,
    Erroring,
    Silent,
}

/// Cumulative counters of one gate: latency buckets (≤100, ≤500, ≤1000, +Inf ms), errors, requests.
#[derive(Default, Clone, Copy)]
struct Counters {
    buckets: [f64; 4],
    errors: f64,
    requests: f64,
}

struct Exporter {
    gates: Mutex<HashMap<&'static str, (Mode, Counters)>>,
    last: Mutex<Instant>,
}

impl Exporter {
    /// Advances every gate by the time since the last scrape: 100 requests/s unless silent.
    fn advance(&self) {
        let mut last = self.last.lock().expect("last");
        let seconds = last.elapsed().as_secs_f64();
        *last = Instant::now();
        for (mode, c) in self.gates.lock().expect("gates").values_mut() {
            if *mode == Mode::Silent {
                continue;
            }
            let n = 100.0 * seconds;
            // Fractions of requests per latency bucket (cumulative) and the error ratio.
            let (le100, le500, error_ratio) = match mode {
                Mode::Healthy => (0.97, 1.0, 0.0),
                Mode::Slow => (0.0, 0.0, 0.001),
                Mode::Erroring => (0.97, 1.0, 0.03),
                Mode::Silent => (0.0, 0.0, 0.0),
            };
            c.buckets[0] += n * le100;
            c.buckets[1] += n * le500;
            c.buckets[2] += n;
            c.buckets[3] += n;
            c.errors += n * error_ratio;
            c.requests += n;
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (gate, (_, c)) in self.gates.lock().expect("gates").iter() {
            for (le, count) in ["100", "500", "1000", "+Inf"].iter().zip(c.buckets) {
                out.push_str(&format!(
                    "model_latency_bucket{{gate=\"{gate}\",le=\"{le}\"}} {count}\n"
                ));
            }
            out.push_str(&format!(
                "model_errors_total{{gate=\"{gate}\"}} {}\n",
                c.errors
            ));
            out.push_str(&format!(
                "model_requests_total{{gate=\"{gate}\"}} {}\n",
                c.requests
            ));
        }
        out
    }
}

async fn scrape(exporter: web::Data<Exporter>) -> HttpResponse {
    exporter.advance();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(exporter.render())
}

async fn start_exporter() -> u16 {
    let gates = [
        ("healthy", Mode::Healthy),
        ("steady", Mode::Healthy),
        ("slow", Mode::Slow),
        ("erroring", Mode::Erroring),
        ("silent", Mode::Silent),
    ];
    let exporter = web::Data::new(Exporter {
        gates: Mutex::new(
            gates
                .into_iter()
                .map(|(g, m)| (g, (m, Counters::default())))
                .collect(),
        ),
        last: Mutex::new(Instant::now()),
    });
    let port = serve(move |cfg| {
        cfg.app_data(exporter.clone())
            .route("/metrics", web::get().to(scrape));
    });
    port
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A Prometheus of our own: config, data directory and port; stoppable and restartable.
struct Prometheus {
    dir: std::path::PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Prometheus {
    fn start(dir: &std::path::Path, exporter_port: u16) -> Prometheus {
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: cockpit-test\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        let mut prometheus = Prometheus {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
        };
        prometheus.run();
        prometheus
    }

    fn run(&mut self) {
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                self.dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (the test command installs Debian's prometheus)");
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (bounded) until the last 5 s hold at least `samples` scrapes of the gate: a window with no gap.
    async fn until_scraped(&self, gate: &str, samples: usize) {
        let client = awc::Client::default();
        let query = format!("count_over_time(model_requests_total{{gate=\"{gate}\"}}[5s])");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer: Option<Value> = match client
                .post(format!("{}/api/v1/query", self.url()))
                .send_form(&[("query", query.as_str())])
                .await
            {
                Ok(mut response) => response.json().await.ok(),
                Err(_) => None,
            };
            let count = answer
                .as_ref()
                .and_then(|a| a["data"]["result"][0]["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            if count >= samples as f64 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never scraped {gate} again: {answer:?}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `evaluate_slo` (bounded) until the gate's check has the wanted verdict: Prometheus has scraped
/// enough for `rate()` over the window.
async fn until_verdict(app: &TestApp, gate: &str, verdict: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let result = app
            .tool_ok(
                "evaluate_slo",
                json!({"gate": gate, "sloPolicy": {"latency_p95_ms": 800, "error_rate": 0.01, "window": "5s"}}),
            )
            .await;
        if result["verdict"] == verdict {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{gate} never gave {verdict}: {result}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
}

fn policy(extra: Value) -> Value {
    let mut policy =
        json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1s", "window": "10s"});
    if let (Some(p), Some(e)) = (policy.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    policy
}

async fn start(app: &TestApp, gate: &str, policy: Value) -> String {
    let canary = app
        .tool_ok(
            "start_canary",
            json!({"modelId": format!("model-{gate}"), "fromGate": "stage", "toGate": gate, "sloPolicy": policy}),
        )
        .await;
    canary["canaryId"].as_str().expect("canaryId").to_string()
}

#[actix_web::test]
async fn canaries_are_judged_on_what_a_real_prometheus_says() {
    let dir = tempfile::tempdir().expect("dir");
    let exporter = start_exporter().await;
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

    let healthy = start(&app, "healthy", policy(json!({}))).await;
    let slow = start(&app, "slow", policy(json!({}))).await;
    let erroring = start(&app, "erroring", policy(json!({}))).await;
    let silent = start(&app, "silent", policy(json!({"maxNoDecision": 3}))).await;

    let events = |id: &str| {
        let id = id.to_string();
        let app = &app;
        async move {
            app.sse(&format!("topic=canary/{id}"), &[])
                .await
                .until_end()
                .await
        }
    };
    let promoted = events(&healthy).await;
    assert_eq!(names(&promoted).last(), Some(&"promoted"), "{promoted:?}");
    for (id, reason) in [
        (&slow, "latency_above_slo"),
        (&erroring, "error_rate_above_slo"),
    ] {
        let stream = events(id).await;
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
    let steady = start(
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
