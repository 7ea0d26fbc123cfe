//! Each step of a job as one transaction: the `jobs` row change, its event and, for calls, the audit row.

use serde_json::Value;

use super::{job_events, JobSpec, JobStatus};
use crate::clock;
use crate::recorder::Tx;
use crate::storage::audit::AuditEntry;
use crate::storage::jobs::{self, JobEnd, NewJob};
use crate::storage::StoreError;

/// How a job ended.
#[derive(Debug, Clone)]
pub enum Ending {
    Completed {
        result: Value,
    },
    Failed {
        error: String,
        exit_code: Option<i32>,
    },
    Cancelled {
        reason: String,
    },
}

fn insert(
    tx: &mut Tx<'_>,
    spec: &JobSpec,
    status: JobStatus,
    audit_entry: &AuditEntry,
) -> Result<(), StoreError> {
    let now = clock::sql(clock::now());
    let finished = (status == JobStatus::DryRun).then_some(now.as_str());
    jobs::insert(
        tx.conn,
        &NewJob {
            job_id: &spec.job_id,
            task_id: &spec.task_id,
            config_id: &spec.config_id,
            status: status.as_str(),
            timeout_seconds: spec.timeout.as_secs_f64(),
            created_at: &now,
            updated_at: &now,
            finished_at: finished,
        },
    )?;
    audit_entry.record(tx.conn, &spec.job_id)
}

pub fn queued(tx: &mut Tx<'_>, spec: &JobSpec, audit_entry: &AuditEntry) -> Result<(), StoreError> {
    insert(tx, spec, JobStatus::Queued, audit_entry)?;
    tx.emit(job_events::queued(spec));
    Ok(())
}

/// An operator asked to cancel a job: the audit row, written before the registry is told.
pub fn cancel_asked(
    tx: &mut Tx<'_>,
    job_id: &str,
    audit_entry: &AuditEntry,
) -> Result<(), StoreError> {
    audit_entry.record(tx.conn, job_id)
}

/// The jobs a previous process left `queued` or `running`, oldest first.
pub fn unfinished(tx: &mut Tx<'_>) -> Result<Vec<jobs::JobRow>, StoreError> {
    jobs::unfinished(tx.conn)
}

/// A job cut short by a restart goes back to `queued` (its task has `requeue_on_restart`).
pub fn requeued(tx: &mut Tx<'_>, spec: &JobSpec) -> Result<(), StoreError> {
    jobs::requeue(tx.conn, &spec.job_id, &clock::sql(clock::now()))?;
    tx.emit(job_events::requeued(spec));
    Ok(())
}

pub fn dry_run(
    tx: &mut Tx<'_>,
    spec: &JobSpec,
    audit_entry: &AuditEntry,
) -> Result<(), StoreError> {
    insert(tx, spec, JobStatus::DryRun, audit_entry)?;
    tx.emit(job_events::dry_run(spec));
    Ok(())
}

/// False when the job is no longer queued (cancelled meanwhile): then it must not run.
pub fn started(
    tx: &mut Tx<'_>,
    spec: &JobSpec,
    pgid: i32,
    start_time: Option<i64>,
) -> Result<bool, StoreError> {
    let now = clock::sql(clock::now());
    if !jobs::mark_started(tx.conn, &spec.job_id, pgid, start_time, &now)? {
        return Ok(false);
    }
    tx.emit(job_events::started(&spec.job_id, &spec.task_id));
    Ok(true)
}

pub fn progress(
    tx: &mut Tx<'_>,
    job_id: &str,
    progress: f64,
    message: Option<&str>,
) -> Result<(), StoreError> {
    jobs::update_progress(tx.conn, job_id, progress, message)?;
    tx.emit(job_events::progress(job_id, progress, message));
    Ok(())
}

/// Records the end once: false (nothing written) if the job had already ended.
pub fn ended(
    tx: &mut Tx<'_>,
    job_id: &str,
    ending: &Ending,
    duration_ms: u64,
) -> Result<bool, StoreError> {
    let now = clock::sql(clock::now());
    let ms = i64::try_from(duration_ms).unwrap_or(i64::MAX);
    let (end, event) = match ending {
        Ending::Completed { result } => (
            JobEnd {
                status: JobStatus::Completed.as_str(),
                result: Some(result.to_string()),
                error: None,
                exit_code: Some(0),
                duration_ms: ms,
            },
            job_events::completed(job_id, result.clone(), duration_ms),
        ),
        Ending::Failed { error, exit_code } => (
            JobEnd {
                status: JobStatus::Failed.as_str(),
                result: None,
                error: Some(error.clone()),
                exit_code: *exit_code,
                duration_ms: ms,
            },
            job_events::failed(job_id, error, *exit_code, duration_ms),
        ),
        Ending::Cancelled { reason } => (
            JobEnd {
                status: JobStatus::Cancelled.as_str(),
                result: None,
                error: Some(reason.clone()),
                exit_code: None,
                duration_ms: ms,
            },
            job_events::cancelled(job_id, reason, duration_ms),
        ),
    };
    if !jobs::finish(tx.conn, job_id, &end, &now)? {
        return Ok(false);
    }
    tx.emit(event);
    let metrics = &crate::metrics::METRICS;
    metrics.jobs_ended.with_label_values(&[end.status]).inc();
    metrics
        .job_duration
        .with_label_values(&[end.status])
        .observe(duration_ms as f64 / 1000.0);
    Ok(true)
}

/// The job-end series exist at 0 from the start, so an alert on the first failure after a start fires.
pub fn prime_metrics() {
    for status in JobStatus::ENDINGS {
        crate::metrics::METRICS
            .jobs_ended
            .with_label_values(&[status.as_str()]);
    }
}
