//! Model tools: `promote_model` (manual gate assignment), `model_gates`, and the explanations `why` (the
//! narrative trail of a job, canary or model) and `why_math` (a canary's numbers).

use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{as_of_property, definition, id_property, invalid, parse, Hints, READ_ONLY};
use super::canaries::{canary_view, check_view};
use super::{Tool, ToolContext, ToolError};
use crate::auth::Caller;
use crate::canary::records;
use crate::clock;
use crate::events::EntityKind;
use crate::ids::Ident;
use crate::recorder::record;
use crate::storage::audit::AuditEntry;
use crate::storage::canaries::ModelGateRow;
use crate::storage::{AsOf, CanaryChecks};

const PROMOTE_EXAMPLE: &str = r#"{"modelId":"lukhas-v2","gate":"production"}"#;
const GATES_EXAMPLE: &str = r#"{"modelId":"lukhas-v2"}"#;
const WHY_EXAMPLE: &str = r#"{"id":"canary_0123456789ab"}"#;

/// This module's tools, in `tools/list` order.
pub const TOOLS: &[Tool] = &[
    Tool {
        name: "promote_model",
        aliases: &[],
        definition: promote_model_definition,
        example: PROMOTE_EXAMPLE,
        parses: |a| parse::<PromoteArgs>(a, PROMOTE_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(promote_model(ctx, call.caller, call.arguments)),
    },
    Tool {
        name: "model_gates",
        aliases: &[],
        definition: model_gates_definition,
        example: GATES_EXAMPLE,
        parses: |a| parse::<GatesArgs>(a, GATES_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(model_gates(ctx, call.arguments)),
    },
    Tool {
        name: "why",
        aliases: &[],
        definition: why_definition,
        example: WHY_EXAMPLE,
        parses: |a| parse::<WhyArgs>(a, WHY_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(why(ctx, call.arguments)),
    },
    Tool {
        name: "why_math",
        aliases: &[],
        definition: why_math_definition,
        example: WHY_MATH_EXAMPLE,
        parses: |a| parse::<WhyMathArgs>(a, WHY_MATH_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(why_math(ctx, call.arguments)),
    },
];
/// The longest trail `why` returns.
const TRAIL_LIMIT: i64 = 1000;

fn gate_schema() -> Value {
    json!({"type": "object", "properties": {"modelId": {"type": "string"}, "gate": {"type": "string"}, "canaryId": {"type": ["string", "null"]}, "updatedAt": {"type": "string"}}})
}

fn promote_model_definition() -> Value {
    definition(
        "promote_model",
        "Put a model at a gate",
        "Assign a model's gate by hand, without a canary (audited; writes gate_changed on model/<modelId>).",
        (
            json!({"modelId": id_property("Model, e.g. lukhas-v2"), "gate": id_property("Gate, e.g. production")}),
            &["modelId", "gate"],
        ),
        json!({"type": "object", "properties": {"modelId": {"type": "string"}, "gate": {"type": "string"}, "previousGate": {"type": ["string", "null"]}}, "required": ["modelId", "gate"]}),
        Hints {
            read_only: false,
            destructive: true,
            idempotent: true,
        },
    )
}

fn model_gates_definition() -> Value {
    definition(
        "model_gates",
        "Model gates",
        "The gate each model is at (or one model's), and which canary put it there.",
        (json!({"modelId": id_property("Only this model")}), &[]),
        json!({"type": "object", "properties": {"models": {"type": "array", "items": gate_schema()}, "asOf": as_of_property()}, "required": ["models", "asOf"]}),
        READ_ONLY,
    )
}

fn why_definition() -> Value {
    definition(
        "why",
        "Why: the narrative trail",
        "The narrative audit trail of a job, canary or model, oldest first: what happened and why.",
        (
            json!({"id": id_property("A jobId, canaryId or modelId")}),
            &["id"],
        ),
        json!({"type": "object", "properties": {"id": {"type": "string"}, "topic": {"type": "string"}, "narrative": {"type": "array", "items": {"type": "string"}}}, "required": ["id", "topic", "narrative"]}),
        READ_ONLY,
    )
}

fn why_math_definition() -> Value {
    definition(
        "why_math",
        "Why: the numbers",
        "For a canary: its thresholds, every check's observed values, verdict and reason, and the time to decision.",
        (
            json!({
                "id": id_property("A canaryId"),
                "fromCheck": {"type": "integer", "minimum": 1, "default": 1, "description": "First check to show (1-based); nextFromCheck of the previous page"},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_CHECKS_PAGE, "default": CHECKS_PAGE, "description": "Checks per page"}
            }),
            &["id"],
        ),
        json!({"type": "object", "properties": {"canaryId": {"type": "string"}, "thresholds": {"type": "object"}, "checks": {"type": "array"}, "decision": {"type": "object"}}, "required": ["canaryId", "thresholds", "checks", "decision"]}),
        READ_ONLY,
    )
}

pub fn gate_view(row: &ModelGateRow) -> Value {
    json!({"modelId": row.model_id, "gate": row.gate, "canaryId": row.canary_id, "updatedAt": row.updated_at})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PromoteArgs {
    model_id: Ident,
    gate: Ident,
}

pub async fn promote_model(
    ctx: &ToolContext,
    caller: &Caller,
    arguments: Value,
) -> Result<Value, ToolError> {
    let args: PromoteArgs = parse(arguments.clone(), PROMOTE_EXAMPLE)?;
    let audit = AuditEntry {
        actor: caller.actor.clone(),
        action: "promote_model",
        args: arguments,
    };
    let (model, gate) = (args.model_id.to_string(), args.gate.to_string());
    let previous = record(&ctx.recorder, move |tx| {
        records::model_put(tx, &model, &gate, &audit)
    })
    .await?;
    Ok(
        json!({"modelId": args.model_id.as_str(), "gate": args.gate.as_str(), "previousGate": previous}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GatesArgs {
    model_id: Option<Ident>,
}

pub async fn model_gates(ctx: &ToolContext, arguments: Value) -> Result<Value, ToolError> {
    let args: GatesArgs = parse(arguments, GATES_EXAMPLE)?;
    let model = args.model_id.map(|m| m.to_string());
    let AsOf { as_of, rows } = ctx.store.model_gates(model).await?;
    Ok(json!({"models": rows.iter().map(gate_view).collect::<Vec<_>>(), "asOf": as_of}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhyArgs {
    id: Ident,
}

/// The entity an id names: issued job and canary ids carry their kind; anything else is a model.
fn kind_of(id: &str) -> EntityKind {
    if id.starts_with("job_") {
        EntityKind::Job
    } else if id.starts_with("canary_") {
        EntityKind::Canary
    } else {
        EntityKind::Model
    }
}

pub async fn why(ctx: &ToolContext, arguments: Value) -> Result<Value, ToolError> {
    let args: WhyArgs = parse(arguments, WHY_EXAMPLE)?;
    let id = args.id.to_string();
    let topic = kind_of(&id).topic(&id);
    let rows = ctx.store.trail(&topic, TRAIL_LIMIT).await?;
    if rows.is_empty() {
        return Err(ToolError::Refused(format!(
            "Nothing is recorded for `{id}` (topic {topic}). Use a jobId, canaryId or modelId from list_jobs, list_canaries or model_gates."
        )));
    }
    let narrative: Vec<&str> = rows.iter().map(|r| r.narrative.as_str()).collect();
    Ok(json!({"id": id, "topic": topic, "narrative": narrative}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WhyMathArgs {
    id: Ident,
    /// The first check to show, 1-based.
    from_check: Option<u32>,
    limit: Option<u32>,
}

/// Checks per `why_math` page unless the caller asks for fewer or more (at most [`MAX_CHECKS_PAGE`]).
const CHECKS_PAGE: u32 = 100;
const MAX_CHECKS_PAGE: u32 = 1000;
const WHY_MATH_EXAMPLE: &str = r#"{"id":"canary_0123456789ab","fromCheck":101,"limit":100}"#;

pub async fn why_math(ctx: &ToolContext, arguments: Value) -> Result<Value, ToolError> {
    let args: WhyMathArgs = parse(arguments, WHY_MATH_EXAMPLE)?;
    let id = args.id.to_string();
    if kind_of(&id) != EntityKind::Canary {
        let problem = "must be a canaryId (why_math explains a canary's checks; why explains jobs and models)".into();
        return Err(invalid("id", problem, WHY_MATH_EXAMPLE));
    }
    let from = args.from_check.unwrap_or(1);
    if from == 0 {
        let problem = "must be 1 or more: the number of the first check to show".into();
        return Err(invalid("fromCheck", problem, WHY_MATH_EXAMPLE));
    }
    let limit = args.limit.unwrap_or(CHECKS_PAGE);
    if !(1..=MAX_CHECKS_PAGE).contains(&limit) {
        let problem = format!("must be from 1 to {MAX_CHECKS_PAGE}");
        return Err(invalid("limit", problem, WHY_MATH_EXAMPLE));
    }
    // One more than the page, to know whether another follows.
    let found = ctx
        .store
        .canary_with_checks(&id, i64::from(from) - 1, i64::from(limit) + 1)
        .await?;
    let Some(CanaryChecks {
        canary: row,
        checks: mut metrics,
        verdicts: counts,
    }) = found
    else {
        return Err(ToolError::Refused(format!(
            "No canary `{id}`. list_canaries shows the existing canaries."
        )));
    };
    let more = metrics.len() > limit as usize;
    metrics.truncate(limit as usize);
    let view = canary_view(&row, None);
    let checks: Vec<Value> = metrics
        .iter()
        .zip(u64::from(from)..)
        .map(|(m, number)| {
            let mut check = check_view(m);
            check["check"] = json!(number);
            check["raw"] = json!({"latency": m.raw_latency, "errorRate": m.raw_error_rate, "errors": m.raw_errors, "requests": m.raw_requests, "newest": m.raw_newest});
            check["thresholds"] = json!({"latency_p95_ms": m.latency_threshold, "error_rate": m.error_rate_threshold});
            check["query"] = serde_json::from_str(&m.query).unwrap_or(Value::Null);
            check
        })
        .collect();
    let count = |verdict: &str| {
        counts
            .iter()
            .find(|(v, _)| v == verdict)
            .map_or(0, |(_, n)| *n)
    };
    let decided_ms = row.finished_at.as_deref().and_then(|end| {
        let (start, end) = (clock::parse_sql(&row.created_at)?, clock::parse_sql(end)?);
        Some((end - start).num_milliseconds())
    });
    Ok(json!({
        "canaryId": id,
        "status": row.status,
        "thresholds": {
            "latency_p95_ms": view["policy"]["latency_p95_ms"],
            "error_rate": view["policy"]["error_rate"],
            "criticalFactor": view["policy"]["criticalFactor"],
            "minRequests": view["policy"]["minRequests"],
            "confidence": view["policy"]["confidence"],
            "maxStaleness": view["policy"]["maxStaleness"],
        },
        "policy": view["policy"],
        "checks": checks,
        "nextFromCheck": more.then(|| u64::from(from) + u64::from(limit)),
        "summary": {"pass": count("pass"), "fail": count("fail"), "no_decision": count("no_decision")},
        "decision": {
            "status": row.status,
            "reasonCode": row.reason_code,
            "reason": row.reason,
            "timeToDecisionMs": decided_ms,
        },
    }))
}
