//! The panic boundary, on the real binary with the `tool_panic` failpoint (every `model_gates` call
//! panics in its handler): the caller gets -32603, never an empty reply; a batch still carries the replies
//! of the messages around the one that panicked (the run_eval before it did start its job); other clients
//! go on being served; and the panic is logged once, as an error line, with no panic text besides.

use serde_json::{json, Value};

use crate::helpers::Binary;

fn call(id: i64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":arguments}})
}

#[actix_web::test]
async fn a_panicking_handler_answers_internal_error_and_takes_nothing_else_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, app) =
        Binary::start_app(dir.path(), "", &[("COCKPIT_FAILPOINT", "tool_panic")]);

    let alone = app
        .rpc(call(1, "model_gates", json!({"modelId": "m"})))
        .await;
    assert_eq!(alone.body["id"], 1, "{}", alone.body);
    assert_eq!(alone.body["error"]["code"], -32603, "{}", alone.body);

    let batch = json!([
        call(10, "run_eval", json!({"taskId": "probe", "configId": "c"})),
        call(11, "model_gates", json!({"modelId": "m"})),
        call(12, "list_jobs", json!({})),
    ]);
    let replies = app.rpc(batch).await.body;
    let replies = replies.as_array().expect("a batch reply");
    let by_id = |id: i64| {
        replies
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("reply {id} in {replies:?}"))
    };
    let job_id = by_id(10)["result"]["structuredContent"]["jobId"]
        .as_str()
        .expect("the run_eval before the panic keeps its job id")
        .to_string();
    assert_eq!(by_id(11)["error"]["code"], -32603);
    let listed = &by_id(12)["result"]["structuredContent"]["jobs"];
    assert!(
        listed
            .as_array()
            .expect("jobs")
            .iter()
            .any(|j| j["jobId"] == job_id.as_str()),
        "the message after the panic ran too: {listed}"
    );

    // Other calls, on other connections, are served as before.
    app.job_events(&job_id).await;
    let finished = app.tool_ok("job_status", json!({"jobId": job_id})).await;
    assert_eq!(finished["status"], "completed", "{finished}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let log = server.exit_log();
    let logged = log
        .lines()
        .filter(|line| line.contains("internal error: panic"))
        .count();
    assert_eq!(logged, 2, "each panic logged once: {log}");
    assert!(
        !log.contains("panicked at") && !log.contains("RUST_BACKTRACE"),
        "no panic text besides the log line: {log}"
    );
    assert!(
        log.lines()
            .filter(|line| line.contains("internal error: panic"))
            .all(|line| line.contains("ERROR")),
        "{log}"
    );
}
