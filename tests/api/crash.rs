//! Restart safety with the real binary: crashed at each failpoint and with a plain `kill -9` in the middle of
//! canaries and jobs, restarted on the same database, it finishes every canary exactly once with its
//! counters continued, the database is intact, and a client resuming from its last event id misses nothing
//! and sees nothing twice. Also: a graceful SIGTERM.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    canary_args, eventually, kit_policy, process_alive, Binary, SseEvent, TestApp,
};

/// Canaries check every 300 ms (so all five exist before the first decision); `breach` fails its checks; jobs wait for a file, one of them is requeued.
const CONFIG: &str = r#"
[jobs]
max_running = 2
[canary]
min_interval = "10ms"
[policies."*"."*"]
interval = "300ms"
[slo.stub.gates.breach]
latency_p95_ms = 1000.0
[evals.hold]
command = ["sh", "-c", "sleep 300 & echo $! > grandchild-$1.pid; while [ ! -e open ]; do sleep 0.05; done", "sh", "{jobId}"]
[evals.again]
command = ["sh", "-c", "while [ ! -e open ]; do sleep 0.05; done", "sh", "{jobId}"]
requeue_on_restart = true
"#;

/// A canary that checks once an hour: it stays running for as long as a test needs.
async fn idle_canary(app: &TestApp) -> String {
    app.start_canary(canary_args(
        "m",
        "production",
        kit_policy(json!({"interval": "5m"})),
    ))
    .await
}

fn start(root: &std::path::Path, failpoint: Option<&str>) -> (Binary, TestApp) {
    let env: Vec<(&str, &str)> = failpoint
        .map(|f| ("COCKPIT_FAILPOINT", f))
        .into_iter()
        .collect();
    Binary::start_app(root, CONFIG, &env)
}

/// Waits (bounded) for the binary to die by itself at its failpoint.
fn wait_for_crash(server: &mut Binary) {
    let status = eventually("the failpoint fires", Duration::from_secs(60), || {
        server.child.try_wait().expect("wait")
    });
    assert!(
        !status.success(),
        "the failpoint must end the process abnormally"
    );
}

async fn canary(app: &TestApp, model: &str, gate: &str) -> String {
    let policy = kit_policy(json!({"successesToPromote": 4}));
    app.start_canary(canary_args(model, gate, policy)).await
}

/// Reads a `*` stream until the server goes away; the events it delivered.
async fn until_gone(stream: &mut crate::helpers::SseReader) -> Vec<SseEvent> {
    let mut seen = Vec::new();
    while let Some(event) = stream.next_event_or_gone().await {
        seen.push(event);
    }
    seen
}

async fn crash_and_recover(failpoint: Option<&str>) {
    let dir = tempfile::tempdir().expect("dir");
    let (mut server, app) = start(dir.path(), failpoint);
    let mut all = app.sse("topic=*", &[]).await;
    let mut before: Vec<SseEvent> = Vec::new();
    let held_job = app.run_eval("hold").await;
    let requeued_job = app.run_eval("again").await;
    let mut canaries = Vec::new();
    for (i, gate) in ["production", "breach", "production", "breach", "production"]
        .iter()
        .enumerate()
    {
        canaries.push(canary(&app, &format!("model-{i}"), gate).await);
    }
    if failpoint.is_some() {
        wait_for_crash(&mut server);
    } else {
        // A plain kill -9 once some canary has been checked twice.
        before.extend(
            all.until_event_where(|e| e.event == "metric" && e.data["check"] == 2)
                .await,
        );
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("reaped");
    }
    before.extend(until_gone(&mut all).await);
    let last_seen = before.iter().map(|e| e.id).max().unwrap_or(0);
    let grandchild: i32 =
        std::fs::read_to_string(dir.path().join(format!("grandchild-{held_job}.pid")))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");

    let (mut server, app) = start(dir.path(), None);
    let mut resumed = app
        .sse("topic=*", &[("Last-Event-ID", &last_seen.to_string())])
        .await;
    let mut after: Vec<SseEvent> = Vec::new();
    let mut open: BTreeSet<String> = canaries.iter().cloned().collect();
    for e in &before {
        if matches!(e.event.as_str(), "promoted" | "rolled_back") {
            open.remove(e.data["canaryId"].as_str().unwrap_or_default());
        }
    }
    while !open.is_empty() {
        let event = resumed.next_event().await.expect("the stream goes on");
        if matches!(event.event.as_str(), "promoted" | "rolled_back") {
            open.remove(event.data["canaryId"].as_str().unwrap_or_default());
        }
        after.push(event);
    }
    // Everything committed so far reaches the resumed client, once.
    let newest: i64 = app.sql_rows("SELECT max(seq) FROM events")[0][0]
        .parse()
        .expect("seq");
    while after.last().map_or(last_seen, |e| e.id) < newest {
        after.push(resumed.next_event().await.expect("the stream goes on"));
    }
    let received: Vec<i64> = before.iter().chain(after.iter()).map(|e| e.id).collect();
    let unique: BTreeSet<i64> = received.iter().copied().collect();
    assert_eq!(unique.len(), received.len(), "an event arrived twice");
    let logged: BTreeSet<i64> = app
        .sql_rows(&format!("SELECT seq FROM events WHERE seq <= {newest}"))
        .iter()
        .map(|r| r[0].parse().expect("seq"))
        .collect();
    assert_eq!(unique, logged, "the client saw exactly the log");

    for id in &canaries {
        let ends = app.sql_rows(&format!(
            "SELECT event FROM events WHERE topic = 'canary/{id}' AND event IN ('promoted', 'rolled_back')"
        ));
        assert_eq!(ends.len(), 1, "{id} ended {ends:?}");
        let status = app.tool_ok("canary_status", json!({"canaryId": id})).await;
        assert!(
            matches!(status["status"].as_str(), Some("promoted" | "rolled_back")),
            "{id} is stuck: {status}"
        );
        // Check numbers continue across the crash: 1, 2, 3, … with no gap and no restart.
        let checks: Vec<i64> = app
            .sql_rows(&format!(
                "SELECT data FROM events WHERE topic = 'canary/{id}' AND event = 'metric' ORDER BY seq"
            ))
            .iter()
            .map(|r| {
                let data: Value = serde_json::from_str(&r[0]).expect("event data");
                data["check"].as_i64().expect("check")
            })
            .collect();
        assert_eq!(
            checks,
            (1..=checks.len() as i64).collect::<Vec<_>>(),
            "{id}"
        );
        assert_eq!(status["checks"], checks.len());
    }
    let statuses: HashMap<String, String> = app
        .sql_rows("SELECT job_id, status FROM jobs")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(statuses[&held_job], "failed");
    assert_eq!(app.job(&held_job).await["error"], "interrupted by restart");
    assert!(
        !process_alive(grandchild),
        "the crashed run's process group is gone"
    );
    assert_eq!(
        statuses[&requeued_job], "running",
        "requeue_on_restart runs it again"
    );
    app.assert_intact();

    // Let the requeued job finish before the directory goes, so no test process is left behind.
    std::fs::write(dir.path().join("open"), "").expect("let the requeued job finish");
    let requeued = app.job_events(&requeued_job).await;
    assert_eq!(requeued.last().map(|e| e.event.as_str()), Some("completed"));
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
}

#[actix_web::test]
async fn a_crash_before_a_decision_commits_loses_nothing() {
    crash_and_recover(Some("before_commit")).await;
}

#[actix_web::test]
async fn a_crash_right_after_a_decision_commits_repeats_nothing() {
    crash_and_recover(Some("after_commit")).await;
}

#[actix_web::test]
async fn a_crash_in_the_middle_of_a_check_continues_the_counters() {
    crash_and_recover(Some("mid_check")).await;
}

#[actix_web::test]
async fn a_plain_kill_9_mid_canary_recovers_everything() {
    crash_and_recover(None).await;
}

#[actix_web::test]
async fn sigterm_ends_streams_with_a_retry_hint_stops_jobs_and_exits_0() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().expect("dir");
    let (mut server, app) = start(dir.path(), None);
    let job = app.run_eval("hold").await;
    let mut job_stream = app.sse(&format!("topic=job/{job}"), &[]).await;
    job_stream.until_event("started").await;
    let canary_id = idle_canary(&app).await;
    let mut raw = app.get("/sse?topic=*", &[]).await;
    let grandchild: i32 = std::fs::read_to_string(dir.path().join(format!("grandchild-{job}.pid")))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");

    let pid = nix::unistd::Pid::from_raw(server.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let mut text = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), raw.next())
        .await
        .expect("the stream ends")
    {
        text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
    }
    assert!(
        text.ends_with("retry: 2000\n\n"),
        "ends with a retry hint: {text:?}"
    );
    let status = eventually("an exit after SIGTERM", Duration::from_secs(30), || {
        server.child.try_wait().expect("wait")
    });
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}");
    assert!(
        !process_alive(grandchild),
        "no orphan survives the shutdown"
    );
    let job_row = app.sql_rows(&format!(
        "SELECT status, error FROM jobs WHERE job_id = '{job}'"
    ));
    assert_eq!(job_row, [["failed", "interrupted by shutdown"]]);
    let canary_row = app.sql_rows(&format!(
        "SELECT status FROM canaries WHERE id = '{canary_id}'"
    ));
    assert_eq!(
        canary_row,
        [["running"]],
        "canaries are left to resume at the next start"
    );
    app.assert_intact();
    let log = server.exit_log();
    assert!(log.contains("SIGTERM received"), "{log}");
    drop(job_stream);
}

#[actix_web::test]
async fn a_canary_whose_deadline_passed_while_the_service_was_down_is_rolled_back_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut server, app) = start(dir.path(), None);
    let id = idle_canary(&app).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    // While it is down, its deadline passes.
    app.sql_rows(&format!(
        "UPDATE canaries SET deadline_at = '2000-01-01 00:00:00.000' WHERE id = '{id}'"
    ));
    let (mut server, app) = start(dir.path(), None);
    let events = app.canary_events(&id).await;
    let end = events.last().expect("events");
    assert_eq!(
        (end.event.as_str(), end.data["reasonCode"].as_str()),
        ("rolled_back", Some("deadline"))
    );
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
}
