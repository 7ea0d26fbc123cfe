//! The PrometheusPoller: one due time per canary. When a canary's check is due it gathers the SLIs from the
//! SLO source (the query `time` pinned to the due time) and hands them to the canary actor, which decides,
//! records, and answers with its next due time.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;

use super::actor::{CanaryActor, Observed};
use crate::clock::{self, Timestamp};
use crate::slo::{Gathered, Reachability, SloQuery, SloSource};

struct Target {
    canary: Addr<CanaryActor>,
    model_id: String,
    gate: String,
    window: Duration,
    /// When the canary started: no query window reaches back before it.
    started: Timestamp,
    budget: Duration,
    /// Bumped by every `Schedule`, so a reply to an older tick cannot undo a newer schedule.
    generation: u64,
    timer: Option<SpawnHandle>,
}

pub struct PrometheusPoller {
    source: Rc<dyn SloSource>,
    targets: HashMap<String, Target>,
    generations: u64,
    /// What the last probe of the source's server found; `/readyz` reads this and never calls out itself.
    reachability: Reachability,
    probing: bool,
}

/// How often the source's server is probed for `/readyz` (one probe at a time, whatever asks).
const PROBE_EVERY: Duration = Duration::from_secs(5);

impl PrometheusPoller {
    pub fn new(source: Box<dyn SloSource>) -> Self {
        Self {
            source: Rc::from(source),
            targets: HashMap::new(),
            generations: 0,
            reachability: Reachability::Unknown,
            probing: false,
        }
    }

    /// Probes the server unless a probe is already out; the answer replaces the cached state.
    fn probe(&mut self, ctx: &mut Context<Self>) {
        if self.probing {
            return;
        }
        self.probing = true;
        ctx.spawn(
            self.source
                .probe()
                .into_actor(self)
                .map(|found, poller, _| {
                    poller.reachability = found;
                    poller.probing = false;
                }),
        );
    }

    fn arm(&mut self, canary_id: String, generation: u64, due: Timestamp, ctx: &mut Context<Self>) {
        let wait = (due - clock::now()).to_std().unwrap_or(Duration::ZERO);
        let id = canary_id.clone();
        let timer = ctx.run_later(wait, move |poller, ctx| {
            poller.tick(id, generation, due, ctx)
        });
        if let Some(target) = self.targets.get_mut(&canary_id) {
            target.timer = Some(timer);
        }
    }

    fn tick(
        &mut self,
        canary_id: String,
        generation: u64,
        due: Timestamp,
        ctx: &mut Context<Self>,
    ) {
        let Some(target) = self
            .targets
            .get(&canary_id)
            .filter(|t| t.generation == generation)
        else {
            return;
        };
        let query = SloQuery::canary_era(
            (&target.model_id, &target.gate),
            target.window,
            target.started,
            due,
            target.budget,
        );
        let canary = target.canary.clone();
        let gathering = self.source.gather(query);
        let check = async move {
            let gathered = gathering.await;
            canary.send(Observed { due, gathered }).await
        };
        ctx.spawn(check.into_actor(self).map(move |reply, poller, ctx| {
            let current = poller
                .targets
                .get(&canary_id)
                .is_some_and(|t| t.generation == generation);
            if !current {
                return;
            }
            match reply {
                Ok(Some(next)) => poller.arm(canary_id, generation, next, ctx),
                // Paused or ended (its mailbox closed): no more checks until it is scheduled again.
                Ok(None) | Err(_) => {
                    poller.targets.remove(&canary_id);
                }
            }
        }));
    }
}

impl Actor for PrometheusPoller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.probe(ctx);
        ctx.run_interval(PROBE_EVERY, |poller, ctx| poller.probe(ctx));
    }
}

/// Check this canary at `due` (replacing any earlier schedule).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Schedule {
    pub canary_id: String,
    pub canary: Addr<CanaryActor>,
    pub model_id: String,
    pub gate: String,
    pub window: Duration,
    pub started: Timestamp,
    pub budget: Duration,
    pub due: Timestamp,
}

impl Handler<Schedule> for PrometheusPoller {
    type Result = ();

    fn handle(&mut self, msg: Schedule, ctx: &mut Context<Self>) {
        if let Some(timer) = self.targets.remove(&msg.canary_id).and_then(|t| t.timer) {
            ctx.cancel_future(timer);
        }
        self.generations += 1;
        let generation = self.generations;
        self.targets.insert(
            msg.canary_id.clone(),
            Target {
                canary: msg.canary,
                model_id: msg.model_id,
                gate: msg.gate,
                window: msg.window,
                started: msg.started,
                budget: msg.budget,
                generation,
                timer: None,
            },
        );
        self.arm(msg.canary_id, generation, msg.due, ctx);
    }
}

/// No more checks for this canary (paused or ended).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unschedule {
    pub canary_id: String,
}

impl Handler<Unschedule> for PrometheusPoller {
    type Result = ();

    fn handle(&mut self, msg: Unschedule, ctx: &mut Context<Self>) {
        if let Some(timer) = self.targets.remove(&msg.canary_id).and_then(|t| t.timer) {
            ctx.cancel_future(timer);
        }
    }
}

/// One evaluation with no side effects (`evaluate_slo`): the source's answer, nothing recorded.
#[derive(Message)]
#[rtype(result = "Gathered")]
pub struct Gather(pub SloQuery);

impl Handler<Gather> for PrometheusPoller {
    type Result = ResponseFuture<Gathered>;

    fn handle(&mut self, msg: Gather, _ctx: &mut Context<Self>) -> Self::Result {
        self.source.gather(msg.0)
    }
}

/// Whether the SLO source's server answered its last probe (for `/readyz`): the cached state, so no request
/// from outside ever causes an outbound call.
#[derive(Message)]
#[rtype(result = "Reachability")]
pub struct Probe;

impl Handler<Probe> for PrometheusPoller {
    type Result = MessageResult<Probe>;

    fn handle(&mut self, _: Probe, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.reachability.clone())
    }
}
