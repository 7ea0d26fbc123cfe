//! The adversarial run's findings about what evals and the database file leave behind: an eval that prints
//! its environment shows no secret anywhere, a detached grandchild does not outlive its job, a chatty
//! progress loop does not fill the log, and the database with its WAL is the owner's alone and left empty.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{process_alive, shell_task, spawn_app_with, Binary, TestApp};

const KEY: &str = "eval-key-5c1d0f4e9a8b7c6d";
const BEARER: &str = "prom-bearer-9e8d7c6b5a4f";

/// Every byte of the database files, the log and the SSE frames of a run, searched for the secrets.
fn assert_nowhere(secrets: &[&str], places: &[(&str, &[u8])]) {
    for secret in secrets {
        for (place, bytes) in places {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "`{secret}` is in {place}"
            );
        }
    }
}

/// Prints its environment to stdout (log lines, and the result) and stderr, and the key it finds in a file.
const LEAKY: &str = r#"env; env >&2
printf '{"progress":0.5,"message":"%s"}\n' "$(cat leak.txt)"
printf '{"result":{"env":"%s","file":"%s"}}\n' "$(env | tr '\n' ' ' | tr -d '"\\')" "$(cat leak.txt)"
[ "$1" = fail ] && { cat leak.txt >&2; exit 3; }
exit 0
"#;

#[actix_web::test]
async fn an_eval_that_prints_its_environment_shows_no_secret_anywhere() {
    let dir = tempfile::tempdir().expect("dir");
    // The key also sits in a file the eval reads: redaction catches what the environment no longer carries.
    std::fs::write(dir.path().join("leak.txt"), KEY).expect("file");
    std::fs::write(dir.path().join("leaky.sh"), LEAKY).expect("script");
    let config = "[evals.leaky]\ncommand = [\"sh\", \"leaky.sh\", \"{configId}\"]\n";
    let mut server = Binary::start(
        dir.path(),
        config,
        &[
            ("LUKHAS_MCP_API_KEYS", KEY),
            ("PROM_BEARER", BEARER),
            ("RUST_LOG", "debug"),
        ],
    );
    let db = dir.path().join(".mcp-state.db");
    let app = TestApp::attach(&server.address, dir.path()).with_key(KEY);
    let mut results = String::new();
    let mut job_ids = Vec::new();
    for config_id in ["ok", "fail"] {
        let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_eval","arguments":{"taskId":"leaky","configId":config_id,"wait":true}}});
        let reply = app
            .post_mcp_raw(&call.to_string(), &[("X-API-Key", KEY)])
            .await;
        let job = &reply.body["result"]["structuredContent"];
        assert!(job.to_string().contains("[REDACTED]"), "{job}");
        results.push_str(&reply.body.to_string());
        job_ids.push(job["jobId"].as_str().expect("jobId").to_string());
    }
    let completed = app.job(&job_ids[0]).await;
    assert_eq!(completed["status"], "completed");
    assert!(
        completed["result"]["env"]
            .as_str()
            .expect("env")
            .contains("PATH="),
        "the eval did print its environment: {completed}"
    );
    let failed = app.job(&job_ids[1]).await;
    assert!(failed["error"]
        .as_str()
        .expect("error")
        .contains("exited with code 3"));
    let mut frames = Vec::new();
    for job_id in &job_ids {
        for event in app
            .sse(&format!("topic=job/{job_id}"), &[("X-API-Key", KEY)])
            .await
            .until_end()
            .await
        {
            frames.extend_from_slice(event.data.to_string().as_bytes());
        }
    }

    server.child.kill().expect("stop");
    let log = server.exit_log();
    assert!(
        log.contains(&format!("{}: PATH=", job_ids[0])),
        "the eval's output reached the debug log"
    );
    let read =
        |suffix: &str| std::fs::read(format!("{}{suffix}", db.display())).unwrap_or_default();
    let (main, wal) = (read(""), read("-wal"));
    assert_nowhere(
        &[KEY, BEARER],
        &[
            ("the tool results", results.as_bytes()),
            ("the SSE frames", &frames),
            ("the log", log.as_bytes()),
            ("the database", &main),
            ("the WAL", &wal),
        ],
    );
}

#[actix_web::test]
async fn a_detached_grandchild_is_gone_after_its_job_is_cancelled() {
    let app = spawn_app_with(|s| {
        s.evals.tasks.insert(
            "detach".into(),
            shell_task("setsid sh -c 'echo $$ > grandchild-$0.pid; exec sleep 300' $1 & sleep 300"),
        );
    })
    .await;
    let job_id = app.run_eval("detach").await;
    let pid_file = app.root.join(format!("grandchild-{job_id}.pid"));
    let mut pid = None;
    for _ in 0..500 {
        pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok());
        if pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = pid.expect("the grandchild wrote its pid");
    assert!(process_alive(pid));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let job_group = app.sql_rows(&format!("SELECT pgid FROM jobs WHERE job_id = '{job_id}'"));
    assert_ne!(
        stat.rsplit_once(')')
            .expect("stat")
            .1
            .split_whitespace()
            .nth(2),
        Some(job_group[0][0].as_str()),
        "the grandchild left the job's process group"
    );
    let cancelled = app.tool_ok("cancel_job", json!({"jobId": job_id})).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        !process_alive(pid),
        "the detached grandchild outlived its job"
    );
}

#[actix_web::test]
async fn a_progress_line_printed_again_and_again_is_recorded_once() {
    let app = spawn_app_with(|s| {
        s.evals.tasks.insert(
            "chatty".into(),
            shell_task(
                r#"for i in $(seq 200); do echo '{"progress":0.5,"message":"same"}'; done; echo '{"progress":0.6}'"#,
            ),
        );
    })
    .await;
    let job = app.run_eval_and_wait("chatty", "c").await;
    assert_eq!(job["status"], "completed");
    let progress = app.sql_rows(&format!(
        "SELECT count(*) FROM events WHERE entity_id = '{}' AND event = 'progress'",
        job["jobId"].as_str().expect("jobId")
    ));
    assert_eq!(progress[0][0], "2", "one line for 0.5 ×200, one for 0.6");
}

#[actix_web::test]
async fn the_database_its_wal_and_backups_are_the_owner_s_alone_and_shutdown_leaves_no_wal() {
    if crate::backend::on_postgres() {
        return; // SQLite's own files; PostgreSQL keeps its files under its own account.
    }
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Binary::start(dir.path(), "", &[]);
    let db = dir.path().join(".mcp-state.db");
    let app = TestApp::attach(&server.address, dir.path());
    let data: Value = json!({"pad": "x".repeat(3000)});
    for n in 0..300 {
        app.tool_ok(
            "publish_note",
            json!({"topic": "ops/burst", "message": format!("note {n}"), "data": data}),
        )
        .await;
    }
    let backup = dir.path().join("copy.db");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-cockpit"))
        .arg("backup")
        .arg(&backup)
        .env("LUKHAS_REPO_ROOT", dir.path())
        .status()
        .expect("backup runs");
    assert!(status.success());
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777)
    };
    let wal = dir.path().join(".mcp-state.db-wal");
    for file in [&db, &wal, &dir.path().join(".mcp-state.db-shm"), &backup] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert!(
        std::fs::metadata(&wal).expect("wal").len() > 0,
        "the burst went through the WAL"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(server.child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    assert!(server.child.wait().expect("exit").success());
    let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(left, 0, "shutdown leaves an empty WAL");
}
