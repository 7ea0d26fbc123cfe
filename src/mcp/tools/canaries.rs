//! Canary tools: `start_canary`, `abort_canary`, `canary_status`, `list_canaries`, `pause_canary`,
//! `resume_canary`, `promote_canary`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{id_property, invalid, list_limit, one_of, parse, Hints};
use super::{Call, ToolContext, ToolError};
use crate::auth::Caller;
use crate::canary::policy::{self, PolicyPatch};
use crate::canary::records::{self, Ending};
use crate::canary::rules::Counters;
use crate::canary::{
    after, Action, CanaryState, Lookup, Operate, OperateError, StartCanary, Started, Status,
};
use crate::clock;
use crate::events::EntityKind;
use crate::ids::{CanaryId, Ident};
use crate::recorder::record;
use crate::storage::audit::AuditEntry;
use crate::storage::canaries::{self, CanaryFilter, CanaryRow};
use crate::storage::AsOf;
use crate::webhooks::Notify;

pub(super) const START_EXAMPLE: &str = r#"{"modelId":"lukhas-v2","fromGate":"stage","toGate":"production","sloPolicy":{"latency_p95_ms":800,"error_rate":0.01}}"#;
pub(super) const ID_EXAMPLE: &str = r#"{"canaryId":"canary_0123456789ab"}"#;
pub(super) const ABORT_EXAMPLE: &str =
    r#"{"canaryId":"canary_0123456789ab","reason":"manual override"}"#;
pub(super) const PROMOTE_EXAMPLE: &str =
    r#"{"canaryId":"canary_0123456789ab","reason":"verified by hand"}"#;
pub(super) const LIST_EXAMPLE: &str = r#"{"status":"running","modelId":"lukhas-v2","limit":20}"#;

/// How many recent checks `canary_status` shows.
/// Checks a canary's view shows (`recentChecks`); `why_math` pages through all of them.
pub const RECENT_CHECKS: i64 = 10;

pub(super) fn canary_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "canaryId": {"type": "string"}, "modelId": {"type": "string"},
            "fromGate": {"type": "string"}, "toGate": {"type": "string"},
            "status": {"type": "string", "enum": Status::ALL.map(Status::as_str)},
            "topic": {"type": "string", "description": "SSE topic: GET /sse?topic=<topic>"},
            "policy": {"type": "object"}, "dryRun": {"type": "boolean"},
            "reasonCode": {"type": ["string", "null"]}, "reason": {"type": ["string", "null"]},
            "checks": {"type": "integer"}, "consecutivePasses": {"type": "integer"},
            "consecutiveFailures": {"type": "integer"}, "consecutiveNoDecision": {"type": "integer"},
            "nextCheckAt": {"type": ["string", "null"]}, "deadlineAt": {"type": "string"},
            "createdAt": {"type": "string"}, "finishedAt": {"type": ["string", "null"]},
            "recentChecks": {"type": "array"}
        },
        "required": ["canaryId", "status", "topic", "policy"]
    })
}

pub(super) fn reason_property(default: &str) -> Value {
    json!({"type": "string", "maxLength": 500, "default": default, "description": "Why; recorded with the decision"})
}

/// The input of the tools that take only a canary id.
pub(super) fn id_only() -> (Value, &'static [&'static str]) {
    (
        json!({"canaryId": id_property("Id returned by start_canary")}),
        &["canaryId"][..],
    )
}

pub(super) const ACTING: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: false,
    open_world: false,
};

/// Pausing or resuming: asking again changes nothing more.
pub(super) const REPEATABLE: Hints = Hints {
    idempotent: true,
    ..ACTING
};

/// Ending a canary: once it has ended, asking again changes nothing.
pub(super) const ENDING: Hints = Hints {
    read_only: false,
    destructive: true,
    idempotent: true,
    open_world: false,
};

/// The canary as tools report it; `metrics`, when given, are its checks (oldest first).
pub fn canary_view(row: &CanaryRow, metrics: Option<&[canaries::MetricRow]>) -> Value {
    let policy: Value = serde_json::from_str(&row.slo_policy).unwrap_or(Value::Null);
    let mut view = json!({
        "canaryId": row.id,
        "modelId": row.model_id,
        "fromGate": row.from_gate,
        "toGate": row.to_gate,
        "status": row.status,
        "topic": EntityKind::Canary.topic(&row.id),
        "policy": policy,
        "dryRun": row.dry_run,
        "reasonCode": row.reason_code,
        "reason": row.reason,
        "checks": row.checks,
        "consecutivePasses": row.consecutive_passes,
        "consecutiveFailures": row.consecutive_failures,
        "consecutiveNoDecision": row.consecutive_no_decision,
        "nextCheckAt": row.next_check_at,
        "deadlineAt": row.deadline_at,
        "createdAt": row.created_at,
        "finishedAt": row.finished_at,
    });
    if let Some(metrics) = metrics {
        let recent: Vec<Value> = metrics.iter().map(check_view).collect();
        view["recentChecks"] = Value::Array(recent);
    }
    view
}

pub fn check_view(m: &canaries::MetricRow) -> Value {
    json!({
        "evaluatedAt": m.evaluated_at,
        "gate": m.gate,
        "latency_p95_ms": m.latency_p95_ms,
        "error_rate": m.error_rate,
        "errors": m.errors,
        "requests": m.requests,
        "error_rate_lower": m.error_rate_lower,
        "error_rate_upper": m.error_rate_upper,
        "newest_sample_at": m.newest_sample_at,
        "verdict": m.verdict,
        "reasonCode": m.reason_code,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct StartArgs {
    model_id: Ident,
    from_gate: Ident,
    to_gate: Ident,
    #[serde(default)]
    slo_policy: PolicyPatch,
    #[serde(default)]
    dry_run: bool,
    idempotency_key: Option<Ident>,
}

pub async fn start_canary(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let Call {
        caller,
        arguments,
        session,
        ..
    } = call;
    let args: StartArgs = parse(arguments.clone(), START_EXAMPLE)?;
    if args.from_gate == args.to_gate {
        let problem = "must differ from fromGate: a canary moves a model between two gates".into();
        return Err(invalid("toGate", problem, START_EXAMPLE));
    }
    let policy = policy::effective(
        &ctx.policies,
        args.model_id.as_str(),
        args.to_gate.as_str(),
        &args.slo_policy,
    )
    .and_then(|policy| policy.within(&ctx.limits).map(|()| policy))
    .map_err(|e| invalid(&format!("sloPolicy.{}", e.field), e.problem, START_EXAMPLE))?;
    let created = clock::now();
    let state = CanaryState {
        id: CanaryId::issue(),
        model_id: args.model_id.to_string(),
        from_gate: args.from_gate.to_string(),
        to_gate: args.to_gate.to_string(),
        deadline: after(created, policy.deadline),
        next_check: Some(after(created, policy.interval)),
        policy,
        dry_run: args.dry_run,
        status: Status::Running,
        counters: Counters::default(),
        created,
    };
    let canary_id = state.id.clone();
    if let Some(session) = session {
        session.own(format!("canary/{canary_id}"));
    }
    let started = ctx
        .canaries
        .send(StartCanary {
            state,
            idempotency_key: args.idempotency_key.map(|k| k.to_string()),
            audit: AuditEntry {
                actor: caller.actor.clone(),
                action: "start_canary",
                args: arguments,
            },
            rules: ctx.start_rules,
        })
        .await??;
    let mut view = match started {
        Started::Created => load_canary(ctx, &canary_id).await?,
        Started::Existing(row) => {
            if let Some(session) = session {
                session.own(format!("canary/{}", row.id));
            }
            canary_view(&row, None)
        }
        Started::KeyReused(row) => {
            let problem = format!(
                "was used for canary `{}` ({} {} → {}) with other arguments; an idempotencyKey names one \
                 request — send that request's arguments again to get that canary, or use a new key",
                row.id, row.model_id, row.from_gate, row.to_gate
            );
            return Err(invalid("idempotencyKey", problem, START_EXAMPLE));
        }
        Started::Conflict(row) => return Err(ToolError::Refused(format!(
            "Conflict: canary `{}` is already moving {} to {} (status {}). Wait for it to end, or abort_canary it first.",
            row.id, row.model_id, row.to_gate, row.status
        ))),
        Started::GateShared(row) => return Err(ToolError::Refused(format!(
            "Conflict: canary `{}` is already moving {} into {}, and the SLO queries do not name $__model, so \
             two canaries there would judge each other's traffic. Wait for it to end, or add {{model=\"$__model\"}} \
             to the queries (PROM_QUERY_LAT, COCKPIT_PROM_QUERY_ERRORS, COCKPIT_PROM_QUERY_REQ).",
            row.id, row.model_id, row.to_gate
        ))),
        Started::Elsewhere(gate) => {
            let problem = format!(
                "is `{}`, but model {} is at gate `{gate}`; a canary moves a model on from where it is — use \
                 fromGate `{gate}`, or promote_model to put it elsewhere first",
                args.from_gate, args.model_id
            );
            return Err(invalid("fromGate", problem, START_EXAMPLE));
        }
        Started::Full(max) => return Err(ToolError::Refused(format!(
            "Too many active canaries: {max} are running, paused or held (dry runs included; config \
             canary.max_active). Wait for some to end, or abort_canary some."
        ))),
    };
    if !ctx.canary_warnings.is_empty() {
        view["warnings"] = json!(*ctx.canary_warnings);
    }
    Ok(view)
}

async fn find_canary(ctx: &ToolContext, canary_id: &str) -> Result<Option<CanaryRow>, ToolError> {
    Ok(ctx.store.canary(canary_id).await?)
}

fn no_such_canary(canary_id: &str) -> ToolError {
    ToolError::Refused(format!(
        "No canary `{canary_id}`. list_canaries shows the existing canaries."
    ))
}

async fn load_canary(ctx: &ToolContext, canary_id: &str) -> Result<Value, ToolError> {
    let found = ctx
        .store
        .canary_with_recent(canary_id, RECENT_CHECKS)
        .await?;
    match found {
        Some((row, metrics)) => Ok(canary_view(&row, Some(&metrics))),
        None => Err(no_such_canary(canary_id)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct IdArgs {
    canary_id: Ident,
}

pub async fn canary_status(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let arguments = call.arguments;
    let args: IdArgs = parse(arguments, ID_EXAMPLE)?;
    load_canary(ctx, args.canary_id.as_str()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ListArgs {
    status: Option<String>,
    model_id: Option<Ident>,
    limit: Option<i64>,
}

pub async fn list_canaries(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let arguments = call.arguments;
    let args: ListArgs = parse(arguments, LIST_EXAMPLE)?;
    one_of(
        "status",
        args.status.as_deref(),
        &Status::ALL.map(Status::as_str),
        LIST_EXAMPLE,
    )?;
    let limit = list_limit(args.limit, LIST_EXAMPLE)?;
    let filter = CanaryFilter {
        status: args.status,
        model_id: args.model_id.map(|m| m.to_string()),
        limit,
    };
    let AsOf { as_of, rows } = ctx.store.canaries(filter).await?;
    let list: Vec<Value> = rows.iter().map(|r| canary_view(r, None)).collect();
    Ok(json!({"count": list.len(), "canaries": list, "asOf": as_of}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ReasonArgs {
    canary_id: Ident,
    reason: Option<String>,
}

/// Sends an operator's action to the canary's actor and reports the canary afterwards. A canary without an
/// actor has ended (or never existed), and says so.
async fn operate(
    ctx: &ToolContext,
    caller: &Caller,
    canary_id: &str,
    action: Action,
    (name, arguments): (&'static str, Value),
) -> Result<Value, ToolError> {
    let actor = ctx
        .canaries
        .send(Lookup {
            canary_id: CanaryId::named(canary_id),
        })
        .await?;
    let audit = AuditEntry {
        actor: caller.actor.clone(),
        action: name,
        args: arguments,
    };
    let Some(actor) = actor else {
        return operate_on_row(ctx, canary_id, action, audit).await;
    };
    let sent = Operate {
        action: action.clone(),
        audit: audit.clone(),
    };
    match actor.send(sent).await {
        Ok(Ok(_)) => load_canary(ctx, canary_id).await,
        Ok(Err(OperateError::Refused(message))) => Err(ToolError::Refused(message)),
        Ok(Err(OperateError::Store(e))) => Err(e.into()),
        // The actor stopped meanwhile: it ended the canary, or it died (and is being re-created).
        Err(_) => operate_on_row(ctx, canary_id, action, audit).await,
    }
}

/// A manual promotion never silently overwrites a model that was moved since its canary started.
async fn refuse_if_moved(ctx: &ToolContext, canary_id: &str) -> Result<(), ToolError> {
    let found = ctx.store.canary_and_gate(canary_id).await?;
    match found {
        Some((row, Some(at))) if at != row.from_gate && !row.dry_run => {
            Err(ToolError::Refused(format!(
                "Model {} was moved to gate `{at}` since canary `{}` started from `{}`; promoting it would \
                 overwrite that. Abort this canary, or put the model where you want it with promote_model.",
                row.model_id, row.id, row.from_gate
            )))
        }
        _ => Ok(()),
    }
}

/// An action on a canary that has no live actor. An ended canary never changes; an active one (its actor
/// died, or could not be re-created) can still be aborted or promoted: the row is ended directly, in one
/// transaction that only applies while it is still active.
async fn operate_on_row(
    ctx: &ToolContext,
    canary_id: &str,
    action: Action,
    audit: AuditEntry,
) -> Result<Value, ToolError> {
    let Some(row) = find_canary(ctx, canary_id).await? else {
        return Err(no_such_canary(canary_id));
    };
    let active = Status::parse(&row.status).is_some_and(Status::is_active);
    if !active {
        return Err(ToolError::Refused(format!(
            "Canary `{}` already ended ({}{}); an ended canary never changes. start_canary begins a new one.",
            row.id,
            row.status,
            row.reason.map(|r| format!(": {r}")).unwrap_or_default()
        )));
    }
    let (promote, why) = match action {
        Action::Abort { reason } => (false, reason),
        Action::Promote { reason } => (true, reason),
        Action::Pause | Action::Resume => {
            return Err(ToolError::Refused(format!(
                "Canary `{canary_id}` has no live actor right now (it is being recovered), so it cannot be \
                 paused or resumed; abort_canary or promote_canary still act on it."
            )))
        }
    };
    let state = CanaryState::from_row(&row)?.ended(promote);
    // Webhooks announce promotions and rollbacks, never the end of a dry run.
    let notify = ctx.webhooks.is_some() && !row.dry_run;
    let ending = Ending::manual(promote, why, audit, notify);
    let seq = record(&ctx.recorder, move |tx| records::ended(tx, &state, &ending)).await?;
    if let (Some(seq), Some(webhooks), true) = (seq.and_then(|s| s.get()), &ctx.webhooks, notify) {
        webhooks.do_send(Notify { seq });
    }
    load_canary(ctx, canary_id).await
}

fn reason_of(
    args: &ReasonArgs,
    default: Option<&str>,
    example: &'static str,
) -> Result<String, ToolError> {
    let reason = match (&args.reason, default) {
        (Some(r), _) => r.trim().to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => String::new(),
    };
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(invalid(
            "reason",
            "must be 1 to 500 characters".into(),
            example,
        ));
    }
    Ok(reason)
}

/// `abort_canary`, `promote_canary`, `pause_canary` and `resume_canary`: parse, then hand to the actor.
pub async fn act(
    ctx: &ToolContext,
    call: Call<'_>,
    tool: &'static str,
) -> Result<Value, ToolError> {
    let Call {
        caller, arguments, ..
    } = call;
    let (canary_id, action) = match tool {
        "abort_canary" | "promote_canary" => {
            let example = if tool == "abort_canary" {
                ABORT_EXAMPLE
            } else {
                PROMOTE_EXAMPLE
            };
            let args: ReasonArgs = parse(arguments.clone(), example)?;
            if tool == "abort_canary" {
                let reason = reason_of(&args, Some("manual abort"), example)?;
                (args.canary_id, Action::Abort { reason })
            } else {
                let reason = reason_of(&args, None, example)?;
                refuse_if_moved(ctx, args.canary_id.as_str()).await?;
                (args.canary_id, Action::Promote { reason })
            }
        }
        _ => {
            let args: IdArgs = parse(arguments.clone(), ID_EXAMPLE)?;
            let action = if tool == "pause_canary" {
                Action::Pause
            } else {
                Action::Resume
            };
            (args.canary_id, action)
        }
    };
    operate(ctx, caller, canary_id.as_str(), action, (tool, arguments)).await
}
