//! The canary registry: starts canaries (the conflict and idempotency checks run in the same transaction
//! that creates the row), supervises one actor per active canary, finds them for operators' actions, and
//! at start-up resumes the canaries a previous process left active.

use std::collections::HashMap;

use actix::prelude::*;

use super::actor::CanaryActor;
use super::poller::PrometheusPoller;
use super::records;
pub use super::records::Started;
use super::CanaryState;
use crate::ids::CanaryId;
use crate::recorder::{record, Recorder};
use crate::storage::audit::AuditEntry;
use crate::storage::canaries::CanaryRow;
use crate::storage::StoreError;
use crate::webhooks::{Notify, Webhooks};

pub struct CanaryRegistry {
    recorder: Recorder,
    poller: Addr<PrometheusPoller>,
    webhooks: Option<Addr<Webhooks>>,
    canaries: HashMap<CanaryId, Addr<CanaryActor>>,
    /// How often each canary's actor has been re-created after dying: a canary whose actor keeps dying is
    /// left without one (an operator can still abort or promote it) instead of looping.
    restarts: HashMap<CanaryId, u32>,
}

/// Re-creations of one canary's actor before the registry gives up on it.
const MAX_RESTARTS: u32 = 3;

impl CanaryRegistry {
    pub fn new(
        recorder: Recorder,
        poller: Addr<PrometheusPoller>,
        webhooks: Option<Addr<Webhooks>>,
    ) -> Self {
        Self {
            recorder,
            poller,
            webhooks,
            canaries: HashMap::new(),
            restarts: HashMap::new(),
        }
    }

    fn supervise(&mut self, state: CanaryState, ctx: &mut Context<Self>) {
        let id = state.id.clone();
        let actor = CanaryActor::new(
            state,
            self.recorder.clone(),
            self.poller.clone(),
            ctx.address(),
            self.webhooks.clone(),
        );
        self.canaries.insert(id, actor.start());
        self.count();
    }

    fn count(&self) {
        crate::metrics::METRICS
            .canaries_active
            .set(i64::try_from(self.canaries.len()).unwrap_or(i64::MAX));
    }
}

impl Actor for CanaryRegistry {
    type Context = Context<Self>;

    /// Before taking any message: every canary left active resumes with its counters and schedule.
    fn started(&mut self, ctx: &mut Context<Self>) {
        let recorder = self.recorder.clone();
        let began = std::time::Instant::now();
        let load = async move { record(&recorder, records::unfinished).await };
        ctx.wait(
            load.into_actor(self)
                .map(move |rows, registry, ctx| match rows {
                    Ok(rows) => {
                        for row in rows {
                            match CanaryState::from_row(&row) {
                                Ok(state) => registry.supervise(state, ctx),
                                Err(e) => registry.end_unrecoverable(row, e.to_string(), ctx),
                            }
                        }
                        log::info!(
                            "resumed {} active canaries in {} ms",
                            registry.canaries.len(),
                            began.elapsed().as_millis()
                        );
                    }
                    Err(e) => log::error!("canary recovery failed: {e}"),
                }),
        );
    }
}

/// Creates a canary (sent by `start_canary`) and starts its actor.
#[derive(Message)]
#[rtype(result = "Result<Started, StoreError>")]
pub struct StartCanary {
    pub state: CanaryState,
    pub idempotency_key: Option<String>,
    pub audit: AuditEntry,
    pub rules: records::StartRules,
}

impl Handler<StartCanary> for CanaryRegistry {
    type Result = ResponseActFuture<Self, Result<Started, StoreError>>;

    /// Conflicts and idempotency keys are settled inside the transaction by the single writer, so the
    /// registry need not hold its mailbox while the start commits: concurrent starts share a commit.
    fn handle(&mut self, msg: StartCanary, _ctx: &mut Context<Self>) -> Self::Result {
        let state = msg.state.clone();
        let write = self.recorder.enqueue(move |tx| {
            records::start(
                tx,
                &msg.state,
                msg.idempotency_key.as_deref(),
                (&msg.audit, msg.rules),
            )
        });
        Box::pin(write.into_actor(self).map(move |started, registry, ctx| {
            if let Ok(Started::Created) = started {
                registry.supervise(state, ctx);
            }
            started
        }))
    }
}

/// Answered once the registry has taken every message before it — at start-up, once recovery is over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Recovered;

impl Handler<Recovered> for CanaryRegistry {
    type Result = ();

    fn handle(&mut self, _: Recovered, _ctx: &mut Context<Self>) {}
}

/// The actor of an active canary, if it has one.
#[derive(Message)]
#[rtype(result = "Option<Addr<CanaryActor>>")]
pub struct Lookup {
    pub canary_id: CanaryId,
}

impl Handler<Lookup> for CanaryRegistry {
    type Result = Option<Addr<CanaryActor>>;

    fn handle(&mut self, msg: Lookup, _ctx: &mut Context<Self>) -> Self::Result {
        self.canaries.get(&msg.canary_id).cloned()
    }
}

/// Sent by a canary actor's guard when the actor is gone: it stopped itself (`expected`), or it died.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Gone {
    pub canary_id: CanaryId,
    pub expected: bool,
}

impl Handler<Gone> for CanaryRegistry {
    type Result = ();

    fn handle(&mut self, msg: Gone, ctx: &mut Context<Self>) {
        self.canaries.remove(&msg.canary_id);
        self.count();
        if msg.expected {
            self.restarts.remove(&msg.canary_id);
            return;
        }
        let restarts = self.restarts.entry(msg.canary_id.clone()).or_insert(0);
        *restarts += 1;
        if *restarts > MAX_RESTARTS {
            log::error!(
                "canary {}: its actor died {MAX_RESTARTS} times; left without one (abort_canary or \
                 promote_canary still act on it)",
                msg.canary_id
            );
            return;
        }
        log::error!(
            "canary {}: its actor stopped unexpectedly; re-creating it from its row",
            msg.canary_id
        );
        let recorder = self.recorder.clone();
        let id = msg.canary_id;
        let load = async move { record(&recorder, move |tx| records::current(tx, &id)).await };
        ctx.spawn(load.into_actor(self).map(|row, registry, ctx| match row {
            Ok(Some(row))
                if super::Status::parse(&row.status).is_some_and(super::Status::is_active) =>
            {
                match CanaryState::from_row(&row) {
                    Ok(state) => registry.supervise(state, ctx),
                    Err(e) => registry.end_unrecoverable(row, e.to_string(), ctx),
                }
            }
            Ok(_) => {}
            Err(e) => log::error!("cannot reload a canary whose actor died: {e}"),
        }));
    }
}

impl CanaryRegistry {
    /// An active row that cannot be read any more (its policy or timestamps no longer parse) is ended as
    /// `rolled_back`/`unrecoverable`, so it never blocks its model and gate, and says why.
    fn end_unrecoverable(&mut self, row: CanaryRow, why: String, ctx: &mut Context<Self>) {
        log::error!(
            "canary {} cannot be resumed ({why}): rolling it back as unrecoverable",
            row.id
        );
        let recorder = self.recorder.clone();
        let notify = self.webhooks.is_some();
        let end = async move {
            record(&recorder, move |tx| {
                records::unrecoverable(tx, &row, &why, notify)
            })
            .await
        };
        // Waited for: at start-up, recovery is over only once such rows have ended.
        ctx.wait(end.into_actor(self).map(|ended, registry, _| match ended {
            Ok(Some(seq)) => {
                if let (Some(webhooks), Some(seq)) = (&registry.webhooks, seq.get()) {
                    webhooks.do_send(Notify { seq });
                }
            }
            Ok(None) => {}
            Err(e) => log::error!("cannot end an unrecoverable canary: {e}"),
        }));
    }
}
