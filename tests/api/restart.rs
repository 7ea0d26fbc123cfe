//! The real binary killed with SIGKILL mid-job and started again on the same database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::helpers::{names, process_alive, TestApp};
use crate::jobs::{grandchild_pid, SPAWNS_A_GRANDCHILD};

/// Starts the binary on port 0 and reads the port it logs.
fn start_binary(root: &std::path::Path) -> (Child, String) {
    let config = root.join("cockpit.toml");
    let task = SPAWNS_A_GRANDCHILD
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    std::fs::write(
        &config,
        format!("[jobs]\nmax_running = 1\n[evals.hangs]\ncommand = [\"sh\", \"-c\", \"{task}\", \"sh\", \"{{jobId}}\"]\n"),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-cockpit"))
        .arg("--config")
        .arg(&config)
        .env("PORT", "0")
        .env("LUKHAS_REPO_ROOT", root)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("the binary logs its port")
            .expect("log line");
        if let Some((_, rest)) = line.split_once("listening on port ") {
            break rest
                .split_whitespace()
                .next()
                .expect("port")
                .trim_end_matches(',')
                .to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("http://127.0.0.1:{port}"))
}

#[actix_web::test]
async fn after_a_kill_9_running_jobs_are_failed_and_their_processes_ended_and_queued_jobs_run() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut server, address) = start_binary(dir.path());
    let app = TestApp::attach(&address, dir.path(), &dir.path().join(".mcp-state.db"));
    let running = app.run_eval("hangs").await;
    app.sse(&format!("topic=job/{running}"), &[])
        .await
        .until_event("progress")
        .await;
    let waiting = app.run_eval("probe").await;
    let grandchild = grandchild_pid(dir.path(), &running);

    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    assert!(
        process_alive(grandchild),
        "a crash leaves the job's process group behind"
    );

    let (mut server, address) = start_binary(dir.path());
    let app = TestApp::attach(&address, dir.path(), &dir.path().join(".mcp-state.db"));
    let interrupted = app.job_events(&running).await;
    assert_eq!(names(&interrupted).last(), Some(&"failed"));
    assert_eq!(
        interrupted.last().expect("event").data["error"],
        "interrupted by restart"
    );
    assert!(
        !process_alive(grandchild),
        "recovery must end the leftover process group"
    );
    let requeued = app.job_events(&waiting).await;
    assert_eq!(
        names(&requeued),
        ["queued", "started", "progress", "completed"]
    );
    assert_eq!(
        app.tool_ok("job_status", json!({"jobId": waiting})).await["status"],
        "completed"
    );
    server.kill().expect("stop");
    server.wait().expect("reaped");
}
