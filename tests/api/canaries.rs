//! Canaries end to end on the real server with the stub SLO source and sub-second intervals: promotion,
//! rollback, holding, operators' actions, conflicts, and what the database says afterwards.

use mcp_cockpit::config::GateOverride;
use mcp_cockpit::config::Settings;
use serde_json::{json, Value};

use crate::helpers::{canary_args, kit_policy, names, spawn_app_with, TestApp};

/// A server whose canaries check every 100 ms, with stub gates that breach (`slow`, `flaky`, `down`),
/// report nothing (`dark`) or only old samples (`frozen`).
async fn canary_app(customize: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|s| {
        let fast: mcp_cockpit::canary::policy::PolicyPatch =
            serde_json::from_value(json!({"interval": "100ms"})).expect("patch");
        s.policies
            .entry("*".into())
            .or_default()
            .insert("*".into(), fast);
        let gates = &mut s.slo.stub.gates;
        let gate = |latency: Option<f64>, error_rate: Option<f64>, silent: bool| GateOverride {
            latency_p95_ms: latency,
            error_rate,
            requests: None,
            silent,
            ..GateOverride::default()
        };
        gates.insert("slow".into(), gate(Some(1000.0), None, false));
        // 1.5% errors against a 1% SLO is only evidence with enough requests: 150 of 10,000.
        gates.insert(
            "flaky".into(),
            GateOverride {
                requests: Some(10_000.0),
                ..gate(None, Some(0.015), false)
            },
        );
        gates.insert("down".into(), gate(Some(5000.0), None, false));
        gates.insert("dark".into(), gate(None, None, true));
        gates.insert(
            "frozen".into(),
            GateOverride {
                stale: true,
                ..gate(None, None, false)
            },
        );
        s.slo.stub.jitter = 0.05;
        customize(s);
    })
    .await
}

fn to(gate: &str, policy: Value) -> Value {
    canary_args("lukhas-v2", gate, policy)
}

#[actix_web::test]
async fn a_healthy_canary_is_promoted_and_the_model_moves_to_the_gate() {
    let app = canary_app(|_| {}).await;
    let id = app
        .start_canary(to("production", kit_policy(json!({}))))
        .await;
    let events = app.canary_events(&id).await;
    assert_eq!(
        names(&events),
        ["started", "metric", "metric", "metric", "promoted"]
    );
    for metric in events.iter().filter(|e| e.event == "metric") {
        assert_eq!(metric.data["verdict"], "pass");
        assert_eq!(metric.data["gate"], "production");
        assert!(metric.data["latency_p95_ms"].as_f64().expect("number") < 800.0);
    }
    let promoted = &events.last().expect("events").data;
    assert_eq!(promoted["modelId"], "lukhas-v2");
    assert_eq!(promoted["toGate"], "production");
    assert_eq!(promoted["reasonCode"], "slo_met");
    assert!(promoted["durationMs"].as_u64().is_some() && promoted["duration"].is_string());

    let gates = app
        .tool_ok("model_gates", json!({"modelId": "lukhas-v2"}))
        .await;
    assert_eq!(gates["models"][0]["gate"], "production");
    assert_eq!(gates["models"][0]["canaryId"], id.as_str());
    let model = app
        .sse("topic=model/lukhas-v2&lastEventId=0", &[])
        .await
        .until_event("gate_changed")
        .await;
    assert_eq!(model.last().expect("event").data["previousGate"], "stage");

    let status = app.tool_ok("canary_status", json!({"canaryId": id})).await;
    assert_eq!(status["status"], "promoted");
    assert_eq!(status["checks"], 3);
    assert_eq!(status["recentChecks"].as_array().expect("checks").len(), 3);
    let math = app.tool_ok("why_math", json!({"id": id})).await;
    assert_eq!(math["summary"]["pass"], 3);
    assert_eq!(math["thresholds"]["latency_p95_ms"], 800.0);
    assert_eq!(math["decision"]["reasonCode"], "slo_met");
    assert!(math["checks"][0]["query"]["latency"]
        .as_str()
        .expect("query")
        .contains("gate=\"production\""));
    let why = app.tool_ok("why", json!({"id": id})).await;
    let trail = why["narrative"].as_array().expect("narrative");
    assert_eq!(trail.len(), 5);
    assert!(trail[4]
        .as_str()
        .expect("line")
        .contains("promoted lukhas-v2 stage → production"));

    // The kit's "Canary success rate" query, verbatim.
    let success = app.kit_sql(
        "SELECT status, COUNT(*) as count, ROUND(COUNT(*) * 100.0 / SUM(COUNT(*)) OVER(), 1) as percentage \
         FROM canaries WHERE created_at > datetime('now', '-24 hours') GROUP BY status;",
    );
    assert_eq!(success, [["promoted", "1", "100.0"]]);
}

#[actix_web::test]
async fn breaches_roll_back_with_their_reason_and_the_kits_breach_query_finds_them() {
    let app = canary_app(|_| {}).await;
    let slow = app.start_canary(to("slow", kit_policy(json!({})))).await;
    let flaky = app.start_canary(to("flaky", kit_policy(json!({})))).await;
    for (id, reason) in [
        (&slow, "latency_above_slo"),
        (&flaky, "error_rate_above_slo"),
    ] {
        let events = app.canary_events(id).await;
        assert_eq!(
            names(&events),
            ["started", "metric", "metric", "rolled_back"]
        );
        for metric in &events[1..3] {
            assert_eq!(metric.data["verdict"], "fail");
            assert_eq!(metric.data["reasonCode"], reason);
        }
        let rolled_back = &events[3].data;
        assert_eq!(rolled_back["reasonCode"], "consecutive_failures");
        assert!(rolled_back["reason"]
            .as_str()
            .expect("reason")
            .contains(reason));
    }
    let gates = app.tool_ok("model_gates", json!({})).await;
    assert_eq!(
        gates["models"],
        json!([]),
        "a rollback never moves the model"
    );

    // The kit's "SLO breach analysis" query, verbatim.
    let breaches = app.sql_rows(
        "SELECT cm.canary_id, cm.latency_p95_ms, cm.error_rate, c.from_gate, c.to_gate, c.status \
         FROM canary_metrics cm JOIN canaries c ON cm.canary_id = c.id \
         WHERE cm.latency_p95_ms > 800 OR cm.error_rate > 0.01 ORDER BY cm.created_at DESC LIMIT 20;",
    );
    assert_eq!(breaches.len(), 4);
    for row in &breaches {
        assert!(row[0] == slow || row[0] == flaky, "{row:?}");
        assert_eq!((row[3].as_str(), row[5].as_str()), ("stage", "rolled_back"));
        assert!(
            !row[1].is_empty() && !row[2].is_empty(),
            "metrics rows are never NULL: {row:?}"
        );
    }
}

#[actix_web::test]
async fn a_critical_breach_rolls_back_on_the_first_check() {
    let app = canary_app(|_| {}).await;
    let id = app
        .start_canary(to("down", kit_policy(json!({"failureLimit": 5}))))
        .await;
    let events = app.canary_events(&id).await;
    assert_eq!(names(&events), ["started", "metric", "rolled_back"]);
    assert_eq!(events[1].data["reasonCode"], "critical_latency");
    assert_eq!(events[2].data["reasonCode"], "critical");
}

#[actix_web::test]
async fn a_silent_gate_holds_the_canary_until_an_operator_acts() {
    let app = canary_app(|_| {}).await;
    let policy = json!({"latency_p95_ms": 800, "error_rate": 0.01, "maxNoDecision": 2});
    let id = app.start_canary(to("dark", policy)).await;
    let mut stream = app.sse(&format!("topic=canary/{id}"), &[]).await;
    let until_held = stream.until_event("held").await;
    assert_eq!(names(&until_held), ["started", "metric", "metric", "held"]);
    assert!(until_held[1..3]
        .iter()
        .all(|m| m.data["verdict"] == "no_decision" && m.data["reasonCode"] == "no_data"));
    // Held: checks go on and are recorded, nothing is decided.
    let next = stream.next_event().await.expect("a check while held");
    assert_eq!(
        (next.event.as_str(), next.data["status"].as_str()),
        ("metric", Some("held"))
    );
    let status = app.tool_ok("canary_status", json!({"canaryId": id})).await;
    assert_eq!(status["status"], "held");
    let message = app
        .tool_error("pause_canary", json!({"canaryId": id}))
        .await;
    assert!(message.contains("only a running canary"), "{message}");

    let resumed = app.tool_ok("resume_canary", json!({"canaryId": id})).await;
    assert_eq!(resumed["status"], "running");
    let aborted = app
        .tool_ok(
            "abort_canary",
            json!({"canaryId": id, "reason": "gate has no traffic"}),
        )
        .await;
    assert_eq!(aborted["status"], "rolled_back");
    let rest = stream.until_end().await;
    assert!(names(&rest).contains(&"resumed"));
    assert_eq!(rest.last().expect("event").event, "rolled_back");
}

#[actix_web::test]
async fn abort_with_a_reason_rolls_back_from_running_or_paused_and_an_ended_canary_never_changes() {
    let app = canary_app(|_| {}).await;
    let slow_policy = json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "5m"});
    let running = app
        .start_canary(to("production", slow_policy.clone()))
        .await;
    // The kit's "Emergency Rollback" call, verbatim.
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"abort_canary","arguments":{{"canaryId":"{running}","reason":"manual override"}}}}}}"#
    );
    let reply = app.post_mcp_raw(&body, &[("X-API-Key", "key")]).await;
    assert_eq!(reply.body["result"]["isError"], false, "{}", reply.body);
    let events = app.canary_events(&running).await;
    assert_eq!(names(&events), ["started", "rolled_back"]);
    let rolled_back = &events[1].data;
    assert_eq!(rolled_back["reason"], "manual override");
    assert_eq!(rolled_back["reasonCode"], "manual");
    assert!(rolled_back["duration"].is_string());

    let paused = app.start_canary(to("staging-2", slow_policy)).await;
    assert_eq!(
        app.tool_ok("pause_canary", json!({"canaryId": paused}))
            .await["status"],
        "paused"
    );
    assert_eq!(
        app.tool_ok("abort_canary", json!({"canaryId": paused}))
            .await["reason"],
        "manual abort"
    );
    assert_eq!(
        names(&app.canary_events(&paused).await),
        ["started", "paused", "rolled_back"]
    );

    for tool in ["abort_canary", "resume_canary", "pause_canary"] {
        let message = app.tool_error(tool, json!({"canaryId": running})).await;
        assert!(
            message.contains("already ended (rolled_back: manual override)"),
            "{tool}: {message}"
        );
    }
    let message = app
        .tool_error(
            "promote_canary",
            json!({"canaryId": running, "reason": "try"}),
        )
        .await;
    assert!(message.contains("never changes"), "{message}");
    assert_eq!(
        app.sql_rows(&format!(
            "SELECT status, reason_code FROM canaries WHERE id = '{running}'"
        )),
        [["rolled_back", "manual"]]
    );
    let audited = app.sql_rows("SELECT action FROM audit WHERE action LIKE '%canary' ORDER BY id");
    let audited: Vec<&str> = audited.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        audited,
        [
            "start_canary",
            "abort_canary",
            "start_canary",
            "pause_canary",
            "abort_canary"
        ]
    );
}

#[actix_web::test]
async fn one_active_canary_per_model_and_gate_with_idempotent_retries_and_harmless_dry_runs() {
    let app = canary_app(|_| {}).await;
    let slow = json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "5m"});
    let mut args = to("production", slow.clone());
    args["idempotencyKey"] = json!("deploy-42");
    let first = app.start_canary(args.clone()).await;
    assert_eq!(
        app.start_canary(args).await,
        first,
        "the same key returns the same canary"
    );
    let conflict = app
        .tool_error("start_canary", to("production", slow.clone()))
        .await;
    assert!(
        conflict.contains(&first) && conflict.contains("Conflict"),
        "{conflict}"
    );

    let mut dry = to(
        "production",
        json!({"latency_p95_ms": 800, "error_rate": 0.01}),
    );
    dry["dryRun"] = json!(true);
    let dry_id = app.start_canary(dry).await;
    let events = app.canary_events(&dry_id).await;
    assert_eq!(names(&events).last(), Some(&"dry_run"));
    let end = &events.last().expect("event").data;
    assert_eq!(
        (end["reasonCode"].as_str(), end["wouldHave"].as_str()),
        (Some("slo_met"), Some("promoted"))
    );
    assert_eq!(
        app.tool_ok("model_gates", json!({})).await["models"],
        json!([])
    );

    app.tool_ok(
        "promote_canary",
        json!({"canaryId": first, "reason": "verified by hand"}),
    )
    .await;
    let gates = app
        .tool_ok("model_gates", json!({"modelId": "lukhas-v2"}))
        .await;
    assert_eq!(gates["models"][0]["gate"], "production");
    let list = app
        .tool_ok("list_canaries", json!({"modelId": "lukhas-v2"}))
        .await;
    assert_eq!(list["count"], 2);
    let manual = app
        .tool_ok(
            "promote_model",
            json!({"modelId": "lukhas-v2", "gate": "stage"}),
        )
        .await;
    assert_eq!(manual["previousGate"], "production");
}

#[actix_web::test]
async fn the_deadline_rolls_back_a_canary_that_never_decides() {
    let app = canary_app(|_| {}).await;
    let policy = json!({"latency_p95_ms": 800, "error_rate": 0.01, "deadline": "400ms"});
    let id = app.start_canary(to("dark", policy)).await;
    let events = app.canary_events(&id).await;
    let end = &events.last().expect("event");
    assert_eq!(end.event, "rolled_back");
    assert_eq!(end.data["reasonCode"], "deadline");

    // Paused time counts toward the deadline (the first check is 1.5 s away: ample time to pause first).
    let policy = json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1.5s",
                        "successesToPromote": 1, "deadline": "2s"});
    let paused = app.start_canary(to("production", policy)).await;
    app.tool_ok("pause_canary", json!({"canaryId": paused}))
        .await;
    let events = app.canary_events(&paused).await;
    assert_eq!(names(&events), ["started", "paused", "rolled_back"]);
    assert_eq!(events[2].data["reasonCode"], "deadline");
}

#[actix_web::test]
async fn bad_canary_arguments_name_the_field_and_start_nothing() {
    let app = canary_app(|_| {}).await;
    let cases = [
        (
            to("production", json!({"error_rate": 0.01})),
            "sloPolicy.latency_p95_ms",
        ),
        (
            to(
                "production",
                json!({"latency_p95_ms": -5, "error_rate": 0.01}),
            ),
            "sloPolicy.latency_p95_ms",
        ),
        (
            to("production", json!({"latency_p95_ms": 800})),
            "sloPolicy.error_rate",
        ),
        (
            to(
                "production",
                json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "soon"}),
            ),
            "sloPolicy.interval",
        ),
        (
            to(
                "production",
                json!({"latency_p95_ms": 800, "error_rate": 0.01, "failureLimit": -1}),
            ),
            "sloPolicy.failureLimit",
        ),
        (
            to(
                "production",
                json!({"latency_p95_ms": 800, "error_rate": 0.01, "bogus": 1}),
            ),
            "sloPolicy",
        ),
        (
            to("prod\"} or vector(1) #", kit_policy(json!({}))),
            "toGate",
        ),
        (
            json!({"modelId": "m{gate=~\".*\"}", "fromGate": "stage", "toGate": "production", "sloPolicy": kit_policy(json!({}))}),
            "modelId",
        ),
        (to("stage", kit_policy(json!({}))), "toGate"),
        (
            json!({"fromGate": "stage", "toGate": "production", "sloPolicy": kit_policy(json!({}))}),
            "modelId",
        ),
    ];
    for (arguments, field) in cases {
        let message = app.tool_error("start_canary", arguments.clone()).await;
        assert!(
            message.contains(&format!("`{field}")),
            "{arguments} → {message}"
        );
    }
    for tool in [
        "canary_status",
        "abort_canary",
        "pause_canary",
        "resume_canary",
    ] {
        let message = app
            .tool_error(tool, json!({"canaryId": "canary_000000000000"}))
            .await;
        assert!(
            message.contains("No canary `canary_000000000000`"),
            "{tool}: {message}"
        );
    }
    let message = app
        .tool_error("why", json!({"id": "canary_000000000000"}))
        .await;
    assert!(message.contains("Nothing is recorded"), "{message}");
    assert_eq!(
        app.sql_rows("SELECT (SELECT count(*) FROM canaries), (SELECT count(*) FROM events), (SELECT count(*) FROM audit)"),
        [["0", "0", "0"]]
    );
}

#[actix_web::test]
async fn pattern_streams_see_every_canary_and_model_and_notes_reach_their_topics() {
    let app = canary_app(|_| {}).await;
    let mut canaries = app.sse("topic=canary/*", &[]).await;
    let mut models = app.sse("topic=model/*", &[]).await;
    let id = app
        .start_canary(to("production", kit_policy(json!({}))))
        .await;
    let seen = canaries.until_event("promoted").await;
    assert!(seen
        .iter()
        .all(|e| e.data["topic"] == format!("canary/{id}")));
    let moved = models.until_event("gate_changed").await;
    assert_eq!(
        moved.last().expect("event").data["topic"],
        "model/lukhas-v2"
    );

    for topic in [format!("canary/{id}"), "model/lukhas-v2".to_string()] {
        app.tool_ok(
            "publish_note",
            json!({"topic": topic, "message": "looked good"}),
        )
        .await;
    }
    let note = models.next_event().await.expect("note");
    assert_eq!(
        (note.event.as_str(), note.data["modelId"].as_str()),
        ("note", Some("lukhas-v2"))
    );
    let message = app
        .tool_error(
            "publish_note",
            json!({"topic": "model/unknown-model", "message": "m"}),
        )
        .await;
    assert!(message.contains("No model"), "{message}");
    let missing = app.get("/sse?topic=model/unknown-model", &[]).await;
    assert_eq!(missing.status(), awc::http::StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_canary_ttl_sweeps_ended_canaries_with_their_evidence_but_keeps_active_ones_and_each_gates_own(
) {
    let app = canary_app(|s| {
        s.retention.canary_ttl_ms = 3_600_000;
        s.retention.sweep_interval_seconds = std::time::Duration::from_secs_f64(0.2);
    })
    .await;
    let promoted = app
        .start_canary(to("production", kit_policy(json!({}))))
        .await;
    app.canary_events(&promoted).await;
    let onwards = |gate: &str| json!({"modelId": "lukhas-v2", "fromGate": "production", "toGate": gate, "sloPolicy": kit_policy(json!({}))});
    let rolled_back = app.start_canary(onwards("slow")).await;
    app.canary_events(&rolled_back).await;
    let mut slow_checks = onwards("dark");
    slow_checks["sloPolicy"]["interval"] = json!("5m");
    let paused = app.start_canary(slow_checks).await;
    app.tool_ok("pause_canary", json!({"canaryId": paused}))
        .await;
    let counts = |id: &str| {
        app.sql_rows(&format!(
            "SELECT count(*) FROM canaries WHERE id = '{id}' \
             UNION ALL SELECT count(*) FROM canary_metrics WHERE canary_id = '{id}' \
             UNION ALL SELECT count(*) FROM events WHERE topic = 'canary/{id}'"
        ))
    };
    let its_checks = counts(&rolled_back)[1][0].clone();
    let its_events = counts(&rolled_back)[2][0].clone();

    // Age all three past the one-hour TTL: one ended, one ended but named by the model's gate, one paused.
    let mut sweeps = app.sse("topic=ops/retention", &[]).await;
    app.sql_rows(&format!(
        "UPDATE canaries SET created_at = '2000-01-01 00:00:00', updated_at = '2000-01-01 00:00:00' \
         WHERE id IN ('{promoted}', '{rolled_back}', '{paused}'); \
         UPDATE canaries SET finished_at = '2000-01-01 00:00:00' WHERE finished_at IS NOT NULL"
    ));

    let swept = sweeps.until_event("swept").await;
    let swept = &swept.last().expect("event").data;
    assert_eq!(swept["canaries"], 1, "{swept}");
    assert_eq!(swept["jobs"], 0, "{swept}");
    assert_eq!(swept["checks"].to_string(), its_checks, "{swept}");
    assert_eq!(swept["events"].to_string(), its_events, "{swept}");
    assert_eq!(counts(&rolled_back), [["0"], ["0"], ["0"]]);
    let message = app
        .tool_error("canary_status", json!({"canaryId": rolled_back}))
        .await;
    assert!(message.contains(&rolled_back), "{message}");

    // The gate's own canary and the paused one stay, evidence and all; the audit trail is kept.
    let gates = app.tool_ok("model_gates", json!({})).await;
    assert_eq!(gates["models"][0]["canaryId"], promoted.as_str(), "{gates}");
    assert_eq!(
        app.tool_ok("canary_status", json!({"canaryId": promoted}))
            .await["status"],
        "promoted"
    );
    for id in [&promoted, &paused] {
        assert_ne!(counts(id)[0], ["0"], "{id}");
        assert_ne!(counts(id)[2], ["0"], "{id}");
    }
    assert_eq!(
        app.sql_rows(&format!(
            "SELECT count(*) FROM audit WHERE target = '{rolled_back}'"
        )),
        [["1"]],
        "the audit trail is kept"
    );
    assert_eq!(
        app.tool_ok("resume_canary", json!({"canaryId": paused}))
            .await["status"],
        "running",
        "an active canary is never swept, whatever its age"
    );
}
