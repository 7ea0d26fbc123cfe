//! The MCP server-to-client side over raw HTTP: the session stream (GET /mcp) with its status rules, log
//! messages, resource updates and Last-Event-ID resumption; progress as text/event-stream; cancellation.

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{gated_task, spawn_app_with, SseReader, TestApp};

async fn initialize(app: &TestApp) -> String {
    let init = app
        .rpc(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .await;
    init.headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("session id")
        .to_string()
}

async fn in_session(app: &TestApp, session: &str, message: Value) -> Value {
    app.post_mcp_raw(
        &message.to_string(),
        &[
            ("Mcp-Session-Id", session),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
    )
    .await
    .body
}

#[actix_web::test]
async fn get_mcp_follows_the_status_rules() {
    let app = spawn_app_with(|_| {}).await;
    let client = awc::Client::default();
    let url = format!("{}/mcp", app.address);
    let mut no_accept = client.get(&url).send().await.expect("GET");
    assert_eq!(no_accept.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body = no_accept.body().await.expect("body");
    let said = String::from_utf8_lossy(&body);
    assert!(
        said.contains("Accept: text/event-stream") && said.contains("POST"),
        "the 405 says what to do: {said}"
    );
    let sse = ("Accept", "text/event-stream");
    let no_session = client
        .get(&url)
        .insert_header(sse)
        .send()
        .await
        .expect("GET");
    assert_eq!(no_session.status(), StatusCode::BAD_REQUEST);
    let unknown = client
        .get(&url)
        .insert_header(sse)
        .insert_header(("Mcp-Session-Id", "nope"))
        .send()
        .await
        .expect("GET");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let session = initialize(&app).await;
    let bad_version = client
        .get(&url)
        .insert_header(sse)
        .insert_header(("Mcp-Session-Id", session.as_str()))
        .insert_header(("MCP-Protocol-Version", "1999-01-01"))
        .send()
        .await
        .expect("GET");
    assert_eq!(bad_version.status(), StatusCode::BAD_REQUEST);
    let no_session_level = app
        .rpc(json!({"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"debug"}}))
        .await;
    assert_eq!(no_session_level.body["error"]["code"], -32600);
    let bad_level = in_session(
        &app,
        &session,
        json!({"jsonrpc":"2.0","id":3,"method":"logging/setLevel","params":{"level":"loud"}}),
    )
    .await;
    assert_eq!(bad_level["error"]["code"], -32602);
    let missing = in_session(&app, &session, json!({"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"cockpit://job/job_000000000000"}})).await;
    assert_eq!(missing["error"]["code"], -32002);
    let foreign = in_session(&app, &session, json!({"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"file:///etc/passwd"}})).await;
    assert_eq!(foreign["error"]["code"], -32602);
}

#[actix_web::test]
async fn the_session_stream_carries_updates_and_resumes_from_its_last_event_id() {
    let app = spawn_app_with(|_| {}).await;
    let session = initialize(&app).await;
    let note = |n: u32| json!({"jsonrpc":"2.0","id":10+n,"method":"tools/call","params":{"name":"publish_note","arguments":{"topic":"ops/deploys","message":format!("note {n}")}}});
    in_session(
        &app,
        &session,
        json!({"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"info"}}),
    )
    .await;
    let client = awc::Client::default();
    let open = |last: Option<String>| {
        let mut request = client
            .get(format!("{}/mcp", app.address))
            .insert_header(("Accept", "text/event-stream"))
            .insert_header(("Mcp-Session-Id", session.clone()));
        if let Some(last) = last {
            request = request.insert_header(("Last-Event-ID", last));
        }
        request.send()
    };
    let stream = open(None).await.expect("GET");
    assert_eq!(stream.status(), StatusCode::OK);
    in_session(&app, &session, note(1)).await;
    in_session(&app, &session, note(2)).await;
    let first = SseReader::new(stream).messages(2).await;
    assert_eq!(first[0].1["method"], "notifications/message");
    assert!(first[0].1["params"]["data"]["narrative"]
        .as_str()
        .expect("narrative")
        .ends_with("note 1"));
    let resume_from = first[0].0.clone().expect("event id");

    // Resuming after the first message replays the second, and then goes on live.
    let resumed = open(Some(resume_from)).await.expect("GET");
    in_session(&app, &session, note(3)).await;
    let replayed = SseReader::new(resumed).messages(2).await;
    let texts: Vec<&str> = replayed
        .iter()
        .map(|(_, m)| {
            m["params"]["data"]["narrative"]
                .as_str()
                .expect("narrative")
        })
        .collect();
    assert!(
        texts[0].ends_with("note 2") && texts[1].ends_with("note 3"),
        "{texts:?}"
    );
}

#[actix_web::test]
async fn a_waiting_run_eval_with_a_progress_token_streams_progress_then_its_result() {
    let app = spawn_app_with(|_| {}).await;
    let body = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"demo","configId":"p","wait":true},"_meta":{"progressToken":"tok-1"}}});
    let messages = app.post_stream(&body, &[]).await.messages(6).await;
    let progress: Vec<f64> = messages[..5]
        .iter()
        .map(|(_, m)| {
            assert_eq!(m["method"], "notifications/progress");
            assert_eq!(m["params"]["progressToken"], "tok-1");
            assert!(m["params"]["message"].is_string());
            m["params"]["progress"].as_f64().expect("progress")
        })
        .collect();
    assert_eq!(progress, [0.2, 0.4, 0.6, 0.8, 1.0]);
    let (_, reply) = &messages[5];
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["result"]["structuredContent"]["status"], "completed");
}

#[actix_web::test]
async fn notifications_cancelled_cancels_the_job_the_request_waits_on() {
    let app = spawn_app_with(|s| {
        s.evals.tasks.insert("hold".into(), gated_task("never"));
    })
    .await;
    let session = initialize(&app).await;
    let body = json!({"jsonrpc":"2.0","id":"wait-1","method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"hold","configId":"c","wait":true},"_meta":{"progressToken":5}}});
    let mut jobs = app.sse("topic=job/*", &[]).await;
    let waiting = awc::Client::default()
        .post(format!("{}/mcp", app.address))
        .insert_header(("Mcp-Session-Id", session.as_str()))
        .send_body(body.to_string());
    let waiting = actix_web::rt::spawn(async move {
        let response = waiting.await.expect("POST");
        SseReader::new(response).messages(1).await
    });
    let job_id = cancel_once_started(&app, &mut jobs, &session, "wait-1", "user gave up").await;
    let reply = waiting.await.expect("task");
    assert_eq!(
        reply[0].1["result"]["structuredContent"]["status"],
        "cancelled"
    );
    assert_eq!(app.job(&job_id).await["error"], "user gave up");
}

#[actix_web::test]
async fn notifications_cancelled_cancels_a_waiting_run_eval_without_a_progress_token() {
    let app = spawn_app_with(|s| {
        s.evals.tasks.insert("hold".into(), gated_task("never"));
    })
    .await;
    let session = initialize(&app).await;
    let body = json!({"jsonrpc":"2.0","id":"wait-2","method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"hold","configId":"c","wait":true}}});
    let mut jobs = app.sse("topic=job/*", &[]).await;
    let waiting = awc::Client::default()
        .post(format!("{}/mcp", app.address))
        .insert_header(("Mcp-Session-Id", session.as_str()))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .timeout(std::time::Duration::from_secs(60))
        .send_body(body.to_string());
    let waiting = actix_web::rt::spawn(async move {
        let mut response = waiting.await.expect("POST");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let reply: serde_json::Value = response.json().await.expect("a JSON reply");
        (content_type, reply)
    });
    let job_id =
        cancel_once_started(&app, &mut jobs, &session, "wait-2", "the client timed out").await;
    let (content_type, reply) = waiting.await.expect("task");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(reply["id"], "wait-2");
    assert_eq!(reply["result"]["structuredContent"]["status"], "cancelled");
    assert_eq!(app.job(&job_id).await["error"], "the client timed out");
}

/// Waits for the job to start, then sends `notifications/cancelled` for `request_id` in the session; the
/// job's id.
async fn cancel_once_started(
    app: &TestApp,
    jobs: &mut SseReader,
    session: &str,
    request_id: &str,
    reason: &str,
) -> String {
    let started = jobs.until_event("started").await;
    let job_id = started.last().expect("event").data["jobId"]
        .as_str()
        .expect("id")
        .to_string();
    let cancel = app
        .post_mcp_raw(
            &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":request_id,"reason":reason}}).to_string(),
            &[("Mcp-Session-Id", session)],
        )
        .await;
    assert_eq!(cancel.status, StatusCode::ACCEPTED);
    job_id
}

#[actix_web::test]
async fn a_session_stream_carries_its_own_jobs_and_ops_notes_never_another_session_s_job() {
    let app = spawn_app_with(|s| {
        s.evals.tasks.insert("hold".into(), gated_task("release"));
    })
    .await;
    let (mine, theirs) = (initialize(&app).await, initialize(&app).await);
    let debug =
        json!({"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"debug"}});
    in_session(&app, &mine, debug).await;
    let stream = awc::Client::default()
        .get(format!("{}/mcp", app.address))
        .insert_header(("Accept", "text/event-stream"))
        .insert_header(("Mcp-Session-Id", mine.clone()))
        .send()
        .await
        .expect("GET");
    let run = |id: u32| json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"hold","configId":"c"}}});
    let job_of = |reply: Value| {
        reply["result"]["structuredContent"]["jobId"]
            .as_str()
            .expect("jobId")
            .to_string()
    };
    // Another session's job first, then one without a session: neither is this session's business.
    let their_job = job_of(in_session(&app, &theirs, run(3)).await);
    let anonymous = job_of(app.rpc(run(4)).await.body);
    let my_job = job_of(in_session(&app, &mine, run(5)).await);
    app.tool_ok(
        "publish_note",
        json!({"topic": "ops/deploys", "message": "for everyone"}),
    )
    .await;
    let mut reader = SseReader::new(stream);
    let mut topics = Vec::new();
    while topics.last().map(String::as_str) != Some("ops/deploys") {
        let (_, message) = reader.messages(1).await.remove(0);
        topics.push(
            message["params"]["data"]["topic"]
                .as_str()
                .expect("topic")
                .to_string(),
        );
    }
    let mine = format!("job/{my_job}");
    assert!(
        topics[..topics.len() - 1].iter().all(|t| *t == mine) && topics.len() > 1,
        "its own job's events, then the ops note; nothing of {their_job} or {anonymous}: {topics:?}"
    );
    app.open_gate("release");
}

#[actix_web::test]
async fn a_progress_stream_lost_mid_call_is_resumed_with_last_event_id_and_delivers_the_result() {
    let app = spawn_app_with(|s| {
        let script = r#"echo '{"progress":0.5,"message":"half"}'; while [ ! -e release ]; do sleep 0.02; done; echo '{"result":{"ok":true}}'"#;
        s.evals
            .tasks
            .insert("halfway".into(), crate::helpers::shell_task(script));
    })
    .await;
    let body = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"halfway","configId":"c","wait":true},"_meta":{"progressToken":"tok"}}});
    let mut first = app.post_stream(&body, &[]).await;
    let (last_id, progress) = first.messages(1).await.remove(0);
    assert_eq!(progress["params"]["progress"], 0.5);
    let last_id = last_id.expect("every event of a handshake-era call stream has an id");
    drop(first); // The connection is lost mid-call.

    app.open_gate("release");
    let resumed = awc::Client::default()
        .get(format!("{}/mcp", app.address))
        .insert_header(("Accept", "text/event-stream"))
        .insert_header(("Last-Event-ID", last_id.as_str()))
        .send()
        .await
        .expect("GET");
    assert_eq!(resumed.status(), StatusCode::OK);
    let (_, reply) = SseReader::new(resumed).messages(1).await.remove(0);
    assert_eq!(
        reply["id"], 7,
        "the call's response, not its progress again: {reply}"
    );
    assert_eq!(reply["result"]["structuredContent"]["status"], "completed");

    let gone = awc::Client::default()
        .get(format!("{}/mcp", app.address))
        .insert_header(("Accept", "text/event-stream"))
        .insert_header(("Last-Event-ID", "callnotastream0-3"))
        .send()
        .await
        .expect("GET");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}
