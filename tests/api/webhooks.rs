//! Webhooks on promotion and rollback: sent after the decision with its event id, retried, and — when they
//! finally fail — recorded in the audit trail without touching the decision.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::helpers::{canary_args, kit_policy, serve, spawn_app_with, TestApp};

struct Receiver {
    /// Requests answered 500 before the first 200.
    failures_left: AtomicUsize,
    seen: mpsc::UnboundedSender<(Option<String>, Value)>,
}

async fn receive(
    req: HttpRequest,
    body: web::Json<Value>,
    receiver: web::Data<Receiver>,
) -> HttpResponse {
    let id = req
        .headers()
        .get("x-cockpit-event-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let _ = receiver.seen.send((id, body.into_inner()));
    let failing = receiver
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::Ok().finish()
    }
}

/// A webhook receiver failing its first `failures` requests; its URL and the requests it sees.
fn receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<(Option<String>, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = web::Data::new(Receiver {
        failures_left: AtomicUsize::new(failures),
        seen: tx,
    });
    let port = serve(move |cfg| {
        cfg.app_data(state.clone())
            .route("/hook", web::post().to(receive));
    });
    (format!("http://127.0.0.1:{port}/hook"), rx)
}

async fn next_request(
    rx: &mut mpsc::UnboundedReceiver<(Option<String>, Value)>,
) -> (Option<String>, Value) {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the webhook arrives")
        .expect("receiver open")
}

async fn app_with_hook(url: &str, retries: u32) -> TestApp {
    spawn_app_with(|s| {
        s.webhooks.url = url.into();
        s.webhooks.retries = retries;
        s.webhooks.timeout_seconds = std::time::Duration::from_secs_f64(2.0);
    })
    .await
}

fn canary(gate: &str, interval: &str) -> Value {
    canary_args("lukhas-v2", gate, kit_policy(json!({"interval": interval})))
}

#[actix_web::test]
async fn a_promotion_is_posted_with_its_event_id_and_retried_until_taken() {
    let (url, mut seen) = receiver(2);
    let app = app_with_hook(&url, 3).await;
    let started = app
        .tool_ok("start_canary", canary("production", "100ms"))
        .await;
    let id = started["canaryId"].as_str().expect("id");
    let events = app.canary_events(id).await;
    let promoted = events.last().expect("events");
    assert_eq!(promoted.event, "promoted");
    for _ in 0..3 {
        let (header, body) = next_request(&mut seen).await;
        assert_eq!(header, Some(promoted.id.to_string()));
        assert_eq!(body["id"], promoted.id);
        assert_eq!(body["event"], "promoted");
        assert_eq!(body["topic"], format!("canary/{id}"));
        assert_eq!(body["data"], promoted.data);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), seen.recv())
            .await
            .is_err(),
        "delivered once it was taken: no further attempt"
    );
}

#[actix_web::test]
async fn a_webhook_that_keeps_failing_is_audited_and_never_changes_the_decision() {
    let (url, mut seen) = receiver(usize::MAX);
    let app = app_with_hook(&url, 1).await;
    let started = app
        .tool_ok("start_canary", canary("production", "5m"))
        .await;
    let id = started["canaryId"].as_str().expect("id");
    let aborted = app
        .tool_ok(
            "abort_canary",
            json!({"canaryId": id, "reason": "manual override"}),
        )
        .await;
    assert_eq!(aborted["status"], "rolled_back");
    for _ in 0..2 {
        assert_eq!(next_request(&mut seen).await.1["event"], "rolled_back");
    }
    // The failure is recorded after the last attempt: wait (bounded) for its audit row.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = app.sql_rows(
            "SELECT actor, action, target, args FROM audit WHERE action = 'webhook_failed'",
        );
        if !rows.is_empty() || Instant::now() > deadline {
            break rows;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0][..3],
        ["webhook", "webhook_failed", &format!("canary/{id}")]
    );
    let args: Value = serde_json::from_str(&rows[0][3]).expect("args");
    assert_eq!(args["attempts"], 2);
    assert_eq!(args["error"], "HTTP 500 Internal Server Error");
    let status = app.tool_ok("canary_status", json!({"canaryId": id})).await;
    assert_eq!(
        (status["status"].as_str(), status["reason"].as_str()),
        (Some("rolled_back"), Some("manual override"))
    );
}

#[actix_web::test]
async fn a_decision_whose_process_died_before_the_post_is_delivered_once_after_the_restart() {
    let (url, mut seen) = receiver(0);
    let dir = tempfile::tempdir().expect("dir");
    let config = "[canary]\nmin_interval = \"10ms\"\n";
    let hook = [("COCKPIT_WEBHOOK_URL", url.as_str())];
    let mut server = crate::helpers::Binary::start(
        dir.path(),
        config,
        &[hook[0], ("COCKPIT_FAILPOINT", "after_commit")],
    );
    let app = TestApp::attach(&server.address, dir.path());
    app.tool_ok("start_canary", canary("production", "100ms"))
        .await;
    // The promotion commits, then the process dies before anyone hears of it.
    let status = server.child.wait().expect("the failpoint ends the process");
    assert!(!status.success());
    assert_eq!(app.sql_rows("SELECT count(*) FROM webhook_outbox"), [["1"]]);
    let seq = app.sql_rows("SELECT seq FROM events WHERE event = 'promoted'")[0][0].clone();

    let mut server = crate::helpers::Binary::start(dir.path(), config, &hook);
    let (id, body) = next_request(&mut seen).await;
    assert_eq!(id.as_deref(), Some(seq.as_str()));
    assert_eq!(body["event"], "promoted");
    // Delivered: the outbox empties, so nothing is left to send again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.sql_rows("SELECT count(*) FROM webhook_outbox") != [["0"]] {
        assert!(Instant::now() < deadline, "the outbox never emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.try_recv().is_err(), "exactly one delivery");
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
}
