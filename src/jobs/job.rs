//! One actor per running job: starts the eval process, turns its stdout reports into recorded events,
//! enforces the time limit and cancellation through the process group, and records how it ended.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, Recipient,
    WrapFuture,
};
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::io::BufReader;
use tokio::process::{ChildStderr, ChildStdout};

use super::process::{self, Spawned};
use super::records::{self, Ending};
use super::redact::Redactor;
use super::report::{self, Report};
use super::JobSpec;
use crate::clock::compact_duration;
use crate::config::EvalTask;
use crate::failpoints::{self, Failpoint};
use crate::ids::JobId;
use crate::recorder::{record, Recorder};

/// After the main process exits, how long its output may still drain before we stop reading.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Sent by a job's [`ExitGuard`] to the registry exactly once, when the job actor is gone — normally after
/// it recorded the end, or because it panicked (`recorded: false`), in which case its processes are killed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JobGone {
    pub job_id: JobId,
    pub recorded: bool,
    /// The job's process group (already sent SIGKILL when `recorded` is false).
    pub pgid: Option<i32>,
}

pub(super) struct ExitGuard {
    job_id: JobId,
    pgid: Option<i32>,
    recorded: bool,
    registry: Recipient<JobGone>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if let (false, Some(pgid)) = (self.recorded, self.pgid) {
            process::signal_group(pgid, Signal::SIGKILL);
        }
        self.registry.do_send(JobGone {
            job_id: self.job_id.clone(),
            recorded: self.recorded,
            pgid: self.pgid,
        });
    }
}

/// Why a running job is being stopped.
pub(super) enum StopReason {
    Cancelled(String),
    TimedOut,
    /// The service is shutting down (SIGTERM/SIGINT).
    Shutdown,
}

enum Outcome {
    /// The job was ended by someone else before it could start (a cancel won the race).
    NotStarted,
    Failed(String),
    Exited {
        status: std::io::Result<ExitStatus>,
        result: Option<Value>,
        stderr_tail: String,
    },
}

pub(super) struct JobActor {
    spec: JobSpec,
    argv: Vec<OsString>,
    task: EvalTask,
    cwd: PathBuf,
    recorder: Recorder,
    grace: Duration,
    stop: Option<StopReason>,
    guard: ExitGuard,
    started: Instant,
    redactor: Redactor,
}

pub(super) struct JobSetup {
    pub spec: JobSpec,
    pub argv: Vec<OsString>,
    pub task: EvalTask,
    pub cwd: PathBuf,
    pub recorder: Recorder,
    pub grace: Duration,
    pub registry: Recipient<JobGone>,
    pub redactor: Redactor,
}

impl JobActor {
    pub fn new(setup: JobSetup) -> Self {
        let guard = ExitGuard {
            job_id: setup.spec.job_id.clone(),
            pgid: None,
            recorded: false,
            registry: setup.registry,
        };
        Self {
            spec: setup.spec,
            argv: setup.argv,
            task: setup.task,
            cwd: setup.cwd,
            recorder: setup.recorder,
            grace: setup.grace,
            stop: None,
            guard,
            started: Instant::now(),
            redactor: setup.redactor,
        }
    }

    fn stop_process(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        if self.stop.is_some() {
            return;
        }
        self.stop = Some(reason);
        if let Some(pgid) = self.guard.pgid {
            process::signal_group(pgid, Signal::SIGTERM);
            // Timers die with the actor, so this never fires after the job was recorded as ended.
            ctx.run_later(self.grace, move |_, _| {
                process::signal_group(pgid, Signal::SIGKILL);
            });
        }
    }

    fn finish(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let ending = match (self.stop.take(), outcome) {
            (_, Outcome::NotStarted) => {
                self.guard.recorded = true;
                ctx.stop();
                return;
            }
            (Some(StopReason::Cancelled(reason)), _) => Ending::Cancelled { reason },
            (Some(StopReason::Shutdown), _) => Ending::Failed {
                error: "interrupted by shutdown".into(),
                exit_code: None,
            },
            (Some(StopReason::TimedOut), _) => Ending::Failed {
                error: format!(
                    "timed out after {}",
                    compact_duration(self.spec.timeout.as_millis() as u64)
                ),
                exit_code: None,
            },
            (None, Outcome::Failed(error)) => Ending::Failed {
                error,
                exit_code: None,
            },
            (
                None,
                Outcome::Exited {
                    status: Ok(status),
                    result,
                    ..
                },
            ) if status.success() => Ending::Completed {
                result: result.unwrap_or(Value::Null),
            },
            (
                None,
                Outcome::Exited {
                    status,
                    stderr_tail,
                    ..
                },
            ) => failure(status, &stderr_tail),
        };
        let job_id = self.spec.job_id.clone();
        let recorder = self.recorder.clone();
        let write = async move {
            record(&recorder, move |tx| {
                records::ended(tx, &job_id, &ending, duration_ms)
            })
            .await
        };
        ctx.wait(write.into_actor(self).map(|written, act, ctx| {
            match written {
                Ok(_) => act.guard.recorded = true,
                Err(e) => log::error!("cannot record the end of {}: {e}", act.spec.job_id),
            }
            ctx.stop();
        }));
    }
}

fn failure(status: std::io::Result<ExitStatus>, stderr_tail: &str) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    let (what, exit_code) = match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => (format!("exited with code {code}"), Some(code)),
            (None, Some(signal)) => (format!("killed by signal {signal}"), None),
            (None, None) => ("ended abnormally".to_string(), None),
        },
        Err(e) => (format!("cannot wait for the process: {e}"), None),
    };
    let error = if stderr_tail.is_empty() {
        what
    } else {
        format!("{what}: {stderr_tail}")
    };
    Ending::Failed { error, exit_code }
}

impl Actor for JobActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.started = Instant::now();
        match process::spawn(&self.argv, &self.cwd, &self.task, &self.spec.job_id) {
            Err(e) => {
                let program = self
                    .argv
                    .first()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.finish(
                    Outcome::Failed(format!("cannot start `{program}`: {e}")),
                    ctx,
                );
            }
            Ok(spawned) => {
                self.guard.pgid = Some(spawned.pgid);
                ctx.run_later(self.spec.timeout, |job, ctx| {
                    job.stop_process(StopReason::TimedOut, ctx);
                });
                let run = supervise(
                    spawned,
                    self.spec.clone(),
                    (self.recorder.clone(), self.redactor.clone()),
                );
                ctx.spawn(
                    run.into_actor(self)
                        .map(|outcome, job, ctx| job.finish(outcome, ctx)),
                );
            }
        }
    }
}

/// Asks a running job to stop (sent by the registry for `cancel_job` and at shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct StopJob {
    pub reason: StopReason,
}

impl Handler<StopJob> for JobActor {
    type Result = ();

    fn handle(&mut self, msg: StopJob, ctx: &mut Context<Self>) {
        self.stop_process(msg.reason, ctx);
    }
}

/// Runs the process to its end: records `started`, reads reports and stderr, and finally ends whatever is
/// left of the process group so no orphan survives the job.
async fn supervise(
    spawned: Spawned,
    spec: JobSpec,
    (recorder, redactor): (Recorder, Redactor),
) -> Outcome {
    let Spawned {
        mut child,
        pgid,
        start_time,
    } = spawned;
    let started_spec = spec.clone();
    if let Ok(true) = record(&recorder, move |tx| {
        records::started(tx, &started_spec, pgid, start_time)
    })
    .await
    {
    } else {
        process::end_job(Some(pgid), &spec.job_id).await;
        let _ = child.wait().await;
        return Outcome::NotStarted;
    }
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        process::end_job(Some(pgid), &spec.job_id).await;
        return Outcome::Failed("the process has no output pipes".into());
    };
    let mut readers = Box::pin(futures_util::future::join(
        read_reports(stdout, &spec.job_id, (&recorder, &redactor)),
        read_stderr(stderr, &redactor),
    ));
    enum First {
        Exited(std::io::Result<ExitStatus>),
        OutputClosed(Option<Value>, String),
    }
    let first = tokio::select! {
        status = child.wait() => First::Exited(status),
        (result, tail) = &mut readers => First::OutputClosed(result, tail),
    };
    let (status, result, stderr_tail) = match first {
        First::Exited(status) => {
            process::end_job(Some(pgid), &spec.job_id).await;
            let (result, tail) = tokio::time::timeout(DRAIN_LIMIT, readers)
                .await
                .unwrap_or_default();
            (status, result, tail)
        }
        First::OutputClosed(result, tail) => {
            let status = child.wait().await;
            process::end_job(Some(pgid), &spec.job_id).await;
            (status, result, tail)
        }
    };
    Outcome::Exited {
        status,
        result,
        stderr_tail,
    }
}

async fn read_stderr(stderr: ChildStderr, redactor: &Redactor) -> String {
    redactor.text(&process::read_tail(stderr).await)
}

/// Records progress in order (each waits for its commit, which also paces a chatty process) and returns
/// the last `result` reported; secrets are taken out of everything read.
async fn read_reports(
    stdout: ChildStdout,
    job_id: &str,
    (recorder, redactor): (&Recorder, &Redactor),
) -> Option<Value> {
    let mut reader = BufReader::new(stdout);
    let mut result = None;
    let mut last = 0.0_f64;
    // What the last recorded progress said: a line that says it again is not recorded again (a process
    // printing the same line in a loop would otherwise fill the event log).
    let mut recorded: Option<(f64, Option<String>)> = None;
    while let Ok(Some(line)) = process::read_line(&mut reader).await {
        if failpoints::armed(Failpoint::JobPanic) {
            panic!("failpoint job_panic: job actor of {job_id} panics on its first output line");
        }
        match report::parse_line(&line) {
            Report::Progress { progress, message } => {
                last = progress.max(last);
                let said = (last, message.map(|m| redactor.text(&m)));
                if recorded.as_ref() == Some(&said) {
                    continue;
                }
                recorded = Some(said.clone());
                let (id, (p, m)) = (job_id.to_string(), said);
                if let Err(e) = record(recorder, move |tx| {
                    records::progress(tx, &id, p, m.as_deref())
                })
                .await
                {
                    log::warn!("cannot record progress of {job_id}: {e}");
                }
            }
            Report::Result(value) => result = Some(redactor.value(value)),
            Report::Log => log::debug!(
                "{job_id}: {}",
                redactor.text(&line.chars().take(300).collect::<String>())
            ),
        }
    }
    result
}
