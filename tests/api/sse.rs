//! `/sse`: replay, live delivery, patterns, resumption, and when streams end.

use std::collections::HashSet;

use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{names, spawn_app, spawn_app_with};

#[actix_web::test]
async fn a_subscriber_after_the_end_gets_the_whole_history_and_one_during_the_job_gets_the_same() {
    let app = spawn_app().await;
    let job_id = app.run_eval("probe").await;
    let live = app.job_events(&job_id).await;
    let late = app.job_events(&job_id).await;

    assert_eq!(names(&live), ["queued", "started", "progress", "completed"]);
    let ids = |events: &[crate::helpers::SseEvent]| events.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(&live), ids(&late));
    assert!(
        ids(&live).windows(2).all(|w| w[0] < w[1]),
        "ids must increase"
    );
    for event in &live {
        assert_eq!(event.data["topic"], format!("job/{job_id}"));
        assert_eq!(event.data["jobId"], job_id);
        assert!(event.data["ts"].as_str().expect("ts").ends_with('Z'));
        let narrative = event.data["narrative"].as_str().expect("narrative");
        assert!(
            narrative.starts_with('[') && narrative.contains(&format!("] {job_id} → ")),
            "{narrative}"
        );
    }
    assert!(live[3].data["narrative"]
        .as_str()
        .expect("narrative")
        .contains("completed successfully"));
}

#[actix_web::test]
async fn job_pattern_and_wildcard_subscribers_get_every_jobs_events_with_concrete_topics() {
    let app = spawn_app().await;
    let mut jobs = app.sse("topic=job/*", &[]).await;
    let mut everything = app.sse("topic=*", &[]).await;
    // Overlapping filters: every event matches both, and must still arrive once.
    let mut both = app.sse("topic=job/*&topic=*", &[]).await;
    let first = app.run_eval("probe").await;
    let second = app.run_eval("probe").await;

    for stream in [&mut jobs, &mut everything, &mut both] {
        let mut finished = HashSet::new();
        let mut seen = Vec::new();
        while finished.len() < 2 {
            let event = stream
                .next_event()
                .await
                .expect("pattern streams stay open");
            let id = event.data["jobId"].as_str().expect("jobId").to_string();
            assert_eq!(
                event.data["topic"],
                format!("job/{id}"),
                "the concrete topic, never the pattern"
            );
            if event.event == "completed" {
                finished.insert(id.clone());
            }
            seen.push((id, event.event));
        }
        for job in [&first, &second] {
            let of_job: Vec<&str> = seen
                .iter()
                .filter(|(id, _)| id == job)
                .map(|(_, e)| e.as_str())
                .collect();
            assert_eq!(of_job, ["queued", "started", "progress", "completed"]);
        }
    }
}

#[actix_web::test]
async fn last_event_id_resumes_without_a_gap_or_a_duplicate() {
    let app = spawn_app().await;
    let job_id = app.run_eval("demo").await;
    let mut first = app.sse(&format!("topic=job/{job_id}"), &[]).await;
    let seen: Vec<_> = vec![
        first.next_event().await.expect("1"),
        first.next_event().await.expect("2"),
        first.next_event().await.expect("3"),
    ];
    drop(first);
    let last = seen.last().expect("event").id.to_string();
    let rest = app
        .sse(&format!("topic=job/{job_id}"), &[("Last-Event-ID", &last)])
        .await
        .until_end()
        .await;
    let whole = app.job_events(&job_id).await;

    let resumed: Vec<i64> = seen.iter().chain(&rest).map(|e| e.id).collect();
    assert_eq!(resumed, whole.iter().map(|e| e.id).collect::<Vec<_>>());
    // The query form works the same, and a pattern resumes from the log too.
    let by_query = app
        .sse(&format!("topic=job/{job_id}&lastEventId={last}"), &[])
        .await
        .until_end()
        .await;
    assert_eq!(by_query.len(), rest.len());
    let mut pattern = app
        .sse(&format!("topic=job/*&lastEventId={last}"), &[])
        .await;
    assert_eq!(pattern.next_event().await.expect("replayed").id, rest[0].id);
}

#[actix_web::test]
async fn a_stream_of_ended_entities_already_seen_gets_204_and_unknown_entities_404() {
    let app = spawn_app().await;
    let job = app.run_eval_and_wait("probe", "default").await;
    let job_id = job["jobId"].as_str().expect("id");
    let events = app.job_events(job_id).await;
    let terminal = events.last().expect("events").id.to_string();

    let done = app
        .get(
            &format!("/sse?topic=job/{job_id}"),
            &[("Last-Event-ID", &terminal)],
        )
        .await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let unknown = app.get("/sse?topic=job/job_000000000000", &[]).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    for bad in [
        "",
        "topic=jobs/x",
        "topic=job/a%3Bb",
        "topic=*&lastEventId=abc",
    ] {
        assert_eq!(
            app.get(&format!("/sse?{bad}"), &[]).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[actix_web::test]
async fn streams_carry_proxy_friendly_headers_a_retry_hint_and_keep_alive_comments() {
    let app =
        spawn_app_with(|s| s.sse.keep_alive_seconds = std::time::Duration::from_millis(200)).await;
    let mut response = app.get("/sse?topic=ops/deploys", &[]).await;
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-cache")
    );
    assert_eq!(
        response
            .headers()
            .get("x-accel-buffering")
            .and_then(|v| v.to_str().ok()),
        Some("no")
    );
    let mut text = String::new();
    while !text.contains(": keep-alive") {
        use futures_util::StreamExt;
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), response.next())
            .await
            .expect("a keep-alive arrives")
            .expect("open")
            .expect("chunk");
        text.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
    assert!(text.starts_with("retry: 2000\n\n"), "{text}");
}

#[actix_web::test]
async fn with_api_keys_streams_need_a_key_by_header_or_query_and_mcp_never_takes_it_from_the_url() {
    let app = spawn_app_with(|s| s.auth.api_keys = vec!["k-123".into()]).await;
    let missing = app.get("/sse?topic=ops/x", &[]).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_eq!(
        app.get("/sse?topic=ops/x", &[("X-API-Key", "wrong")])
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.sse("topic=ops/x", &[("X-API-Key", "k-123")]).await;
    app.sse("topic=ops/x", &[("Authorization", "Bearer k-123")])
        .await;
    app.sse("topic=ops/x&key=k-123", &[]).await;

    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let no_key = app.post_mcp_raw(ping, &[]).await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_key.body["error"]["code"], -32001);
    assert!(no_key.headers.contains_key("www-authenticate"));
    let url_key = app.client_post_with_query_key(ping, "k-123").await;
    assert_eq!(url_key, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.post_mcp_raw(ping, &[("X-API-Key", "k-123")])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_mcp_raw(ping, &[("Authorization", "Bearer k-123")])
            .await
            .status,
        StatusCode::OK
    );
}

/// The lists say at which event they were read (`asOf`); a stream resumed from there hears exactly what
/// came after: the page loads its picture and follows on with no gap and no duplicate.
#[actix_web::test]
async fn lists_carry_the_seq_they_were_read_at_and_a_stream_from_it_misses_nothing() {
    let app = spawn_app_with(|_| {}).await;
    let policy = json!({"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1h", "window": "1h", "deadline": "4h"});
    app.tool_ok(
        "start_canary",
        json!({"modelId": "a", "fromGate": "stage", "toGate": "production", "sloPolicy": policy}),
    )
    .await;
    let listed = app.tool_ok("list_canaries", json!({})).await;
    let as_of = listed["asOf"].as_i64().expect("asOf");
    for tool in ["list_jobs", "model_gates"] {
        let other = app.tool_ok(tool, json!({})).await;
        assert_eq!(other["asOf"].as_i64(), Some(as_of), "{tool}: {other}");
    }
    let later = app
        .tool_ok(
            "start_canary",
            json!({"modelId": "b", "fromGate": "stage", "toGate": "production", "sloPolicy": policy}),
        )
        .await;
    let mut stream = app
        .sse("topic=canary/*", &[("Last-Event-ID", &as_of.to_string())])
        .await;
    let first = stream.next_event().await.expect("an event");
    assert_eq!(first.id, as_of + 1);
    assert_eq!(first.event, "started");
    assert_eq!(first.data["canaryId"], later["canaryId"]);
}
