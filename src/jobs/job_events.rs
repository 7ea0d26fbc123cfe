//! The events a job writes on `job/<jobId>`, with their narrative lines.

use serde_json::Value;

use super::{JobSpec, JobStatus};
use crate::clock::compact_duration;
use crate::events::{EntityKind, NewEvent};

fn event(job_id: &str, name: &'static str, status: JobStatus, narrative: String) -> NewEvent {
    NewEvent::new(EntityKind::Job, job_id, name, narrative).field("status", status.as_str())
}

pub fn queued(spec: &JobSpec) -> NewEvent {
    event(
        &spec.job_id,
        "queued",
        JobStatus::Queued,
        format!("queued {} with config {}", spec.task_id, spec.config_id),
    )
    .field("taskId", spec.task_id.as_str())
    .field("configId", spec.config_id.as_str())
}

/// `queued` once more, marked as such, for a run a restart cut short.
pub fn requeued(spec: &JobSpec) -> NewEvent {
    let mut again = queued(spec).field("requeued", true);
    again.narrative = format!(
        "queued again after a restart cut its run short ({} with config {})",
        spec.task_id, spec.config_id
    );
    again
}

pub fn dry_run(spec: &JobSpec) -> NewEvent {
    event(
        &spec.job_id,
        "dry_run",
        JobStatus::DryRun,
        format!(
            "dry run of {} with config {}: valid, nothing run",
            spec.task_id, spec.config_id
        ),
    )
    .field("taskId", spec.task_id.as_str())
    .field("configId", spec.config_id.as_str())
}

pub fn started(job_id: &str, task_id: &str) -> NewEvent {
    event(
        job_id,
        "started",
        JobStatus::Running,
        format!("started {task_id}"),
    )
    .field("taskId", task_id)
}

pub fn progress(job_id: &str, progress: f64, message: Option<&str>) -> NewEvent {
    let percent = (progress * 100.0).round();
    let text = match message {
        Some(m) => format!("{percent}% — {m}"),
        None => format!("{percent}%"),
    };
    let e = event(job_id, "progress", JobStatus::Running, text).field("progress", progress);
    match message {
        Some(m) => e.field("message", m),
        None => e,
    }
}

fn timed(e: NewEvent, duration_ms: u64) -> NewEvent {
    e.field("duration", compact_duration(duration_ms))
        .field("durationMs", duration_ms)
}

pub fn completed(job_id: &str, result: Value, duration_ms: u64) -> NewEvent {
    let text = format!("completed successfully ({})", compact_duration(duration_ms));
    timed(
        event(job_id, "completed", JobStatus::Completed, text).field("result", result),
        duration_ms,
    )
}

pub fn failed(job_id: &str, error: &str, exit_code: Option<i32>, duration_ms: u64) -> NewEvent {
    let first_line = error.lines().next().unwrap_or("");
    let text = format!("failed: {first_line} ({})", compact_duration(duration_ms));
    let e = timed(
        event(job_id, "failed", JobStatus::Failed, text).field("error", error),
        duration_ms,
    );
    match exit_code {
        Some(code) => e.field("exitCode", code),
        None => e,
    }
}

pub fn cancelled(job_id: &str, reason: &str, duration_ms: u64) -> NewEvent {
    let text = format!("cancelled: {reason} ({})", compact_duration(duration_ms));
    timed(
        event(job_id, "cancelled", JobStatus::Cancelled, text).field("reason", reason),
        duration_ms,
    )
}
