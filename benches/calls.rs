//! `tools/call` throughput and latency (SPEC §14): wrk with 64 keep-alive connections, no pipelining,
//! against the real binary (rate limiter off), for a read (`job_status`) and for durable creation
//! (`run_eval {dryRun:true}`, `start_canary` on distinct models). Creation is checked in SQLite afterwards:
//! every completed call must have left its row.
//!
//!   cargo bench --bench calls -- [--seconds 10] [--connections 64]
//!
//! Needs `wrk` (Debian package `wrk`).

#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark prints its figures and stops with a message when the system under test misbehaves"
)]

#[path = "common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(about = "tools/call throughput with wrk against mcp-cockpit")]
struct Args {
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk threads (the machine has 2 cores; the server shares them).
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Only these tools (job_status, run_eval, start_canary); all by default.
    #[arg(long)]
    tool: Vec<String>,
    /// Also run every figure on this PostgreSQL database (a schema of the run's own), after SQLite's.
    #[arg(long)]
    database_url: Option<String>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What wrk reported.
struct Report {
    requests: u64,
    per_second: f64,
    p50: String,
    p99: String,
    max: String,
    errors: String,
}

fn wrk(base: &str, tool: &str, job_id: &str, args: &Args, seconds: u64) -> Report {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/wrk/tools_call.lua");
    let output = Command::new("wrk")
        .args(["-t", &args.threads.to_string()])
        .args(["-c", &args.connections.to_string()])
        .args(["-d", &format!("{seconds}s")])
        .args(["--timeout", "10s", "--latency", "-s", script])
        .arg(format!("{base}/mcp"))
        .env("TOOL", tool)
        .env("JOB_ID", job_id)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let after = |prefix: &str, nth: usize| {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().nth(nth))
            .unwrap_or("?")
            .to_string()
    };
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("Non-2xx")
                || l.contains("Socket errors")
                || (l.starts_with("Failed tool calls:") && !l.ends_with(": 0"))
        })
        .map(str::trim)
        .collect();
    Report {
        requests,
        per_second: after("Requests/sec:", 0).parse().unwrap_or(0.0),
        p50: after("50%", 0),
        p99: after("99%", 0),
        max: after("Latency", 2),
        errors: if errors.is_empty() {
            "no errors".into()
        } else {
            errors.join("; ")
        },
    }
}

/// One dry-run job to read with job_status.
async fn a_job(base: &str) -> String {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "run_eval", "arguments": {"taskId": "demo", "configId": "default", "dryRun": true}}});
    let mut response = awc::Client::new()
        .post(format!("{base}/mcp"))
        .send_json(&body)
        .await
        .expect("run_eval answered");
    let reply: serde_json::Value = response.json().await.expect("a JSON reply");
    reply["result"]["structuredContent"]["jobId"]
        .as_str()
        .expect("a jobId")
        .to_string()
}

fn main() {
    let args = Args::parse();
    common::raise_open_files();
    println!(
        "tools/call: wrk -t{} -c{} -d{}s, keep-alive, no pipelining, rate limiter off, loopback",
        args.threads, args.connections, args.seconds
    );
    let tools = if args.tool.is_empty() {
        vec![
            "job_status".to_string(),
            "run_eval".into(),
            "start_canary".into(),
        ]
    } else {
        args.tool.clone()
    };
    for backend in common::backends(args.database_url.as_deref()) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // Every start_canary of a run stays active: the cap on active canaries must not be what is measured.
        let config = "[canary]\nmax_active = 1000000\n";
        let server = common::cockpit_with_config(dir.path(), config, &backend.with(&[]));
        let job_id = actix_web::rt::System::new().block_on(a_job(&server.base));
        println!("on {}:", backend.name);
        for tool in &tools {
            let count = |table: &str| backend.count(dir.path(), table);
            calls(&server, &count, tool, &job_id, &args);
        }
    }
}

/// One tool's figures on one backend; `count` reads a table's rows.
fn calls(
    server: &common::Server,
    count: &dyn Fn(&str) -> i64,
    tool: &str,
    job_id: &str,
    args: &Args,
) {
    let table = match tool {
        "run_eval" => "jobs",
        "start_canary" => "canaries",
        _ => "",
    };
    if table.is_empty() {
        // A short warm-up, so the figure is the steady state.
        wrk(&server.base, tool, job_id, args, 2);
    }
    let before = if table.is_empty() { 0 } else { count(table) };
    let cpu = server.stats();
    let report = wrk(&server.base, tool, job_id, args, args.seconds);
    let used = server.stats().cpu_seconds - cpu.cpu_seconds;
    // Let calls wrk gave up on at the end finish before counting rows.
    std::thread::sleep(Duration::from_millis(500));
    let stored = if table.is_empty() {
        String::new()
    } else {
        format!(
            "; {} rows added to {table} for {} completed calls",
            count(table) - before,
            report.requests
        )
    };
    println!(
        "{tool:>13}: {:.0} requests/s, latency p50 {} p99 {} max {}; {}; server {:.2} CPU s ({:.0} µs per call){stored}",
        report.per_second,
        report.p50,
        report.p99,
        report.max,
        report.errors,
        used,
        used * 1e6 / report.requests.max(1) as f64,
    );
}
