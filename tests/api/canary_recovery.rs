//! No dead ends: a canary whose stored policy no longer passes today's limits resumes and can be aborted; one
//! whose row cannot be read is ended `unrecoverable` at start and frees its gate; a canary actor that dies is
//! re-created from its row; a deadline that fails to commit is retried.

use serde_json::json;

use crate::helpers::{canary_args, names, spawn_app_with, Binary};

const CONFIG: &str = "[canary]\nmin_interval = \"10ms\"\n";

fn id_of(started: &serde_json::Value) -> String {
    started["canaryId"].as_str().expect("canaryId").to_string()
}

#[actix_web::test]
async fn after_a_restart_an_unreadable_canary_is_ended_and_one_outside_today_s_limits_can_be_aborted(
) {
    let dir = tempfile::tempdir().expect("dir");
    let (mut server, app) = Binary::start_app(dir.path(), CONFIG, &[]);
    let idle = json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "100ms", "deadline": "1h",
                      "warmupChecks": 10000});
    let lenient = id_of(
        &app.tool_ok(
            "start_canary",
            canary_args("m1", "production", idle.clone()),
        )
        .await,
    );
    let broken = id_of(
        &app.tool_ok("start_canary", canary_args("m2", "production", idle))
            .await,
    );
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
    app.sql_rows(&format!(
        "UPDATE canaries SET slo_policy = '{{\"no longer\": \"a policy\"}}' WHERE id = '{broken}'"
    ));

    // Restarted with the default limits: a 100 ms interval is below today's canary.min_interval of 1 s.
    let (mut server, app) = Binary::start_app(dir.path(), "", &[]);
    let ended = app
        .tool_ok("canary_status", json!({"canaryId": broken}))
        .await;
    assert_eq!(
        (ended["status"].as_str(), ended["reasonCode"].as_str()),
        (Some("rolled_back"), Some("unrecoverable")),
        "{ended}"
    );
    let resumed = app
        .tool_ok("canary_status", json!({"canaryId": lenient}))
        .await;
    assert_eq!(resumed["status"], "running", "resumed leniently: {resumed}");
    let aborted = app
        .tool_ok(
            "abort_canary",
            json!({"canaryId": lenient, "reason": "stale policy"}),
        )
        .await;
    assert_eq!(
        (aborted["status"].as_str(), aborted["reasonCode"].as_str()),
        (Some("rolled_back"), Some("manual"))
    );
    for model in ["m1", "m2"] {
        let again = app
            .tool_ok(
                "start_canary",
                canary_args(
                    model,
                    "production",
                    json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "5m"}),
                ),
            )
            .await;
        assert_eq!(again["status"], "running", "{model} may start again");
    }
    server.child.kill().expect("stop");
    let log = server.exit_log();
    assert!(log.contains("unrecoverable"), "{log}");
}

#[actix_web::test]
async fn a_canary_actor_that_dies_is_re_created_and_the_canary_finishes() {
    let dir = tempfile::tempdir().expect("dir");
    let (_server, app) =
        Binary::start_app(dir.path(), CONFIG, &[("COCKPIT_FAILPOINT", "canary_panic")]);
    let started = app
        .tool_ok(
            "start_canary",
            canary_args(
                "m",
                "production",
                json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "200ms"}),
            ),
        )
        .await;
    let id = id_of(&started);
    let events = app.canary_events(&id).await;
    assert_eq!(
        names(&events).last(),
        Some(&"promoted"),
        "the re-created actor finished the canary: {:?}",
        names(&events)
    );
}

#[actix_web::test]
async fn a_deadline_that_fails_to_commit_is_retried_until_the_canary_ends() {
    let dir = tempfile::tempdir().expect("dir");
    let (_server, app) = Binary::start_app(
        dir.path(),
        CONFIG,
        &[("COCKPIT_FAILPOINT", "deadline_commit_fails")],
    );
    let policy = json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1.5s",
                        "successesToPromote": 1, "deadline": "2s"});
    let id = id_of(
        &app.tool_ok("start_canary", canary_args("m", "production", policy))
            .await,
    );
    // Paused, so no check can end it: only the deadline's own commit (which fails once) can.
    app.tool_ok("pause_canary", json!({"canaryId": id})).await;
    let events = app.canary_events(&id).await;
    assert_eq!(names(&events), ["started", "paused", "rolled_back"]);
    assert_eq!(events[2].data["reasonCode"], "deadline");
}

#[actix_web::test]
async fn a_manually_promoted_dry_run_says_it_would_have_promoted() {
    let app = spawn_app_with(|_| {}).await;
    let mut args = canary_args(
        "m",
        "production",
        json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "5m"}),
    );
    args["dryRun"] = json!(true);
    let id = id_of(&app.tool_ok("start_canary", args).await);
    app.tool_ok(
        "promote_canary",
        json!({"canaryId": id, "reason": "looks good by hand"}),
    )
    .await;
    let events = app.canary_events(&id).await;
    let end = events.last().expect("events");
    assert_eq!(end.event, "dry_run");
    assert_eq!(end.data["wouldHave"], "promoted");
    assert_eq!(
        app.tool_ok("model_gates", json!({})).await["models"],
        json!([]),
        "a dry run never moves a model"
    );
}
