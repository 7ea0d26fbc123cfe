//! Prompts and completions on the real server: the prompts an operator picks from a slash menu render with
//! their arguments, and `completion/complete` offers task and config ids, models, gates, canaries and jobs
//! that begin with what was typed — at most 100, with the total and whether there are more.

use serde_json::{json, Value};

use crate::helpers::{canary_args, kit_policy, shell_task, spawn_app_with, TestApp};

async fn complete(
    app: &TestApp,
    reference: Value,
    name: &str,
    value: &str,
    context: Value,
) -> Value {
    let reply = app
        .rpc(json!({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": {
            "ref": reference, "argument": {"name": name, "value": value}, "context": {"arguments": context}
        }}))
        .await;
    assert!(reply.body.get("error").is_none(), "{}", reply.body);
    reply.body["result"]["completion"].clone()
}

fn prompt(name: &str) -> Value {
    json!({"type": "ref/prompt", "name": name})
}

#[actix_web::test]
async fn prompts_are_listed_and_render_with_their_arguments() {
    let app = spawn_app_with(|_| {}).await;
    let init = app
        .rpc(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .await;
    let capabilities = &init.body["result"]["capabilities"];
    assert!(
        capabilities["prompts"].is_object() && capabilities["completions"].is_object(),
        "{capabilities}"
    );

    let listed = app
        .rpc(json!({"jsonrpc": "2.0", "id": 2, "method": "prompts/list"}))
        .await;
    let names: Vec<&str> = listed.body["result"]["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["evaluate", "safe_promotion", "explain_canary"]);

    let got = app
        .rpc(json!({"jsonrpc": "2.0", "id": 3, "method": "prompts/get", "params": {"name": "safe_promotion",
            "arguments": {"modelId": "lukhas-v2", "fromGate": "stage", "toGate": "production"}}}))
        .await;
    let text = got.body["result"]["messages"][0]["content"]["text"]
        .as_str()
        .expect("text");
    assert!(
        text.contains("start_canary") && text.contains("lukhas-v2") && text.contains("production"),
        "{text}"
    );

    let missing = app
        .rpc(json!({"jsonrpc": "2.0", "id": 4, "method": "prompts/get", "params": {"name": "safe_promotion", "arguments": {"modelId": "m"}}}))
        .await;
    assert_eq!(missing.body["error"]["code"], -32602);
    assert!(missing.body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("arguments.fromGate"));
}

#[actix_web::test]
async fn completions_offer_what_begins_with_the_typed_text_at_most_a_hundred() {
    let app = spawn_app_with(|s| {
        let mut picky = shell_task("true");
        picky.configs = Some(vec!["small".into(), "smaller".into(), "large".into()]);
        s.evals.tasks.insert("picky".into(), picky);
    })
    .await;
    let tasks = complete(&app, prompt("evaluate"), "taskId", "pi", json!({})).await;
    assert_eq!(
        tasks,
        json!({"values": ["picky"], "total": 1, "hasMore": false})
    );
    let configs = complete(
        &app,
        prompt("evaluate"),
        "configId",
        "sma",
        json!({"taskId": "picky"}),
    )
    .await;
    assert_eq!(configs["values"], json!(["small", "smaller"]));

    let mut jobs = Vec::new();
    for _ in 0..101 {
        let job = app
            .tool_ok(
                "run_eval",
                json!({"taskId": "demo", "configId": "x", "dryRun": true}),
            )
            .await;
        jobs.push(job["jobId"].as_str().expect("jobId").to_string());
    }
    jobs.sort();
    let template = json!({"type": "ref/resource", "uri": "cockpit://job/{jobId}"});
    let page = complete(&app, template.clone(), "jobId", "job_", json!({})).await;
    assert_eq!(page["total"], 101);
    assert_eq!(page["hasMore"], true);
    assert_eq!(
        page["values"],
        json!(jobs[..100]),
        "the first hundred, sorted"
    );
    let one = &jobs[17];
    let exact = complete(&app, template, "jobId", one, json!({})).await;
    assert_eq!(
        exact,
        json!({"values": [one], "total": 1, "hasMore": false})
    );

    let canary = app
        .start_canary(canary_args(
            "lukhas-v2",
            "production",
            kit_policy(json!({"interval": "5m"})),
        ))
        .await;
    let canaries = complete(
        &app,
        prompt("explain_canary"),
        "canaryId",
        "canary_",
        json!({}),
    )
    .await;
    assert_eq!(canaries["values"], json!([canary]));
    let models = complete(
        &app,
        json!({"type": "ref/resource", "uri": "cockpit://model/{modelId}"}),
        "modelId",
        "luk",
        json!({}),
    )
    .await;
    assert_eq!(models["values"], json!(["lukhas-v2"]));
    let gates = complete(&app, prompt("safe_promotion"), "toGate", "prod", json!({})).await;
    assert_eq!(gates["values"], json!(["production"]));
    let upper = complete(&app, prompt("safe_promotion"), "toGate", "Prod", json!({})).await;
    assert_eq!(upper["total"], 0, "prefixes are case-sensitive, as ids are");
}

#[actix_web::test]
async fn a_completion_for_something_we_do_not_have_names_what_to_send() {
    let app = spawn_app_with(|_| {}).await;
    for params in [
        json!({"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "x", "value": ""}}),
        json!({"ref": {"type": "ref/prompt", "name": "evaluate"}, "argument": {"name": "nope", "value": ""}}),
        json!({"ref": {"type": "ref/resource", "uri": "file:///etc/{x}"}, "argument": {"name": "x", "value": ""}}),
        json!({"ref": {"type": "ref/prompt", "name": "evaluate"}, "argument": {"name": "taskId"}}),
    ] {
        let reply = app
            .rpc(json!({"jsonrpc": "2.0", "id": 5, "method": "completion/complete", "params": params}))
            .await;
        assert_eq!(reply.body["error"]["code"], -32602, "{params}");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .expect("message")
                .contains("e.g."),
            "{}",
            reply.body
        );
    }
}
