//! Model tools: `promote_model` (manual gate assignment), `model_gates`, and the explanations `why` (the
//! narrative trail of a job, canary or model) and `why_math` (a canary's numbers).

use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{invalid, parse};
use super::canaries::{canary_view, check_view};
use super::{Call, ToolContext, ToolError};
use crate::canary::records;
use crate::clock;
use crate::events::EntityKind;
use crate::ids::Ident;
use crate::recorder::record;
use crate::storage::audit::AuditEntry;
use crate::storage::canaries::ModelGateRow;
use crate::storage::{AsOf, CanaryChecks};

pub(super) const PROMOTE_EXAMPLE: &str = r#"{"modelId":"lukhas-v2","gate":"production"}"#;
pub(super) const GATES_EXAMPLE: &str = r#"{"modelId":"lukhas-v2"}"#;
pub(super) const WHY_EXAMPLE: &str = r#"{"id":"canary_0123456789ab"}"#;

/// The longest trail `why` returns.
const TRAIL_LIMIT: i64 = 1000;

pub(super) fn gate_schema() -> Value {
    json!({"type": "object", "properties": {"modelId": {"type": "string"}, "gate": {"type": "string"}, "canaryId": {"type": ["string", "null"]}, "updatedAt": {"type": "string"}}})
}

pub fn gate_view(row: &ModelGateRow) -> Value {
    json!({"modelId": row.model_id, "gate": row.gate, "canaryId": row.canary_id, "updatedAt": row.updated_at})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PromoteArgs {
    model_id: Ident,
    gate: Ident,
}

pub async fn promote_model(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let Call {
        caller, arguments, ..
    } = call;
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
pub(super) struct GatesArgs {
    model_id: Option<Ident>,
}

pub async fn model_gates(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let arguments = call.arguments;
    let args: GatesArgs = parse(arguments, GATES_EXAMPLE)?;
    let model = args.model_id.map(|m| m.to_string());
    let AsOf { as_of, rows } = ctx.store.model_gates(model).await?;
    Ok(json!({"models": rows.iter().map(gate_view).collect::<Vec<_>>(), "asOf": as_of}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WhyArgs {
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

pub async fn why(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let arguments = call.arguments;
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
pub(super) struct WhyMathArgs {
    id: Ident,
    /// The first check to show, 1-based.
    from_check: Option<u32>,
    limit: Option<u32>,
}

/// Checks per `why_math` page unless the caller asks for fewer or more (at most [`MAX_CHECKS_PAGE`]).
pub(super) const CHECKS_PAGE: u32 = 100;
pub(super) const MAX_CHECKS_PAGE: u32 = 1000;
pub(super) const WHY_MATH_EXAMPLE: &str =
    r#"{"id":"canary_0123456789ab","fromCheck":101,"limit":100}"#;

pub async fn why_math(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let arguments = call.arguments;
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
