//! A real Prometheus for the tests (Debian's `prometheus`, started with its own config on a free loopback
//! port, never the system service), scraping every second a small exporter the test runs in-process, whose
//! gates are healthy, slow, erroring, silent, trickling, breaching or frozen — switchable while it runs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::helpers::{canary_args, eventually_async, serve, TestApp};

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Mode {
    /// 100 requests/s, fast, no errors.
    Healthy,
    /// 100 requests/s, every one between 500 and 1000 ms.
    Slow,
    /// 100 requests/s, 3% errors.
    Erroring,
    /// 100 requests/s, 5% errors: five times a 1% SLO.
    Breaching,
    /// 100 requests/s, 20% errors: far past any critical factor.
    Failing,
    /// 0.5 requests/s, 1.8% errors.
    Trickle,
    /// No new requests (the series stay, unchanged).
    Silent,
    /// The exporter repeats its last values with the timestamp of when it froze: no new samples.
    Frozen,
}

/// Cumulative counters of one gate: latency buckets (≤100, ≤500, ≤1000, +Inf ms), errors, requests.
#[derive(Default, Clone, Copy)]
struct Counters {
    buckets: [f64; 4],
    errors: f64,
    requests: f64,
}

pub struct Exporter {
    gates: Mutex<HashMap<&'static str, (Mode, Counters)>>,
    last: Mutex<Instant>,
    /// When each frozen gate froze (ms since the epoch): the timestamp its samples keep.
    frozen_at: Mutex<HashMap<&'static str, i64>>,
}

impl Exporter {
    /// Switches a gate's traffic from the next scrape on.
    pub fn set(&self, gate: &'static str, mode: Mode) {
        self.advance();
        if mode == Mode::Frozen {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis();
            self.frozen_at
                .lock()
                .expect("frozen")
                .insert(gate, i64::try_from(now).expect("ms"));
        }
        if let Some((current, _)) = self.gates.lock().expect("gates").get_mut(gate) {
            *current = mode;
        }
    }

    /// Advances every gate by the time since the last scrape: 100 requests/s unless silent.
    fn advance(&self) {
        let mut last = self.last.lock().expect("last");
        let seconds = last.elapsed().as_secs_f64();
        *last = Instant::now();
        for (mode, c) in self.gates.lock().expect("gates").values_mut() {
            // Requests per second, fractions per latency bucket (cumulative) and the error ratio.
            let (rate, le100, le500, error_ratio) = match mode {
                Mode::Silent | Mode::Frozen => continue,
                Mode::Healthy => (100.0, 0.97, 1.0, 0.0),
                Mode::Slow => (100.0, 0.0, 0.0, 0.001),
                Mode::Erroring => (100.0, 0.97, 1.0, 0.03),
                Mode::Breaching => (100.0, 0.97, 1.0, 0.05),
                Mode::Failing => (100.0, 0.97, 1.0, 0.2),
                Mode::Trickle => (0.5, 0.97, 1.0, 0.018),
            };
            let n = rate * seconds;
            c.buckets[0] += n * le100;
            c.buckets[1] += n * le500;
            c.buckets[2] += n;
            c.buckets[3] += n;
            c.errors += n * error_ratio;
            c.requests += n;
        }
    }

    fn render(&self) -> String {
        let frozen = self.frozen_at.lock().expect("frozen").clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis();
        let mut out = String::new();
        for (gate, (mode, c)) in self.gates.lock().expect("gates").iter() {
            // Every sample carries its time: now, or for a frozen gate the time it froze, so Prometheus gets
            // nothing newer. (Always explicit: a series switching from implicit to explicit timestamps
            // would get a staleness marker and vanish instead of going stale.)
            let stamp = match (mode, frozen.get(gate)) {
                (Mode::Frozen, Some(ms)) => format!(" {ms}"),
                _ => format!(" {now}"),
            };
            for (le, count) in ["100", "500", "1000", "+Inf"].iter().zip(c.buckets) {
                let _ = writeln!(
                    out,
                    "model_latency_bucket{{gate=\"{gate}\",le=\"{le}\"}} {count}{stamp}"
                );
            }
            let _ = writeln!(
                out,
                "model_errors_total{{gate=\"{gate}\"}} {}{stamp}",
                c.errors
            );
            let _ = writeln!(
                out,
                "model_requests_total{{gate=\"{gate}\"}} {}{stamp}",
                c.requests
            );
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

/// Starts the exporter with these gates; returns its port and a handle to switch their traffic.
pub fn start_exporter(gates: &[(&'static str, Mode)]) -> (u16, web::Data<Exporter>) {
    let exporter = web::Data::new(Exporter {
        gates: Mutex::new(
            gates
                .iter()
                .map(|(g, m)| (*g, (*m, Counters::default())))
                .collect(),
        ),
        last: Mutex::new(Instant::now()),
        frozen_at: Mutex::new(HashMap::new()),
    });
    let served = exporter.clone();
    let port = serve(move |cfg| {
        cfg.app_data(served.clone())
            .route("/metrics", web::get().to(scrape));
    });
    (port, exporter)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A Prometheus of our own: config, data directory and port; stoppable and restartable.
pub struct Prometheus {
    dir: std::path::PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Prometheus {
    pub fn start(dir: &std::path::Path, exporter_port: u16) -> Prometheus {
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

    pub fn run(&mut self) {
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

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (bounded) until the last 5 s hold at least `samples` scrapes of the gate: a window with no gap.
    pub async fn until_scraped(&self, gate: &str, samples: u64) {
        self.until_scrapes(gate, 5, samples).await;
    }

    /// Waits (bounded) until Prometheus holds `seconds` of the gate's history, scraped every second.
    pub async fn until_history(&self, gate: &str, seconds: u64) {
        self.until_scrapes(gate, seconds, seconds - 1).await;
    }

    /// Waits (bounded) until the last `window_s` seconds hold at least `scrapes` samples of the gate.
    async fn until_scrapes(&self, gate: &str, window_s: u64, scrapes: u64) {
        let client = awc::Client::default();
        let query =
            format!("count_over_time(model_requests_total{{gate=\"{gate}\"}}[{window_s}s])");
        let (client, url, query) = (&client, self.url(), &query);
        let what = format!("Prometheus scrapes {gate} {scrapes} times in {window_s} s");
        let limit = Duration::from_secs(window_s + 60);
        eventually_async(&what, limit, Duration::from_millis(250), || {
            let url = url.clone();
            async move {
                let mut response = client
                    .post(format!("{url}/api/v1/query"))
                    .send_form(&[("query", query.as_str())])
                    .await
                    .ok()?;
                let answer: Value = response.json().await.ok()?;
                let count = answer["data"]["result"][0]["value"][1]
                    .as_str()?
                    .parse::<f64>()
                    .ok()?;
                (count >= scrapes as f64).then_some(())
            }
        })
        .await;
    }

    pub fn url(&self) -> String {
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
pub async fn until_verdict(app: &TestApp, gate: &str, verdict: &str) {
    let what = format!("evaluate_slo of {gate} gives {verdict}");
    eventually_async(&what, Duration::from_secs(60), Duration::from_millis(250), || async {
        let result = app
            .tool_ok(
                "evaluate_slo",
                json!({"gate": gate, "sloPolicy": {"latency_p95_ms": 800, "error_rate": 0.01, "window": "5s"}}),
            )
            .await;
        (result["verdict"] == verdict).then_some(())
    })
    .await;
}

/// Starts a canary of `model-<gate>` from `stage` into `gate`; its id.
pub async fn start_canary(app: &TestApp, gate: &str, policy: Value) -> String {
    app.start_canary(canary_args(&format!("model-{gate}"), gate, policy))
        .await
}
