//! Canary checking at scale: N canaries (default 20,000) at a 10 s interval on the stub source, for a
//! measured minute. Reports the poller thread's CPU per check, how late checks start after their due time
//! (p50/p99 from `cockpit_canary_check_lateness_seconds`), and SSE publish→receive latency at 20 notes/s to
//! 100 subscribers, before the canaries exist and while they are checked.
//!
//!   cargo bench --bench poller -- [--canaries 20000] [--seconds 60]

#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark prints its figures and stops with a message when the system under test misbehaves"
)]

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Mutex;

#[derive(Parser, Clone)]
#[command(about = "Canary checking at scale")]
struct Args {
    #[arg(long, default_value_t = 20_000)]
    canaries: usize,
    /// The measured window, after every canary has had its first check.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

const SUBSCRIBERS: usize = 100;
const NOTES_PER_SECOND: u64 = 20;

async fn call(
    client: &awc::Client,
    base: &str,
    name: &str,
    arguments: Value,
) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": name, "arguments": arguments}});
    let mut response = client
        .post(format!("{base}/mcp"))
        .send_json(&body)
        .await
        .map_err(|e| e.to_string())?;
    let reply: Value = response
        .json()
        .limit(1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    match reply["result"]["isError"].as_bool() {
        Some(false) => Ok(reply),
        _ => Err(reply.to_string()),
    }
}

/// The /metrics text.
async fn metrics(client: &awc::Client, base: &str) -> String {
    let Ok(mut response) = client.get(format!("{base}/metrics")).send().await else {
        return String::new();
    };
    let body = response.body().limit(8 << 20).await.unwrap_or_default();
    String::from_utf8_lossy(&body).into_owned()
}

/// Sum of every sample of a metric family whose line starts with `name` (labels allowed).
fn sum_of(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The lateness histogram's cumulative buckets: (upper bound, count).
fn lateness_buckets(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("cockpit_canary_check_lateness_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The bucket bound at which the `q` quantile of the checks between two snapshots falls.
fn lateness_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let earlier = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, n - earlier)
        })
        .collect();
    let total = deltas.last().map_or(0.0, |(_, n)| *n);
    deltas
        .iter()
        .find(|(_, n)| *n >= total * q)
        .map_or(f64::NAN, |(le, _)| *le)
}

/// Subscribes `SUBSCRIBERS` streams to ops/poller-bench and records each note's publish→receive latency.
async fn subscribers(base: &str, latencies: Arc<Mutex<Vec<u64>>>) {
    for _ in 0..SUBSCRIBERS {
        let url = format!("{base}/sse?topic=ops/poller-bench");
        let latencies = latencies.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        actix_web::rt::spawn(async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(3600))
                .finish();
            let Ok(mut response) = client.get(url).send().await else {
                return;
            };
            let _ = ready_tx.send(());
            let mut buffer = Vec::new();
            while let Some(Ok(chunk)) = response.next().await {
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                    let block: Vec<u8> = buffer.drain(..end + 2).collect();
                    let text = String::from_utf8_lossy(&block);
                    if let Some(sent) = text
                        .split("\"t\":")
                        .nth(1)
                        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|digits| digits.parse::<u64>().ok())
                    {
                        latencies
                            .lock()
                            .await
                            .push(common::now_us().saturating_sub(sent));
                    }
                }
            }
        });
        let _ = ready_rx.await;
    }
}

/// Publishes notes at `NOTES_PER_SECOND` for `seconds`; returns the latencies the subscribers recorded.
async fn publish_phase(
    client: &awc::Client,
    base: &str,
    latencies: &Arc<Mutex<Vec<u64>>>,
    seconds: u64,
) -> Vec<u64> {
    latencies.lock().await.clear();
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / NOTES_PER_SECOND));
    for n in 0..seconds * NOTES_PER_SECOND {
        ticker.tick().await;
        let data = json!({"n": n, "t": common::now_us()});
        if let Err(e) = call(
            client,
            base,
            "publish_note",
            json!({"topic": "ops/poller-bench", "message": "bench", "data": data}),
        )
        .await
        {
            eprintln!("publish failed: {e}");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen = latencies.lock().await.clone();
    seen.sort_unstable();
    seen
}

async fn run(args: Args) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = format!("[canary]\nmax_active = {}\n", args.canaries + 100);
    let server = common::cockpit_with_config(dir.path(), &config, &[]);
    let base = server.base.clone();
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    subscribers(&base, latencies.clone()).await;

    let quiet = publish_phase(&client, &base, &latencies, 15).await;

    // Canaries that keep checking: warm-up for the whole run, so none ends early.
    let began = Instant::now();
    let policy = json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "10s", "warmupChecks": 300,
                        "deadline": "1h"});
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let created = futures_util::future::join_all((0..args.canaries).map(|n| {
        let (client, base, policy, limit) =
            (client.clone(), base.clone(), policy.clone(), limit.clone());
        async move {
            let _permit = limit.acquire().await;
            call(
                &client,
                &base,
                "start_canary",
                json!({"modelId": format!("poller-{n}"), "fromGate": "stage",
                "toGate": "production", "sloPolicy": policy}),
            )
            .await
        }
    }))
    .await;
    let failed = created.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = created.iter().find(|r| r.is_err()) {
        eprintln!("a start failed: {e}");
    }
    println!(
        "{} canaries started in {:.1} s ({failed} failed)",
        args.canaries,
        began.elapsed().as_secs_f64()
    );
    // Every canary has had its first check 10 s after it started.
    tokio::time::sleep(Duration::from_secs(11)).await;

    let pid = server.pid();
    let peak_wal = Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let (peak, path) = (peak_wal.clone(), dir.path().join(".mcp-state.db-wal"));
        actix_web::rt::spawn(async move {
            loop {
                let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                peak.fetch_max(size, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let before = metrics(&client, &base).await;
    let cpu_before = common::thread_cpu_seconds(pid, "actix-rt|system");
    let process_before = server.stats().cpu_seconds;
    let window = Instant::now();
    let busy = if args.seconds > 15 {
        tokio::time::sleep(Duration::from_secs(args.seconds - 15)).await;
        publish_phase(&client, &base, &latencies, 15).await
    } else {
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        Vec::new()
    };
    let elapsed = window.elapsed().as_secs_f64();
    let after = metrics(&client, &base).await;
    let poller_cpu = common::thread_cpu_seconds(pid, "actix-rt|system") - cpu_before;
    let process_cpu = server.stats().cpu_seconds - process_before;
    let checks = sum_of(&after, "cockpit_canary_checks_total")
        - sum_of(&before, "cockpit_canary_checks_total");
    let (b, a) = (lateness_buckets(&before), lateness_buckets(&after));
    println!(
        "measured {elapsed:.1} s: {checks:.0} checks ({:.0}/s)",
        checks / elapsed
    );
    println!(
        "WAL at most {:.1} MiB during the run",
        peak_wal.load(std::sync::atomic::Ordering::Relaxed) as f64 / f64::from(1 << 20)
    );
    println!(
        "poller thread CPU {poller_cpu:.2} s = {:.1} us per check; whole process {process_cpu:.2} s = {:.1} us per check",
        poller_cpu * 1e6 / checks.max(1.0),
        process_cpu * 1e6 / checks.max(1.0)
    );
    println!(
        "lateness (now - due): p50 <= {} s, p99 <= {} s",
        lateness_quantile(&b, &a, 0.5),
        lateness_quantile(&b, &a, 0.99)
    );
    println!(
        "SSE publish->receive at {NOTES_PER_SECOND}/s to {SUBSCRIBERS} subscribers: p50/p99 {:.2}/{:.2} ms without canaries ({} received), {:.2}/{:.2} ms with them ({} received)",
        common::quantile_ms(&quiet, 0.5),
        common::quantile_ms(&quiet, 0.99),
        quiet.len(),
        common::quantile_ms(&busy, 0.5),
        common::quantile_ms(&busy, 0.99),
        busy.len()
    );
}

fn main() {
    let args = Args::parse();
    common::raise_open_files();
    actix_web::rt::System::new().block_on(run(args));
}
