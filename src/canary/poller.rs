//! The PrometheusPoller: one due time per canary, one timer for all of them. When a canary's check is due it
//! gathers the SLIs from the SLO source (the query `time` pinned to the due time) and hands them to the canary
//! actor, which decides, records, and answers with its next due time. It runs on an arbiter of its own, so
//! checking never shares a thread with SSE fan-out or the HTTP workers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;

use super::actor::{CanaryActor, Observed};
use crate::clock::{self, Timestamp};
use crate::ids::CanaryId;
use crate::slo::{Gathered, Reachability, SloQuery, SloSource};

struct Target {
    canary: Addr<CanaryActor>,
    model_id: String,
    gate: String,
    window: Duration,
    /// When the canary started: no query window reaches back before it.
    started: Timestamp,
    budget: Duration,
    /// Bumped by every `Schedule`, so a reply to an older tick cannot undo a newer schedule, and a queued due
    /// time of an older schedule is skipped.
    generation: u64,
}

/// Checks gathering at once at most; more due checks wait their turn (in due order) instead of opening
/// thousands of connections to Prometheus in one instant.
const MAX_IN_FLIGHT: usize = 256;

/// One timer for every canary: a heap of due times, and a single `run_later` armed for the earliest. Actix
/// polls every future an actor has spawned whenever it wakes, so a timer per canary would cost each wake-up
/// O(canaries); the heap costs O(log canaries) per check.
pub struct PrometheusPoller {
    source: Rc<dyn SloSource>,
    targets: HashMap<CanaryId, Target>,
    /// (due time, generation, canary): earliest first. Entries whose generation is no longer the target's are
    /// stale (rescheduled, paused, ended) and skipped when they come up.
    due: BinaryHeap<Reverse<(Timestamp, u64, CanaryId)>>,
    /// The one timer, and the due time it is armed for.
    timer: Option<(Timestamp, SpawnHandle)>,
    in_flight: usize,
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
            due: BinaryHeap::new(),
            timer: None,
            in_flight: 0,
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
                    // The cause goes to the log, once per change; `/readyz` (public) says only up or down.
                    if found != poller.reachability {
                        match &found {
                            Reachability::Down(why) => {
                                log::warn!("the SLO source is unreachable: {why}");
                            }
                            Reachability::Up => log::info!("the SLO source answers"),
                            _ => {}
                        }
                    }
                    poller.reachability = found;
                    poller.probing = false;
                }),
        );
    }

    fn queue(
        &mut self,
        canary_id: CanaryId,
        generation: u64,
        due: Timestamp,
        ctx: &mut Context<Self>,
    ) {
        self.due.push(Reverse((due, generation, canary_id)));
        self.arm(ctx);
    }

    /// Keeps the one timer armed for the earliest due time (and not at all while the in-flight limit is
    /// reached: a finishing check starts the next).
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let Some(Reverse((earliest, _, _))) = self.due.peek() else {
            return;
        };
        let earliest = *earliest;
        if self.in_flight >= MAX_IN_FLIGHT {
            return;
        }
        if let Some((armed_for, handle)) = self.timer {
            if armed_for <= earliest {
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = (earliest - clock::now()).to_std().unwrap_or(Duration::ZERO);
        let handle = ctx.run_later(wait, |poller, ctx| {
            poller.timer = None;
            poller.run_due(ctx);
        });
        self.timer = Some((earliest, handle));
    }

    /// Starts every check that is due, within the in-flight limit, then re-arms for the next.
    fn run_due(&mut self, ctx: &mut Context<Self>) {
        let now = clock::now();
        while self.in_flight < MAX_IN_FLIGHT {
            match self.due.peek() {
                Some(Reverse((due, _, _))) if *due <= now => {}
                _ => break,
            }
            let Some(Reverse((due, generation, canary_id))) = self.due.pop() else {
                break;
            };
            let current = self
                .targets
                .get(&canary_id)
                .is_some_and(|t| t.generation == generation);
            if current {
                self.check(canary_id, generation, due, ctx);
            }
        }
        self.arm(ctx);
    }

    fn check(
        &mut self,
        canary_id: CanaryId,
        generation: u64,
        due: Timestamp,
        ctx: &mut Context<Self>,
    ) {
        let Some(target) = self.targets.get(&canary_id) else {
            return;
        };
        let lateness = (clock::now() - due).to_std().unwrap_or(Duration::ZERO);
        crate::metrics::METRICS
            .check_lateness
            .with_label_values::<&str>(&[])
            .observe(lateness.as_secs_f64());
        let query = SloQuery::canary_era(
            (&target.model_id, &target.gate),
            target.window,
            target.started,
            due,
            target.budget,
        );
        let canary = target.canary.clone();
        let gathering = self.source.gather(query);
        self.in_flight += 1;
        let check = async move {
            let gathered = gathering.await;
            canary.send(Observed { due, gathered }).await
        };
        ctx.spawn(check.into_actor(self).map(move |reply, poller, ctx| {
            poller.in_flight -= 1;
            let current = poller
                .targets
                .get(&canary_id)
                .is_some_and(|t| t.generation == generation);
            if current {
                match reply {
                    Ok(Some(next)) => poller.due.push(Reverse((next, generation, canary_id))),
                    // Paused or ended (its mailbox closed): no more checks until it is scheduled again.
                    Ok(None) | Err(_) => {
                        poller.targets.remove(&canary_id);
                    }
                }
            }
            poller.run_due(ctx);
        }));
    }
}

impl Actor for PrometheusPoller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.probe(ctx);
        ctx.run_interval(PROBE_EVERY, PrometheusPoller::probe);
    }
}

/// Check this canary at `due` (replacing any earlier schedule).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Schedule {
    pub canary_id: CanaryId,
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
            },
        );
        self.queue(msg.canary_id, generation, msg.due, ctx);
    }
}

/// No more checks for this canary (paused or ended).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unschedule {
    pub canary_id: CanaryId,
}

impl Handler<Unschedule> for PrometheusPoller {
    type Result = ();

    /// Its queued due time is left to be skipped when it comes up.
    fn handle(&mut self, msg: Unschedule, _ctx: &mut Context<Self>) {
        self.targets.remove(&msg.canary_id);
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
