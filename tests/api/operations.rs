//! Operations: /metrics moves with real traffic and needs the key; the alert rules pass promtool; the CI
//! smoke workflow's probe script passes against the real binary.

use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, Binary};

/// Runs a command that must succeed; its stdout.
fn succeeds(command: &mut std::process::Command) -> String {
    let output = command.output().expect("the command runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{command:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).map(str::trim))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn metrics_need_the_key_and_count_real_traffic() {
    let app = spawn_app_with(|s| {
        s.auth.api_keys = vec!["metrics-key".into()];
        s.rate_limit.bucket = 2;
    })
    .await;
    assert_eq!(
        app.get("/metrics", &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let key = [("X-API-Key", "metrics-key")];
    let read = |mut r: awc::ClientResponse<_>| async move {
        String::from_utf8(r.body().await.expect("body").to_vec()).expect("utf-8")
    };
    let before = read(app.get("/metrics", &key).await).await;
    let run = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"probe","configId":"m","wait":true}}});
    let reply = app.post_mcp_raw(&run.to_string(), &key).await;
    assert_eq!(
        reply.body["result"]["structuredContent"]["status"],
        "completed"
    );
    // Over the rate of 2: the third request is refused and counted; /metrics itself is exempt.
    let limited = app.post_mcp_raw(&run.to_string(), &key).await;
    let limited = if limited.status == StatusCode::TOO_MANY_REQUESTS {
        limited
    } else {
        app.post_mcp_raw(&run.to_string(), &key).await
    };
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let metrics = app.get("/metrics", &key).await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let after = read(metrics).await;
    for (series, at_least) in [
        ("cockpit_jobs_ended_total{status=\"completed\"}", 1.0),
        (
            "cockpit_http_requests_total{route=\"mcp\",status=\"200\"}",
            1.0,
        ),
        ("cockpit_rate_limited_total", 1.0),
        (
            "cockpit_job_duration_seconds_count{status=\"completed\"}",
            1.0,
        ),
    ] {
        assert!(
            value(&after, series) - value(&before, series) >= at_least,
            "{series} did not move:\n{after}"
        );
    }
    assert!(
        value(&after, "cockpit_events_published_total") >= 4.0,
        "{after}"
    );
    assert!(after.contains("# TYPE cockpit_http_request_duration_seconds histogram"));
    assert!(
        after.contains("cockpit_jobs{state=\"running\"} 0"),
        "{after}"
    );
    assert!(!after.contains("metrics-key"));
}

#[test]
fn the_alert_rules_pass_promtool() {
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/cockpit-alerts.yml"
    );
    // promtool comes with Debian's prometheus, which the test command installs.
    let text = succeeds(std::process::Command::new("promtool").args(["check", "rules", rules]));
    assert!(text.contains("SUCCESS: 5 rules found"), "{text}");
    let tests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/cockpit-alerts.test.yml"
    );
    let text = succeeds(std::process::Command::new("promtool").args(["test", "rules", tests]));
    assert!(text.contains("SUCCESS"), "{text}");
}

/// What the alert-rule tests assume of the service: right after a start, the series the rules watch are
/// exported at 0 for every label value known in advance.
#[actix_web::test]
async fn the_watched_series_exist_at_zero_from_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Binary::start(dir.path(), "", &[]);
    let mut response = awc::Client::default()
        .get(format!("{}/metrics", server.address))
        .send()
        .await
        .expect("GET /metrics");
    let text = String::from_utf8(response.body().await.expect("body").to_vec()).expect("utf-8");
    for series in [
        r#"cockpit_canary_decisions_total{outcome="rolled_back",reason_code="critical"} 0"#,
        r#"cockpit_canary_decisions_total{outcome="rolled_back",reason_code="consecutive_failures"} 0"#,
        r#"cockpit_canary_decisions_total{outcome="rolled_back",reason_code="deadline"} 0"#,
        r#"cockpit_canary_decisions_total{outcome="promoted",reason_code="slo_met"} 0"#,
        r#"cockpit_canary_decisions_total{outcome="dry_run",reason_code="critical"} 0"#,
        r#"cockpit_canary_checks_total{reason_code="latency_above_slo",verdict="fail"} 0"#,
        r#"cockpit_canary_checks_total{reason_code="stale_data",verdict="no_decision"} 0"#,
        r#"cockpit_canary_checks_total{reason_code="slo_met",verdict="pass"} 0"#,
        r#"cockpit_jobs_ended_total{status="failed"} 0"#,
        r#"cockpit_prometheus_query_errors_total{reason_code="query_timeout"} 0"#,
    ] {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
}

#[test]
fn the_ci_smoke_probe_script_passes_against_the_real_binary() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Binary::start(dir.path(), "", &[("LUKHAS_MCP_API_KEYS", "ci-test-key")]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ci_probe.sh");
    let stdout = succeeds(
        std::process::Command::new("bash")
            .arg(script)
            .env("MCP_URL", &server.address)
            .env("MCP_API_KEY", "ci-test-key")
            .env("PROBE_TIMEOUT", "60"),
    );
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
    assert!(stdout.contains("SSE probe passed"), "{stdout}");
}

#[actix_web::test]
async fn backup_copies_the_database_while_the_service_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Binary::start(dir.path(), "", &[]);
    if crate::backend::on_postgres() {
        // PostgreSQL is backed up with its own tools; `backup` says so, and writes nothing.
        let target = dir.path().join("copy.db");
        let refused = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-cockpit"))
            .arg("backup")
            .arg(&target)
            .env("LUKHAS_REPO_ROOT", dir.path())
            .env(
                "COCKPIT_DATABASE_URL",
                crate::backend::database_url_for(dir.path()).expect("url"),
            )
            .output()
            .expect("backup runs");
        assert!(!refused.status.success());
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("pg_dump"), "{said}");
        assert!(!target.exists());
        server.child.kill().expect("stop");
        return;
    }
    let app = crate::helpers::TestApp::attach(&server.address, dir.path());
    let job = app.run_eval_and_wait("probe", "backup").await;
    let target = dir.path().join("copy.db");
    let backup = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-cockpit"));
        command
            .arg("backup")
            .arg(&target)
            .env("LUKHAS_REPO_ROOT", dir.path());
        command
    };
    succeeds(&mut backup());
    // The service goes on serving while and after the copy is taken.
    assert_eq!(
        app.run_eval_and_wait("probe", "after").await["status"],
        "completed"
    );
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
    let copy = crate::helpers::TestApp::attach_to(
        &server.address,
        dir.path(),
        mcp_cockpit::config::Database::Sqlite(target.clone()),
    );
    copy.assert_intact();
    let job_id = job["jobId"].as_str().expect("id");
    assert_eq!(
        copy.sql_rows(&format!(
            "SELECT status FROM jobs WHERE job_id = '{job_id}'"
        )),
        [["completed"]]
    );
    let again = backup().output().expect("backup runs");
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );
}

#[actix_web::test]
async fn json_logs_are_one_object_per_line_and_hold_no_key() {
    let dir = tempfile::tempdir().expect("dir");
    let key = "json-log-key-7f3a";
    let mut server = Binary::start(
        dir.path(),
        "",
        &[("LUKHAS_MCP_API_KEYS", key), ("COCKPIT_LOG_FORMAT", "json")],
    );
    let app = crate::helpers::TestApp::attach(&server.address, dir.path());
    let job = app
        .post_mcp_raw(
            &json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"probe","configId":"j","wait":true}}}).to_string(),
            &[("X-API-Key", key)],
        )
        .await;
    let job_id = job.body["result"]["structuredContent"]["jobId"]
        .as_str()
        .expect("id")
        .to_string();
    app.sse(&format!("topic=job/{job_id}&key={key}"), &[])
        .await
        .until_end()
        .await;
    server.child.kill().expect("stop");
    let log = server.exit_log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["message"].is_string() && l["ts"].is_string()));
    assert!(lines.iter().any(|l| l["message"]
        .as_str()
        .is_some_and(|m| m.contains("key=REDACTED"))));
    assert!(!log.contains(key), "the key is in the log:\n{log}");
}

#[test]
fn the_grafana_dashboard_uses_only_metrics_the_service_exposes() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../deploy/grafana/mcp-cockpit.json"))
            .expect("valid JSON");
    let declared = include_str!("../../src/metrics.rs");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 9);
    for expr in exprs {
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("cockpit_"))
        {
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum");
            assert!(
                declared.contains(&format!("\"{family}\"")),
                "{family} (in {expr}) is not a cockpit metric"
            );
        }
    }
}
