//! The bad-input suite: every kind of malformed, unauthorised or hostile request against the real server,
//! each answered exactly as SPEC §2–§4 say, and each leaving no job, event, audit row or process behind.

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{shell_task, spawn_app_with, TestApp};

/// Rows in every table a request could write to, and whether any eval process ever ran.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    rows: Vec<Vec<String>>,
    processes_ran: usize,
}

fn footprint(app: &TestApp) -> Footprint {
    let rows = app.sql_rows(
        "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM events), (SELECT count(*) FROM audit)",
    );
    let processes_ran = std::fs::read_dir(&app.root)
        .expect("root")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("ran-"))
        .count();
    Footprint {
        rows,
        processes_ran,
    }
}

const KEY: &str = "suite-key-0123456789";

/// A server with a key, a 16 KiB body limit and a task that leaves a file behind if it ever runs.
async fn guarded_app() -> TestApp {
    spawn_app_with(|s| {
        s.auth.api_keys = vec![KEY.into()];
        s.server.body_limit_bytes = 16 * 1024;
        s.evals
            .tasks
            .insert("marker".into(), shell_task("touch \"ran-$1\""));
    })
    .await
}

fn call(name: &str, arguments: Value) -> String {
    json!({"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":name,"arguments":arguments}})
        .to_string()
}

const WITH_KEY: [(&str, &str); 1] = [("X-API-Key", KEY)];

#[actix_web::test]
async fn protocol_errors_have_their_codes_echo_the_id_and_change_nothing() {
    let app = guarded_app().await;
    let before = footprint(&app);
    // Bodies refused as a whole (nothing parses, or an empty batch) are HTTP 400; requests that parse and
    // then fail keep 200 with their id.
    let cases: [(&str, Value, i64); 9] = [
        ("{not json", Value::Null, -32700),
        (r#"{"jsonrpc":"2.0","id":7,"method":"#, Value::Null, -32700),
        (
            r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#,
            json!(3),
            -32600,
        ),
        (r#"{"jsonrpc":"2.0","id":"a"}"#, json!("a"), -32600),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"nope/nothing"}"#,
            json!(4),
            -32601,
        ),
        (
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"no_such_tool"}}"#,
            json!(5),
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":[1]}"#,
            json!(6),
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{"taskId":"marker","configId":"x"}}}"#,
            json!(7),
            -32602,
        ),
        ("[]", Value::Null, -32600),
    ];
    for (body, id, code) in cases {
        let reply = app.post_mcp_raw(body, &WITH_KEY).await;
        let whole_body = code == -32700 || body == "[]";
        let status = if whole_body {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        assert_eq!(reply.status, status, "{body}");
        assert_eq!(reply.body["jsonrpc"], "2.0", "{body}");
        assert_eq!(reply.body["error"]["code"], code, "{body} → {}", reply.body);
        assert_eq!(reply.body["id"], id, "{body}");
        assert!(reply.body.get("result").is_none(), "{body}");
    }
    let notification = app
        .post_mcp_raw(
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}"#,
            &WITH_KEY,
        )
        .await;
    assert_eq!(
        (notification.status, notification.body),
        (StatusCode::ACCEPTED, Value::Null)
    );
    let response = app
        .post_mcp_raw(r#"{"jsonrpc":"2.0","id":9,"result":{}}"#, &WITH_KEY)
        .await;
    assert_eq!(
        (response.status, response.body),
        (StatusCode::ACCEPTED, Value::Null)
    );
    assert_eq!(footprint(&app), before);
}

/// The tool result of a call that must be refused: `isError` with a message, and nothing written or run.
async fn refused(app: &TestApp, name: &str, arguments: Value) -> String {
    let before = footprint(app);
    let reply = app
        .post_mcp_raw(&call(name, arguments.clone()), &WITH_KEY)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{arguments}");
    assert_eq!(reply.body["id"], 11);
    let result = &reply.body["result"];
    assert_eq!(result["isError"], true, "{name}: {result}");
    assert_eq!(footprint(app), before, "{name} left a trace");
    result["content"][0]["text"]
        .as_str()
        .expect("text")
        .to_string()
}

#[actix_web::test]
async fn arguments_that_break_the_schema_are_tool_errors_naming_the_field() {
    let app = guarded_app().await;
    let cases = [
        (json!({"configId": "x"}), "`taskId`"),
        (json!({"taskId": 5, "configId": "x"}), "`taskId`"),
        (
            json!({"taskId": "marker", "configId": "x", "wait": "yes"}),
            "`wait`",
        ),
        (
            json!({"taskId": "marker", "configId": "x", "timeoutSeconds": -1}),
            "`timeoutSeconds`",
        ),
        (
            json!({"taskId": "marker", "configId": "x", "extra": 1}),
            "`extra`",
        ),
        (json!({"taskId": "nope", "configId": "x"}), "marker"),
    ];
    for (arguments, names) in cases {
        let message = refused(&app, "run_eval", arguments.clone()).await;
        assert!(message.contains(names), "{arguments} → {message}");
        assert!(message.contains("Example"), "{message}");
    }
    let message = refused(&app, "job_status", json!({"jobId": "job_000000000000"})).await;
    assert!(message.contains("No job `job_000000000000`"), "{message}");
    let message = refused(&app, "cancel_job", json!({"jobId": "job_000000000000"})).await;
    assert!(message.contains("No job"), "{message}");
}

#[actix_web::test]
async fn identifiers_with_shell_metacharacters_paths_or_nul_are_rejected_and_nothing_runs() {
    let app = guarded_app().await;
    let hostile = [
        "x; touch ran-injected",
        "$(touch ran-injected)",
        "`touch ran-injected`",
        "../../etc/passwd",
        "a/b",
        "a\u{0}b",
        "a b",
        "-rf",
        "",
        &"a".repeat(129),
    ];
    for value in hostile {
        let message = refused(
            &app,
            "run_eval",
            json!({"taskId": "marker", "configId": value}),
        )
        .await;
        assert!(message.contains("`configId`"), "{value:?} → {message}");
        let message = refused(&app, "run_eval", json!({"taskId": value, "configId": "x"})).await;
        assert!(message.contains("`taskId`"), "{value:?} → {message}");
    }
    for topic in ["ops/../x", "ops/a b", "job/*", "nope/x", "ops/"] {
        let message = refused(
            &app,
            "publish_note",
            json!({"topic": topic, "message": "m"}),
        )
        .await;
        assert!(message.contains("`topic`"), "{topic} → {message}");
    }
}

#[actix_web::test]
async fn notes_over_their_size_limits_or_on_unknown_entities_are_refused() {
    let app = guarded_app().await;
    let message = refused(
        &app,
        "publish_note",
        json!({"topic": "ops/deploys", "message": "m".repeat(1025)}),
    )
    .await;
    assert!(message.contains("`message`"), "{message}");
    let message = refused(
        &app,
        "publish_note",
        json!({"topic": "ops/deploys", "message": "m", "data": {"blob": "d".repeat(4100)}}),
    )
    .await;
    assert!(message.contains("`data`"), "{message}");
    let message = refused(
        &app,
        "publish_note",
        json!({"topic": "ops/deploys", "message": "m", "data": [1, 2]}),
    )
    .await;
    assert!(message.contains("`data`"), "{message}");
    let message = refused(
        &app,
        "publish_note",
        json!({"topic": "job/job_000000000000", "message": "m"}),
    )
    .await;
    assert!(message.contains("No job"), "{message}");
    // At the limits exactly, the note is taken.
    let at_limit = json!({"topic": "ops/deploys", "message": "m".repeat(1024), "data": {"b": "d".repeat(4000)}});
    let reply = app
        .post_mcp_raw(&call("publish_note", at_limit), &WITH_KEY)
        .await;
    assert_eq!(reply.body["result"]["isError"], false, "{}", reply.body);
}

#[actix_web::test]
async fn an_oversized_body_gets_413_whether_its_length_is_declared_or_streamed() {
    let app = guarded_app().await;
    let before = footprint(&app);
    let padding = " ".repeat(20_000);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"run_eval","arguments":{{"taskId":"marker","configId":"x"}}}}}}{padding}"#
    );
    let declared = app.post_mcp_raw(&body, &WITH_KEY).await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(declared.body["error"]["code"], -32600);
    assert!(declared.body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("16384 bytes"));

    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
        .as_bytes()
        .chunks(4000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let mut streamed = awc::Client::default()
        .post(format!("{}/mcp", app.address))
        .insert_header(WITH_KEY[0])
        .send_stream(futures_util::stream::iter(chunks))
        .await
        .expect("POST");
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let reply: Value = streamed.json().await.expect("json");
    assert_eq!(reply["error"]["code"], -32600);
    assert_eq!(footprint(&app), before);
}

#[actix_web::test]
async fn keys_origins_and_hosts_are_checked_before_anything_runs() {
    let app = guarded_app().await;
    let before = footprint(&app);
    let run = call("run_eval", json!({"taskId": "marker", "configId": "x"}));
    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, i64);
    let cases: Vec<Case> = vec![
        (vec![], StatusCode::UNAUTHORIZED, -32001),
        (
            vec![("X-API-Key", "wrong")],
            StatusCode::UNAUTHORIZED,
            -32001,
        ),
        (
            vec![("Authorization", "Bearer wrong")],
            StatusCode::UNAUTHORIZED,
            -32001,
        ),
        (
            vec![WITH_KEY[0], ("Origin", "https://evil.example")],
            StatusCode::FORBIDDEN,
            -32003,
        ),
        (
            vec![WITH_KEY[0], ("Origin", "null")],
            StatusCode::FORBIDDEN,
            -32003,
        ),
        (
            vec![
                WITH_KEY[0],
                ("Origin", "https://evil.example"),
                ("Content-Type", "text/plain"),
            ],
            StatusCode::FORBIDDEN,
            -32003,
        ),
        (
            vec![WITH_KEY[0], ("Host", "evil.example")],
            StatusCode::FORBIDDEN,
            -32003,
        ),
        (
            vec![WITH_KEY[0], ("Host", "127.0.0.1.evil.example:8766")],
            StatusCode::FORBIDDEN,
            -32003,
        ),
    ];
    for (headers, status, code) in cases {
        let reply = app.post_mcp_raw(&run, &headers).await;
        assert_eq!(reply.status, status, "{headers:?} → {}", reply.body);
        assert_eq!(reply.body["error"]["code"], code, "{headers:?}");
        assert_eq!(reply.body["id"], Value::Null);
        if status == StatusCode::UNAUTHORIZED {
            assert!(reply.headers.contains_key("www-authenticate"));
        }
        assert!(
            !reply.headers.contains_key("access-control-allow-origin"),
            "{headers:?}"
        );
    }
    let url_key = app.client_post_with_query_key(&run, KEY).await;
    assert_eq!(url_key, StatusCode::UNAUTHORIZED);
    assert_eq!(footprint(&app), before);

    // The same call from an allowed page is served, with CORS headers naming that page.
    let allowed = app
        .post_mcp_raw(&run, &[WITH_KEY[0], ("Origin", "http://localhost:3000")])
        .await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(
        allowed
            .headers
            .get("access-control-allow-origin")
            .expect("ACAO"),
        "http://localhost:3000"
    );
}

#[actix_web::test]
async fn unknown_or_malformed_topics_get_404_or_400_and_open_nothing() {
    let app = guarded_app().await;
    let before = footprint(&app);
    for (query, status) in [
        ("topic=job/job_000000000000", StatusCode::NOT_FOUND),
        ("topic=canary/canary_000000000000", StatusCode::NOT_FOUND),
        ("topic=job/a%3Bb", StatusCode::BAD_REQUEST),
        ("topic=secrets/x", StatusCode::BAD_REQUEST),
        ("topic=job/x&lastEventId=-1", StatusCode::BAD_REQUEST),
        ("", StatusCode::BAD_REQUEST),
    ] {
        let mut response = app.get(&format!("/sse?{query}"), &WITH_KEY).await;
        assert_eq!(response.status(), status, "{query}");
        let body: Value = response.json().await.expect("json error body");
        assert!(body["message"].is_string(), "{query} → {body}");
    }
    assert_eq!(footprint(&app), before);
}
