//! Tasks on the real server: a long call's handle is the job or canary it started. In the handshake era a
//! `tools/call` with `params.task` answers at once and `tasks/get|result|list|cancel` follow it; in
//! 2026-07-28 a client declaring `io.modelcontextprotocol/tasks` gets `resultType: "task"` for a `run_eval`
//! that would wait, and `tasks/get` carries the result at the end. Task ids outlive the process.

use serde_json::{json, Value};

use crate::helpers::{canary_args, gated_task, kit_policy, spawn_app_with, Binary, TestApp};

async fn rpc(app: &TestApp, id: i64, method: &str, params: Value) -> Value {
    app.rpc(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
        .await
        .body
}

async fn held_app() -> TestApp {
    spawn_app_with(|s| {
        s.evals.tasks.insert("hold".into(), gated_task("release"));
    })
    .await
}

#[actix_web::test]
async fn a_task_augmented_run_eval_answers_at_once_and_tasks_follow_it_to_its_result() {
    let app = held_app().await;
    let listed = rpc(&app, 1, "tools/list", json!({})).await;
    let supporting: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter(|t| t["execution"]["taskSupport"] == "optional")
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(supporting, ["run_eval", "start_canary"]);

    let created = rpc(
        &app,
        2,
        "tools/call",
        json!({"name": "run_eval",
        "arguments": {"taskId": "hold", "configId": "c", "wait": true}, "task": {"ttl": 60000}}),
    )
    .await;
    let task = &created["result"]["task"];
    assert_eq!(task["status"], "working", "{created}");
    let id = task["taskId"].as_str().expect("taskId").to_string();
    assert!(id.starts_with("job_"), "the task is the job: {id}");
    assert!(task["createdAt"]
        .as_str()
        .expect("createdAt")
        .ends_with('Z'));
    assert_eq!(task["pollInterval"], 1000);

    let got = rpc(&app, 3, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(got["result"]["status"], "working");
    let all = rpc(&app, 4, "tasks/list", json!({})).await;
    assert_eq!(all["result"]["tasks"][0]["taskId"], id.as_str());

    // tasks/result waits for the end: asked before the job can finish, it answers once it has.
    let waiting = {
        let app_address = app.address.clone();
        let id = id.clone();
        actix_web::rt::spawn(async move {
            let body = json!({"jsonrpc": "2.0", "id": 5, "method": "tasks/result", "params": {"taskId": id}});
            let mut response = awc::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .finish()
                .post(format!("{app_address}/mcp"))
                .send_body(body.to_string())
                .await
                .expect("tasks/result");
            response.json::<Value>().await.expect("json")
        })
    };
    let still = rpc(&app, 6, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(still["result"]["status"], "working", "nothing ended it yet");
    app.open_gate("release");
    let result = waiting.await.expect("joined");
    assert_eq!(
        result["result"]["structuredContent"]["status"], "completed",
        "{result}"
    );
    assert_eq!(
        result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str()
    );
    let done = rpc(&app, 7, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(done["result"]["status"], "completed");
}

#[actix_web::test]
async fn tasks_cancel_cancels_the_job_or_canary_and_refuses_one_that_ended() {
    let app = held_app().await;
    let created = rpc(
        &app,
        1,
        "tools/call",
        json!({"name": "run_eval",
        "arguments": {"taskId": "hold", "configId": "c"}, "task": {}}),
    )
    .await;
    let job = created["result"]["task"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_string();
    let cancelled = rpc(&app, 2, "tasks/cancel", json!({"taskId": job})).await;
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    assert_eq!(app.job(&job).await["status"], "cancelled");
    let again = rpc(&app, 3, "tasks/cancel", json!({"taskId": job})).await;
    assert_eq!(again["error"]["code"], -32602);
    let audit = app.sql_rows(&format!(
        "SELECT action FROM audit WHERE target = '{job}' ORDER BY id"
    ));
    assert_eq!(
        audit,
        [["run_eval"], ["cancel_job"]],
        "the cancellation is audited as cancel_job"
    );

    let arguments = canary_args("m", "production", kit_policy(json!({"interval": "5m"})));
    let canary = rpc(
        &app,
        4,
        "tools/call",
        json!({"name": "start_canary", "arguments": arguments, "task": {}}),
    )
    .await;
    let canary = canary["result"]["task"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_string();
    assert!(canary.starts_with("canary_"));
    let aborted = rpc(&app, 5, "tasks/cancel", json!({"taskId": canary})).await;
    assert_eq!(aborted["result"]["status"], "cancelled", "{aborted}");
    let status = app
        .tool_ok("canary_status", json!({"canaryId": canary}))
        .await;
    assert_eq!(status["status"], "rolled_back");

    let refused = rpc(
        &app,
        6,
        "tools/call",
        json!({"name": "model_gates", "arguments": {}, "task": {}}),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32601, "{refused}");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(message.contains("execution.taskSupport"), "{message}");
    let unknown = rpc(&app, 7, "tasks/get", json!({"taskId": "job_nothere0000"})).await;
    assert_eq!(unknown["error"]["code"], -32602);
}

fn modern_call(
    id: i64,
    method: &str,
    params: Value,
    extension: bool,
) -> (Value, Vec<(&'static str, String)>) {
    let mut capabilities = json!({});
    if extension {
        capabilities["extensions"] = json!({"io.modelcontextprotocol/tasks": {}});
    }
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    let name = params["name"]
        .as_str()
        .or(params["taskId"].as_str())
        .map(String::from);
    let mut headers = vec![
        ("MCP-Protocol-Version", "2026-07-28".to_string()),
        ("Mcp-Method", method.to_string()),
    ];
    if let Some(name) = name {
        headers.push(("Mcp-Name", name));
    }
    (
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        headers,
    )
}

async fn modern(app: &TestApp, id: i64, method: &str, params: Value, extension: bool) -> Value {
    let (body, headers) = modern_call(id, method, params, extension);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    app.post_mcp_raw(&body.to_string(), &headers).await.body
}

#[actix_web::test]
async fn in_2026_07_28_a_waiting_run_eval_becomes_a_task_only_for_a_client_that_declared_tasks() {
    let app = held_app().await;
    let discovered = modern(&app, 1, "server/discover", json!({}), false).await;
    assert!(
        discovered["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"]
            .is_object()
    );

    let call =
        json!({"name": "run_eval", "arguments": {"taskId": "hold", "configId": "c", "wait": true}});
    let created = modern(&app, 2, "tools/call", call, true).await;
    let task = &created["result"];
    assert_eq!(task["resultType"], "task", "{created}");
    assert_eq!(task["status"], "working");
    assert_eq!(task["pollIntervalMs"], 1000);
    let id = task["taskId"].as_str().expect("taskId").to_string();

    let polled = modern(&app, 3, "tasks/get", json!({"taskId": id}), true).await;
    assert_eq!(
        (
            polled["result"]["resultType"].as_str(),
            polled["result"]["status"].as_str()
        ),
        (Some("complete"), Some("working"))
    );
    assert!(polled["result"].get("result").is_none());
    assert_eq!(
        modern(
            &app,
            4,
            "tasks/update",
            json!({"taskId": id, "inputResponses": {}}),
            true
        )
        .await["result"]["resultType"],
        "complete"
    );
    app.open_gate("release");
    let finished = crate::helpers::eventually_async(
        "the task completes",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(50),
        || async {
            let polled = modern(&app, 5, "tasks/get", json!({"taskId": id}), true).await;
            (polled["result"]["status"] == "completed").then_some(polled)
        },
    )
    .await;
    assert_eq!(
        finished["result"]["result"]["structuredContent"]["status"],
        "completed"
    );
    assert_eq!(
        finished["result"]["result"]["resultType"], "complete",
        "the inlined result is shaped as this revision's"
    );

    // Without the extension the same call waits and answers with the result itself.
    let plain = modern(
        &app,
        6,
        "tools/call",
        json!({"name": "run_eval", "arguments": {"taskId": "hold", "configId": "c", "wait": true}}),
        false,
    )
    .await;
    assert_eq!(plain["result"]["resultType"], "complete");
    assert_eq!(plain["result"]["structuredContent"]["status"], "completed");
    // The methods that only the handshake era has are unknown here.
    for method in ["tasks/list", "tasks/result"] {
        let (body, headers) = modern_call(7, method, json!({"taskId": id}), true);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(
            app.post_mcp_raw(&body.to_string(), &headers).await.status,
            404,
            "{method}"
        );
    }
}

#[actix_web::test]
async fn a_task_id_still_answers_after_the_server_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    let config = "[evals.hold]\ncommand = [\"sh\", \"-c\", \"while [ ! -e release ]; do sleep 0.05; done\"]\nrequeue_on_restart = true\n";
    let (mut server, app) = Binary::start_app(dir.path(), config, &[]);
    let created = rpc(
        &app,
        1,
        "tools/call",
        json!({"name": "run_eval", "arguments": {"taskId": "hold", "configId": "c"}, "task": {}}),
    )
    .await;
    let id = created["result"]["task"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_string();
    server.child.kill().expect("kill -9");
    server.exit_log();
    let (_server, app) = Binary::start_app(dir.path(), config, &[]);
    let got = rpc(&app, 2, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(got["result"]["status"], "working", "{got}");
    app.open_gate("release");
    let result = rpc(&app, 3, "tasks/result", json!({"taskId": id})).await;
    assert_eq!(
        result["result"]["structuredContent"]["status"], "completed",
        "{result}"
    );
}

#[actix_web::test]
async fn subscriptions_listen_carries_a_task_s_state_to_a_client_that_declared_tasks() {
    let app = held_app().await;
    let call =
        json!({"name": "run_eval", "arguments": {"taskId": "hold", "configId": "c", "wait": true}});
    let created = modern(&app, 1, "tools/call", call, true).await;
    let id = created["result"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_string();
    let asked = json!({"notifications": {"taskIds": [id]}});

    let (body, headers) = modern_call(2, "subscriptions/listen", asked.clone(), false);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let refused = app.post_mcp_raw(&body.to_string(), &headers).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], -32021);
    assert!(
        refused.body["error"]["data"]["requiredCapabilities"]["extensions"]
            ["io.modelcontextprotocol/tasks"]
            .is_object()
    );

    let (body, headers) = modern_call(3, "subscriptions/listen", asked, true);
    let mut stream = app.post_stream(&body, &headers).await;
    let ack = stream.messages(1).await.remove(0).1;
    assert_eq!(
        ack["params"]["notifications"]["taskIds"],
        json!([id]),
        "{ack}"
    );

    modern(&app, 4, "tasks/cancel", json!({"taskId": id}), true).await;
    let note = loop {
        let (_, message) = stream.messages(1).await.remove(0);
        if message["params"]["status"] == "cancelled" {
            break message;
        }
    };
    assert_eq!(note["method"], "notifications/tasks");
    assert_eq!(note["params"]["taskId"], id.as_str());
    assert_eq!(
        note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        3
    );
}
