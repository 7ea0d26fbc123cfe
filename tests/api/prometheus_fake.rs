//! The Prometheus source against in-process fake Prometheus servers, one edge case each: every answer maps
//! to the value or `reasonCode` SPEC §8 names, and none of them crashes anything or decides a canary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use mcp_cockpit::config::Settings;
use serde_json::{json, Value};

use crate::helpers::{serve, spawn_app_with, TestApp};

/// What the fake answers for one of the three queries.
#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

fn vector(value: &str) -> Reply {
    ok(&format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000,"{value}"]}}]}}}}"#
    ))
}

fn ok(body: &str) -> Reply {
    Reply {
        status: 200,
        body: body.into(),
        delay: Duration::ZERO,
    }
}

/// A request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    form: HashMap<String, String>,
}

#[derive(Default)]
struct Fake {
    /// By query name (`lat`, `err`, `req`: the first three letters of the test queries).
    replies: Mutex<HashMap<String, Reply>>,
    seen: Mutex<Vec<Seen>>,
}

async fn answer(req: HttpRequest, body: web::Bytes, fake: web::Data<Fake>) -> HttpResponse {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let name: String = form
        .get("query")
        .map(|q| q.chars().take(3).collect())
        .unwrap_or_default();
    fake.seen.lock().expect("seen").push(Seen {
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        form: form.clone(),
    });
    // The freshness query is answered with the query's own time: the newest sample is always fresh.
    let fresh = (name == "fre").then(|| vector(&form["time"]));
    let reply = fresh
        .or_else(|| fake.replies.lock().expect("replies").get(&name).cloned())
        .unwrap_or_else(|| vector("100"));
    if !reply.delay.is_zero() {
        actix_web::rt::time::sleep(reply.delay).await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).expect("status"))
        .content_type("application/json")
        .body(reply.body)
}

/// Starts a fake Prometheus; returns its base URL and its state.
fn fake_prometheus() -> (String, Arc<Fake>) {
    let fake = web::Data::new(Fake::default());
    {
        // Healthy error rate and traffic unless a test says otherwise.
        let mut replies = fake.replies.lock().expect("replies");
        replies.insert("err".into(), vector("0.001"));
        replies.insert("req".into(), vector("1000"));
    }
    let state = fake.clone().into_inner();
    let port = serve(move |cfg| {
        cfg.app_data(fake.clone())
            .route("/api/v1/query", web::post().to(answer))
            .route("/-/ready", web::get().to(HttpResponse::Ok));
    });
    (format!("http://127.0.0.1:{port}"), state)
}

fn use_prometheus(s: &mut Settings, url: &str) {
    let prometheus = &mut s.slo.prometheus;
    prometheus.url = url.into();
    prometheus.latency_query = r#"lat{gate="$__gate",model="$__model"}[$__window]"#.into();
    prometheus.error_rate_query = r#"err{gate="$__gate"}[$__window]"#.into();
    prometheus.requests_query = r#"req{gate="$__gate"}[$__window]"#.into();
    prometheus.freshness_query = r#"fre{gate="$__gate"}"#.into();
    prometheus.timeout_seconds = std::time::Duration::from_secs_f64(0.5);
}

async fn evaluate(app: &TestApp) -> Value {
    app.tool_ok(
        "evaluate_slo",
        json!({"gate": "production", "modelId": "lukhas-v2", "sloPolicy": {"latency_p95_ms": 800, "error_rate": 0.01}}),
    )
    .await
}

#[actix_web::test]
async fn every_answer_maps_to_a_value_or_the_reason_spec_8_names() {
    let (url, fake) = fake_prometheus();
    let app = spawn_app_with(|s| {
        use_prometheus(s, &url);
        s.slo.prometheus.max_response_bytes = 2048;
    })
    .await;
    let slow = Reply {
        delay: Duration::from_secs(3),
        ..vector("100")
    };
    let cases: Vec<(Reply, Option<f64>, &str)> = vec![
        (vector("650.5"), Some(650.5), "slo_met"),
        (vector("NaN"), None, "nan"),
        (vector("+Inf"), None, "inf"),
        (
            ok(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            None,
            "no_data",
        ),
        (
            ok(
                r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"420"]}}"#,
            ),
            Some(420.0),
            "slo_met",
        ),
        (
            ok(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#,
            ),
            None,
            "multi_series",
        ),
        (
            ok(r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#),
            None,
            "query_error",
        ),
        (
            ok(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#),
            None,
            "query_error",
        ),
        (ok("<html>502 Bad Gateway</html>"), None, "query_error"),
        (vector(&"9".repeat(3000)), None, "query_error"),
        // Prometheus sends its own errors with 4xx/5xx: read by errorType, not by status.
        (
            Reply {
                status: 400,
                ..ok(
                    r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\""}"#,
                )
            },
            None,
            "query_error",
        ),
        (
            Reply {
                status: 422,
                ..ok(
                    r#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#,
                )
            },
            None,
            "query_error",
        ),
        (
            Reply {
                status: 503,
                ..ok(
                    r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
                )
            },
            None,
            "query_timeout",
        ),
        (vector("-5"), None, "query_error"),
        // Anything else with an error status is the transport's (a proxy's page, a wrong path).
        (
            Reply {
                status: 404,
                ..ok("404 page not found")
            },
            None,
            "http_error",
        ),
        (
            Reply {
                status: 503,
                ..ok("<html>Service Unavailable</html>")
            },
            None,
            "http_error",
        ),
        (slow, None, "query_timeout"),
    ];
    for (reply, value, reason) in cases {
        let shown = reply.body.chars().take(80).collect::<String>();
        fake.replies
            .lock()
            .expect("replies")
            .insert("lat".into(), reply);
        let result = evaluate(&app).await;
        assert_eq!(result["reasonCode"], reason, "{shown} → {result}");
        assert_eq!(
            result["values"]["latency_p95_ms"].as_f64(),
            value,
            "{shown}"
        );
        let verdict = if reason == "slo_met" {
            "pass"
        } else {
            "no_decision"
        };
        assert_eq!(result["verdict"], verdict);
    }
    // Every query went out as a form POST with the variables substituted, `time` pinned and a `timeout`.
    let seen = fake.seen.lock().expect("seen").clone();
    let latency = seen
        .iter()
        .find(|s| s.form["query"].starts_with("lat"))
        .expect("a latency query");
    assert_eq!(
        latency.form["query"],
        r#"lat{gate="production",model="lukhas-v2"}[300s]"#
    );
    let time: f64 = latency.form["time"].parse().expect("time is unix seconds");
    assert!(time > 1.7e9, "{time}");
    assert_eq!(latency.form["timeout"], "450ms");
    assert!(latency.authorization.is_none(), "no bearer configured");
    // The service is unharmed.
    assert_eq!(app.get("/healthz", &[]).await.status(), 200);
}

#[actix_web::test]
async fn the_bearer_token_is_sent_as_configured_with_or_without_its_scheme() {
    for bearer in ["Bearer s3cret-token", "s3cret-token"] {
        let (url, fake) = fake_prometheus();
        let app = spawn_app_with(|s| {
            use_prometheus(s, &url);
            s.slo.prometheus.bearer = bearer.into();
        })
        .await;
        evaluate(&app).await;
        let seen = fake.seen.lock().expect("seen").clone();
        assert_eq!(seen.len(), 4, "latency, error rate, requests, freshness");
        for request in seen {
            assert_eq!(
                request.authorization.as_deref(),
                Some("Bearer s3cret-token")
            );
        }
    }
}

#[actix_web::test]
async fn a_refused_connection_is_an_http_error_and_holds_a_canary_without_deciding() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let app = spawn_app_with(|s| use_prometheus(s, &url)).await;
    let result = evaluate(&app).await;
    assert_eq!(result["reasonCode"], "http_error", "{result}");
    let ready: Value = app.get("/readyz", &[]).await.json().await.expect("json");
    assert_eq!(ready["ready"], true, "Prometheus never fails readiness");
    assert!(ready["prometheus"]
        .as_str()
        .expect("prometheus")
        .starts_with("unreachable"));

    let canary = app
        .tool_ok(
            "start_canary",
            json!({"modelId": "m", "fromGate": "stage", "toGate": "production",
                   "sloPolicy": {"latency_p95_ms": 800, "error_rate": 0.01, "interval": "100ms", "maxNoDecision": 3}}),
        )
        .await;
    let id = canary["canaryId"].as_str().expect("id");
    let events = app
        .sse(&format!("topic=canary/{id}"), &[])
        .await
        .until_event("held")
        .await;
    let metrics: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "metric")
        .map(|e| &e.data)
        .collect();
    assert_eq!(metrics.len(), 3);
    assert!(metrics
        .iter()
        .all(|m| m["reasonCode"] == "http_error" && m["verdict"] == "no_decision"));
    let status = app.tool_ok("canary_status", json!({"canaryId": id})).await;
    assert_eq!(status["status"], "held");
    assert_eq!(
        app.tool_ok("model_gates", json!({})).await["models"],
        json!([])
    );
}

/// A one-connection-at-a-time HTTPS server (blocking rustls) answering every request with `body`.
fn https_server(cert: &std::path::Path, key: &std::path::Path, body: String) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(cert)
        .expect("cert file")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let Ok(connection) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(connection, tcp);
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head and the form body (Content-Length), then answer and close.
            while let Ok(n) = tls.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if request.len() >= head_end + 4 + length {
                        break;
                    }
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(response.as_bytes());
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl command.
fn test_ca(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=cockpit test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[actix_web::test]
async fn https_works_with_the_operators_ca_and_fails_closed_without_it() {
    let dir = tempfile::tempdir().expect("dir");
    test_ca(dir.path());
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.004"]}]}}"#;
    let port = https_server(
        &dir.path().join("server.pem"),
        &dir.path().join("server.key"),
        body.into(),
    );
    let url = format!("https://127.0.0.1:{port}");
    let ca = dir.path().join("ca.pem").display().to_string();
    let trusted = spawn_app_with(|s| {
        use_prometheus(s, &url);
        s.slo.prometheus.ca_file = ca.clone();
        s.slo.prometheus.timeout_seconds = std::time::Duration::from_secs_f64(5.0);
    })
    .await;
    let result = evaluate(&trusted).await;
    // Every query got the one canned answer over TLS (the freshness one too, so the verdict is stale_data).
    assert_eq!(result["values"]["error_rate"], 0.004, "{result}");
    assert_eq!(result["raw"]["latency"], "0.004");

    let untrusted = spawn_app_with(|s| {
        use_prometheus(s, &url);
        s.slo.prometheus.timeout_seconds = std::time::Duration::from_secs_f64(5.0);
    })
    .await;
    let result = evaluate(&untrusted).await;
    assert_eq!(
        result["reasonCode"], "http_error",
        "an unknown CA is refused: {result}"
    );
}

#[actix_web::test]
async fn the_same_question_at_the_same_time_is_asked_once() {
    use mcp_cockpit::slo::{PrometheusSpec, SloQuery, SloSource};
    let (url, fake) = fake_prometheus();
    let mut settings = Settings::defaults().expect("defaults");
    use_prometheus(&mut settings, &url);
    let source = PrometheusSpec::prepare(&settings.slo.prometheus)
        .expect("settings")
        .connect();
    let now = chrono::Utc::now();
    let query = |model: &str| {
        SloQuery::canary_era(
            (model, "production"),
            Duration::from_secs(300),
            now - chrono::Duration::seconds(60),
            now,
            Duration::from_secs(5),
        )
    };
    // Two canaries of one model due at the same instant: every query is the same question.
    let (a, b) =
        futures_util::future::join(source.gather(query("m1")), source.gather(query("m1"))).await;
    assert_eq!(a.raw, b.raw);
    assert_eq!(
        fake.seen.lock().expect("seen").len(),
        4,
        "four queries, not eight"
    );
    // Another model shares only what does not name the model (here all but the latency query).
    source.gather(query("m2")).await;
    assert_eq!(
        fake.seen.lock().expect("seen").len(),
        8,
        "asked again once the first answers came"
    );
}
