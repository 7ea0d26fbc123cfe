//! SPEC §2 beyond single bad requests: CORS from the one allow-list, `Origin: null` on /sse only, the
//! cockpit behind a trusted proxy, the rate limit, and secrets that never reach a log or the database.

use awc::http::StatusCode;
use mcp_cockpit::config::net::{HostName, ProxyNet};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Binary, TestApp};

async fn preflight(app: &TestApp, path: &str, origin: &str) -> awc::ClientResponse {
    awc::Client::default()
        .request(awc::http::Method::OPTIONS, format!("{}{path}", app.address))
        .insert_header(("Origin", origin))
        .insert_header(("Access-Control-Request-Method", "POST"))
        .insert_header((
            "Access-Control-Request-Headers",
            "content-type, x-api-key, mcp-session-id",
        ))
        .send()
        .await
        .expect("OPTIONS")
}

fn header<'a, S>(response: &'a awc::ClientResponse<S>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[actix_web::test]
async fn preflights_are_answered_for_allowed_origins_and_refused_for_foreign_ones() {
    let app = spawn_app().await;
    let ok = preflight(&app, "/mcp", "http://127.0.0.1:5173").await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&ok, "access-control-allow-origin"),
        Some("http://127.0.0.1:5173")
    );
    let allowed_headers = header(&ok, "access-control-allow-headers").expect("allow-headers");
    for needed in [
        "X-API-Key",
        "Authorization",
        "Content-Type",
        "Last-Event-ID",
        "Mcp-Session-Id",
        "MCP-Protocol-Version",
        "Mcp-Method",
        "Mcp-Name",
    ] {
        assert!(allowed_headers.contains(needed), "{needed}");
    }
    assert!(header(&ok, "access-control-expose-headers")
        .expect("expose")
        .contains("Mcp-Session-Id"));

    let foreign = preflight(&app, "/mcp", "https://evil.example").await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&foreign, "access-control-allow-origin"), None);
    assert_eq!(
        preflight(&app, "/mcp", "null").await.status(),
        StatusCode::FORBIDDEN,
        "Origin: null is foreign on /mcp"
    );
    assert_eq!(
        preflight(&app, "/sse", "null").await.status(),
        StatusCode::FORBIDDEN,
        "keyless: Origin null may not read streams (any site can make a sandboxed frame)"
    );
    let keyed = spawn_app_with(|s| s.auth.api_keys = vec![KEY.into()]).await;
    let null_sse = preflight(&keyed, "/sse", "null").await;
    assert_eq!(null_sse.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&null_sse, "access-control-allow-origin"),
        Some("null")
    );
}

const KEY: &str = "file-page-key-0123456789";

#[actix_web::test]
async fn with_keys_a_page_opened_from_a_file_may_read_event_streams_but_not_call_tools() {
    let app = spawn_app_with(|s| s.auth.api_keys = vec![KEY.into()]).await;
    let with_key = format!("/sse?topic=ops/deploys&key={KEY}");
    let stream = app.get(&with_key, &[("Origin", "null")]).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(header(&stream, "access-control-allow-origin"), Some("null"));
    let no_key = app
        .get("/sse?topic=ops/deploys", &[("Origin", "null")])
        .await;
    assert_eq!(
        no_key.status(),
        StatusCode::UNAUTHORIZED,
        "the key still gates it"
    );
    let foreign = app
        .get(&with_key, &[("Origin", "https://evil.example")])
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        header(&foreign, "access-control-allow-origin"),
        None,
        "a foreign page's browser must not be allowed to read the stream"
    );
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let tools = app
        .post_mcp_raw(ping, &[("Origin", "null"), ("X-API-Key", KEY)])
        .await;
    assert_eq!(tools.status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn keyless_a_sandboxed_frame_on_any_site_cannot_read_streams_unless_the_operator_opts_in() {
    let app = spawn_app().await;
    let stream = app.get("/sse?topic=*", &[("Origin", "null")]).await;
    assert_eq!(stream.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&stream, "access-control-allow-origin"), None);

    let opted_in = spawn_app_with(|s| s.security.allow_null_origin = true).await;
    let stream = opted_in.get("/sse?topic=*", &[("Origin", "null")]).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(header(&stream, "access-control-allow-origin"), Some("null"));
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_public_origin_and_client_address_count() {
    let app = spawn_app_with(|s| {
        s.security.trusted_proxies = vec![ProxyNet::parse("127.0.0.1").expect("ip")];
        s.security.allowed_hosts = vec![HostName::parse("ops.example.com").expect("host")];
        s.rate_limit.bucket = 2;
    })
    .await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let via_proxy = |client: &'static str| {
        [
            ("Host", "127.0.0.1"),
            ("X-Forwarded-Host", "ops.example.com"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-For", client),
            ("Origin", "https://ops.example.com"),
        ]
    };
    let same_origin = app.post_mcp_raw(ping, &via_proxy("203.0.113.1")).await;
    assert_eq!(same_origin.status, StatusCode::OK, "{}", same_origin.body);
    assert_eq!(
        same_origin
            .headers
            .get("access-control-allow-origin")
            .expect("ACAO"),
        "https://ops.example.com"
    );
    // Each forwarded client has its own bucket of 2.
    assert_eq!(
        app.post_mcp_raw(ping, &via_proxy("203.0.113.1"))
            .await
            .status,
        StatusCode::OK
    );
    let limited = app.post_mcp_raw(ping, &via_proxy("203.0.113.1")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        app.post_mcp_raw(ping, &via_proxy("203.0.113.2"))
            .await
            .status,
        StatusCode::OK
    );
    // A forwarded host that is not ours is refused like a foreign Host.
    let mut elsewhere = via_proxy("203.0.113.3");
    elsewhere[1] = ("X-Forwarded-Host", "evil.example");
    assert_eq!(
        app.post_mcp_raw(ping, &elsewhere).await.status,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn forwarded_headers_from_anyone_else_are_ignored() {
    let app = spawn_app_with(|s| s.rate_limit.bucket = 2).await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let spoofed = |client: &'static str| {
        [
            ("X-Forwarded-For", client),
            ("X-Forwarded-Host", "ops.example.com"),
        ]
    };
    assert_eq!(
        app.post_mcp_raw(ping, &spoofed("203.0.113.1")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_mcp_raw(ping, &spoofed("203.0.113.2")).await.status,
        StatusCode::OK
    );
    let limited = app.post_mcp_raw(ping, &spoofed("203.0.113.3")).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a new X-Forwarded-For must not buy a new bucket"
    );
}

#[actix_web::test]
async fn over_the_rate_a_key_gets_429_with_retry_after_while_health_and_other_keys_go_on() {
    let app = spawn_app_with(|s| {
        s.auth.api_keys = vec!["key-a".into(), "key-b".into()];
        s.rate_limit.bucket = 3;
        s.rate_limit.window_ms = 60_000;
    })
    .await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    for _ in 0..3 {
        assert_eq!(
            app.post_mcp_raw(ping, &[("X-API-Key", "key-a")])
                .await
                .status,
            StatusCode::OK
        );
    }
    let limited = app.post_mcp_raw(ping, &[("X-API-Key", "key-a")]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.body["error"]["code"], -32029);
    let retry_after: u64 = limited
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(
        (1..=20).contains(&retry_after),
        "one token comes back every 20 s: {retry_after}"
    );
    let sse = app.get("/sse?topic=ops/x", &[("X-API-Key", "key-a")]).await;
    assert_eq!(
        sse.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "/sse counts too"
    );
    assert_eq!(
        app.post_mcp_raw(ping, &[("X-API-Key", "key-b")])
            .await
            .status,
        StatusCode::OK
    );
    for path in ["/healthz", "/readyz"] {
        for _ in 0..5 {
            assert_eq!(app.get(path, &[]).await.status(), StatusCode::OK, "{path}");
        }
    }
}

#[actix_web::test]
async fn keys_and_bearer_tokens_never_reach_the_log_or_the_database() {
    let dir = tempfile::tempdir().expect("dir");
    let key = "sekrit-key-5c1d0f4e";
    let bearer = "prom-bearer-9e8d7c6b";
    let mut server = Binary::start(
        dir.path(),
        "",
        &[
            ("LUKHAS_MCP_API_KEYS", key),
            ("PROM_BEARER", bearer),
            ("RUST_LOG", "debug"),
        ],
    );
    let app = TestApp::attach(&server.address, dir.path());
    let auth = format!("Bearer {key}");
    let job = app
        .post_mcp_raw(
            &json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"probe","configId":"default"}}}).to_string(),
            &[("Authorization", auth.as_str())],
        )
        .await;
    let text: Value = serde_json::from_str(
        job.body["result"]["content"][0]["text"]
            .as_str()
            .expect("text"),
    )
    .expect("json");
    let job_id = text["jobId"].as_str().expect("jobId");
    let events = app
        .sse(&format!("topic=job/{job_id}&key={key}"), &[])
        .await
        .until_end()
        .await;
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("completed"));
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    assert_eq!(
        app.post_mcp_raw(ping, &[("X-API-Key", key)]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.client_post_with_query_key(ping, key).await,
        StatusCode::UNAUTHORIZED
    );
    let wrong = format!("{key}-wrong");
    assert_eq!(
        app.post_mcp_raw(ping, &[("X-API-Key", wrong.as_str())])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let actors = app.sql_rows("SELECT DISTINCT actor FROM audit");
    assert_eq!(actors.len(), 1);
    assert!(actors[0][0].starts_with("key:"), "{actors:?}");

    server.child.kill().expect("stop");
    let log = server.exit_log();
    assert!(
        log.contains("/sse?topic=job/") && log.contains("key=REDACTED"),
        "the access log was written: {log}"
    );
    for secret in [key, bearer] {
        assert!(!log.contains(secret), "`{secret}` is in the log:\n{log}");
        for (place, bytes) in crate::backend::stored(dir.path()) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "`{secret}` is in {place}"
            );
        }
    }
}
