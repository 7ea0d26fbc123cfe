//! The soak: mixed load against the real binary for a long time (30 minutes by default), sampling once a
//! minute what would grow if something leaked — resident memory, open file descriptors, threads, the SQLite
//! WAL (its largest size within the minute) — and the p99 latency of the minute's requests. Flat is the goal:
//! the last five minutes against the first five, within 10%.
//!
//! The load, all at once, each loop repeating until the time is up:
//! - evals: `run_eval` of a 0.3 s task, followed live on `/sse?topic=job/<id>` to its end (2 loops);
//! - canaries through their whole life, one model a loop moved between two gates: every other canary to a
//!   breaching gate, so they promote and roll back in turn, followed on `/sse?topic=canary/<id>` to the end
//!   (2 loops);
//! - notes: `publish_note` on `ops/soak`, ten a second;
//! - SSE subscribers coming and going: `/sse?topic=*` read for a moment, then dropped;
//! - MCP sessions opened and dropped: `initialize`, `tools/list`, `GET /mcp` read for a moment, `DELETE`
//!   every other time, the rest simply abandoned;
//! - reads: `list_jobs` and `list_canaries`.
//!
//! Ended jobs and canaries expire after 2 minutes (`MCP_JOB_TTL_MS`, `COCKPIT_CANARY_TTL_MS`), so the
//! retention sweep runs throughout and the database reaches a steady size.
//!
//!   cargo bench --bench soak -- [--minutes 30] [--warmup-minutes 0] [--sample-seconds 60]

#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark prints its figures and stops with a message when the system under test misbehaves"
)]

#[path = "common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "A long mixed load against mcp-cockpit, sampling what would grow if it leaked")]
struct Args {
    /// Minutes measured, after the warm-up.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Minutes of the same load before the measured ones, sampled and printed but not compared: SQLite's
    /// page caches (2 MiB a connection) fill as the database grows past them, and the blocking pool starts
    /// its threads lazily.
    #[arg(long, default_value_t = 0)]
    warmup_minutes: u64,
    #[arg(long, default_value_t = 60)]
    sample_seconds: u64,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

const CONFIG: &str = r#"
[jobs]
max_running = 4
[retention]
sweep_interval_seconds = 10
[canary]
min_interval = "100ms"
[policies."*"."*"]
interval = "250ms"
window = "1s"
successesToPromote = 3
failureLimit = 2
[slo.stub.gates.breach]
latency_p95_ms = 1200.0
[evals.quick]
command = ["{self}", "demo-eval", "--steps", "3", "--step-ms", "100", "--config-id", "{configId}"]
timeout_seconds = 30
"#;

/// Request latencies of the current minute, and failures.
#[derive(Default)]
struct Window {
    latencies_us: Vec<u64>,
    failures: u64,
    last_failure: String,
}

type Shared = Rc<RefCell<Window>>;

struct Load {
    client: awc::Client,
    base: String,
    window: Shared,
    until: Instant,
}

impl Load {
    fn running(&self) -> bool {
        Instant::now() < self.until
    }

    fn failed(&self, what: String) {
        let mut window = self.window.borrow_mut();
        window.failures += 1;
        window.last_failure = what;
    }

    /// A timed POST /mcp: the reply, or None (counted as a failure).
    async fn rpc(&self, body: Value, session: Option<&str>) -> Option<(Value, Option<String>)> {
        let began = Instant::now();
        let mut request = self
            .client
            .post(format!("{}/mcp", self.base))
            .insert_header(("Accept", "application/json, text/event-stream"));
        if let Some(session) = session {
            request = request
                .insert_header(("Mcp-Session-Id", session))
                .insert_header(("MCP-Protocol-Version", "2025-06-18"));
        }
        let outcome = async {
            let mut response = request.send_json(&body).await.map_err(|e| e.to_string())?;
            let session = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let reply: Value = response.json().await.map_err(|e| e.to_string())?;
            if reply.get("error").is_some() || reply["result"]["isError"] == true {
                return Err(reply.to_string());
            }
            Ok((reply, session))
        }
        .await;
        self.window
            .borrow_mut()
            .latencies_us
            .push(began.elapsed().as_micros() as u64);
        outcome
            .map_err(|e| self.failed(format!("{}: {e}", body["params"]["name"])))
            .ok()
    }

    async fn tool(&self, name: &str, arguments: Value) -> Option<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": name, "arguments": arguments}});
        let (reply, _) = self.rpc(body, None).await?;
        Some(reply["result"]["structuredContent"].clone())
    }

    /// Reads a stream to its end (`ends` = the server ends it) or for `for_at_most`, then drops it.
    async fn follow(&self, path: &str, headers: &[(&str, &str)], for_at_most: Duration) {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base))
            .insert_header(("Accept", "text/event-stream"))
            .timeout(Duration::from_secs(600));
        for header in headers {
            request = request.insert_header(*header);
        }
        let mut response = match request.send().await {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => return self.failed(format!("GET {path}: {}", response.status())),
            Err(e) => return self.failed(format!("GET {path}: {e}")),
        };
        let reading = async { while let Some(Ok(_)) = response.next().await {} };
        let _ = tokio::time::timeout(for_at_most, reading).await;
    }
}

async fn evals(load: Rc<Load>) {
    while load.running() {
        let Some(job) = load
            .tool("run_eval", json!({"taskId": "quick", "configId": "soak"}))
            .await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let id = job["jobId"].as_str().unwrap_or_default().to_string();
        load.follow(
            &format!("/sse?topic=job/{id}"),
            &[],
            Duration::from_secs(60),
        )
        .await;
    }
}

async fn canaries(load: Rc<Load>, lane: usize) {
    // One model a lane, moved back and forth between two gates, with a rollback from the breaching gate in
    // between: each canary a new one, while `model_gates` keeps one row a lane.
    let (mut at, mut there) = ("stage", "production");
    let mut n = 0;
    while load.running() {
        n += 1;
        let gate = if n % 2 == 0 { "breach" } else { there };
        let started = load
            .tool(
                "start_canary",
                json!({"modelId": format!("soak-{lane}"), "fromGate": at, "toGate": gate,
                       "sloPolicy": {"latency_p95_ms": 800, "error_rate": 0.05}}),
            )
            .await;
        let Some(started) = started else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let id = started["canaryId"].as_str().unwrap_or_default().to_string();
        load.follow(
            &format!("/sse?topic=canary/{id}"),
            &[],
            Duration::from_secs(60),
        )
        .await;
        if gate == there {
            let status = load.tool("canary_status", json!({"canaryId": id})).await;
            if status.is_some_and(|s| s["status"] == "promoted") {
                (at, there) = (there, at);
            }
        }
    }
}

async fn notes(load: Rc<Load>) {
    let mut n = 0;
    while load.running() {
        n += 1;
        load.tool(
            "publish_note",
            json!({"topic": "ops/soak", "message": format!("note {n}"), "data": {"n": n}}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn subscribers(load: Rc<Load>) {
    while load.running() {
        load.follow("/sse?topic=*", &[], Duration::from_millis(300))
            .await;
    }
}

async fn sessions(load: Rc<Load>) {
    let mut n = 0;
    while load.running() {
        n += 1;
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "soak", "version": "1"}}});
        let Some((_, Some(session))) = load.rpc(init, None).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
        load.rpc(list, Some(&session)).await;
        let headers = [
            ("Mcp-Session-Id", session.as_str()),
            ("MCP-Protocol-Version", "2025-06-18"),
        ];
        load.follow("/mcp", &headers, Duration::from_millis(200))
            .await;
        if n % 2 == 0 {
            let _ = load
                .client
                .delete(format!("{}/mcp", load.base))
                .insert_header(headers[0])
                .insert_header(headers[1])
                .send()
                .await;
        }
    }
}

async fn reads(load: Rc<Load>) {
    while load.running() {
        load.tool("list_jobs", json!({"limit": 20})).await;
        load.tool("list_canaries", json!({"limit": 20})).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Sample {
    /// Minutes since the load began.
    minute: f64,
    rss_mib: f64,
    fds: usize,
    threads: u64,
    wal_mib: f64,
    db_mib: f64,
    requests: usize,
    p99_ms: f64,
    failures: u64,
}

fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1_048_576.0)
}

/// Mean of a column over samples.
fn mean(samples: &[Sample], column: impl Fn(&Sample) -> f64) -> f64 {
    samples.iter().map(&column).sum::<f64>() / samples.len().max(1) as f64
}

async fn run(args: Args) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = common::cockpit_with_config(
        dir.path(),
        CONFIG,
        &[
            ("MCP_JOB_TTL_MS", "120000"),
            ("COCKPIT_CANARY_TTL_MS", "120000"),
        ],
    );
    let pid = server.pid();
    let db = dir.path().join(".mcp-state.db");
    let wal = dir.path().join(".mcp-state.db-wal");
    let window: Shared = Rc::default();
    let load = Rc::new(Load {
        client: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
        base: server.base.clone(),
        window: window.clone(),
        until: Instant::now() + Duration::from_secs((args.warmup_minutes + args.minutes) * 60),
    });
    let mut tasks = Vec::new();
    for lane in 0..2 {
        tasks.push(actix_web::rt::spawn(evals(load.clone())));
        tasks.push(actix_web::rt::spawn(canaries(load.clone(), lane)));
    }
    tasks.push(actix_web::rt::spawn(notes(load.clone())));
    tasks.push(actix_web::rt::spawn(subscribers(load.clone())));
    tasks.push(actix_web::rt::spawn(sessions(load.clone())));
    tasks.push(actix_web::rt::spawn(reads(load.clone())));

    println!(
        "soak: {} min after {} min of warm-up, a sample every {} s (WAL: the largest size seen each second \
         of the minute)",
        args.minutes, args.warmup_minutes, args.sample_seconds
    );
    println!("   min  rss_MiB  fds  threads  wal_MiB  db_MiB  requests  p99_ms  failures");
    let mut samples = Vec::new();
    let began = Instant::now();
    while load.running() {
        let mut wal_peak: f64 = 0.0;
        for _ in 0..args.sample_seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            wal_peak = wal_peak.max(mib(&wal));
        }
        let minute = began.elapsed().as_secs_f64() / 60.0;
        let taken = std::mem::take(&mut *window.borrow_mut());
        let mut latencies = taken.latencies_us;
        latencies.sort_unstable();
        let sample = Sample {
            minute,
            rss_mib: server.stats().rss_kib as f64 / 1024.0,
            fds: fds(pid),
            threads: threads(pid),
            wal_mib: wal_peak,
            db_mib: mib(&db),
            requests: latencies.len(),
            p99_ms: common::quantile_ms(&latencies, 0.99),
            failures: taken.failures,
        };
        println!(
            "{:>6.1}  {:>7.1}  {:>3}  {:>7}  {:>7.1}  {:>6.1}  {:>8}  {:>6.1}  {:>8}{}",
            sample.minute,
            sample.rss_mib,
            sample.fds,
            sample.threads,
            sample.wal_mib,
            sample.db_mib,
            sample.requests,
            sample.p99_ms,
            sample.failures,
            if taken.failures > 0 {
                format!(
                    "  (last: {})",
                    taken.last_failure.chars().take(160).collect::<String>()
                )
            } else {
                String::new()
            }
        );
        samples.push(sample);
    }
    for task in tasks {
        let _ = task.await;
    }
    // Failures count from the first minute, warm-up included.
    let failures: u64 = samples.iter().map(|s| s.failures).sum();
    let warmup = args.warmup_minutes as f64;
    let measured: Vec<Sample> = samples
        .into_iter()
        // A sample closes the minute before it: the one taken at the end of the warm-up is still warm-up.
        .filter(|s| s.minute > warmup + 0.5)
        .collect();
    let span = 5.min(measured.len() / 2).max(1);
    let (first, last) = (
        &measured[..span],
        &measured[measured.len().saturating_sub(span)..],
    );
    println!("first {span} vs last {span} samples (mean; change):");
    for (name, column) in [
        ("rss_MiB", (|s: &Sample| s.rss_mib) as fn(&Sample) -> f64),
        ("fds", |s| s.fds as f64),
        ("threads", |s| s.threads as f64),
        ("wal_MiB", |s| s.wal_mib),
        ("p99_ms", |s| s.p99_ms),
        ("requests", |s| s.requests as f64),
    ] {
        let (a, b) = (mean(first, column), mean(last, column));
        let change = if a > 0.0 { (b - a) / a * 100.0 } else { 0.0 };
        println!("  {name:<9} {a:>9.1} → {b:>9.1}  ({change:+.1}%)");
    }
    println!(
        "failed requests: {failures}; database at the end: {:.1} MiB",
        mib(&db)
    );
}

fn main() {
    let args = Args::parse();
    common::raise_open_files();
    actix_web::rt::System::new().block_on(run(args));
}
