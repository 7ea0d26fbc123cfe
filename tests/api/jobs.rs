//! Eval jobs end to end: real subprocesses, their events, limits, cancellation, and what is stored.

use serde_json::json;

use crate::helpers::{gated_task, names, process_alive, shell_task, spawn_app, spawn_app_with};

/// A script that starts a grandchild, writes its pid, and then waits: for checking that no orphan survives.
pub const SPAWNS_A_GRANDCHILD: &str = r#"sleep 300 & echo $! > "grandchild-$1.pid"; echo '{"progress":0.1,"message":"waiting"}'; wait"#;

pub fn grandchild_pid(root: &std::path::Path, job_id: &str) -> i32 {
    let text =
        std::fs::read_to_string(root.join(format!("grandchild-{job_id}.pid"))).expect("pid file");
    text.trim().parse().expect("pid")
}

#[actix_web::test]
async fn the_demo_job_reports_progress_and_a_result_that_job_status_returns() {
    let app = spawn_app().await;
    let job_id = app.run_eval("demo").await;
    let events = app.job_events(&job_id).await;

    assert_eq!(names(&events)[..2], ["queued", "started"]);
    assert_eq!(names(&events).last(), Some(&"completed"));
    let progress: Vec<f64> = events
        .iter()
        .filter(|e| e.event == "progress")
        .map(|e| e.data["progress"].as_f64().expect("number"))
        .collect();
    assert!(progress.len() >= 3, "{progress:?}");
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress decreased: {progress:?}"
    );
    let completed = &events.last().expect("events").data;
    assert_eq!(completed["result"]["passed"], true);
    assert!(completed["durationMs"].as_u64().expect("durationMs") >= 4000);

    let job = app.job(&job_id).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["result"], completed["result"]);
    assert_eq!(job["progress"], 1.0);
}

#[actix_web::test]
async fn a_failing_process_is_recorded_failed_with_its_exit_code_and_stderr_tail() {
    let app = spawn_app_with(|s| {
        s.evals.tasks.insert(
            "broken".into(),
            shell_task("echo 'model file missing' >&2; exit 3"),
        );
    })
    .await;
    let job_id = app.run_eval("broken").await;
    let events = app.job_events(&job_id).await;

    let failed = events.last().expect("events");
    assert_eq!(failed.event, "failed");
    assert_eq!(failed.data["exitCode"], 3);
    assert!(
        failed.data["error"]
            .as_str()
            .expect("error")
            .contains("model file missing"),
        "{}",
        failed.data
    );
    let job = app.job(&job_id).await;
    assert_eq!(
        (job["status"].as_str(), job["exitCode"].as_i64()),
        (Some("failed"), Some(3))
    );
}

#[actix_web::test]
async fn a_job_over_its_time_limit_is_ended_with_its_whole_process_group() {
    let app = spawn_app_with(|s| {
        s.evals
            .tasks
            .insert("hangs".into(), shell_task(SPAWNS_A_GRANDCHILD));
    })
    .await;
    let job = app
        .tool_ok(
            "run_eval",
            json!({"taskId": "hangs", "configId": "default", "timeoutSeconds": 1}),
        )
        .await;
    let job_id = job["jobId"].as_str().expect("jobId");
    let mut stream = app.sse(&format!("topic=job/{job_id}"), &[]).await;
    stream.until_event("progress").await;
    let grandchild = grandchild_pid(&app.root, job_id);
    assert!(process_alive(grandchild));

    let end = stream.until_end().await;
    assert_eq!(names(&end), ["failed"]);
    assert!(
        end[0].data["error"]
            .as_str()
            .expect("error")
            .contains("timed out after 1s"),
        "{}",
        end[0].data
    );
    assert!(
        !process_alive(grandchild),
        "the grandchild outlived its job"
    );
}

#[actix_web::test]
async fn cancel_job_stops_a_process_that_ignores_sigterm_and_leaves_no_orphan() {
    let script = format!("trap '' TERM; {SPAWNS_A_GRANDCHILD}");
    let app = spawn_app_with(|s| {
        s.evals.tasks.insert("stubborn".into(), shell_task(&script));
    })
    .await;
    let job_id = app.run_eval("stubborn").await;
    app.sse(&format!("topic=job/{job_id}"), &[])
        .await
        .until_event("progress")
        .await;
    let grandchild = grandchild_pid(&app.root, &job_id);

    let job = app
        .tool_ok(
            "cancel_job",
            json!({"jobId": job_id, "reason": "wrong config"}),
        )
        .await;
    assert_eq!(job["status"], "cancelled");
    assert_eq!(job["error"], "wrong config");
    assert!(
        !process_alive(grandchild),
        "the grandchild outlived its job"
    );
    let again = app.tool_error("cancel_job", json!({"jobId": job_id})).await;
    assert!(again.contains("already ended (cancelled)"), "{again}");
}

#[actix_web::test]
async fn jobs_beyond_max_running_wait_in_order_and_a_full_queue_is_refused() {
    let app = spawn_app_with(|s| {
        s.jobs.max_running = 1;
        s.jobs.max_queued = 2;
        s.evals
            .tasks
            .insert("blocker".into(), gated_task("release"));
    })
    .await;
    let mut all_jobs = app.sse("topic=job/*", &[]).await;
    let first = app.run_eval("blocker").await;
    all_jobs.until_event("started").await;
    let second = app.run_eval("probe").await;
    let third = app.run_eval("probe").await;
    let refused = app
        .tool_error(
            "run_eval",
            json!({"taskId": "probe", "configId": "default"}),
        )
        .await;
    assert!(refused.contains("queue is full"), "{refused}");
    assert_eq!(app.job(&second).await["status"], "queued");

    app.open_gate("release");
    let mut running = 1;
    let mut started = Vec::new();
    let mut finished = 0;
    while finished < 3 {
        let event = all_jobs.next_event().await.expect("event");
        match event.event.as_str() {
            "started" => {
                running += 1;
                started.push(event.data["jobId"].as_str().expect("id").to_string());
            }
            "completed" => {
                running -= 1;
                finished += 1;
            }
            _ => {}
        }
        assert!(running <= 1, "more than max_running jobs ran at once");
    }
    assert_eq!(
        started,
        [second, third],
        "queued jobs must start in creation order"
    );
    assert_eq!(app.job(&first).await["status"], "completed");
}

#[actix_web::test]
async fn a_dry_run_is_recorded_but_runs_nothing() {
    let app = spawn_app_with(|s| {
        s.evals
            .tasks
            .insert("marker".into(), shell_task("touch ran"));
    })
    .await;
    let job = app
        .tool_ok(
            "run_eval",
            json!({"taskId": "marker", "configId": "default", "dryRun": true}),
        )
        .await;
    assert_eq!(job["status"], "dry_run");
    let events = app
        .sse(
            &format!("topic={}", job["topic"].as_str().expect("topic")),
            &[],
        )
        .await
        .until_end()
        .await;
    assert_eq!(names(&events), ["dry_run"]);
    assert!(!app.root.join("ran").exists());
}

#[actix_web::test]
async fn wait_returns_the_finished_job_and_list_jobs_filters_it() {
    let app = spawn_app().await;
    let job = app.run_eval_and_wait("probe", "nightly").await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["result"]["configId"], "nightly");
    assert!(job["durationMs"].as_i64().expect("durationMs") > 0);

    app.tool_ok(
        "run_eval",
        json!({"taskId": "demo", "configId": "x", "dryRun": true}),
    )
    .await;
    let listed = app.tool_ok("list_jobs", json!({"taskId": "probe"})).await;
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["jobs"][0]["jobId"], job["jobId"]);
    let dry = app
        .tool_ok("list_jobs", json!({"status": "dry_run", "limit": 5}))
        .await;
    assert_eq!(dry["count"], 1);
    let status_alias = app.tool_ok("status", json!({"jobId": job["jobId"]})).await;
    assert_eq!(status_alias["status"], "completed");
}

#[actix_web::test]
async fn the_kits_recent_job_activity_query_returns_the_job() {
    let app = spawn_app().await;
    let job = app.run_eval_and_wait("probe", "default").await;
    let rows = app.kit_sql(
        "SELECT created_at, job_id, status, result FROM jobs WHERE created_at > datetime('now', '-1 hour') ORDER BY created_at DESC;",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][1], job["jobId"].as_str().expect("id"));
    assert_eq!(rows[0][2], "completed");
    let result: serde_json::Value = serde_json::from_str(&rows[0][3]).expect("JSON result");
    assert_eq!(result, job["result"]);
    let audit = app.sql_rows("SELECT actor, action, target FROM audit");
    assert_eq!(
        audit,
        vec![vec![
            "keyless".to_string(),
            "run_eval".into(),
            rows[0][1].clone()
        ]]
    );
}

#[actix_web::test]
async fn a_panicking_job_actor_is_recorded_failed_its_processes_end_and_the_service_answers_on() {
    let dir = tempfile::tempdir().expect("dir");
    let config = format!(
        "[evals.hangs]\ncommand = [\"sh\", \"-c\", {}, \"sh\", \"{{jobId}}\"]\n",
        serde_json::to_string(SPAWNS_A_GRANDCHILD).expect("a TOML string")
    );
    let (_server, app) = crate::helpers::Binary::start_app(
        dir.path(),
        &config,
        &[("COCKPIT_FAILPOINT", "job_panic")],
    );
    let job_id = app.run_eval("hangs").await;
    let events = app.job_events(&job_id).await;

    let failed = events.last().expect("events");
    assert_eq!(failed.event, "failed");
    assert!(
        failed.data["error"]
            .as_str()
            .expect("error")
            .contains("panic"),
        "{}",
        failed.data
    );
    let grandchild = grandchild_pid(&app.root, &job_id);
    assert!(
        !process_alive(grandchild),
        "the crashed job's processes must be killed"
    );
    // The service lives on.
    assert_eq!(app.job(&job_id).await["status"], "failed");
    let ping = app
        .rpc(json!({"jsonrpc":"2.0","id":9,"method":"ping"}))
        .await;
    assert_eq!(ping.body["result"], json!({}));
}

#[actix_web::test]
async fn arguments_that_could_reach_a_command_line_are_rejected_and_nothing_runs() {
    let app = spawn_app().await;
    for (field, args) in [
        (
            "taskId",
            json!({"taskId": "demo; rm -rf /", "configId": "default"}),
        ),
        (
            "configId",
            json!({"taskId": "demo", "configId": "../etc/passwd"}),
        ),
        ("configId", json!({"taskId": "demo", "configId": "a\u{0}b"})),
        ("configId", json!({"taskId": "demo", "configId": "--help"})),
        ("configId", json!({"taskId": "demo"})),
        (
            "timeoutSeconds",
            json!({"taskId": "demo", "configId": "x", "timeoutSeconds": 100_000}),
        ),
        ("taskId", json!({"taskId": "unknown", "configId": "x"})),
    ] {
        let message = app.tool_error("run_eval", args.clone()).await;
        assert!(
            message.starts_with(&format!("Invalid argument `{field}`")),
            "{args} → {message}"
        );
        assert!(
            message.contains(r#"{"taskId":"demo","configId":"default"}"#),
            "no example in {message}"
        );
    }
    let unknown = app
        .tool_error("job_status", json!({"jobId": "job_000000000000"}))
        .await;
    assert!(unknown.contains("No job `job_000000000000`"), "{unknown}");
    assert_eq!(
        app.tool_ok("list_jobs", json!({})).await["count"],
        0,
        "nothing may have been stored"
    );
}

#[actix_web::test]
async fn fifty_concurrent_run_evals_all_complete_within_the_bound_and_in_queue_order() {
    const JOBS: usize = 50;
    const BOUND: usize = 3;
    let app = spawn_app_with(|s| {
        s.jobs.max_running = BOUND;
        s.evals.tasks.insert("gated".into(), gated_task("open"));
    })
    .await;
    let mut all_jobs = app.sse("topic=job/*", &[]).await;
    let calls = (0..JOBS).map(|_| app.run_eval("gated"));
    let ids = futures_util::future::join_all(calls).await;
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        JOBS
    );
    // With the gate shut, exactly BOUND jobs start and the rest wait.
    let mut started = 0;
    while started < BOUND {
        if all_jobs.next_event().await.expect("event").event == "started" {
            started += 1;
        }
    }
    let running = app.tool_ok("list_jobs", json!({"status": "running"})).await;
    assert_eq!(running["count"], BOUND);
    let queued = app
        .tool_ok("list_jobs", json!({"status": "queued", "limit": 100}))
        .await;
    assert_eq!(queued["count"], JOBS - BOUND);

    app.open_gate("open");
    let mut completed = 0;
    while completed < JOBS {
        if all_jobs.next_event().await.expect("event").event == "completed" {
            completed += 1;
        }
    }
    // The log, in commit order, shows the bound held throughout and jobs started in queue order.
    let log = app.sql_rows("SELECT event, entity_id FROM events ORDER BY seq");
    let (mut now_running, mut most) = (0usize, 0usize);
    let (mut queue_order, mut start_order) = (Vec::new(), Vec::new());
    for row in &log {
        match row[0].as_str() {
            "queued" => queue_order.push(row[1].clone()),
            "started" => {
                now_running += 1;
                most = most.max(now_running);
                start_order.push(row[1].clone());
            }
            "completed" | "failed" | "cancelled" => now_running -= 1,
            _ => {}
        }
    }
    assert_eq!(most, BOUND);
    assert_eq!(queue_order.len(), JOBS);
    assert_eq!(start_order, queue_order);
}
