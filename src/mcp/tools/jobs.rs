//! Job tools: `run_eval`, `job_status` (alias `status`), `list_jobs`, `cancel_job`.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{invalid, list_limit, one_of, parse};
use super::{Call, ProgressUpdate, ToolContext, ToolError};
use crate::broker::Subscription;
use crate::events::{EntityKind, TopicFilter};
use crate::ids::{Ident, JobId};
use crate::jobs::records;
use crate::jobs::{CancelJob, Cancelled, JobError, JobSpec, JobStatus, SubmitJob, TaskCatalog};
use crate::recorder::record;
use crate::storage::audit::AuditEntry;
use crate::storage::jobs::{JobFilter, JobRow};
use crate::storage::AsOf;

pub(super) const RUN_EVAL_EXAMPLE: &str = r#"{"taskId":"demo","configId":"default"}"#;
pub(super) const JOB_ID_EXAMPLE: &str = r#"{"jobId":"job_0123456789ab"}"#;
pub(super) const LIST_EXAMPLE: &str = r#"{"status":"running","taskId":"demo","limit":20}"#;
pub(super) const CANCEL_EXAMPLE: &str = r#"{"jobId":"job_0123456789ab","reason":"wrong config"}"#;

/// Beyond the job's own limit, how long `wait` allows for queueing and recording.
const WAIT_MARGIN: Duration = Duration::from_secs(30);

pub(super) fn job_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "jobId": {"type": "string"}, "taskId": {"type": "string"}, "configId": {"type": "string"},
            "status": {"type": "string", "enum": JobStatus::NAMES},
            "topic": {"type": "string", "description": "SSE topic of the job: GET /sse?topic=<topic>"},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "message": {"type": ["string", "null"]},
            "result": {"description": "The process's final {\"result\": …}, when completed"},
            "error": {"type": ["string", "null"]}, "exitCode": {"type": ["integer", "null"]},
            "createdAt": {"type": "string"}, "startedAt": {"type": ["string", "null"]},
            "finishedAt": {"type": ["string", "null"]}, "durationMs": {"type": ["integer", "null"]}
        },
        "required": ["jobId", "taskId", "configId", "status", "topic"]
    })
}

/// The job as tools report it.
pub fn job_view(row: &JobRow) -> Value {
    json!({
        "jobId": row.job_id,
        "taskId": row.task_id,
        "configId": row.config_id,
        "status": row.status,
        "topic": EntityKind::Job.topic(&row.job_id),
        "progress": row.progress,
        "message": row.message,
        "result": row.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
        "error": row.error,
        "exitCode": row.exit_code,
        "createdAt": row.created_at,
        "startedAt": row.started_at,
        "finishedAt": row.finished_at,
        "durationMs": row.duration_ms,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RunEvalArgs {
    task_id: Ident,
    config_id: Ident,
    #[serde(default)]
    wait: bool,
    timeout_seconds: Option<f64>,
    #[serde(default)]
    dry_run: bool,
}

pub async fn run_eval(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let Call {
        caller,
        arguments,
        progress,
        session,
    } = call;
    let args: RunEvalArgs = parse(arguments.clone(), RUN_EVAL_EXAMPLE)?;
    let Some(task) = ctx.catalog.get(args.task_id.as_str()) else {
        let problem = format!(
            "no task `{}`; known tasks: {}",
            args.task_id,
            ctx.catalog.describe()
        );
        return Err(invalid("taskId", problem, RUN_EVAL_EXAMPLE));
    };
    let config_id = args.config_id.as_str();
    if config_id.starts_with('-') {
        return Err(invalid(
            "configId",
            "must not start with '-' (it would read as an option)".into(),
            RUN_EVAL_EXAMPLE,
        ));
    }
    if let Some(allowed) = task
        .configs
        .as_ref()
        .filter(|list| !list.iter().any(|c| c == config_id))
    {
        let problem = format!(
            "task `{}` allows only: {}",
            args.task_id,
            allowed.join(", ")
        );
        return Err(invalid("configId", problem, RUN_EVAL_EXAMPLE));
    }
    let limit = TaskCatalog::max_timeout(task);
    let timeout = match args.timeout_seconds {
        None => limit,
        Some(t) if t.is_finite() && t > 0.0 && t <= limit.as_secs_f64() => {
            Duration::from_secs_f64(t)
        }
        Some(t) => {
            let problem = format!(
                "must be more than 0 and at most {} (the task's limit), got {t}",
                limit.as_secs_f64()
            );
            return Err(invalid("timeoutSeconds", problem, RUN_EVAL_EXAMPLE));
        }
    };
    let spec = JobSpec {
        job_id: JobId::issue(),
        task_id: args.task_id.to_string(),
        config_id: config_id.to_string(),
        timeout,
        queued_at: Instant::now(),
    };
    let job_id = spec.job_id.clone();
    if let Some(session) = session {
        session.own(format!("job/{job_id}"));
    }
    // Subscribe before the job exists, so waiting can never miss its end.
    let watch = if args.wait && !args.dry_run {
        Some(watch_job(ctx, &job_id).await?)
    } else {
        None
    };
    if let (Some(sink), Some(_)) = (progress, &watch) {
        // Before the job exists, so a cancellation can never arrive before the caller knows the job.
        let _ = sink.send(ProgressUpdate::Job(job_id.clone()));
    }
    let audit_entry = AuditEntry {
        actor: caller.actor.clone(),
        action: "run_eval",
        args: arguments,
    };
    let submitted = ctx
        .registry
        .send(SubmitJob {
            spec,
            dry_run: args.dry_run,
            audit: audit_entry,
        })
        .await;
    submitted.map_err(JobError::from).and_then(|r| r)?;
    if let Some(watch) = watch {
        watch
            .until_terminal_with(timeout + ctx.kill_grace + WAIT_MARGIN, |frame| {
                if let (Some(sink), "progress") = (progress, frame.event.as_str()) {
                    if let Ok(data) = serde_json::from_str::<Value>(frame.data()) {
                        let _ = sink.send(ProgressUpdate::Step {
                            progress: data["progress"].as_f64().unwrap_or(0.0),
                            message: data["message"].as_str().map(String::from),
                        });
                    }
                }
            })
            .await;
        return load_job(ctx, &job_id).await;
    }
    // What was created, not a re-read: the job may already be running, and the reply must not depend on that race.
    Ok(json!({
        "jobId": job_id,
        "taskId": args.task_id.as_str(),
        "configId": config_id,
        "status": if args.dry_run { JobStatus::DryRun } else { JobStatus::Queued }.as_str(),
        "topic": EntityKind::Job.topic(&job_id),
    }))
}

async fn watch_job(ctx: &ToolContext, job_id: &str) -> Result<Subscription, ToolError> {
    let id = Ident::parse(job_id).map_err(ToolError::Internal)?;
    Subscription::open(
        &ctx.broker,
        vec![TopicFilter::Entity(EntityKind::Job, id)],
        ctx.subscriber_queue,
    )
    .await
    .map_err(ToolError::from)
}

async fn find_job(ctx: &ToolContext, job_id: &str) -> Result<Option<JobRow>, ToolError> {
    Ok(ctx.store.job(job_id).await?)
}

async fn load_job(ctx: &ToolContext, job_id: &str) -> Result<Value, ToolError> {
    match find_job(ctx, job_id).await? {
        Some(row) => Ok(job_view(&row)),
        None => Err(ToolError::Refused(format!(
            "No job `{job_id}`. list_jobs shows the existing jobs."
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct JobIdArgs {
    job_id: Ident,
}

pub async fn job_status(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let arguments = call.arguments;
    let args: JobIdArgs = parse(arguments, JOB_ID_EXAMPLE)?;
    load_job(ctx, args.job_id.as_str()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ListJobsArgs {
    status: Option<String>,
    task_id: Option<Ident>,
    limit: Option<i64>,
}

pub async fn list_jobs(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let arguments = call.arguments;
    let args: ListJobsArgs = parse(arguments, LIST_EXAMPLE)?;
    one_of(
        "status",
        args.status.as_deref(),
        &JobStatus::NAMES,
        LIST_EXAMPLE,
    )?;
    let limit = list_limit(args.limit, LIST_EXAMPLE)?;
    let filter = JobFilter {
        status: args.status,
        task_id: args.task_id.map(|t| t.to_string()),
        limit,
    };
    let AsOf { as_of, rows } = ctx.store.jobs(filter).await?;
    let jobs: Vec<Value> = rows.iter().map(job_view).collect();
    Ok(json!({ "count": jobs.len(), "jobs": jobs, "asOf": as_of }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CancelArgs {
    job_id: Ident,
    reason: Option<String>,
}

pub async fn cancel_job(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let Call {
        caller, arguments, ..
    } = call;
    let args: CancelArgs = parse(arguments.clone(), CANCEL_EXAMPLE)?;
    let reason = args.reason.unwrap_or_else(|| "cancelled by request".into());
    if reason.chars().count() > 500 {
        return Err(invalid(
            "reason",
            "must be at most 500 characters".into(),
            CANCEL_EXAMPLE,
        ));
    }
    let job_id = args.job_id.to_string();
    let ended = |row: &JobRow| {
        ToolError::Refused(format!(
            "Job `{}` already ended ({}); there is nothing to cancel.",
            row.job_id, row.status
        ))
    };
    match find_job(ctx, &job_id).await? {
        None => {
            return Err(ToolError::Refused(format!(
                "No job `{job_id}`. list_jobs shows the existing jobs."
            )))
        }
        Some(row) if row.is_terminal() => return Err(ended(&row)),
        Some(_) => {}
    }
    let watch = watch_job(ctx, &job_id).await?;
    let (audit, target) = (
        AuditEntry {
            actor: caller.actor.clone(),
            action: "cancel_job",
            args: arguments,
        },
        job_id.clone(),
    );
    record(&ctx.recorder, move |tx| {
        records::cancel_asked(tx, &target, &audit)
    })
    .await?;
    let outcome = ctx
        .registry
        .send(CancelJob {
            job_id: JobId::named(job_id.clone()),
            reason,
        })
        .await;
    match outcome.map_err(JobError::from).and_then(|r| r)? {
        Cancelled::WhileQueued => {}
        Cancelled::Stopping => {
            watch
                .until_terminal(ctx.kill_grace + Duration::from_secs(5))
                .await;
        }
        Cancelled::NotActive => {
            if let Some(row) = find_job(ctx, &job_id).await?.filter(JobRow::is_terminal) {
                return Err(ended(&row));
            }
        }
    }
    load_job(ctx, &job_id).await
}
