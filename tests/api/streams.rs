//! Stream resources with the real binary: vanished subscribers leave no file descriptors behind, and a
//! subscriber that stops reading is cut off once its queue is full while the others get every event.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{eventually, Binary, TestApp};

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, std::iter::Iterator::count)
}

/// A raw SSE connection: request sent and the response head read.
fn raw_stream(address: &str, topic: &str) -> TcpStream {
    let host = address.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(host).expect("connect");
    write!(
        tcp,
        "GET /sse?topic={topic} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("send");
    let mut head = [0u8; 64];
    let n = tcp.read(&mut head).expect("head");
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    tcp
}

#[test]
fn vanished_subscribers_leave_no_file_descriptors_behind() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Binary::start(dir.path(), "[sse]\nkeep_alive_seconds = 0.2\n", &[]);
    let pid = server.child.id();
    // Baseline after one stream opened and closed (lazily opened pool connections count from then on).
    let warmup = raw_stream(&server.address, "ops/warmup");
    let with_warmup = open_fds(pid);
    drop(warmup);
    eventually(
        "the warm-up stream released",
        Duration::from_secs(10),
        || (open_fds(pid) < with_warmup).then_some(()),
    );
    let baseline = open_fds(pid);
    let streams: Vec<TcpStream> = (0..50)
        .map(|_| raw_stream(&server.address, "ops/reaping"))
        .collect();
    assert!(
        open_fds(pid) >= baseline + 50,
        "{} fds for 50 streams over {baseline}",
        open_fds(pid)
    );
    drop(streams);
    // Within a few keep-alive periods every socket is noticed dead and released.
    eventually("fds back to the baseline", Duration::from_secs(10), || {
        (open_fds(pid) <= baseline).then_some(())
    });
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
}

#[actix_web::test]
async fn a_subscriber_that_stops_reading_is_cut_off_and_the_others_get_everything() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Binary::start(
        dir.path(),
        "[sse]\nsubscriber_queue = 8\n[rate_limit]\nbucket = 0\n",
        &[],
    );
    let app = TestApp::attach(&server.address, dir.path());
    let stalled = raw_stream(&server.address, "ops/flood");
    let mut reader = app.sse("topic=ops/flood", &[]).await;
    // Large notes fill the stalled client's socket buffers, then its queue of 8.
    let blob = "x".repeat(3900);
    const NOTES: usize = 1500;
    let mut received = 0;
    for n in 0..NOTES {
        app.tool_ok(
            "publish_note",
            json!({"topic": "ops/flood", "message": format!("note {n}"), "data": {"blob": blob}}),
        )
        .await;
        // The healthy subscriber keeps up as it goes.
        while received <= n {
            let event = reader
                .next_event()
                .await
                .expect("the healthy stream goes on");
            assert_eq!(event.data["message"], format!("note {received}"));
            received += 1;
        }
    }
    assert_eq!(received, NOTES);
    let mut metrics = app.get("/metrics", &[]).await;
    let text = String::from_utf8(metrics.body().limit(1 << 20).await.expect("body").to_vec())
        .expect("utf-8");
    let dropped: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("cockpit_events_dropped_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        dropped >= 1.0,
        "the stalled subscriber was not cut off:\n{text}"
    );
    drop(stalled);
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
}
