//! One actor per active canary. It alone changes its canary: it judges each check the poller brings, applies
//! operators' actions and the deadline, and writes every step through the recorder before taking the next
//! message (atomic handlers), so steps never interleave. Once the canary has ended the actor stops, and
//! nothing can change it again.

use std::time::Duration;

use actix::prelude::*;

use super::poller::{PrometheusPoller, Schedule, Unschedule};
use super::records::{self, Ending};
use super::registry::{CanaryRegistry, Gone};
use super::rules::{self, Check, ReasonCode, Step};
use super::{after, CanaryState, Status};
use crate::clock::{self, Timestamp};
use crate::failpoints::{self, Failpoint};
use crate::ids::CanaryId;
use crate::recorder::{record, EventSeq, Recorder};
use crate::slo::Gathered;
use crate::storage::audit::AuditEntry;
use crate::storage::StoreError;
use crate::webhooks::{Notify, Webhooks};

pub struct CanaryActor {
    state: CanaryState,
    recorder: Recorder,
    poller: Addr<PrometheusPoller>,
    webhooks: Option<Addr<Webhooks>>,
    /// Tells the registry when this actor is gone, and whether it meant to go.
    departure: Departure,
}

/// Dropped with the actor, however it ends — a panic in a handler included, where `stopped` never runs — and
/// then tells the registry, which re-creates the actor of a canary that is still active.
struct Departure {
    canary_id: CanaryId,
    registry: Addr<CanaryRegistry>,
    /// Set by `stopped` when the canary has ended: the actor is meant to go, rather than dying.
    expected: bool,
}

impl Drop for Departure {
    fn drop(&mut self) {
        self.registry.do_send(Gone {
            canary_id: self.canary_id.clone(),
            expected: self.expected,
        });
    }
}

impl CanaryActor {
    pub fn new(
        state: CanaryState,
        recorder: Recorder,
        poller: Addr<PrometheusPoller>,
        registry: Addr<CanaryRegistry>,
        webhooks: Option<Addr<Webhooks>>,
    ) -> Self {
        let departure = Departure {
            canary_id: state.id.clone(),
            registry,
            expected: false,
        };
        Self {
            state,
            recorder,
            poller,
            webhooks,
            departure,
        }
    }

    fn schedule(&self, ctx: &Context<Self>, due: Timestamp) {
        self.poller.do_send(Schedule {
            canary_id: self.state.id.clone(),
            canary: ctx.address(),
            model_id: self.state.model_id.clone(),
            gate: self.state.to_gate.clone(),
            window: self.state.policy.window,
            started: self.state.created,
            budget: self.state.policy.interval,
            due,
        });
    }
}

impl Actor for CanaryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let now = clock::now();
        let left = (self.state.deadline - now)
            .to_std()
            .unwrap_or(Duration::ZERO);
        ctx.run_later(left, |_, ctx| ctx.notify(DeadlineReached));
        if matches!(self.state.status, Status::Running | Status::Held) {
            // After a restart: one fresh check, never a burst of the missed ones; a check that is overdue is
            // spread over the next interval, so a thousand resumed canaries do not all ask at once.
            let due = match self.state.next_check {
                Some(due) if due > now => due,
                _ => after(
                    now,
                    self.state.policy.interval.mul_f64(rand::random::<f64>()),
                ),
            };
            self.schedule(ctx, due);
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.poller.do_send(Unschedule {
            canary_id: self.state.id.clone(),
        });
        // `stopped` also runs when a panicked actor is dropped (actix polls the dying context once more), so
        // "expected" is judged by the canary itself: only an ended canary's actor is meant to go.
        self.departure.expected = !self.state.status.is_active();
    }
}

/// What one of this actor's transactions wrote.
struct Written {
    /// False if the canary had already ended, so nothing was written.
    applied: bool,
    /// The terminal event, when this transaction ended the canary.
    terminal_seq: Option<EventSeq>,
    /// The transaction held the canary instead of the change it was sent for: this state is adopted.
    instead: Option<CanaryState>,
}

impl Written {
    fn step(applied: bool) -> Self {
        Self {
            applied,
            terminal_seq: None,
            instead: None,
        }
    }

    fn end(terminal_seq: Option<EventSeq>) -> Self {
        Self {
            applied: terminal_seq.is_some(),
            terminal_seq,
            instead: None,
        }
    }
}

impl CanaryActor {
    /// Writes `change` and then adopts `next`; once the canary has ended, announces a promotion or rollback
    /// to the webhooks and stops. `Ok(false)`: it had already ended and nothing was written.
    fn commit(
        &mut self,
        next: CanaryState,
        change: impl Fn(&mut crate::recorder::Tx<'_>) -> Result<Written, StoreError> + Send + 'static,
    ) -> ResponseActFuture<Self, Result<bool, StoreError>> {
        let recorder = self.recorder.clone();
        let write = async move { record(&recorder, change).await };
        Box::pin(write.into_actor(self).map(move |written, actor, ctx| {
            let written = written?;
            if !written.applied {
                // Already ended (only possible if the row was changed behind our back): stop for good.
                ctx.stop();
                return Ok(false);
            }
            actor.state = written.instead.unwrap_or(next);
            let decided = matches!(actor.state.status, Status::Promoted | Status::RolledBack);
            if let (true, Some(seq), Some(webhooks)) = (
                decided,
                written.terminal_seq.and_then(|s| s.get()),
                &actor.webhooks,
            ) {
                webhooks.do_send(Notify { seq });
            }
            if !actor.state.status.is_active() {
                ctx.stop();
            }
            Ok(true)
        }))
    }

    fn end(&mut self, mut ending: Ending) -> ResponseActFuture<Self, Result<bool, StoreError>> {
        ending.notify = self.webhooks.is_some();
        let next = self.state.clone().ended(ending.promote);
        let state = next.clone();
        self.commit(next, move |tx| {
            Ok(Written::end(records::ended(tx, &state, &ending)?))
        })
    }
}

/// The SLIs gathered for the check due at `due`; the reply is the next due time (none once the canary is
/// paused or ended).
#[derive(Message)]
#[rtype(result = "Option<Timestamp>")]
pub struct Observed {
    pub due: Timestamp,
    pub gathered: Gathered,
}

impl Handler<Observed> for CanaryActor {
    type Result = AtomicResponse<Self, Option<Timestamp>>;

    fn handle(&mut self, msg: Observed, _ctx: &mut Context<Self>) -> Self::Result {
        let status = self.state.status;
        if !matches!(status, Status::Running | Status::Held) {
            return AtomicResponse::new(Box::pin(fut::ready(None)));
        }
        if self.state.counters.checks >= 1 {
            failpoints::crash_if_armed(Failpoint::MidCheck);
        }
        if failpoints::strikes_once(Failpoint::CanaryPanic) {
            panic!(
                "failpoint canary_panic: the actor of {} panics",
                self.state.id
            );
        }
        let policy = &self.state.policy;
        let warming_up = self.state.counters.checks < policy.warmup_checks;
        let due_unix = msg.due.timestamp_millis() as f64 / 1000.0;
        let check = rules::judge(policy, &msg.gathered.observation, warming_up, due_unix);
        let mut next = self.state.clone();
        let (counters, step) = rules::decide(
            policy,
            status == Status::Held,
            msg.due >= self.state.deadline,
            self.state.counters,
            check,
        );
        next.counters = counters;
        let now = clock::now();
        next.next_check = Some(after(msg.due, policy.interval).max(now));
        if step == Step::Hold {
            next.status = Status::Held;
        }
        let ending = match step {
            Step::Promote => Some((
                true,
                ReasonCode::SloMet,
                format!("SLO met on {} checks in a row", policy.successes_to_promote),
            )),
            Step::RollBack(code) => Some((false, code, rollback_reason(code, check, &next))),
            Step::Continue | Step::Hold => None,
        };
        let checked_state = next.clone();
        let (due, gathered) = (msg.due, msg.gathered);
        let write = match ending {
            None => self.commit(next, move |tx| {
                let applied = records::checked(
                    tx,
                    &checked_state,
                    &gathered,
                    check,
                    due,
                    step == Step::Hold,
                )?;
                Ok(Written::step(applied))
            }),
            Some((promote, reason, why)) => {
                // A promotion that finds the model moved since the start (promote_model, another canary)
                // holds instead of overwriting where it is.
                let mut held = next.clone();
                held.status = Status::Held;
                let ended = next.ended(promote);
                let final_state = ended.clone();
                let ending = Ending {
                    reason,
                    why,
                    audit: None,
                    promote,
                    notify: self.webhooks.is_some(),
                };
                self.commit(ended, move |tx| {
                    let moved = promote && records::model_moved(tx, &final_state)?.is_some();
                    if moved {
                        let applied = records::checked(tx, &held, &gathered, check, due, false)?;
                        if applied {
                            records::held_for(tx, &held, ReasonCode::GateMoved)?;
                        }
                        return Ok(Written {
                            instead: applied.then(|| held.clone()),
                            ..Written::step(applied)
                        });
                    }
                    if !records::checked(tx, &checked_state, &gathered, check, due, false)? {
                        return Ok(Written::step(false));
                    }
                    Ok(Written::end(records::ended(tx, &final_state, &ending)?))
                })
            }
        };
        AtomicResponse::new(Box::pin(write.map(|written, actor, _| {
            match written {
                Ok(_) => actor
                    .state
                    .next_check
                    .filter(|_| actor.state.status.is_active()),
                Err(e) => {
                    // Nothing was written; try again at the next interval.
                    log::error!("canary {}: recording a check failed: {e}", actor.state.id);
                    Some(after(clock::now(), actor.state.policy.interval))
                }
            }
        })))
    }
}

fn rollback_reason(code: ReasonCode, check: Check, state: &CanaryState) -> String {
    match code {
        ReasonCode::Deadline => deadline_reason(state),
        ReasonCode::Critical => format!(
            "critical breach ({}) beyond {}× the SLO",
            check.reason, state.policy.critical_factor
        ),
        _ => format!(
            "{} failed checks in a row (last: {})",
            state.counters.failures, check.reason
        ),
    }
}

fn deadline_reason(state: &CanaryState) -> String {
    format!(
        "no decision within the deadline of {}",
        super::policy::show_duration(state.policy.deadline)
    )
}

/// How soon a failed deadline commit is tried again.
const DEADLINE_RETRY: Duration = Duration::from_secs(1);

/// The deadline passed: a canary still undecided is rolled back.
#[derive(Message)]
#[rtype(result = "()")]
struct DeadlineReached;

impl Handler<DeadlineReached> for CanaryActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: DeadlineReached, _ctx: &mut Context<Self>) -> Self::Result {
        let ending = Ending {
            reason: ReasonCode::Deadline,
            why: deadline_reason(&self.state),
            audit: None,
            promote: false,
            notify: false, // set by `end`
        };
        let fail_once = failpoints::strikes_once(Failpoint::DeadlineCommit);
        let write: ResponseActFuture<Self, Result<bool, StoreError>> = if fail_once {
            let failed = Err(StoreError::NotCommitted(
                "failpoint deadline_commit_fails".into(),
            ));
            Box::pin(fut::ready(failed))
        } else {
            self.end(ending)
        };
        AtomicResponse::new(Box::pin(write.map(|written, actor, ctx| {
            if let Err(e) = written {
                // The canary is past its deadline and must end: try again shortly, never give up.
                log::error!(
                    "canary {}: recording the deadline failed ({e}); retrying in {} s",
                    actor.state.id,
                    DEADLINE_RETRY.as_secs()
                );
                ctx.notify_later(DeadlineReached, DEADLINE_RETRY);
            }
        })))
    }
}

/// An operator's action.
#[derive(Debug, Clone)]
pub enum Action {
    Pause,
    Resume,
    /// Manual promotion, whatever the checks say.
    Promote {
        reason: String,
    },
    /// Manual rollback (`abort_canary`).
    Abort {
        reason: String,
    },
}

/// What an action did: the canary's status afterwards.
#[derive(Debug, Clone)]
pub struct Operated {
    pub status: Status,
}

#[derive(Debug, thiserror::Error)]
pub enum OperateError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Message)]
#[rtype(result = "Result<Operated, OperateError>")]
pub struct Operate {
    pub action: Action,
    pub audit: AuditEntry,
}

impl Handler<Operate> for CanaryActor {
    type Result = AtomicResponse<Self, Result<Operated, OperateError>>;

    fn handle(&mut self, msg: Operate, ctx: &mut Context<Self>) -> Self::Result {
        let status = self.state.status;
        let refuse = |message: String| -> Self::Result {
            AtomicResponse::new(Box::pin(fut::ready(Err(OperateError::Refused(message)))))
        };
        let audit = msg.audit;
        let write = match msg.action {
            Action::Abort { reason } => self.end(Ending::manual(false, reason, audit, false)),
            Action::Promote { reason } => self.end(Ending::manual(true, reason, audit, false)),
            Action::Pause if status == Status::Running => {
                let mut next = self.state.clone();
                next.status = Status::Paused;
                next.next_check = None;
                self.poller.do_send(Unschedule {
                    canary_id: self.state.id.clone(),
                });
                let state = next.clone();
                self.commit(next, move |tx| {
                    Ok(Written::step(records::operated(tx, &state, &audit)?))
                })
            }
            Action::Pause => {
                return refuse(format!(
                    "Canary `{}` is {status}; only a running canary can be paused.",
                    self.state.id
                ))
            }
            Action::Resume if matches!(status, Status::Paused | Status::Held) => {
                let mut next = self.state.clone();
                next.status = Status::Running;
                // Counters are kept; only the run of undecided checks starts over, or it would hold again at once.
                next.counters.no_decision = 0;
                let due = after(clock::now(), next.policy.interval);
                next.next_check = Some(due);
                self.schedule(ctx, due);
                let state = next.clone();
                self.commit(next, move |tx| {
                    Ok(Written::step(records::operated(tx, &state, &audit)?))
                })
            }
            Action::Resume => {
                return refuse(format!(
                    "Canary `{}` is {status}; only a paused or held canary can be resumed.",
                    self.state.id
                ))
            }
        };
        AtomicResponse::new(Box::pin(write.map(|written, actor, _| match written {
            Ok(true) => Ok(Operated {
                status: actor.state.status,
            }),
            Ok(false) => Err(OperateError::Refused(format!(
                "Canary `{}` has already ended.",
                actor.state.id
            ))),
            Err(e) => Err(OperateError::Store(e)),
        })))
    }
}
