//! What a previous process left behind: running jobs are ended (their leftover process group killed if it
//! is still the same process, and awaited) and recorded `failed` — or queued again when their task says
//! `requeue_on_restart`; queued jobs are returned to be queued again in their original order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::process;
use super::records::{self, Ending};
use super::{JobSpec, JobStatus, TaskCatalog};
use crate::clock;
use crate::ids::JobId;
use crate::recorder::{record, Recorder};
use crate::storage::StoreError;

pub(super) async fn recover(
    recorder: Recorder,
    catalog: Arc<TaskCatalog>,
) -> Result<Vec<JobSpec>, StoreError> {
    let rows = record(&recorder, records::unfinished).await?;
    let mut queued = Vec::new();
    for row in rows {
        let spec = JobSpec {
            timeout: Duration::from_secs_f64(row.timeout_seconds.max(0.001)),
            job_id: JobId::named(row.job_id.clone()),
            task_id: row.task_id.clone(),
            config_id: row.config_id.clone(),
            queued_at: Instant::now(),
        };
        if JobStatus::parse(&row.status) == Some(JobStatus::Queued) {
            queued.push(spec);
            continue;
        }
        // The group only while its leader is still the process we started (a pid may have been reused);
        // whatever carries the job's cookie, in any case.
        let group = match (row.pgid, row.pid_start_time) {
            (Some(pgid), Some(started)) if process::start_time(pgid) == Some(started) => Some(pgid),
            _ => None,
        };
        process::end_job(group, &row.job_id).await;
        let requeue = catalog
            .get(&row.task_id)
            .is_some_and(|task| task.requeue_on_restart);
        if requeue {
            let again = spec.clone();
            record(&recorder, move |tx| records::requeued(tx, &again)).await?;
            queued.push(spec);
            continue;
        }
        let ran_ms = row
            .started_at
            .as_deref()
            .and_then(clock::parse_sql)
            .map_or(0, |at| (clock::now() - at).num_milliseconds().max(0) as u64);
        let ending = Ending::Failed {
            error: "interrupted by restart".into(),
            exit_code: None,
        };
        record(&recorder, move |tx| {
            records::ended(tx, &row.job_id, &ending, ran_ms)
        })
        .await?;
    }
    if !queued.is_empty() {
        log::info!(
            "re-queued {} job(s) left queued by the previous run",
            queued.len()
        );
    }
    Ok(queued)
}
