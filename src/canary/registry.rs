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
use crate::failpoints::Failpoint;
use crate::recorder::{record, Recorder};
use crate::storage::audit::AuditEntry;
use crate::storage::canaries;
use crate::storage::StoreError;
use crate::webhooks::Webhooks;

pub struct CanaryRegistry {
    recorder: Recorder,
    poller: Addr<PrometheusPoller>,
    webhooks: Option<Addr<Webhooks>>,
    canaries: HashMap<String, Addr<CanaryActor>>,
    /// The `mid_check` failpoint (tests only).
    crash_mid_check: bool,
}

impl CanaryRegistry {
    pub fn new(
        recorder: Recorder,
        poller: Addr<PrometheusPoller>,
        webhooks: Option<Addr<Webhooks>>,
        failpoint: Option<Failpoint>,
    ) -> Self {
        Self {
            recorder,
            poller,
            webhooks,
            canaries: HashMap::new(),
            crash_mid_check: failpoint == Some(Failpoint::MidCheck),
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
        )
        .crashing_mid_check(self.crash_mid_check);
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
        let load = async move { record(&recorder, |tx| canaries::unfinished(tx.conn)).await };
        ctx.wait(
            load.into_actor(self)
                .map(move |rows, registry, ctx| match rows {
                    Ok(rows) => {
                        for row in rows {
                            match CanaryState::from_row(&row) {
                                Ok(state) => registry.supervise(state, ctx),
                                Err(e) => log::error!("cannot resume canary {}: {e}", row.id),
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

/// The actor of an active canary, if it has one.
#[derive(Message)]
#[rtype(result = "Option<Addr<CanaryActor>>")]
pub struct Lookup {
    pub canary_id: String,
}

impl Handler<Lookup> for CanaryRegistry {
    type Result = Option<Addr<CanaryActor>>;

    fn handle(&mut self, msg: Lookup, _ctx: &mut Context<Self>) -> Self::Result {
        self.canaries.get(&msg.canary_id).cloned()
    }
}

/// Sent by a canary actor when it stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forget {
    pub canary_id: String,
}

impl Handler<Forget> for CanaryRegistry {
    type Result = ();

    fn handle(&mut self, msg: Forget, _ctx: &mut Context<Self>) {
        self.canaries.remove(&msg.canary_id);
        self.count();
    }
}
