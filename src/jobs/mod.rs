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

use crate::storage::StoreError;

/// What the registry needs to run a job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub job_id: String,
    pub task_id: String,
    pub config_id: String,
    pub timeout: Duration,
    /// When it was queued (in this process), for the duration of a job cancelled before it ran.
    pub queued_at: Instant,
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
