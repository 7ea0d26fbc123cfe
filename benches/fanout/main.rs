//! SSE fan-out benchmark (SPEC §14): N subscribers on one topic or a pattern, events published by P
//! concurrent publishers (as fast as they go, or at a fixed rate), against the real mcp-cockpit binary
//! (every event a `publish_note` over `/mcp`, logged in SQLite) and against the naive hub, in the same run.
//! Loopback only, bounded, rate limiter off.
//!
//!   cargo bench --bench fanout -- --subscribers 1000 --publishers 8 --per-publisher 250
//!
//! Prints, for each server: idle memory per connection, delivered events/s, publish→receive latency
//! p50/p99/max, lost and duplicate events, and the server's CPU time per delivered event.

#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark prints its figures and stops with a message when the system under test misbehaves"
)]

#[path = "../common/mod.rs"]
mod common;
mod naive_hub;

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use tokio::sync::{Mutex, Semaphore};

use common::{now_us, quantile_ms, ProcStats, Server};

#[derive(Parser, Clone)]
#[command(about = "SSE fan-out: mcp-cockpit against a naive actix-web hub")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    #[arg(long, default_value_t = 250)]
    per_publisher: usize,
    /// The cockpit subscribers' topic: `ops/bench`, or a pattern such as `ops/*` or `*` (the naive hub has
    /// no topics and sends everything to everyone).
    #[arg(long, default_value = "ops/bench")]
    subscribe: String,
    /// Publishes per second, all publishers together; without it they publish as fast as replies come.
    #[arg(long)]
    rate: Option<f64>,
    /// Extra subscribers that connect and never read a byte (slow-consumer isolation).
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Bytes of padding in each event, to fill a stalled subscriber's socket buffers sooner.
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// Send the naive hub bare payloads instead of events shaped and sized like the cockpit's.
    #[arg(long)]
    naive_minimal: bool,
    /// Subscribers open and idle for this long before publishing starts, then memory is read.
    #[arg(long, default_value_t = 2)]
    settle_seconds: u64,
    #[arg(long, value_enum, default_value_t = Only::Both)]
    only: Only,
    /// Also run the cockpit on this PostgreSQL database (a schema of the run's own), after SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Only {
    Both,
    Naive,
    Cockpit,
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u64>,
    /// Distinct (publisher, n) pairs seen, summed over subscribers.
    distinct: u64,
    duplicates: u64,
    /// Bytes of response body received, to check both servers sent the same.
    bytes: u64,
}

/// The unsigned integer after `"<key>":` in an event's JSON (cheaper than parsing every event whole, so the
/// load client spends its CPU on receiving).
fn field(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

async fn subscribe(
    url: String,
    expected: usize,
    seen: Arc<Mutex<Seen>>,
    connecting: Arc<Semaphore>,
    ready: tokio::sync::mpsc::Sender<()>,
) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(600))
        .finish();
    let permit = connecting.acquire().await;
    let Ok(mut response) = client.get(url).send().await else {
        eprintln!("a subscriber could not connect");
        let _ = ready.send(()).await;
        return;
    };
    drop(permit);
    let _ = ready.send(()).await;
    let mut buffer: Vec<u8> = Vec::new();
    let mut got = 0;
    let mut keys = HashSet::with_capacity(expected);
    let mut latencies_us = Vec::with_capacity(expected);
    let mut duplicates = 0;
    let mut bytes = 0;
    while got < expected {
        let Some(Ok(chunk)) = response.next().await else {
            break;
        };
        bytes += chunk.len() as u64;
        buffer.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = buffer[start..].windows(2).position(|w| w == b"\n\n") {
            let block = std::str::from_utf8(&buffer[start..start + end]).unwrap_or("");
            start += end + 2;
            let (Some(p), Some(n), Some(sent)) = (
                field(block, "\"p\":"),
                field(block, "\"n\":"),
                field(block, "\"t\":"),
            ) else {
                continue;
            };
            latencies_us.push(now_us().saturating_sub(sent));
            if !keys.insert((p, n)) {
                duplicates += 1;
            }
            got += 1;
        }
        buffer.drain(..start);
    }
    let mut all = seen.lock().await;
    all.latencies_us.extend(latencies_us);
    all.duplicates += duplicates;
    all.bytes += bytes;
    all.distinct += keys.len() as u64;
}

/// A subscriber that sends its request and never reads: the server must cut it, not wait for it.
fn stall(url: &str) -> Option<TcpStream> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut stream = TcpStream::connect(host).ok()?;
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").ok()?;
    Some(stream)
}

async fn publisher(url: String, p: usize, args: Args, cockpit: bool) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let padding = "x".repeat(args.pad);
    let mut ticker = args.rate.map(|rate| {
        let period = Duration::from_secs_f64(args.publishers as f64 / rate);
        tokio::time::interval(period)
    });
    for n in 0..args.per_publisher {
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let payload = serde_json::json!({"p": p, "n": n, "pad": padding, "t": now_us()});
        let body = if cockpit {
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "publish_note",
                "arguments": {"topic": "ops/bench", "message": "bench", "data": payload}}})
            .to_string()
        } else if args.naive_minimal {
            payload.to_string()
        } else {
            // The fields the cockpit adds to a note, so both servers put the same bytes on the wire.
            serde_json::json!({"data": payload, "message": "bench", "name": "bench",
                "narrative": "[2026-11-24 10:00] bench → bench", "topic": "ops/bench",
                "ts": "2026-11-24T10:00:00.000Z"})
            .to_string()
        };
        match client.post(&url).send_body(body).await {
            // The body is read, so the connection is kept alive for the next publish.
            Ok(mut response) if response.status().is_success() => {
                let _ = response.body().await;
            }
            Ok(response) => eprintln!("publish refused: {}", response.status()),
            Err(e) => eprintln!("publish failed: {e}"),
        }
    }
}

async fn run(name: &str, server: &Server, publish_url: String, sse_url: String, args: &Args) {
    let subs = args.subscribers;
    let expected = args.publishers * args.per_publisher;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let connecting = Arc::new(Semaphore::new(256));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subs.max(1));
    let before_subscribers = server.stats();
    let mut tasks = Vec::new();
    for _ in 0..subs {
        tasks.push(actix_web::rt::spawn(subscribe(
            sse_url.clone(),
            expected,
            seen.clone(),
            connecting.clone(),
            ready_tx.clone(),
        )));
    }
    for _ in 0..subs {
        ready_rx.recv().await;
    }
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let idle = server.stats();
    let per_connection = (idle.rss_kib.saturating_sub(before_subscribers.rss_kib)) as f64 * 1024.0
        / subs.max(1) as f64;
    let stalled: Vec<TcpStream> = (0..args.stalled).filter_map(|_| stall(&sse_url)).collect();

    let started = Instant::now();
    let own_before = ProcStats::own();
    let publishers: Vec<_> = (0..args.publishers)
        .map(|p| {
            actix_web::rt::spawn(publisher(
                publish_url.clone(),
                p,
                args.clone(),
                name.starts_with("cockpit"),
            ))
        })
        .collect();
    for p in publishers {
        let _ = p.await;
    }
    let published = started.elapsed();
    let finished = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(tasks),
    )
    .await;
    let elapsed = started.elapsed();
    let busy = server.stats();
    let own = ProcStats::own();
    drop(stalled);

    let seen = seen.lock().await;
    let mut lat = seen.latencies_us.clone();
    lat.sort_unstable();
    let delivered = lat.len();
    let lost = (subs * expected).saturating_sub(seen.distinct as usize);
    let server_cpu = busy.cpu_seconds - idle.cpu_seconds;
    println!(
        "{name:>8}: {subs} subscribers ({}), {} publishers x {}{}{}: published in {:.2}s ({:.0}/s); \
         delivered {delivered} in {:.2}s = {:.0} events/s; latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms; \
         lost {lost}; duplicates {}; {:.0} bytes per event{}",
        if name.starts_with("cockpit") { args.subscribe.as_str() } else { "all" },
        args.publishers,
        args.per_publisher,
        args.rate.map(|r| format!(" at {r}/s")).unwrap_or_default(),
        if args.stalled > 0 { format!(", {} stalled", args.stalled) } else { String::new() },
        published.as_secs_f64(),
        expected as f64 / published.as_secs_f64(),
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64(),
        quantile_ms(&lat, 0.5),
        quantile_ms(&lat, 0.99),
        quantile_ms(&lat, 1.0),
        seen.duplicates,
        seen.bytes as f64 / delivered.max(1) as f64,
        if finished.is_err() { " (timed out)" } else { "" },
    );
    println!(
        "{:>8}  server: RSS {} KiB idle with {subs} subscribers = {per_connection:.0} bytes per idle connection; \
         peak {} KiB; {server_cpu:.2} CPU s publishing = {:.2} µs per delivered event; load client {:.2} CPU s",
        "",
        idle.rss_kib,
        busy.peak_rss_kib,
        server_cpu * 1e6 / delivered.max(1) as f64,
        own.cpu_seconds - own_before.cpu_seconds,
    );
}

/// The mean number of changes per commit, from the cockpit's /metrics.
async fn group_commit(base: &str) -> String {
    let text = match awc::Client::new()
        .get(format!("{base}/metrics"))
        .send()
        .await
    {
        Ok(mut response) => response
            .body()
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        Err(e) => return format!("no metrics: {e}"),
    };
    let value = |name: &str| {
        text.iter()
            .flat_map(|t| t.lines())
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let dropped = value("cockpit_events_dropped_total ");
    let (sum, count) = (
        value("cockpit_commit_group_size_sum "),
        value("cockpit_commit_group_size_count "),
    );
    format!(
        "group commit: {sum} changes in {count} transactions = {:.2} per commit; subscribers cut off \
         (queue full): {dropped}",
        sum / count.max(1.0)
    )
}

fn naive_hub_process() -> Server {
    let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(naive_hub::ROLE, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the naive hub starts");
    let port = common::read_port(child.stdout.take().expect("stdout"), "listening on port ");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

fn main() {
    if std::env::var_os(naive_hub::ROLE).is_some() {
        common::raise_open_files();
        return naive_hub::serve();
    }
    let args = Args::parse();
    let files = common::raise_open_files();
    actix_web::rt::System::new().block_on(async move {
        println!(
            "fan-out: rate limiter off, loopback only, {} subscribers (open-file limit {files})",
            args.subscribers
        );
        if args.only != Only::Cockpit {
            let hub = naive_hub_process();
            let base = hub.base.clone();
            run(
                "naive",
                &hub,
                format!("{base}/publish"),
                format!("{base}/sse"),
                &args,
            )
            .await;
        }
        let cockpits = if args.only == Only::Naive {
            Vec::new()
        } else {
            common::backends(args.database_url.as_deref())
        };
        for backend in cockpits {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let cockpit = common::cockpit(dir.path(), &backend.with(&[]));
            let base = cockpit.base.clone();
            let topic = args.subscribe.replace('*', "%2A");
            let name = format!("cockpit on {}", backend.name);
            run(
                &name,
                &cockpit,
                format!("{base}/mcp"),
                format!("{base}/sse?topic={topic}"),
                &args,
            )
            .await;
            println!("{:>8}  {}", "", group_commit(&cockpit.base).await);
        }
    });
}
