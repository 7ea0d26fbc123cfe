//! What `start_canary` refuses before a canary exists, each an `isError` naming the field with nothing
//! stored and the server healthy: numbers that cannot be durations, policies outside the limits or that could
//! never promote, a model that is elsewhere, a reused idempotency key, a full house, and two canaries into a
//! gate whose queries cannot tell them apart. Also: the ratio query's warning, and frozen evidence.

use serde_json::{json, Value};

use crate::helpers::{canary_args, kit_policy, names, serve, spawn_app_with, TestApp};

/// Nothing stored: no canary, no event, no audit row.
fn assert_nothing_stored(app: &TestApp) {
    assert_eq!(
        app.sql_rows("SELECT (SELECT count(*) FROM canaries), (SELECT count(*) FROM events), (SELECT count(*) FROM audit)"),
        [["0", "0", "0"]]
    );
}

#[actix_web::test]
async fn numbers_that_are_no_duration_and_policies_outside_the_limits_name_their_field() {
    let app = spawn_app_with(|s| s.canary.min_interval = std::time::Duration::from_secs(1)).await;
    for field in ["interval", "window", "deadline", "maxStaleness"] {
        for bad in [
            json!(1e20),
            json!("1e20"),
            json!(1e300),
            json!(-1),
            json!("0s"),
        ] {
            let mut extra = serde_json::Map::new();
            extra.insert(field.to_string(), bad.clone());
            let message = app
                .tool_error(
                    "start_canary",
                    canary_args("m", "production", kit_policy(Value::Object(extra))),
                )
                .await;
            assert!(
                message.contains(&format!("`sloPolicy.{field}`")),
                "{field} = {bad} → {message}"
            );
            assert!(message.contains("Example of valid arguments"), "{message}");
        }
    }
    for (policy, field, rule) in [
        (json!({"interval": "500ms"}), "interval", "at least 1s"),
        (
            json!({"interval": "10s", "window": "5s"}),
            "window",
            "at least the interval",
        ),
        (json!({"deadline": "31d"}), "deadline", "at most 30 days"),
        (
            json!({"interval": "1m", "deadline": "2m"}),
            "deadline",
            "fastest possible promotion",
        ),
        (json!({"confidence": 1.5}), "confidence", "between 0 and 1"),
    ] {
        let message = app
            .tool_error(
                "start_canary",
                canary_args("m", "production", kit_policy(policy.clone())),
            )
            .await;
        assert!(
            message.contains(&format!("`sloPolicy.{field}`")) && message.contains(rule),
            "{policy} → {message}"
        );
    }
    assert_nothing_stored(&app);
    assert_eq!(app.get("/healthz", &[]).await.status(), 200);
}

#[actix_web::test]
async fn a_model_known_elsewhere_and_a_key_reused_for_another_canary_are_refused() {
    let app = spawn_app_with(|_| {}).await;
    app.tool_ok("promote_model", json!({"modelId": "m1", "gate": "canary"}))
        .await;
    let message = app
        .tool_error(
            "start_canary",
            canary_args("m1", "production", kit_policy(json!({}))),
        )
        .await;
    assert!(
        message.contains("`fromGate`") && message.contains("at gate `canary`"),
        "{message}"
    );
    let mut keyed = canary_args("m2", "production", kit_policy(json!({"interval": "5m"})));
    keyed["idempotencyKey"] = json!("deploy-7");
    let first = app.tool_ok("start_canary", keyed.clone()).await;
    let again = app.tool_ok("start_canary", keyed.clone()).await;
    assert_eq!(
        again["canaryId"], first["canaryId"],
        "same key, same arguments"
    );
    keyed["modelId"] = json!("m3");
    let reused = app.tool_error("start_canary", keyed).await;
    assert!(
        reused.contains("`idempotencyKey`")
            && reused.contains(first["canaryId"].as_str().expect("id")),
        "{reused}"
    );
    assert_eq!(
        app.sql_rows("SELECT count(*) FROM canaries"),
        [["1"]],
        "only the first canary exists"
    );
}

#[actix_web::test]
async fn past_max_active_a_start_is_refused_dry_runs_included() {
    let app = spawn_app_with(|s| s.canary.max_active = 2).await;
    let idle = kit_policy(json!({"interval": "5m"}));
    app.tool_ok("start_canary", canary_args("a", "production", idle.clone()))
        .await;
    let mut dry = canary_args("b", "production", idle.clone());
    dry["dryRun"] = json!(true);
    app.tool_ok("start_canary", dry).await;
    let full = app
        .tool_error("start_canary", canary_args("c", "production", idle.clone()))
        .await;
    assert!(
        full.contains("canary.max_active") && full.contains('2'),
        "{full}"
    );
    assert_eq!(app.sql_rows("SELECT count(*) FROM canaries"), [["2"]]);
}

/// A fake Prometheus that answers every query with a fresh sample of 1 (healthy enough to start with).
fn fake_prometheus() -> String {
    let port = serve(|cfg| {
        cfg.route(
            "/api/v1/query",
            actix_web::web::post().to(|body: actix_web::web::Bytes| async move {
                let form: std::collections::HashMap<String, String> =
                    form_urlencoded::parse(&body).into_owned().collect();
                let value = if form["query"].starts_with("max(timestamp") {
                    form["time"].clone()
                } else {
                    "1".to_string()
                };
                actix_web::HttpResponse::Ok().json(json!({"status": "success", "data": {
                    "resultType": "vector", "result": [{"metric": {}, "value": [1, value]}]}}))
            }),
        )
        .route(
            "/-/ready",
            actix_web::web::get().to(actix_web::HttpResponse::Ok),
        );
    });
    format!("http://127.0.0.1:{port}")
}

#[actix_web::test]
async fn two_models_into_one_gate_are_refused_while_the_queries_do_not_name_the_model() {
    let url = fake_prometheus();
    let app = spawn_app_with(|s| s.slo.prometheus.url = url.clone()).await;
    let idle = kit_policy(json!({"interval": "5m"}));
    app.tool_ok("start_canary", canary_args("a", "production", idle.clone()))
        .await;
    let shared = app
        .tool_error("start_canary", canary_args("b", "production", idle.clone()))
        .await;
    assert!(
        shared.contains("$__model") && shared.contains("judge each other's traffic"),
        "{shared}"
    );

    let named = spawn_app_with(|s| {
        let p = &mut s.slo.prometheus;
        p.url = url.clone();
        for query in [
            &mut p.latency_query,
            &mut p.errors_query,
            &mut p.requests_query,
        ] {
            *query = query.replace("gate=\"$__gate\"", "gate=\"$__gate\",model=\"$__model\"");
        }
    })
    .await;
    named
        .tool_ok("start_canary", canary_args("a", "production", idle.clone()))
        .await;
    named
        .tool_ok("start_canary", canary_args("b", "production", idle))
        .await;
}

#[actix_web::test]
async fn a_ratio_query_is_judged_as_a_point_value_and_start_canary_says_so() {
    let url = fake_prometheus();
    let app = spawn_app_with(|s| {
        s.slo.prometheus.url = url.clone();
        s.slo.prometheus.error_rate_query =
            r#"sum(rate(model_errors_total{gate="$__gate"}[$__window]))"#.into();
    })
    .await;
    let started = app
        .tool_ok(
            "start_canary",
            canary_args("m", "production", kit_policy(json!({"interval": "5m"}))),
        )
        .await;
    let warnings = started["warnings"].as_array().expect("warnings");
    assert!(
        warnings[0]
            .as_str()
            .expect("text")
            .contains("PROM_QUERY_ERR"),
        "{started}"
    );
}

#[actix_web::test]
async fn frozen_evidence_is_stale_data_and_never_passes() {
    let app = spawn_app_with(|s| {
        s.slo.stub.gates.insert(
            "frozen".into(),
            mcp_cockpit::config::GateOverride {
                stale: true,
                ..Default::default()
            },
        );
    })
    .await;
    let mut args = canary_args(
        "m",
        "production",
        kit_policy(json!({"interval": "100ms", "maxNoDecision": 3})),
    );
    args["toGate"] = json!("frozen");
    let id = app.tool_ok("start_canary", args).await["canaryId"]
        .as_str()
        .expect("id")
        .to_string();
    let events = app
        .sse(&format!("topic=canary/{id}"), &[])
        .await
        .until_event("held")
        .await;
    let metrics: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "metric")
        .map(|e| &e.data)
        .collect();
    assert_eq!(metrics.len(), 3, "{:?}", names(&events));
    assert!(metrics
        .iter()
        .all(|m| m["verdict"] == "no_decision" && m["reasonCode"] == "stale_data"));
}

#[actix_web::test]
async fn a_promotion_that_finds_the_model_moved_holds_instead_of_overwriting() {
    let app = spawn_app_with(|_| {}).await;
    let policy = kit_policy(json!({"interval": "300ms", "warmupChecks": 1}));
    let id = app
        .tool_ok("start_canary", canary_args("m", "production", policy))
        .await["canaryId"]
        .as_str()
        .expect("id")
        .to_string();
    let mut stream = app.sse(&format!("topic=canary/{id}"), &[]).await;
    // Moved by hand while the canary warms up.
    stream.until_event("metric").await;
    app.tool_ok("promote_model", json!({"modelId": "m", "gate": "hotfix"}))
        .await;
    let held = stream.until_event("held").await;
    let last = held.last().expect("held");
    assert_eq!(last.data["reasonCode"], "gate_moved", "{:?}", names(&held));
    assert!(!names(&held).contains(&"promoted"));
    let gates = app.tool_ok("model_gates", json!({"modelId": "m"})).await;
    assert_eq!(gates["models"][0]["gate"], "hotfix", "never overwritten");
    let refused = app
        .tool_error(
            "promote_canary",
            json!({"canaryId": id, "reason": "ship it"}),
        )
        .await;
    assert!(refused.contains("moved to gate `hotfix`"), "{refused}");
}

#[actix_web::test]
async fn why_math_pages_through_the_checks_with_totals_over_all_of_them() {
    let app = spawn_app_with(|_| {}).await;
    let policy = kit_policy(json!({"interval": "20ms", "warmupChecks": 1000}));
    let id = app
        .tool_ok("start_canary", canary_args("m", "production", policy))
        .await["canaryId"]
        .as_str()
        .expect("id")
        .to_string();
    app.sse(&format!("topic=canary/{id}"), &[])
        .await
        .until_event_where(|e| e.event == "metric" && e.data["check"] == 25)
        .await;
    app.tool_ok("pause_canary", json!({"canaryId": id})).await;
    let total = app.tool_ok("canary_status", json!({"canaryId": id})).await["checks"]
        .as_u64()
        .expect("checks");
    let mut numbers = Vec::new();
    let mut from = json!(1);
    while !from.is_null() {
        let page = app
            .tool_ok(
                "why_math",
                json!({"id": id, "fromCheck": from, "limit": 10}),
            )
            .await;
        let checks = page["checks"].as_array().expect("checks");
        assert!(checks.len() <= 10);
        numbers.extend(checks.iter().map(|c| c["check"].as_u64().expect("number")));
        assert_eq!(
            page["summary"]["no_decision"].as_u64(),
            Some(total),
            "totals cover every check"
        );
        from = page["nextFromCheck"].clone();
    }
    assert_eq!(numbers, (1..=total).collect::<Vec<_>>());
    let status = app.tool_ok("canary_status", json!({"canaryId": id})).await;
    assert_eq!(status["recentChecks"].as_array().expect("recent").len(), 10);
    for (arguments, field) in [
        (json!({"id": id, "limit": 0}), "limit"),
        (json!({"id": id, "limit": 5000}), "limit"),
        (json!({"id": id, "fromCheck": 0}), "fromCheck"),
    ] {
        let message = app.tool_error("why_math", arguments).await;
        assert!(message.contains(&format!("`{field}`")), "{message}");
    }
}

#[actix_web::test]
async fn a_paused_canary_is_not_checked_while_another_runs_on() {
    let app = spawn_app_with(|_| {}).await;
    let busy = kit_policy(json!({"interval": "100ms", "warmupChecks": 1000}));
    let start = |model: &str| {
        let args = canary_args(model, "production", busy.clone());
        let app = &app;
        async move {
            app.tool_ok("start_canary", args).await["canaryId"]
                .as_str()
                .expect("id")
                .to_string()
        }
    };
    let (paused, clock) = (start("paused").await, start("clock").await);
    app.sse(&format!("topic=canary/{paused}"), &[])
        .await
        .until_event_where(|e| e.event == "metric" && e.data["check"] == 2)
        .await;
    app.tool_ok("pause_canary", json!({"canaryId": paused}))
        .await;
    let checks = |id: &str| {
        let (app, id) = (&app, id.to_string());
        async move {
            app.tool_ok("canary_status", json!({"canaryId": id})).await["checks"]
                .as_u64()
                .expect("checks")
        }
    };
    let at_pause = checks(&paused).await;
    // The other canary, checked every 100 ms too, is the clock: ten more of its checks.
    let now = checks(&clock).await;
    app.sse(&format!("topic=canary/{clock}"), &[])
        .await
        .until_event_where(|e| e.event == "metric" && e.data["check"].as_u64() >= Some(now + 10))
        .await;
    assert_eq!(checks(&paused).await, at_pause, "no check while paused");
    app.tool_ok("resume_canary", json!({"canaryId": paused}))
        .await;
    app.sse(&format!("topic=canary/{paused}"), &[])
        .await
        .until_event_where(|e| e.event == "metric" && e.data["check"].as_u64() > Some(at_pause))
        .await;
}
