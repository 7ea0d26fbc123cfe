//! `/mcp`: JSON-RPC error codes, sessions and versions, tool definitions, and the kit's lenient curl.

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[actix_web::test]
async fn initialize_negotiates_the_version_and_issues_a_session_that_delete_ends() {
    let app = spawn_app().await;
    let init = |version: &str| json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":version,"capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let old = app.rpc(init("2025-03-26")).await;
    assert_eq!(old.body["result"]["protocolVersion"], "2025-03-26");
    let future = app.rpc(init("2099-01-01")).await;
    assert_eq!(future.body["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(future.body["result"]["serverInfo"]["name"], "mcp-cockpit");
    let session = future
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("session id")
        .to_string();

    let with_session = [
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    assert_eq!(
        app.post_mcp_raw(ping, &with_session).await.body["result"],
        json!({})
    );
    let initialized = app
        .post_mcp_raw(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &with_session,
        )
        .await;
    assert_eq!(
        (initialized.status, initialized.body.clone()),
        (StatusCode::ACCEPTED, Value::Null)
    );

    let client = awc::Client::default();
    let deleted = client
        .delete(format!("{}/mcp", app.address))
        .insert_header(("Mcp-Session-Id", session.as_str()))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = app.post_mcp_raw(ping, &with_session).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let bad_version = app
        .post_mcp_raw(ping, &[("MCP-Protocol-Version", "1999-01-01")])
        .await;
    assert_eq!(bad_version.status, StatusCode::BAD_REQUEST);
    let get = client
        .get(format!("{}/mcp", app.address))
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[actix_web::test]
async fn batches_are_answered_without_a_session_and_refused_with_a_newer_protocol_header() {
    let app = spawn_app().await;
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"nope"}]"#;
    let reply = app.post_mcp_raw(batch, &[]).await;
    let replies = reply.body.as_array().expect("batch reply");
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0]["result"], json!({}));
    assert_eq!(replies[1]["error"]["code"], -32601);
    let refused = app
        .post_mcp_raw(batch, &[("MCP-Protocol-Version", "2025-06-18")])
        .await;
    assert_eq!(refused.body["error"]["code"], -32600);
}

#[actix_web::test]
async fn every_tool_declares_a_title_schemas_and_annotations() {
    let app = spawn_app().await;
    let reply = app
        .rpc(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .await;
    let tools = reply.body["result"]["tools"].as_array().expect("tools");
    let listed: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        listed,
        [
            "run_eval",
            "job_status",
            "list_jobs",
            "cancel_job",
            "start_canary",
            "abort_canary",
            "canary_status",
            "list_canaries",
            "pause_canary",
            "resume_canary",
            "promote_canary",
            "promote_model",
            "model_gates",
            "why",
            "why_math",
            "evaluate_slo",
            "publish_note"
        ]
    );
    for tool in tools {
        assert!(
            tool["title"].is_string() && tool["description"].is_string(),
            "{tool}"
        );
        assert_eq!(tool["inputSchema"]["type"], "object");
        assert_eq!(tool["outputSchema"]["type"], "object");
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint"] {
            assert!(
                tool["annotations"][hint].is_boolean(),
                "{} lacks {hint}",
                tool["name"]
            );
        }
    }
}

#[actix_web::test]
async fn the_kits_curl_without_content_type_or_accept_gets_a_job_id_in_the_text_content() {
    let app = spawn_app().await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"probe","configId":"default"}}}"#;
    let reply = app
        .post_mcp_raw(body, &[("X-API-Key", "any-placeholder-key")])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let text: Value = serde_json::from_str(
        reply.body["result"]["content"][0]["text"]
            .as_str()
            .expect("text"),
    )
    .expect("json");
    let job_id = text["jobId"].as_str().expect("jobId");
    assert!(job_id.starts_with("job_") && job_id.len() == 16, "{job_id}");
    assert_eq!(text["topic"], format!("job/{job_id}"));
    assert_eq!(text["status"], "queued");
}

#[actix_web::test]
async fn health_and_readiness_answer_without_a_key() {
    let app = crate::helpers::spawn_app_with(|s| s.auth.api_keys = vec!["k".into()]).await;
    let mut health = app.get("/healthz", &[]).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.expect("json")["status"], "ok");
    let mut ready = app.get("/readyz", &[]).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["ready"], true);
    let backend = if crate::backend::on_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(ready["backend"], backend);
}

#[actix_web::test]
async fn with_a_read_only_database_writes_fail_cleanly_and_readiness_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let (_server, app) =
        crate::helpers::Binary::start_app(dir.path(), "", &[("COCKPIT_FAILPOINT", "db_readonly")]);
    for (tool, arguments) in [
        (
            "run_eval",
            json!({"taskId": "probe", "configId": "default"}),
        ),
        ("publish_note", json!({"topic": "ops/x", "message": "m"})),
        (
            "start_canary",
            json!({"modelId": "m", "fromGate": "a", "toGate": "b", "sloPolicy": {"latency_p95_ms": 1, "error_rate": 0.1}}),
        ),
    ] {
        let reply = app
            .rpc(json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":tool,"arguments":arguments}}))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body["error"]["code"], -32603,
            "{tool}: {}",
            reply.body
        );
        assert_eq!(reply.body["id"], 3);
    }
    let mut ready = app.get("/readyz", &[]).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.json::<Value>().await.expect("json");
    assert_eq!(body["ready"], false);
    let said = body["database"].as_str().expect("database");
    assert!(
        said.starts_with("not writable") && !said.contains(".db") && !said.contains("readonly"),
        "no internal error text on a public route: {said}"
    );
    assert_eq!(app.get("/healthz", &[]).await.status(), StatusCode::OK);
    let list = app.tool_ok("list_jobs", json!({})).await;
    assert_eq!(list["count"], 0, "reads still work");
}
