//! Eval jobs: the registry actor that queues and supervises them, one actor per running job, the real
//! subprocess behind it, and the transactions that record each step with its event.

mod job;
pub mod job_events;
mod process;
pub mod records;
mod recovery;
mod redact;
mod registry;
pub mod report;
mod tasks;

use std::time::{Duration, Instant};

pub use process::become_subreaper;
pub use registry::{CancelJob, Cancelled, Registry, Shutdown, SubmitJob};
pub use tasks::TaskCatalog;

use crate::ids::JobId;
use crate::storage::StoreError;

/// What the registry needs to run a job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub job_id: JobId,
    pub task_id: String,
    pub config_id: String,
    pub timeout: Duration,
    /// When it was queued (in this process), for the duration of a job cancelled before it ran.
    pub queued_at: Instant,
}

/// Where a job is in its life; stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    /// Validated and recorded, never run (`dryRun`).
    DryRun,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::DryRun,
    ];
    /// The ends a job that ran can have (a dry run never runs).
    pub const ENDINGS: [JobStatus; 3] = [
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];
    /// Every status's name, as stored and as `list_jobs` filters by.
    pub const NAMES: [&'static str; 6] = [
        "queued",
        "running",
        "completed",
        "failed",
        "cancelled",
        "dry_run",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => Self::NAMES[0],
            JobStatus::Running => Self::NAMES[1],
            JobStatus::Completed => Self::NAMES[2],
            JobStatus::Failed => Self::NAMES[3],
            JobStatus::Cancelled => Self::NAMES[4],
            JobStatus::DryRun => Self::NAMES[5],
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The jobs layer's error type.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("the job queue is full ({0} jobs waiting); try again when some have finished")]
    QueueFull(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job registry unavailable")]
    RegistryGone,
}

impl From<actix::MailboxError> for JobError {
    fn from(_: actix::MailboxError) -> Self {
        JobError::RegistryGone
    }
}

#[cfg(test)]
mod tests {
    use super::JobStatus;

    #[test]
    fn statuses_read_back_and_storage_ends_the_same_ones() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
        let terminal: Vec<&str> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(JobStatus::as_str)
            .collect();
        assert_eq!(terminal, crate::storage::jobs::TERMINAL);
    }
}
