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
    let app = TestApp::attach(&server.address, dir.path());
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
    let app = TestApp::attach(&server.address, dir.path());
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

/// After a restart, a pattern subscriber hears what happens from now on, not the log as if it were news;
/// with `Last-Event-ID` it gets exactly the events after that id, then the new ones.
#[actix_web::test]
async fn a_pattern_subscriber_after_a_restart_gets_no_old_events_unless_it_resumes() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Binary::start(dir.path(), "", &[]);
    let app = TestApp::attach(&server.address, dir.path());
    let old_job = app.run_eval("probe").await;
    let old = app.job_events(&old_job).await;
    assert!(old.len() >= 3, "{:?}", names(&old));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    server.exit_log();

    let server = Binary::start(dir.path(), "", &[]);
    let app = TestApp::attach(&server.address, dir.path());
    let mut fresh = app.sse("topic=job/*", &[]).await;
    let resume_after = old[0].id;
    let mut resumed = app
        .sse(
            "topic=job/*",
            &[("Last-Event-ID", &resume_after.to_string())],
        )
        .await;
    let new_job = app.run_eval("probe").await;

    let first = fresh.next_event().await.expect("an event");
    assert_eq!(
        (first.data["jobId"].as_str(), first.event.as_str()),
        (Some(new_job.as_str()), "queued"),
        "the first event a new pattern subscriber hears is new, not #{} of the old log",
        first.id
    );
    assert!(first.id > old.last().expect("old").id);

    let mut heard = Vec::new();
    while heard.len() < old.len() {
        heard.push(resumed.next_event().await.expect("an event"));
    }
    let ids: Vec<i64> = heard.iter().map(|e| e.id).collect();
    let expected: Vec<i64> = old[1..].iter().map(|e| e.id).chain([first.id]).collect();
    assert_eq!(
        ids, expected,
        "exactly the events after Last-Event-ID, then the new one"
    );
}
