//! Tasks: the durable handle of a long call, backed by the job or canary the call started, so a task id *is*
//! the job or canary id and survives restarts with it. Two forms share it:
//! - 2025-11-25's tasks utility: a `tools/call` of `run_eval` or `start_canary` carrying `params.task`
//!   returns `{task}` at once; `tasks/get`, `tasks/result` (waits for the end), `tasks/list`, `tasks/cancel`.
//! - 2026-07-28's extension `io.modelcontextprotocol/tasks`: for a client that declares it, a `run_eval`
//!   that would wait (`wait: true`) returns `resultType: "task"` instead of holding the request open;
//!   `tasks/get` inlines the result once there is one; `tasks/cancel` and `tasks/update` acknowledge.
//!
//! A job that is queued or running, and a canary that is running, paused or held, is `working`; a cancelled
//! job and a canary rolled back by hand are `cancelled`; every other end is `completed`, with the result the
//! call would have returned had it waited (a failed eval is a completed call that reports the failure).

use std::time::Duration;

use serde_json::{json, Value};

use super::jsonrpc::{self, RpcError};
use super::resources;
use super::tools::{canary_view, job_view, tool_result, Listeners, ToolContext, RECENT_CHECKS};
use crate::auth::Caller;
use crate::broker::Subscription;
use crate::events::{EntityKind, TopicFilter};
use crate::ids::Ident;
use crate::jobs::JobStatus;
use crate::storage::canaries::CanaryRow;
use crate::storage::jobs::JobRow;
use crate::storage::{Listed, Store};

/// The 2026-07-28 extension's identifier.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// The tools a task can stand for.
pub const TOOLS: [&str; 2] = ["run_eval", "start_canary"];
/// Suggested polling intervals: a job moves in seconds, a canary in check intervals.
const JOB_POLL_MS: u64 = 1_000;
const CANARY_POLL_MS: u64 = 5_000;
/// Tasks per `tasks/list` page.
const PAGE: usize = 50;
/// How long `tasks/result` waits for an end at most, whatever the entity's own limit.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);
const KINDS: [EntityKind; 2] = [EntityKind::Job, EntityKind::Canary];

/// Which revision's shapes a reply takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Legacy,
    Modern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Working,
    Completed,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Working => "working",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// A task as read from its job or canary.
struct Task {
    id: String,
    kind: EntityKind,
    status: Status,
    message: String,
    created: String,
    updated: String,
    /// What the call returns at its end (a `CallToolResult`), once it has ended.
    result: Option<Value>,
}

/// SQL time text (`2026-11-30 04:50:11.123`, UTC) as ISO 8601.
fn iso(sql_time: &str) -> String {
    format!("{}Z", sql_time.replacen(' ', "T", 1))
}

fn from_job(row: &JobRow) -> Task {
    let status = JobStatus::parse(&row.status);
    let (task_status, message) = match status {
        Some(JobStatus::Queued) => (Status::Working, "queued".to_string()),
        Some(JobStatus::Running) => (
            Status::Working,
            format!(
                "running, {:.0}%{}",
                row.progress * 100.0,
                row.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        ),
        Some(JobStatus::Cancelled) => (
            Status::Cancelled,
            format!(
                "cancelled: {}",
                row.error.as_deref().unwrap_or("no reason given")
            ),
        ),
        Some(JobStatus::Failed) => (
            Status::Completed,
            format!(
                "the eval failed: {}",
                row.error.as_deref().unwrap_or("no error text")
            ),
        ),
        _ => (Status::Completed, row.status.clone()),
    };
    Task {
        id: row.job_id.clone(),
        kind: EntityKind::Job,
        result: (task_status != Status::Working).then(|| tool_result(&job_view(row))),
        status: task_status,
        message,
        created: iso(&row.created_at),
        updated: iso(&row.updated_at),
    }
}

fn from_canary(row: &CanaryRow, recent: &[crate::storage::canaries::MetricRow]) -> Task {
    let status = match row.status.as_str() {
        "running" | "paused" | "held" => Status::Working,
        "rolled_back" if row.reason_code.as_deref() == Some("manual") => Status::Cancelled,
        _ => Status::Completed,
    };
    let message = match &row.reason {
        Some(reason) => format!("{}: {reason}", row.status),
        None => format!("{}, {} checks", row.status, row.checks),
    };
    Task {
        id: row.id.clone(),
        kind: EntityKind::Canary,
        result: (status != Status::Working).then(|| tool_result(&canary_view(row, Some(recent)))),
        status,
        message,
        created: iso(&row.created_at),
        updated: iso(&row.updated_at),
    }
}

fn invalid(message: String) -> RpcError {
    RpcError::new(
        jsonrpc::INVALID_PARAMS,
        format!("Invalid params: {message}"),
    )
}

fn no_such_task(id: &str) -> RpcError {
    invalid(format!(
        "no task `{id}`; a task is a job or canary id (job_…, canary_…) that run_eval or start_canary returned"
    ))
}

/// The `taskId` param, and which kind of entity it names.
fn task_id(params: Option<&Value>) -> Result<(String, EntityKind), RpcError> {
    let example = r#"{"taskId": "job_0123456789ab"}"#;
    let id = params
        .and_then(|p| p.get("taskId"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("`taskId` (a string) is required, e.g. {example}")))?;
    Ident::parse(id).map_err(|rule| invalid(format!("`taskId` {rule}; e.g. {example}")))?;
    let kind = if id.starts_with("job_") {
        EntityKind::Job
    } else if id.starts_with("canary_") {
        EntityKind::Canary
    } else {
        return Err(no_such_task(id));
    };
    Ok((id.to_string(), kind))
}

async fn load(store: &Store, id: &str, kind: EntityKind) -> Result<Task, RpcError> {
    let found = if kind == EntityKind::Job {
        store.job(id).await.map(|row| row.as_ref().map(from_job))
    } else {
        store
            .canary_with_recent(id, RECENT_CHECKS)
            .await
            .map(|found| found.map(|(row, recent)| from_canary(&row, &recent)))
    };
    found?.ok_or_else(|| no_such_task(id))
}

fn shape(task: &Task, era: Era) -> Value {
    let poll = if task.kind == EntityKind::Job {
        JOB_POLL_MS
    } else {
        CANARY_POLL_MS
    };
    let mut shaped = json!({
        "taskId": task.id,
        "status": task.status.as_str(),
        "statusMessage": task.message,
        "createdAt": task.created,
        "lastUpdatedAt": task.updated,
    });
    match era {
        Era::Legacy => {
            shaped["ttl"] = Value::Null;
            shaped["pollInterval"] = json!(poll);
        }
        Era::Modern => {
            shaped["ttlMs"] = Value::Null;
            shaped["pollIntervalMs"] = json!(poll);
            if let (Status::Completed, Some(result)) = (task.status, &task.result) {
                // The call's own result, as this revision shapes one.
                shaped["result"] = super::modern::complete("tools/call", result.clone());
            }
        }
    }
    shaped
}

/// `tools/list` for the handshake era: the tools a task can stand for say so.
pub fn with_task_support(mut tools: Vec<Value>) -> Vec<Value> {
    for tool in &mut tools {
        if TOOLS.contains(&tool["name"].as_str().unwrap_or_default()) {
            tool["execution"] = json!({"taskSupport": "optional"});
        }
    }
    tools
}

/// Whether a modern request's client declared the extension.
pub fn declared(params: Option<&Value>) -> bool {
    params
        .and_then(|p| p.pointer("/_meta/io.modelcontextprotocol~1clientCapabilities/extensions"))
        .is_some_and(|extensions| extensions.get(EXTENSION).is_some())
}

/// Whether this `tools/call` is to be answered with a task: in the handshake era when it carries
/// `params.task`; in the modern one when its client declared the extension and it is a `run_eval` that would
/// wait. `Err` for a task asked of a tool that cannot be one.
pub fn wanted(params: Option<&Value>, era: Era) -> Result<bool, RpcError> {
    let name = params.and_then(|p| p["name"].as_str()).unwrap_or_default();
    match era {
        Era::Legacy => match params.and_then(|p| p.get("task")) {
            None | Some(Value::Null) => Ok(false),
            Some(_) if TOOLS.contains(&name) => Ok(true),
            Some(_) => Err(RpcError::new(
                jsonrpc::METHOD_NOT_FOUND,
                format!(
                    "Method not found: `{name}` cannot run as a task (its execution.taskSupport is forbidden); \
                     only {} can",
                    TOOLS.join(" and ")
                ),
            )),
        },
        Era::Modern => Ok(declared(params)
            && name == "run_eval"
            && params.is_some_and(|p| p["arguments"]["wait"] == true)),
    }
}

/// Runs the tool without waiting and answers with its task (`{task}` in the handshake era, the task itself
/// with `resultType: "task"` in the modern one). A refusal of the tool is its own result, as without a task.
pub async fn create(
    ctx: &ToolContext,
    params: Option<Value>,
    (caller, listeners): (&Caller, Listeners<'_>),
    era: Era,
) -> Result<Value, RpcError> {
    let mut params = params.unwrap_or_default();
    if let Some(fields) = params.as_object_mut() {
        fields.remove("task");
    }
    if let Some(arguments) = params["arguments"].as_object_mut() {
        arguments.remove("wait");
    }
    let called = ctx.call(Some(params), caller, listeners).await?;
    if called["isError"] == true {
        return Ok(called);
    }
    let content = &called["structuredContent"];
    let id = content["jobId"]
        .as_str()
        .or(content["canaryId"].as_str())
        .unwrap_or_default();
    let (id, kind) = task_id(Some(&json!({ "taskId": id })))?;
    let task = load(&ctx.store, &id, kind).await?;
    Ok(match era {
        Era::Legacy => json!({ "task": shape(&task, era) }),
        Era::Modern => {
            let mut created = shape(&task, era);
            created["resultType"] = json!("task");
            created
        }
    })
}

/// `tasks/get {taskId}`.
pub async fn get(ctx: &ToolContext, params: Option<&Value>, era: Era) -> Result<Value, RpcError> {
    let (id, kind) = task_id(params)?;
    Ok(shape(&load(&ctx.store, &id, kind).await?, era))
}

/// Opens a subscription to the entity before anything is read, so its end cannot pass unseen.
async fn watch(ctx: &ToolContext, id: &str, kind: EntityKind) -> Result<Subscription, RpcError> {
    let ident = Ident::parse(id).map_err(|_| no_such_task(id))?;
    Subscription::open(
        &ctx.broker,
        vec![TopicFilter::Entity(kind, ident)],
        ctx.subscriber_queue,
    )
    .await
    .map_err(|e| {
        log::error!("tasks: {e}");
        jsonrpc::internal_error()
    })
}

/// `tasks/result {taskId}` (handshake era): waits for the end, then answers what the call would have.
pub async fn result(ctx: &ToolContext, params: Option<&Value>) -> Result<Value, RpcError> {
    let (id, kind) = task_id(params)?;
    let watching = watch(ctx, &id, kind).await?;
    let mut task = load(&ctx.store, &id, kind).await?;
    if task.status == Status::Working {
        watching.until_terminal(LONGEST_WAIT).await;
        task = load(&ctx.store, &id, kind).await?;
    }
    let mut result = task.result.ok_or_else(|| {
        RpcError::new(
            jsonrpc::INTERNAL_ERROR,
            format!("Task `{id}` is still working; poll tasks/get"),
        )
    })?;
    result["_meta"] = json!({"io.modelcontextprotocol/related-task": {"taskId": id}});
    Ok(result)
}

/// `tasks/list {cursor}` (handshake era): every job, then every canary, by id.
pub async fn list(ctx: &ToolContext, params: Option<&Value>) -> Result<Value, RpcError> {
    let after = resources::parse_cursor(params, &KINDS)?;
    let page = ctx.store.entities_after(&KINDS, after, PAGE + 1).await?;
    let more = page.len() > PAGE;
    let tasks: Vec<Task> = page
        .iter()
        .take(PAGE)
        .filter_map(|listed| match listed {
            Listed::Job(row) => Some(from_job(row)),
            Listed::Canary(row) => Some(from_canary(row, &[])),
            Listed::Model(_) => None,
        })
        .collect();
    let mut listed =
        json!({ "tasks": tasks.iter().map(|t| shape(t, Era::Legacy)).collect::<Vec<_>>() });
    if let (true, Some(last)) = (more, tasks.last()) {
        listed["nextCursor"] = json!(format!("{}:{}", last.kind.prefix(), last.id));
    }
    Ok(listed)
}

/// `tasks/cancel {taskId}`: `cancel_job` or `abort_canary`, audited as the caller's. The handshake era
/// refuses an ended task and answers once it has ended; the modern one acknowledges at once.
pub async fn cancel(
    ctx: &ToolContext,
    caller: &Caller,
    params: Option<&Value>,
    era: Era,
) -> Result<Value, RpcError> {
    let (id, kind) = task_id(params)?;
    let watching = watch(ctx, &id, kind).await?;
    let task = load(&ctx.store, &id, kind).await?;
    if task.status != Status::Working {
        return match era {
            Era::Legacy => Err(invalid(format!(
                "task `{id}` has already ended ({}); only a working task can be cancelled",
                task.status.as_str()
            ))),
            Era::Modern => Ok(json!({})),
        };
    }
    let reason = "cancelled through tasks/cancel";
    let call = if kind == EntityKind::Job {
        json!({"name": "cancel_job", "arguments": {"jobId": id, "reason": reason}})
    } else {
        json!({"name": "abort_canary", "arguments": {"canaryId": id, "reason": reason}})
    };
    let answered = ctx.call(Some(call), caller, Listeners::default()).await?;
    if answered["isError"] == true {
        let text = answered["content"][0]["text"].as_str().unwrap_or_default();
        return Err(invalid(format!("task `{id}` cannot be cancelled: {text}")));
    }
    match era {
        Era::Modern => Ok(json!({})),
        Era::Legacy => {
            // A running job ends once its processes have: at most the kill grace, and a margin.
            watching
                .until_terminal(ctx.kill_grace + Duration::from_secs(5))
                .await;
            Ok(shape(&load(&ctx.store, &id, kind).await?, era))
        }
    }
}

/// `tasks/update {taskId, inputResponses}` (modern): no task of ours ever waits for input, so there is
/// nothing to take; a known task is acknowledged.
pub async fn update(ctx: &ToolContext, params: Option<&Value>) -> Result<Value, RpcError> {
    let (id, kind) = task_id(params)?;
    load(&ctx.store, &id, kind).await?;
    Ok(json!({}))
}

/// `subscriptions/listen {notifications: {taskIds}}` (modern): the tasks whose changes the stream will carry
/// as `notifications/tasks`, each of which must exist. Only for a client that declared the extension
/// (-32021 otherwise, naming it).
pub async fn listened(ctx: &ToolContext, params: Option<&Value>) -> Result<Vec<String>, RpcError> {
    let asked = params.and_then(|p| p.pointer("/notifications/taskIds"));
    let ids =
        match asked {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(ids)) => ids,
            Some(_) => return Err(invalid(
                "`notifications.taskIds` must be an array of task ids, e.g. [\"job_0123456789ab\"]"
                    .into(),
            )),
        };
    if !declared(params) {
        return Err(RpcError::new(
            super::modern::MISSING_CAPABILITY,
            format!("Missing required client capability: task notifications need the {EXTENSION} extension"),
        )
        .with_data(json!({"requiredCapabilities": {"extensions": { (EXTENSION): {} }}})));
    }
    if ids.len() > super::session::MAX_SUBSCRIPTIONS {
        return Err(invalid(format!(
            "a subscription may name at most {} tasks",
            super::session::MAX_SUBSCRIPTIONS
        )));
    }
    let mut honoured = Vec::with_capacity(ids.len());
    for id in ids {
        let (id, kind) = task_id(Some(&json!({ "taskId": id })))?;
        load(&ctx.store, &id, kind).await?;
        if !honoured.contains(&id) {
            honoured.push(id);
        }
    }
    Ok(honoured)
}

/// `notifications/tasks` with the task's whole current state, as `tasks/get` would answer it; `None` if it
/// no longer exists.
pub async fn notification(store: &Store, id: &str) -> Option<Value> {
    let (id, kind) = task_id(Some(&json!({ "taskId": id }))).ok()?;
    let task = load(store, &id, kind).await.ok()?;
    Some(
        json!({"jsonrpc": "2.0", "method": "notifications/tasks", "params": shape(&task, Era::Modern)}),
    )
}
