//! MCP 2026-07-28 on the same `/mcp` as the handshake era, over raw HTTP: requests carry their version and
//! capabilities in `_meta` and need no session; headers that disagree with the body, a version we do not
//! speak and a missing `_meta` are refused with 400 and the revision's codes; an unknown method is 404;
//! results say `resultType`; `subscriptions/listen` streams resource updates tagged with its request id.

use serde_json::{json, Value};

use crate::helpers::{gated_task, spawn_app, spawn_app_with, TestApp};

const VERSION: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"}
    })
}

fn request(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = meta();
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// The headers a conforming client sends with `message`.
fn headers_for(message: &Value) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("MCP-Protocol-Version", VERSION.to_string()),
        (
            "Mcp-Method",
            message["method"].as_str().unwrap_or_default().to_string(),
        ),
    ];
    let params = &message["params"];
    if let Some(name) = params["name"].as_str().or(params["uri"].as_str()) {
        headers.push(("Mcp-Name", name.to_string()));
    }
    headers
}

async fn post(app: &TestApp, message: &Value, headers: &[(&str, String)]) -> crate::helpers::Reply {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    app.post_mcp_raw(&message.to_string(), &headers).await
}

async fn modern(app: &TestApp, message: &Value) -> crate::helpers::Reply {
    post(app, message, &headers_for(message)).await
}

#[actix_web::test]
async fn server_discover_answers_without_a_session_and_names_every_revision() {
    let app = spawn_app().await;
    let reply = modern(&app, &request(1, "server/discover", json!({}))).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.headers.get("mcp-session-id").is_none(),
        "no session is minted"
    );
    let result = &reply.body["result"];
    assert_eq!(
        result["supportedVersions"],
        json!([VERSION, "2025-11-25", "2025-06-18", "2025-03-26"])
    );
    assert_eq!(result["resultType"], "complete");
    assert!(result["capabilities"]["tools"].is_object());
    assert!(
        result["capabilities"].get("logging").is_none(),
        "logging is set per request now"
    );
    assert!(result["instructions"]
        .as_str()
        .expect("instructions")
        .contains("canary"));
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-cockpit"
    );
    assert_eq!(
        (result["ttlMs"].as_u64(), result["cacheScope"].as_str()),
        (Some(300_000), Some("public"))
    );
}

#[actix_web::test]
async fn tools_run_with_no_session_and_results_say_complete() {
    let app = spawn_app().await;
    let listed = modern(&app, &request(1, "tools/list", json!({}))).await;
    assert_eq!(listed.body["result"]["resultType"], "complete");
    assert!(
        listed.body["result"]["tools"]
            .as_array()
            .expect("tools")
            .len()
            > 5
    );
    let call = request(
        2,
        "tools/call",
        json!({"name": "run_eval", "arguments": {"taskId": "demo", "configId": "m", "wait": true}}),
    );
    let ran = modern(&app, &call).await;
    assert_eq!(ran.status, 200, "{}", ran.body);
    let result = &ran.body["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["structuredContent"]["status"], "completed");
    assert!(
        result.get("ttlMs").is_none(),
        "a tool call is not cacheable"
    );
    // A session header from the handshake era is ignored, not a 404.
    let list = request(3, "tools/list", json!({}));
    let mut headers = headers_for(&list);
    headers.push(("Mcp-Session-Id", "no-such-session".into()));
    assert_eq!(post(&app, &list, &headers).await.status, 200);
}

#[actix_web::test]
async fn headers_that_disagree_with_the_body_are_refused_with_header_mismatch() {
    let app = spawn_app().await;
    let call = request(
        4,
        "tools/call",
        json!({"name": "model_gates", "arguments": {}}),
    );
    let good = headers_for(&call);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "Mcp-Name names another tool",
            vec![
                good[0].clone(),
                good[1].clone(),
                ("Mcp-Name", "cancel_job".into()),
            ],
        ),
        ("Mcp-Name missing", good[..2].to_vec()),
        (
            "Mcp-Method names another method",
            vec![
                good[0].clone(),
                ("Mcp-Method", "tools/list".into()),
                good[2].clone(),
            ],
        ),
        ("MCP-Protocol-Version missing", good[1..].to_vec()),
        (
            "Mcp-Name broken base64",
            vec![
                good[0].clone(),
                good[1].clone(),
                ("Mcp-Name", "=?base64?%%?=".into()),
            ],
        ),
    ];
    for (case, headers) in cases {
        let reply = post(&app, &call, &headers).await;
        assert_eq!(reply.status, 400, "{case}");
        assert_eq!(
            reply.body["error"]["code"], -32020,
            "{case}: {}",
            reply.body
        );
        assert_eq!(reply.body["id"], 4, "{case}");
    }
    let encoded = vec![
        good[0].clone(),
        good[1].clone(),
        ("Mcp-Name", "=?base64?bW9kZWxfZ2F0ZXM=?=".into()),
    ];
    assert_eq!(
        post(&app, &call, &encoded).await.status,
        200,
        "a base64 name decodes"
    );
    let audited = app.sql_rows("SELECT count(*) FROM audit");
    assert_eq!(audited, [["0"]], "nothing ran for a refused request");
}

#[actix_web::test]
async fn a_version_we_do_not_speak_or_a_missing_meta_is_refused_with_what_to_send() {
    let app = spawn_app().await;
    let mut future = request(5, "tools/list", json!({}));
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2030-01-01");
    let mut headers = headers_for(&future);
    headers[0].1 = "2030-01-01".into();
    let reply = post(&app, &future, &headers).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"]["code"], -32022, "{}", reply.body);
    assert_eq!(reply.body["error"]["data"]["supported"][0], VERSION);
    assert_eq!(reply.body["error"]["data"]["requested"], "2030-01-01");

    let bare = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": {}});
    let reply = post(&app, &bare, &headers_for(&bare)).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"]["code"], -32602);
    let message = reply.body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("io.modelcontextprotocol/protocolVersion")
            && message.contains("a valid request"),
        "{message}"
    );

    let mut no_capabilities = request(7, "tools/list", json!({}));
    no_capabilities["params"]["_meta"]
        .as_object_mut()
        .expect("meta")
        .remove("io.modelcontextprotocol/clientCapabilities");
    let reply = modern(&app, &no_capabilities).await;
    assert_eq!(
        (reply.status.as_u16(), &reply.body["error"]["code"]),
        (400, &json!(-32602))
    );
}

#[actix_web::test]
async fn handshake_era_methods_are_unknown_to_the_modern_revision_and_answer_404() {
    let app = spawn_app().await;
    for method in [
        "ping",
        "initialize",
        "logging/setLevel",
        "resources/subscribe",
        "no/such",
    ] {
        let reply = modern(&app, &request(8, method, json!({}))).await;
        assert_eq!(reply.status, 404, "{method}");
        assert_eq!(reply.body["error"]["code"], -32601, "{method}");
    }
    // The same methods still work for a handshake-era client.
    let ping = app
        .rpc(json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
        .await;
    assert_eq!(ping.body["result"], json!({}));
}

#[actix_web::test]
async fn a_missing_resource_is_invalid_params_in_the_modern_revision() {
    let app = spawn_app().await;
    let read = request(
        10,
        "resources/read",
        json!({"uri": "cockpit://job/job_nothere0000"}),
    );
    let reply = modern(&app, &read).await;
    assert_eq!(reply.body["error"]["code"], -32602, "{}", reply.body);
    let legacy = app
        .rpc(json!({"jsonrpc": "2.0", "id": 11, "method": "resources/read", "params": {"uri": "cockpit://job/job_nothere0000"}}))
        .await;
    assert_eq!(
        legacy.body["error"]["code"], -32002,
        "the handshake era keeps its code"
    );
}

#[actix_web::test]
async fn subscriptions_listen_acknowledges_then_carries_updates_of_the_named_resources_only() {
    let app = spawn_app_with(|s| {
        s.evals.tasks.insert("hold".into(), gated_task("never"));
    })
    .await;
    let watched = app.run_eval("hold").await;
    let other = app.run_eval("hold").await;
    let listen = json!({"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen", "params": {
        "_meta": meta(),
        "notifications": {"resourceSubscriptions": [format!("cockpit://job/{watched}")], "toolsListChanged": true}
    }});
    let mut stream = app.post_stream(&listen, &headers_for(&listen)).await;
    let first = stream.messages(1).await;
    let (id, ack) = &first[0];
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourceSubscriptions": [format!("cockpit://job/{watched}")]}),
        "the list filters are not honoured (the lists never change), so they are not acknowledged"
    );
    assert_eq!(id, &None, "the revision's streams carry no event ids");

    app.tool_ok(
        "cancel_job",
        json!({"jobId": other, "reason": "not watched"}),
    )
    .await;
    app.tool_ok("cancel_job", json!({"jobId": watched, "reason": "watched"}))
        .await;
    let update = &stream.messages(1).await[0].1;
    assert_eq!(update["method"], "notifications/resources/updated");
    assert_eq!(update["params"]["uri"], format!("cockpit://job/{watched}"));
    assert_eq!(
        update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
}

#[actix_web::test]
async fn subscriptions_listen_refuses_a_resource_that_does_not_exist() {
    let app = spawn_app().await;
    let listen = request(
        12,
        "subscriptions/listen",
        json!({"notifications": {"resourceSubscriptions": ["cockpit://job/job_nothere0000"]}}),
    );
    let reply = modern(&app, &listen).await;
    assert_eq!(reply.body["error"]["code"], -32602);
    assert!(reply.body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("job_nothere0000"));
}

#[actix_web::test]
async fn closing_a_call_s_stream_cancels_the_request_and_its_job() {
    let app = spawn_app_with(|s| {
        // The server learns of a closed connection when it next writes to it: a keep-alive at the latest.
        s.sse.keep_alive_seconds = std::time::Duration::from_millis(200);
        let script = r#"echo '{"progress":0.5}'; while [ ! -e never ]; do sleep 0.02; done"#;
        s.evals
            .tasks
            .insert("halfway".into(), crate::helpers::shell_task(script));
    })
    .await;
    let mut call = request(
        13,
        "tools/call",
        json!({"name": "run_eval", "arguments": {"taskId": "halfway", "configId": "c", "wait": true}}),
    );
    call["params"]["_meta"]["progressToken"] = json!("p");
    let mut stream = app.post_stream(&call, &headers_for(&call)).await;
    let (id, progress) = stream.messages(1).await.remove(0);
    assert_eq!(progress["method"], "notifications/progress");
    assert_eq!(id, None, "no event ids in this revision");
    drop(stream); // The client closes the request's stream.

    let listed = app.tool_ok("list_jobs", json!({})).await;
    let job = listed["jobs"][0]["jobId"]
        .as_str()
        .expect("jobId")
        .to_string();
    let events = app.job_events(&job).await;
    assert_eq!(
        crate::helpers::names(&events).last(),
        Some(&"cancelled"),
        "the job ends cancelled"
    );
    let audit: Vec<Value> = app
        .sql_rows(&format!(
            "SELECT args FROM audit WHERE action = 'cancel_job' AND target = '{job}'"
        ))
        .iter()
        .map(|row| serde_json::from_str::<Value>(&row[0]).expect("audit args")["via"].clone())
        .collect();
    assert_eq!(audit, [json!("stream closed")]);
}
