//! Restart with in-flight canaries (SPEC §14): start N canaries, kill the service with SIGKILL, start it again
//! on the same database, and time (1) until it serves (`/healthz` answers) and (2) until every canary has its
//! actor back. The canary registry resumes all active canaries before it takes any message, so the first
//! `start_canary` answered after the restart marks (2); `cockpit_canaries_active` then says how many resumed.
//!
//!   cargo bench --bench restart -- [--canaries 1000]

#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark prints its figures and stops with a message when the system under test misbehaves"
)]

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Restart of mcp-cockpit with in-flight canaries")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    canaries: usize,
    /// Also run it on this PostgreSQL database (a schema of the run's own), after SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

async fn start_canary(client: &awc::Client, base: &str, model: &str) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "start_canary", "arguments": {"modelId": model, "fromGate": "stage", "toGate": "production",
            "sloPolicy": {"latency_p95_ms": 800, "error_rate": 0.01}}}});
    let mut response = client
        .post(format!("{base}/mcp"))
        .send_json(&body)
        .await
        .map_err(|e| e.to_string())?;
    let reply: Value = response.json().await.map_err(|e| e.to_string())?;
    match reply["result"]["isError"].as_bool() {
        Some(false) => Ok(reply),
        _ => Err(reply.to_string()),
    }
}

async fn metric(client: &awc::Client, base: &str, name: &str) -> Option<f64> {
    let mut response = client.get(format!("{base}/metrics")).send().await.ok()?;
    let text = String::from_utf8(response.body().await.ok()?.to_vec()).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

async fn run(args: &Args, backend: &common::Backend) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let first = common::cockpit(dir.path(), &backend.with(&[]));
    let base = first.base.clone();
    let began = Instant::now();
    let created = futures_util::future::join_all((0..args.canaries).map(|n| {
        let (client, base) = (client.clone(), base.clone());
        async move { start_canary(&client, &base, &format!("restart-{n}")).await }
    }))
    .await;
    let failed: Vec<&String> = created.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "start_canary failed: {:?}",
        failed.first()
    );
    println!(
        "restart on {}: {} canaries started in {:.2}s; active before the kill: {:?}",
        backend.name,
        args.canaries,
        began.elapsed().as_secs_f64(),
        metric(&client, &base, "cockpit_canaries_active ").await
    );
    let port = base.rsplit(':').next().unwrap_or("0").to_string();
    drop(first); // SIGKILL: no graceful shutdown

    let restarted_at = Instant::now();
    let second = common::cockpit(dir.path(), &backend.with(&[("PORT", &port)]));
    let listening = restarted_at.elapsed();
    let serving = loop {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            if response.status().is_success() {
                break restarted_at.elapsed();
            }
        }
    };
    let probe = start_canary(&client, &base, "restart-probe").await;
    let resumed = restarted_at.elapsed();
    let active = metric(&client, &second.base, "cockpit_canaries_active ").await;
    println!(
        "restart: listening after {:.0} ms, serving (/healthz 200) after {:.0} ms, all canaries resumed \
         (first start_canary answered) after {:.0} ms; cockpit_canaries_active {active:?} (the {} plus the probe){}",
        listening.as_secs_f64() * 1000.0,
        serving.as_secs_f64() * 1000.0,
        resumed.as_secs_f64() * 1000.0,
        args.canaries,
        if probe.is_err() { "; the probe failed" } else { "" },
    );
}

fn main() {
    let args = Args::parse();
    for backend in common::backends(args.database_url.as_deref()) {
        actix_web::rt::System::new().block_on(run(&args, &backend));
    }
}
