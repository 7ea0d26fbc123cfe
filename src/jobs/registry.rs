//! The job registry actor: creates jobs, keeps the queue in order, starts at most `max_running` job actors,
//! and learns (through each job's exit guard) when one is gone — a panicking job is recorded `failed` and
//! its processes killed, and the service lives on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::oneshot;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, AtomicResponse, Context, Handler, Message,
    ResponseActFuture, ResponseFuture, WrapFuture,
};

use super::job::{JobActor, JobGone, JobSetup, StopJob, StopReason};
use super::records::{self, Ending};
use super::tasks::Placeholders;
use super::{recovery, JobError, JobSpec, JobStatus, TaskCatalog};
use crate::config::JobSettings;
use crate::ids::JobId;
use crate::recorder::{record, Recorder};
use crate::storage::audit::AuditEntry;

pub struct Registry {
    limits: JobSettings,
    catalog: Arc<TaskCatalog>,
    recorder: Recorder,
    queue: VecDeque<JobSpec>,
    /// Queued jobs whose `queued` record has not committed yet: none starts before it has.
    uncommitted: HashSet<JobId>,
    running: HashMap<JobId, Addr<JobActor>>,
    /// Set at shutdown: nothing new starts.
    stopping: bool,
    /// Told when the last running job has ended during a shutdown.
    drained: Vec<oneshot::Sender<()>>,
}

impl Registry {
    pub fn new(limits: JobSettings, catalog: Arc<TaskCatalog>, recorder: Recorder) -> Self {
        Self {
            limits,
            catalog,
            recorder,
            queue: VecDeque::new(),
            uncommitted: HashSet::new(),
            running: HashMap::new(),
            stopping: false,
            drained: Vec::new(),
        }
    }

    /// Starts queued jobs, oldest first, while there is room.
    fn start_ready(&mut self, ctx: &mut Context<Self>) {
        self.start_waiting(ctx);
        let jobs = &crate::metrics::METRICS.jobs;
        jobs.with_label_values(&[JobStatus::Queued.as_str()])
            .set(i64::try_from(self.queue.len()).unwrap_or(i64::MAX));
        jobs.with_label_values(&[JobStatus::Running.as_str()])
            .set(i64::try_from(self.running.len()).unwrap_or(i64::MAX));
    }

    fn start_waiting(&mut self, ctx: &mut Context<Self>) {
        if self.stopping {
            // Shutting down: queued jobs stay queued, and are queued again at the next start.
            self.notify_drained();
            return;
        }
        while self.running.len() < self.limits.max_running {
            if self
                .queue
                .front()
                .is_some_and(|spec| self.uncommitted.contains(&spec.job_id))
            {
                // The oldest waits for its record; later ones wait behind it, so order is creation order.
                return;
            }
            let Some(spec) = self.queue.pop_front() else {
                return;
            };
            let Some(task) = self.catalog.get(&spec.task_id).cloned() else {
                self.fail_unstartable(spec, ctx);
                continue;
            };
            let argv = self.catalog.argv(
                &task,
                &Placeholders {
                    job_id: &spec.job_id,
                    task_id: &spec.task_id,
                    config_id: &spec.config_id,
                },
            );
            let job_id = spec.job_id.clone();
            let actor = JobActor::new(JobSetup {
                spec,
                argv,
                task,
                cwd: self.catalog.repo_root.clone(),
                recorder: self.recorder.clone(),
                grace: self.limits.kill_grace_seconds,
                registry: ctx.address().recipient(),
                redactor: self.catalog.redactor.clone(),
            });
            self.running.insert(job_id, actor.start());
        }
    }

    /// A recovered job whose task is no longer configured.
    fn fail_unstartable(&self, spec: JobSpec, ctx: &mut Context<Self>) {
        let recorder = self.recorder.clone();
        let error = format!("task `{}` is no longer configured", spec.task_id);
        ctx.spawn(
            async move {
                let ending = Ending::Failed {
                    error,
                    exit_code: None,
                };
                if let Err(e) = record(&recorder, move |tx| {
                    records::ended(tx, &spec.job_id, &ending, 0)
                })
                .await
                {
                    log::error!("cannot record an unstartable job: {e}");
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    /// Before taking any message: end what a previous process left running, queue what it left queued.
    fn started(&mut self, ctx: &mut Context<Self>) {
        let recover = recovery::recover(self.recorder.clone(), self.catalog.clone());
        ctx.wait(recover.into_actor(self).map(|recovered, registry, ctx| {
            match recovered {
                Ok(queued) => registry.queue.extend(queued),
                Err(e) => log::error!("job recovery failed: {e}"),
            }
            registry.start_ready(ctx);
        }));
    }
}

/// Creates a job (sent by `run_eval`): recorded `queued` (or `dry_run`) with its event and audit row, then
/// started in turn. Its place in the queue is taken at once and its record queued with the writer at once,
/// both in arrival order, so queue order is creation order, while concurrent submissions share a commit
/// instead of each holding the registry until its own has finished.
#[derive(Message)]
#[rtype(result = "Result<(), JobError>")]
pub struct SubmitJob {
    pub spec: JobSpec,
    pub dry_run: bool,
    pub audit: AuditEntry,
}

impl Handler<SubmitJob> for Registry {
    type Result = ResponseActFuture<Self, Result<(), JobError>>;

    fn handle(&mut self, msg: SubmitJob, _ctx: &mut Context<Self>) -> Self::Result {
        let SubmitJob {
            spec,
            dry_run,
            audit,
        } = msg;
        if !dry_run && self.queue.len() >= self.limits.max_queued {
            return Box::pin(actix::fut::ready(Err(JobError::QueueFull(
                self.limits.max_queued,
            ))));
        }
        let recorded_spec = spec.clone();
        let written = self.recorder.enqueue(move |tx| {
            if dry_run {
                records::dry_run(tx, &recorded_spec, &audit)
            } else {
                records::queued(tx, &recorded_spec, &audit)
            }
        });
        let job_id = spec.job_id.clone();
        if !dry_run {
            self.uncommitted.insert(job_id.clone());
            self.queue.push_back(spec);
        }
        Box::pin(written.into_actor(self).map(move |written, registry, ctx| {
            registry.uncommitted.remove(&job_id);
            if written.is_err() {
                registry.queue.retain(|spec| spec.job_id != job_id);
            }
            registry.start_ready(ctx);
            Ok(written?)
        }))
    }
}

/// What a cancel did.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting: removed from the queue and recorded `cancelled`.
    WhileQueued,
    /// It is running: its process group got SIGTERM and the job records `cancelled` when it ends.
    Stopping,
    /// Neither queued nor running here: it has ended (or never existed).
    NotActive,
}

/// Cancels a job (sent by `cancel_job`).
#[derive(Message)]
#[rtype(result = "Result<Cancelled, JobError>")]
pub struct CancelJob {
    pub job_id: JobId,
    pub reason: String,
}

impl Handler<CancelJob> for Registry {
    type Result = AtomicResponse<Self, Result<Cancelled, JobError>>;

    fn handle(&mut self, msg: CancelJob, _ctx: &mut Context<Self>) -> Self::Result {
        if let Some(job) = self.running.get(&msg.job_id) {
            job.do_send(StopJob {
                reason: StopReason::Cancelled(msg.reason),
            });
            return AtomicResponse::new(Box::pin(actix::fut::ready(Ok(Cancelled::Stopping))));
        }
        let position = self.queue.iter().position(|spec| spec.job_id == msg.job_id);
        let Some(spec) = position.and_then(|p| self.queue.remove(p)) else {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Ok(Cancelled::NotActive))));
        };
        let recorder = self.recorder.clone();
        let waited = u64::try_from(spec.queued_at.elapsed().as_millis()).unwrap_or(u64::MAX);
        let write = async move {
            let ending = Ending::Cancelled { reason: msg.reason };
            record(&recorder, move |tx| {
                records::ended(tx, &msg.job_id, &ending, waited)
            })
            .await
        };
        AtomicResponse::new(Box::pin(write.into_actor(self).map(|written, _, _| {
            written
                .map(|_| Cancelled::WhileQueued)
                .map_err(JobError::from)
        })))
    }
}

impl Handler<JobGone> for Registry {
    type Result = ();

    fn handle(&mut self, msg: JobGone, ctx: &mut Context<Self>) {
        self.running.remove(&msg.job_id);
        if !msg.recorded {
            log::error!(
                "the actor of job {} stopped without recording an end; recording it failed",
                msg.job_id
            );
            let recorder = self.recorder.clone();
            let job_id = msg.job_id;
            let pgid = msg.pgid;
            ctx.spawn(
                async move {
                    if let Some(pgid) = pgid {
                        super::process::end_job(Some(pgid), &job_id).await;
                    }
                    let ending = Ending::Failed {
                        error: "the job's supervisor crashed (panic); its processes were killed"
                            .into(),
                        exit_code: None,
                    };
                    if let Err(e) =
                        record(&recorder, move |tx| records::ended(tx, &job_id, &ending, 0)).await
                    {
                        log::error!("cannot record a crashed job: {e}");
                    }
                }
                .into_actor(self),
            );
        }
        self.start_ready(ctx);
    }
}

impl Registry {
    fn notify_drained(&mut self) {
        if self.running.is_empty() {
            for waiter in self.drained.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

/// Graceful shutdown: running jobs' process groups get SIGTERM (then SIGKILL after the grace period) and are
/// recorded `failed` ("interrupted by shutdown"); queued jobs stay queued. Replies once all have ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for Registry {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        for job in self.running.values() {
            job.do_send(StopJob {
                reason: StopReason::Shutdown,
            });
        }
        let (tx, rx) = oneshot::channel();
        self.drained.push(tx);
        self.notify_drained();
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
