//! `publish_note` on ops and job topics, and the retention sweep of ended jobs.

use serde_json::json;

use crate::helpers::{gated_task, names, spawn_app, spawn_app_with};

#[actix_web::test]
async fn a_note_reaches_its_topic_its_pattern_and_everything_streams_and_is_audited() {
    let app = spawn_app().await;
    let mut exact = app.sse("topic=ops/deploys", &[]).await;
    let mut pattern = app.sse("topic=ops/*", &[]).await;
    let mut all = app.sse("topic=*", &[]).await;
    let published = app
        .tool_ok(
            "publish_note",
            json!({"topic": "ops/deploys", "message": "deploy of v2 started", "data": {"version": "v2"}}),
        )
        .await;
    assert_eq!(published["topic"], "ops/deploys");
    assert_eq!(published["event"], "note");
    for reader in [&mut exact, &mut pattern, &mut all] {
        let note = reader.next_event().await.expect("note");
        assert_eq!(note.event, "note");
        assert_eq!(note.id, published["seq"].as_i64().expect("seq"));
        assert_eq!(note.data["topic"], "ops/deploys");
        assert_eq!(note.data["name"], "deploys");
        assert_eq!(note.data["message"], "deploy of v2 started");
        assert_eq!(note.data["data"], json!({"version": "v2"}));
        let narrative = note.data["narrative"].as_str().expect("narrative");
        assert!(
            narrative.ends_with("] deploys → deploy of v2 started"),
            "{narrative}"
        );
    }
    let audit = app.sql_rows("SELECT actor, action, target FROM audit");
    assert_eq!(audit, [["keyless", "publish_note", "ops/deploys"]]);
}

#[actix_web::test]
async fn a_note_on_a_job_topic_joins_the_job_s_history() {
    let app = spawn_app().await;
    let job = app.run_eval_and_wait("probe", "default").await;
    let job_id = job["jobId"].as_str().expect("jobId");
    app.tool_ok(
        "publish_note",
        json!({"topic": format!("job/{job_id}"), "message": "looked fine to me"}),
    )
    .await;
    let rows = app.sql_rows(&format!(
        "SELECT event FROM events WHERE topic = 'job/{job_id}' ORDER BY seq"
    ));
    assert_eq!(rows.last().expect("rows"), &["note"]);
}

#[actix_web::test]
async fn the_retention_sweep_removes_ended_jobs_and_their_events_but_not_running_ones() {
    let app = spawn_app_with(|s| {
        s.retention.job_ttl_ms = 3_600_000;
        s.retention.sweep_interval_seconds = std::time::Duration::from_secs_f64(0.2);
        s.evals.tasks.insert("hold".into(), gated_task("release"));
    })
    .await;
    let ended = app.run_eval_and_wait("probe", "default").await;
    let ended_id = ended["jobId"].as_str().expect("jobId").to_string();
    let fresh = app.run_eval_and_wait("probe", "default").await;
    let running = app.run_eval("hold").await;
    app.sse(&format!("topic=job/{running}"), &[])
        .await
        .until_event("started")
        .await;
    let its_events = app.sql_rows(&format!(
        "SELECT count(*) FROM events WHERE topic = 'job/{ended_id}'"
    ));
    // Age two jobs past the one-hour TTL: one ended, one still running (whose age must not matter).
    let mut sweeps = app.sse("topic=ops/retention", &[]).await;
    app.sql_rows(&format!(
        "UPDATE jobs SET created_at = '2000-01-01 00:00:00', started_at = '2000-01-01 00:00:00' \
         WHERE job_id IN ('{ended_id}', '{running}'); \
         UPDATE jobs SET finished_at = '2000-01-01 00:00:00' WHERE job_id = '{ended_id}'"
    ));

    let swept = sweeps.until_event("swept").await;
    let swept = &swept.last().expect("event").data;
    assert_eq!(swept["jobs"], 1, "{swept}");
    assert_eq!(swept["events"].to_string(), its_events[0][0], "{swept}");
    assert!(app
        .sql_rows(&format!(
            "SELECT count(*) FROM jobs WHERE job_id = '{ended_id}' \
             UNION ALL SELECT count(*) FROM events WHERE topic = 'job/{ended_id}'"
        ))
        .iter()
        .all(|row| row == &["0"]));
    let message = app
        .tool_error("job_status", json!({"jobId": ended_id}))
        .await;
    assert!(message.contains("No job"), "{message}");
    assert_eq!(app.job(&running).await["status"], "running");
    assert_eq!(
        app.job(fresh["jobId"].as_str().expect("id")).await["status"],
        "completed"
    );
    assert_eq!(
        app.sql_rows("SELECT count(*) FROM audit WHERE action = 'run_eval'"),
        [["3"]],
        "the audit trail is kept"
    );

    app.open_gate("release");
    assert_eq!(
        names(&app.job_events(&running).await).last(),
        Some(&"completed")
    );
}
