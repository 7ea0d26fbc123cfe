//! Every duration and number argument of every tool, given `1e20`, `"1e20"`, `1e300`, `-1`, NaN-like
//! strings and `0`: each is an `isError` that names the field (or, where the value is valid, an ordinary
//! answer), nothing is stored by a refusal, and the server never panics (a panic would end the
//! connection or answer -32603, and both fail here).

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

/// `1e15` fits a `Duration` but not a date: it must be refused by range, not reach date arithmetic.
const BAD: [&str; 9] = [
    "1e20",
    "\"1e20\"",
    "1e300",
    "1e15",
    "-1",
    "\"NaN\"",
    "\"-Infinity\"",
    "\"1e999\"",
    "0",
];

/// A tool, its valid arguments, the JSON pointer of the number to spoil, the field name its error must
/// name, and whether 0 is a valid value there.
struct Case {
    tool: &'static str,
    arguments: Value,
    pointer: &'static str,
    field: &'static str,
    zero_ok: bool,
}

fn policy() -> Value {
    json!({"latency_p95_ms": 800, "error_rate": 0.01})
}

fn cases(canary_id: &str) -> Vec<Case> {
    let start = |pointer, field, zero_ok| Case {
        tool: "start_canary",
        arguments: json!({"modelId": "m", "fromGate": "stage", "toGate": "production", "sloPolicy": policy()}),
        pointer,
        field,
        zero_ok,
    };
    let evaluate = |pointer, field, zero_ok| Case {
        tool: "evaluate_slo",
        arguments: json!({"gate": "production", "sloPolicy": policy()}),
        pointer,
        field,
        zero_ok,
    };
    let mut cases = vec![
        Case {
            tool: "run_eval",
            arguments: json!({"taskId": "probe", "configId": "c"}),
            pointer: "/timeoutSeconds",
            field: "timeoutSeconds",
            zero_ok: false,
        },
        Case {
            tool: "list_jobs",
            arguments: json!({}),
            pointer: "/limit",
            field: "limit",
            zero_ok: false,
        },
        Case {
            tool: "list_canaries",
            arguments: json!({}),
            pointer: "/limit",
            field: "limit",
            zero_ok: false,
        },
        Case {
            tool: "why_math",
            arguments: json!({"id": canary_id}),
            pointer: "/fromCheck",
            field: "fromCheck",
            zero_ok: false,
        },
        Case {
            tool: "why_math",
            arguments: json!({"id": canary_id}),
            pointer: "/limit",
            field: "limit",
            zero_ok: false,
        },
    ];
    for (name, zero_ok) in [
        ("latency_p95_ms", false),
        ("error_rate", true),
        ("interval", false),
        ("window", false),
        ("windowSeconds", false),
        ("successesToPromote", false),
        ("failureLimit", false),
        ("minRequests", true),
        ("warmupChecks", true),
        ("maxNoDecision", false),
        ("deadline", false),
        ("criticalFactor", false),
        ("confidence", false),
        ("maxStaleness", false),
    ] {
        let pointer: &'static str = Box::leak(format!("/sloPolicy/{name}").into_boxed_str());
        let field: &'static str = Box::leak(format!("sloPolicy.{name}").into_boxed_str());
        cases.push(start(pointer, field, zero_ok));
        cases.push(evaluate(pointer, field, zero_ok));
    }
    // The original server's `targets` alias: errors name the field it stands for.
    for (name, field, zero_ok) in [
        ("latency_p95_ms", "sloPolicy.latency_p95_ms", false),
        ("max_error_rate", "sloPolicy.error_rate", true),
    ] {
        let pointer: &'static str =
            Box::leak(format!("/sloPolicy/targets/{name}").into_boxed_str());
        cases.push(Case {
            tool: "start_canary",
            arguments: json!({"modelId": "m", "fromGate": "stage", "toGate": "production",
                              "sloPolicy": {"targets": {"latency_p95_ms": 800, "max_error_rate": 0.01}}}),
            pointer,
            field,
            zero_ok,
        });
    }
    cases
}

/// Sets the value at a JSON pointer, creating the last key.
fn with_value(mut arguments: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let object = if parent.is_empty() {
        &mut arguments
    } else {
        if arguments.pointer(parent).is_none() {
            let (grand, name) = parent.rsplit_once('/').expect("parent");
            arguments.pointer_mut(grand).expect("grandparent")[name] = json!({});
        }
        arguments.pointer_mut(parent).expect("parent")
    };
    object[key] = value;
    arguments
}

fn stored(app: &TestApp) -> Vec<Vec<String>> {
    app.sql_rows(
        "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM canaries), \
         (SELECT count(*) FROM events), (SELECT count(*) FROM audit)",
    )
}

#[actix_web::test]
async fn every_number_and_duration_argument_out_of_range_is_refused_naming_its_field() {
    let app = spawn_app_with(|_| {}).await;
    let canary = app
        .tool_ok(
            "start_canary",
            json!({"modelId": "m", "fromGate": "stage", "toGate": "qa",
                   "sloPolicy": {"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1h", "window": "1h", "deadline": "4h"}}),
        )
        .await;
    let canary_id = canary["canaryId"].as_str().expect("id");
    let mut checked = 0;
    for (index, case) in cases(canary_id).into_iter().enumerate() {
        for bad in BAD {
            let value: Value = serde_json::from_str(bad).expect("json");
            let mut arguments = with_value(case.arguments.clone(), case.pointer, value);
            if case.tool == "start_canary" {
                // Its own model, so a valid 0 starts a canary that conflicts with no other.
                arguments["modelId"] = json!(format!("m{index}"));
            }
            let before = stored(&app);
            let result = app.call_tool(case.tool, arguments.clone()).await;
            let said = format!("{} {arguments}: {result}", case.tool);
            if bad == "0" && case.zero_ok {
                assert_eq!(result["isError"], false, "0 is valid here: {said}");
                continue;
            }
            assert_eq!(result["isError"], true, "must refuse: {said}");
            let text = result["content"][0]["text"].as_str().expect("text");
            // The effective field, or the argument's own path as the caller wrote it.
            let path = case.pointer.trim_start_matches('/').replace('/', ".");
            assert!(
                text.contains(&format!("`{}`", case.field)) || text.contains(&format!("`{path}`")),
                "names `{}`: {said}",
                case.field
            );
            assert!(text.contains("Example"), "gives an example: {said}");
            assert_eq!(stored(&app), before, "a refusal stores nothing: {said}");
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked}");
}
