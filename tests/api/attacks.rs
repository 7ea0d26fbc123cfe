//! The holes an adversarial run found, each attack performed against the real server and shown to fail:
//! a percent-encoded path past the Origin check, cross-site writes, batches that dodge the rate limit and
//! grow the reply without bound, another client's cancellations, sessions and stream slots taken from
//! others, a trickled body, a `/readyz` flood that calls out, keys in the access log.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{gated_task, serve, spawn_app, spawn_app_with, Binary, SseReader, TestApp};

const KEY_A: &str = "key-a-0123456789abcdef";
const KEY_B: &str = "key-b-0123456789abcdef";

fn tool_call(name: &str, arguments: Value) -> String {
    json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name,"arguments":arguments}})
        .to_string()
}

/// A POST to a raw path (sent as written, percent-encoding and all).
async fn post_path(app: &TestApp, path: &str, body: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut request = awc::Client::default().post(format!("{}{path}", app.address));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    request
        .send_body(body.to_string())
        .await
        .expect("POST")
        .status()
}

#[actix_web::test]
async fn an_encoded_mcp_path_from_a_foreign_page_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let promote = tool_call(
        "promote_model",
        json!({"modelId": "m1", "gate": "production"}),
    );
    let foreign = [
        ("Origin", "https://evil.example"),
        ("Content-Type", "text/plain"),
    ];
    for path in ["/%6Dcp", "/m%63p", "/%6dcp", "/mcp"] {
        assert_eq!(
            post_path(&app, path, &promote, &foreign).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let gates = app.tool_ok("model_gates", json!({})).await;
    assert_eq!(gates["models"], json!([]), "no gate moved: {gates}");
    let stream = app
        .get("/%73se?topic=*", &[("Origin", "https://evil.example")])
        .await;
    assert_eq!(stream.status(), StatusCode::FORBIDDEN);
    // The same encoded path without an Origin (curl) is the MCP endpoint, with its rules.
    assert_eq!(
        post_path(&app, "/%6Dcp", &promote, &[]).await,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn a_cross_site_write_is_refused_on_every_route() {
    let app = spawn_app().await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    for path in ["/mcp", "/sse", "/healthz", "/nowhere", "/%6Detrics"] {
        assert_eq!(
            post_path(&app, path, ping, &[("Sec-Fetch-Site", "cross-site")]).await,
            StatusCode::FORBIDDEN,
            "Sec-Fetch-Site on {path}"
        );
        assert_eq!(
            post_path(&app, path, ping, &[("Origin", "https://evil.example")]).await,
            StatusCode::FORBIDDEN,
            "Origin on {path}"
        );
    }
    let own_page = [
        ("Origin", "http://127.0.0.1:5173"),
        ("Sec-Fetch-Site", "same-site"),
    ];
    assert_eq!(
        post_path(&app, "/mcp", ping, &own_page).await,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn a_batch_holds_at_most_100_messages_and_no_initialize() {
    let app = spawn_app().await;
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"});
    let too_long = Value::Array(vec![ping.clone(); 101]);
    let reply = app.rpc(too_long).await;
    assert_eq!(reply.body["error"]["code"], -32600, "{}", reply.body);
    assert!(reply.body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("at most 100"));
    let zeros = app
        .post_mcp_raw(&format!("[{}]", vec!["0"; 5000].join(",")), &[])
        .await;
    assert_eq!(zeros.body["error"]["code"], -32600, "one error, not 5,000");

    let initialize = json!({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let reply = app.rpc(json!([ping, initialize])).await;
    assert_eq!(reply.body[0]["result"], json!({}));
    assert_eq!(reply.body[1]["id"], 2);
    assert_eq!(reply.body[1]["error"]["code"], -32600);
    assert!(reply.headers.get("mcp-session-id").is_none());
}

#[actix_web::test]
async fn a_batch_costs_its_length_in_rate_limit_tokens() {
    let app = spawn_app_with(|s| {
        s.rate_limit.bucket = 10;
        s.rate_limit.window_ms = 600_000;
    })
    .await;
    let note = |n: usize| json!({"jsonrpc":"2.0","id":n,"method":"tools/call","params":{"name":"publish_note","arguments":{"topic":"ops/batch","message":format!("note {n}")}}});
    let five: Vec<Value> = (0..5).map(note).collect();
    assert_eq!(app.rpc(Value::Array(five)).await.status, StatusCode::OK);
    let six: Vec<Value> = (5..11).map(note).collect();
    let refused = app.rpc(Value::Array(six)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers.contains_key("retry-after"));
    let notes = app.sql_rows("SELECT count(*) FROM events WHERE event = 'note'");
    assert_eq!(notes[0][0], "5", "the refused batch ran nothing");
}

#[actix_web::test]
async fn one_client_cannot_cancel_another_client_s_waiting_call() {
    let app = spawn_app_with(|s| {
        s.auth.api_keys = vec![KEY_A.into(), KEY_B.into()];
        s.evals.tasks.insert("hold".into(), gated_task("open"));
    })
    .await
    .with_key(KEY_A);
    let mut jobs = app.sse(&format!("topic=job/*&key={KEY_A}"), &[]).await;
    let wait = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"hold","configId":"c","wait":true},"_meta":{"progressToken":"p"}}});
    let waiting = awc::Client::default()
        .post(format!("{}/mcp", app.address))
        .insert_header(("X-API-Key", KEY_A))
        .send_body(wait.to_string());
    let waiting = actix_web::rt::spawn(async move {
        let response = waiting.await.expect("POST");
        SseReader::new(response).messages(1).await
    });
    let started = jobs.until_event("started").await;
    let job_id = started.last().expect("started").data["jobId"]
        .as_str()
        .expect("id")
        .to_string();
    let cancel = json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"not yours"}}).to_string();
    let other = app.post_mcp_raw(&cancel, &[("X-API-Key", KEY_B)]).await;
    assert_eq!(other.status, StatusCode::ACCEPTED);
    // B's cancellation did nothing: the job still runs, and A's own cancels it.
    assert_eq!(app.job(&job_id).await["status"], "running");
    assert_eq!(
        app.sql_rows("SELECT count(*) FROM audit WHERE action = 'cancel_job'")[0][0],
        "0"
    );
    let own = app.post_mcp_raw(&cancel, &[("X-API-Key", KEY_A)]).await;
    assert_eq!(own.status, StatusCode::ACCEPTED);
    let reply = waiting.await.expect("task");
    assert_eq!(
        reply[0].1["result"]["structuredContent"]["status"],
        "cancelled"
    );
    let audit = app.sql_rows("SELECT actor, target, args FROM audit WHERE action = 'cancel_job'");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0][0].starts_with("key:") && audit[0][1] == job_id);
    assert!(audit[0][2].contains("notifications/cancelled"));
}

#[actix_web::test]
async fn a_session_belongs_to_the_key_that_created_it() {
    let app = spawn_app_with(|s| s.auth.api_keys = vec![KEY_A.into(), KEY_B.into()]).await;
    let initialize = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let created = app
        .post_mcp_raw(&initialize.to_string(), &[("X-API-Key", KEY_A)])
        .await;
    let session = created
        .headers
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .expect("id")
        .to_string();
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let theirs = [("X-API-Key", KEY_B), ("Mcp-Session-Id", session.as_str())];
    assert_eq!(
        app.post_mcp_raw(ping, &theirs).await.status,
        StatusCode::NOT_FOUND
    );
    let mine = [("X-API-Key", KEY_A), ("Mcp-Session-Id", session.as_str())];
    assert_eq!(app.post_mcp_raw(ping, &mine).await.status, StatusCode::OK);

    let subscribe = |uri: &str| {
        json!({"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri": uri}})
            .to_string()
    };
    let unknown = app
        .post_mcp_raw(&subscribe("cockpit://job/job_doesnotexist"), &mine)
        .await;
    assert_eq!(unknown.body["error"]["code"], -32002, "{}", unknown.body);
}

#[actix_web::test]
async fn past_its_stream_cap_a_key_gets_429_while_other_keys_still_connect() {
    let app = spawn_app_with(|s| {
        s.auth.api_keys = vec![KEY_A.into(), KEY_B.into()];
        s.security.max_streams_per_client = 64;
        // A closed client is noticed when something is written to it.
        s.sse.keep_alive_seconds = std::time::Duration::from_secs_f64(0.2);
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..64 {
        open.push(app.sse("topic=ops/x", &[("X-API-Key", KEY_A)]).await);
    }
    let refused = app.get("/sse?topic=ops/x", &[("X-API-Key", KEY_A)]).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let _other = app.sse("topic=ops/x", &[("X-API-Key", KEY_B)]).await;
    // A closed stream gives its slot back.
    drop(open.pop());
    let mut reopened = None;
    for _ in 0..100 {
        let response = app.get("/sse?topic=ops/x", &[("X-API-Key", KEY_A)]).await;
        if response.status() == StatusCode::OK {
            reopened = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "the closed stream's slot came back");
    let topics = "topic=ops/a&".repeat(4000);
    let many = app
        .get(&format!("/sse?{topics}"), &[("X-API-Key", KEY_B)])
        .await;
    assert_eq!(many.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn an_authenticated_body_sent_a_byte_at_a_time_is_cut_off() {
    let app = spawn_app_with(|s| {
        s.server.body_read_timeout_seconds = std::time::Duration::from_millis(500);
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_string();
    let status = actix_web::rt::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(&address).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{";
        socket.write_all(head.as_bytes()).expect("head");
        let started = Instant::now();
        // Trickles a byte every 100 ms until the server answers (bounded at 10 s).
        socket.set_nonblocking(true).expect("nonblocking");
        let mut reply = Vec::new();
        while started.elapsed() < Duration::from_secs(10) {
            let mut buf = [0u8; 512];
            match socket.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    reply.extend_from_slice(&buf[..n]);
                    if reply.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = socket.write_all(b" ");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    })
    .await
    .expect("client thread");
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
}

#[actix_web::test]
async fn a_readyz_flood_makes_no_outbound_call() {
    let probes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = probes.clone();
    let port = serve(move |cfg| {
        let counted = counted.clone();
        cfg.route(
            "/-/ready",
            actix_web::web::get().to(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { actix_web::HttpResponse::Ok().finish() }
            }),
        );
    });
    let app = spawn_app_with(|s| s.slo.prometheus.url = format!("http://127.0.0.1:{port}")).await;
    let mut ready = Value::Null;
    for _ in 0..100 {
        ready = app.get("/readyz", &[]).await.json().await.expect("json");
        if ready["prometheus"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready["prometheus"], "ok", "the first probe runs at start");
    let before = probes.load(std::sync::atomic::Ordering::SeqCst);
    let flood_started = Instant::now();
    for _ in 0..300 {
        assert_eq!(app.get("/readyz", &[]).await.status(), StatusCode::OK);
    }
    let after = probes.load(std::sync::atomic::Ordering::SeqCst);
    // Only the poller's own timer (every 5 s) may have probed meanwhile.
    let timer_ticks = usize::try_from(flood_started.elapsed().as_secs() / 5 + 1).expect("small");
    assert!(
        after - before <= timer_ticks,
        "300 /readyz caused {} probes",
        after - before
    );
}

#[actix_web::test]
async fn an_encoded_key_parameter_is_redacted_and_an_empty_header_hides_no_bearer() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Binary::start(
        dir.path(),
        "",
        &[("LUKHAS_MCP_API_KEYS", KEY_A), ("RUST_LOG", "debug")],
    );
    let app = TestApp::attach(&server.address, dir.path());
    // A stream that answers at once, so its access-log line is written now: 404, not 401, shows that the
    // encoded parameter name authenticated.
    let mut stream = app
        .get(
            &format!("/sse?topic=job/job_000000000000&%6Bey={KEY_A}"),
            &[],
        )
        .await;
    assert_eq!(
        stream.status(),
        StatusCode::NOT_FOUND,
        "the encoded name authenticates"
    );
    stream.body().await.expect("the 404 body");
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let bearer = format!("Bearer {KEY_A}");
    let both = [("X-API-Key", ""), ("Authorization", bearer.as_str())];
    assert_eq!(app.post_mcp_raw(ping, &both).await.status, StatusCode::OK);
    server.child.kill().expect("stop");
    let log = server.exit_log();
    assert!(log.contains("key=REDACTED"), "{log}");
    assert!(!log.contains(KEY_A), "the key is in the log:\n{log}");
}

#[actix_web::test]
async fn pages_cannot_be_framed_and_answer_head() {
    let app = spawn_app().await;
    for path in ["/", "/probe"] {
        let page = app.get(path, &[]).await;
        assert_eq!(
            page.headers().get("x-frame-options").expect("XFO"),
            "DENY",
            "{path}"
        );
        assert_eq!(
            page.headers().get("content-security-policy").expect("CSP"),
            "frame-ancestors 'none'"
        );
    }
    for path in ["/", "/probe", "/sseClient.js", "/healthz", "/readyz"] {
        let mut head = awc::Client::default()
            .head(format!("{}{path}", app.address))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.status(), StatusCode::OK, "{path}");
        assert!(head.body().await.expect("body").is_empty());
    }
}

#[actix_web::test]
async fn duplicate_keys_huge_ids_and_huge_cursors_are_refused_not_guessed() {
    let app = spawn_app().await;
    let twice = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"job_status","name":"cancel_job","arguments":{}}}"#;
    let reply = app.post_mcp_raw(twice, &[]).await;
    assert_eq!(reply.body["error"]["code"], -32700, "{}", reply.body);
    assert!(reply.body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("duplicate key `name`"));
    let huge_id = r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#;
    let reply = app.post_mcp_raw(huge_id, &[]).await;
    assert_eq!(reply.body["error"]["code"], -32600, "{}", reply.body);
    assert_eq!(reply.body["id"], Value::Null);
    let cursor = json!({"jsonrpc":"2.0","id":1,"method":"resources/list","params":{"cursor":"18446744073709551615"}});
    let reply = app.rpc(cursor).await;
    assert_eq!(reply.body["error"]["code"], -32602, "{}", reply.body);
    assert_eq!(app.get("/healthz", &[]).await.status(), StatusCode::OK);
}

/// A raw connection that sends one GET and says whether a response head arrived within `wait`.
fn answered_within(socket: &mut std::net::TcpStream, wait: Duration) -> bool {
    socket.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 64];
    matches!(socket.read(&mut buf), Ok(n) if n > 0)
}

#[actix_web::test]
async fn past_the_connection_cap_the_server_stops_accepting_instead_of_failing() {
    // Two workers, one connection each.
    let app = spawn_app_with(|s| s.server.max_connections = 2).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let served = actix_web::rt::task::spawn_blocking(move || {
        let connect = || std::net::TcpStream::connect(&address).expect("connect");
        let get = |socket: &mut std::net::TcpStream| {
            socket
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .expect("request");
        };
        // Each held connection is answered once (so its worker has accepted and counts it) and stays open.
        let mut held = vec![connect(), connect()];
        for socket in &mut held {
            get(socket);
            assert!(answered_within(socket, Duration::from_secs(10)));
        }
        let mut third = connect();
        get(&mut third);
        let while_full = answered_within(&mut third, Duration::from_millis(500));
        held.clear(); // frees both places
        let after = answered_within(&mut third, Duration::from_secs(10));
        (while_full, after)
    })
    .await
    .expect("client thread");
    assert_eq!(
        served,
        (false, true),
        "(answered while full, answered after)"
    );
}

#[actix_web::test]
async fn resources_are_listed_by_keyset_pages_that_miss_and_repeat_nothing() {
    let app = spawn_app().await;
    for n in 0..60 {
        app.tool_ok(
            "run_eval",
            json!({"taskId": "probe", "configId": format!("c{n}"), "dryRun": true}),
        )
        .await;
    }
    app.tool_ok(
        "promote_model",
        json!({"modelId": "m1", "gate": "production"}),
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    for _ in 0..5 {
        let params = json!({ "cursor": cursor });
        let page = app
            .rpc(json!({"jsonrpc":"2.0","id":1,"method":"resources/list","params": params}))
            .await
            .body["result"]
            .clone();
        for resource in page["resources"].as_array().expect("resources") {
            seen.push(resource["uri"].as_str().expect("uri").to_string());
        }
        cursor = page["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert!(cursor.is_null(), "two pages hold 61 resources");
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (61, 61));
    assert_eq!(seen.last().map(String::as_str), Some("cockpit://model/m1"));
    for bad in ["job:", "ops:x", "12", "job:a b"] {
        let reply = app
            .rpc(json!({"jsonrpc":"2.0","id":1,"method":"resources/list","params":{"cursor": bad}}))
            .await;
        assert_eq!(reply.body["error"]["code"], -32602, "{bad}");
    }
}

#[actix_web::test]
async fn the_listening_line_is_printed_even_at_warn_level() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-cockpit"))
        .env("PORT", "0")
        .env("LUKHAS_REPO_ROOT", dir.path())
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut found = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        if line.contains("listening on port") {
            found = Some(line);
            break;
        }
    }
    child.kill().expect("stop");
    child.wait().expect("reaped");
    let line = found.expect("a listening line at RUST_LOG=warn");
    assert!(line.contains("http://127.0.0.1:"), "{line}");
}
