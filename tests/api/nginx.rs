//! Behind the real nginx (Debian's, its own config and prefix, a free loopback port), with the location
//! block of deploy/nginx/mcp-cockpit.conf: events arrive as they happen, keep-alives hold an idle stream open
//! past the proxy's read timeout, and X-Forwarded-For counts only from the trusted proxy.

use std::process::{Child, Command, Stdio};

use awc::http::StatusCode;
use futures_util::StreamExt;
use mcp_cockpit::config::net::ProxyNet;
use serde_json::json;

use crate::helpers::{eventually, spawn_app_with, TestApp};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// The `location /` block of the shipped site config, so the test proves what the docs say.
fn shipped_location() -> String {
    let site = include_str!("../../deploy/nginx/mcp-cockpit.conf");
    let start = site.find("    location / {").expect("location block");
    let end = site[start..].find("\n    }\n").expect("end of block") + start + 6;
    site[start..end]
        .replace("proxy_read_timeout 1h;", "proxy_read_timeout 2s;")
        .replace("http://mcp_cockpit", "http://cockpit")
}

struct Nginx(Child);

/// SIGTERM, so the master stops its workers before it exits (a SIGKILL left them orphaned, holding the
/// socket); SIGKILL only if it has not exited within 10 s.
impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx in front of `upstream`, connecting to it from 127.0.0.2 (the one trusted proxy address).
fn start_nginx(dir: &std::path::Path, upstream: &str) -> (Nginx, String) {
    let port = free_port();
    let config = format!(
        "daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
           fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
           upstream cockpit {{ server {upstream}; keepalive 8; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    proxy_bind 127.0.0.2;\n{location}\n  }}\n}}\n",
        dir = dir.display(),
        location = shipped_location(),
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, config).expect("config");
    // Debian installs it in /usr/sbin, which a non-root PATH may lack.
    let program = if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    };
    let child = Command::new(program)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx runs (the test command installs Debian's nginx)");
    let nginx = Nginx(child);
    eventually("nginx listens", std::time::Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    (nginx, format!("http://127.0.0.1:{port}"))
}

#[actix_web::test]
async fn through_nginx_events_flow_live_idle_streams_survive_and_forwarded_for_is_trusted_only_from_it(
) {
    let app = spawn_app_with(|s| {
        s.security.trusted_proxies = vec![ProxyNet::parse("127.0.0.2").expect("ip")];
        s.sse.keep_alive_seconds = std::time::Duration::from_secs_f64(0.5);
        // 4 per minute for the one test client: the stream and the note below take 2.
        s.rate_limit.bucket = 4;
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let upstream = app.address.trim_start_matches("http://").to_string();
    let (_nginx, proxy) = start_nginx(dir.path(), &upstream);
    let via = TestApp::attach(&proxy, &app.root);

    // An idle pattern stream through the proxy: keep-alive comments arrive for longer than nginx's 2 s read
    // timeout, and an event published afterwards still arrives on the same stream, at once.
    let mut stream = awc::Client::default()
        .get(format!("{proxy}/sse?topic=ops/*"))
        .send()
        .await
        .expect("GET through nginx");
    assert_eq!(stream.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let mut text = String::new();
    while text.matches(": keep-alive").count() < 6 {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("a keep-alive in time")
            .expect("the stream stays open")
            .expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        started.elapsed() > std::time::Duration::from_secs(2),
        "idle past the read timeout"
    );
    app.tool_ok(
        "publish_note",
        json!({"topic": "ops/deploys", "message": "through the proxy"}),
    )
    .await;
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("the event arrives unbuffered")
            .expect("open")
            .expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("event: note") {
            break;
        }
    }
    assert!(text.contains("through the proxy"));
    drop(stream);

    // Rate limit per client (keyless: per IP). Through the trusted proxy the client is the address nginx
    // saw (127.0.0.1, from X-Forwarded-For), not nginx's own 127.0.0.2 and not a spoofed header value.
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    for spoofed in ["203.0.113.1", "203.0.113.2"] {
        let reply = via
            .post_mcp_raw(ping, &[("X-Forwarded-For", spoofed)])
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let third = via
        .post_mcp_raw(ping, &[("X-Forwarded-For", "203.0.113.3")])
        .await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a spoofed address buys no bucket"
    );
    // Directly from 127.0.0.1 (not a trusted proxy): its own X-Forwarded-For is ignored, and it is the same
    // client the proxy reported, so it shares the exhausted bucket.
    let direct = app
        .post_mcp_raw(ping, &[("X-Forwarded-For", "198.51.100.1")])
        .await;
    assert_eq!(direct.status, StatusCode::TOO_MANY_REQUESTS);
}
