//! SSE fan-out benchmark (SPEC §14): N subscribers on one topic, events published from P concurrent
//! publishers, against the real mcp-cockpit binary (every event logged in SQLite, `publish_note` over
//! `/mcp`) and against a naive actix-web hub kept here for reference (no persistence, no auth, a broadcast
//! channel), measured in the same run. Loopback only, bounded, rate limiter off.
//!
//!   cargo bench --bench fanout -- [subscribers] [publishers] [events per publisher]
//!
//! Prints delivered events/s, publish→receive latency p50/p99/max, and lost and duplicate events.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpResponse, HttpServer};
use futures_util::StreamExt;
use tokio::sync::{broadcast, Mutex};

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u64>,
    /// One subscriber's distinct (publisher, n) pairs; summed over subscribers in `distinct`.
    keys: HashSet<(u64, u64)>,
    distinct: u64,
    duplicates: u64,
}

/// The naive hub: POST /publish broadcasts the body to every GET /sse stream.
async fn naive_hub() -> String {
    let (tx, _) = broadcast::channel::<web::Bytes>(65_536);
    let tx = web::Data::new(tx);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(tx.clone())
            .route(
                "/publish",
                web::post().to(
                    |body: web::Bytes, tx: web::Data<broadcast::Sender<web::Bytes>>| async move {
                        let frame = web::Bytes::from(format!(
                            "event: note\ndata: {}\n\n",
                            String::from_utf8_lossy(&body)
                        ));
                        let _ = tx.send(frame);
                        HttpResponse::Ok().finish()
                    },
                ),
            )
            .route(
                "/sse",
                web::get().to(|tx: web::Data<broadcast::Sender<web::Bytes>>| async move {
                    let rx = tx.subscribe();
                    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                        loop {
                            match rx.recv().await {
                                Ok(frame) => {
                                    return Some((Ok::<_, std::convert::Infallible>(frame), rx))
                                }
                                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                                Err(broadcast::error::RecvError::Closed) => return None,
                            }
                        }
                    });
                    HttpResponse::Ok()
                        .content_type("text/event-stream")
                        .streaming(stream)
                }),
            )
    })
    .bind("127.0.0.1:0")
    .expect("bind");
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

/// Starts the real binary with the rate limiter off; its base URL.
fn cockpit(dir: &std::path::Path) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-cockpit"))
        .env("PORT", "0")
        .env("LUKHAS_REPO_ROOT", dir)
        .env("MCP_RL_BUCKET", "0")
        .env("RUST_LOG", "warn,mcp_cockpit::startup=info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("mcp-cockpit starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines.next().expect("a log line").expect("log");
        if let Some((_, rest)) = line.split_once("listening on port ") {
            break rest
                .split_whitespace()
                .next()
                .expect("port")
                .trim_end_matches(',')
                .to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("http://127.0.0.1:{port}"))
}

async fn subscribe(
    url: String,
    expected: usize,
    seen: Arc<Mutex<Seen>>,
    ready: tokio::sync::mpsc::Sender<()>,
) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(600))
        .finish();
    let mut response = client.get(url).send().await.expect("subscribe");
    let _ = ready.send(()).await;
    let mut buffer: Vec<u8> = Vec::new();
    let mut got = 0;
    let mut local = Seen::default();
    while got < expected {
        let Some(Ok(chunk)) = response.next().await else {
            break;
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            // The cockpit nests the payload in the note's `data`; the naive hub sends it bare.
            let payload = if value.get("data").is_some() {
                &value["data"]
            } else {
                &value
            };
            let (Some(p), Some(n), Some(sent)) = (
                payload["p"].as_u64(),
                payload["n"].as_u64(),
                payload["t"].as_u64(),
            ) else {
                continue;
            };
            local.latencies_us.push(now_us().saturating_sub(sent));
            if !local.keys.insert((p, n)) {
                local.duplicates += 1;
            }
            got += 1;
        }
    }
    let mut all = seen.lock().await;
    all.latencies_us.extend(local.latencies_us);
    all.duplicates += local.duplicates;
    all.distinct += local.keys.len() as u64;
}

async fn run(
    name: &str,
    base: &str,
    publish: &str,
    topic_url: String,
    (subs, pubs, per): (usize, usize, usize),
    cockpit: bool,
) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subs);
    let expected = pubs * per;
    let mut tasks = Vec::new();
    for _ in 0..subs {
        tasks.push(actix_web::rt::spawn(subscribe(
            topic_url.clone(),
            expected,
            seen.clone(),
            ready_tx.clone(),
        )));
    }
    for _ in 0..subs {
        ready_rx.recv().await;
    }
    let started = Instant::now();
    let mut publishers = Vec::new();
    for p in 0..pubs {
        let url = format!("{base}{publish}");
        publishers.push(actix_web::rt::spawn(async move {
            let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
            for n in 0..per {
                let payload = serde_json::json!({"p": p, "n": n, "t": now_us()});
                let body = if cockpit {
                    serde_json::json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"publish_note","arguments":{"topic":"ops/bench","message":"bench","data":payload}}}).to_string()
                } else {
                    payload.to_string()
                };
                let _ = client.post(&url).send_body(body).await;
            }
        }));
    }
    for p in publishers {
        let _ = p.await;
    }
    let published = started.elapsed();
    let deadline = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(tasks),
    )
    .await;
    let elapsed = started.elapsed();
    let seen = seen.lock().await;
    let mut lat = seen.latencies_us.clone();
    lat.sort_unstable();
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let delivered = lat.len();
    let lost = (subs * expected).saturating_sub(seen.distinct as usize);
    println!(
        "{name:>8}: {subs} subscribers, {pubs} publishers x {per}: published in {:.2}s ({:.0}/s); delivered {delivered} in {:.2}s = {:.0} events/s; latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms; lost {lost}; duplicates {}{}",
        published.as_secs_f64(),
        expected as f64 / published.as_secs_f64(),
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        seen.duplicates,
        if deadline.is_err() { " (timed out)" } else { "" },
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let subs = args.first().copied().unwrap_or(1000);
    let pubs = args.get(1).copied().unwrap_or(8);
    let per = args.get(2).copied().unwrap_or(250);
    actix_web::rt::System::new().block_on(async move {
        println!("fan-out: rate limiter off, loopback only, {subs} subscribers on one topic");
        let naive = naive_hub().await;
        run(
            "naive",
            &naive,
            "/publish",
            format!("{naive}/sse"),
            (subs, pubs, per),
            false,
        )
        .await;
        let dir = std::env::temp_dir().join(format!("cockpit-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (mut child, base) = cockpit(&dir);
        run(
            "cockpit",
            &base,
            "/mcp",
            format!("{base}/sse?topic=ops/bench"),
            (subs, pubs, per),
            true,
        )
        .await;
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
    });
}
