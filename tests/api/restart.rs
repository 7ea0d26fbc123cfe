//! The real binary killed with SIGKILL mid-job and started again on the same database.

use serde_json::json;

use crate::helpers::{names, process_alive, Binary, TestApp};
use crate::jobs::{grandchild_pid, SPAWNS_A_GRANDCHILD};

fn start_binary(root: &std::path::Path) -> Binary {
    let task = SPAWNS_A_GRANDCHILD
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let config = format!("[jobs]\nmax_running = 1\n[evals.hangs]\ncommand = [\"sh\", \"-c\", \"{task}\", \"sh\", \"{{jobId}}\"]\n");
    Binary::start(root, &config, &[])
}

#[actix_web::test]
async fn after_a_kill_9_running_jobs_are_failed_and_their_processes_ended_and_queued_jobs_run() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = start_binary(dir.path());
    let app = TestApp::attach(
        &server.address,
        dir.path(),
        &dir.path().join(".mcp-state.db"),
    );
    let running = app.run_eval("hangs").await;
    app.sse(&format!("topic=job/{running}"), &[])
        .await
        .until_event("progress")
        .await;
    let waiting = app.run_eval("probe").await;
    let grandchild = grandchild_pid(dir.path(), &running);

    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    assert!(
        process_alive(grandchild),
        "a crash leaves the job's process group behind"
    );

    let mut server = start_binary(dir.path());
    let app = TestApp::attach(
        &server.address,
        dir.path(),
        &dir.path().join(".mcp-state.db"),
    );
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
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
}
