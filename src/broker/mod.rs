//! The SSE broker actor: owns every subscription and fans committed events out to them. An event's frame
//! is encoded once (by the recorder) and shared. The broker routes each batch of frames to the hub of every
//! worker thread with matching subscribers ([`hub`]), one message per thread; the hub pushes into each
//! bounded queue and drops a subscriber whose queue is full (it can resume with `Last-Event-ID`) or
//! closed. Nobody ever awaits a subscriber, so a slow or vanished client never slows anyone else.

mod frame;
mod hub;
mod queue;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, Message, MessageResult};
pub use frame::{comment, retry, Frame};
use hub::{Hub, HubId, ToHub};
pub use queue::QueueReceiver;

use crate::events::TopicFilter;

pub type SubId = u64;

struct Subscriber {
    filters: Vec<String>,
    /// The hub of the thread its stream runs on.
    hub: HubId,
}

#[derive(Default)]
pub struct Broker {
    subscribers: HashMap<SubId, Subscriber>,
    /// Filter text (`job/job_x`, `job/*`, `*`) → the hubs with subscribers on it, and how many each.
    index: HashMap<String, HashMap<HubId, usize>>,
    hubs: HashMap<HubId, Hub>,
    /// The newest seq delivered: a new subscriber gets everything after it live.
    delivered: i64,
    /// Set at shutdown: every stream has been ended and new ones end at once.
    closed: bool,
}

impl Broker {
    /// A broker whose log already holds events up to `delivered`: a new subscriber gets what comes after it
    /// live. Seeded from the log at start, so a pattern subscriber connecting after a restart is not sent the
    /// whole history as if it were news.
    pub fn new(delivered: i64) -> Self {
        Self {
            delivered,
            ..Self::default()
        }
    }

    fn count_subscribers(&self) {
        crate::metrics::METRICS
            .sse_subscribers
            .set(i64::try_from(self.subscribers.len()).unwrap_or(i64::MAX));
    }

    fn remove(&mut self, id: SubId) {
        let Some(sub) = self.subscribers.remove(&id) else {
            return;
        };
        for key in sub.filters {
            let Some(hubs) = self.index.get_mut(&key) else {
                continue;
            };
            if let Some(count) = hubs.get_mut(&sub.hub) {
                *count -= 1;
                if *count == 0 {
                    hubs.remove(&sub.hub);
                }
            }
            if hubs.is_empty() {
                self.index.remove(&key);
            }
        }
    }

    /// A hub whose thread has stopped takes its subscribers with it.
    fn forget_hub(&mut self, hub: HubId) {
        self.hubs.remove(&hub);
        let orphans: Vec<SubId> = self
            .subscribers
            .iter()
            .filter(|(_, s)| s.hub == hub)
            .map(|(id, _)| *id)
            .collect();
        for id in orphans {
            self.remove(id);
        }
    }
}

impl Actor for Broker {
    type Context = Context<Self>;
}

/// Registers a subscriber whose queue its thread's hub already holds (sent by [`Subscription::open`]).
/// Replies whether it was taken (not during shutdown) and the newest seq already delivered: every later
/// matching event will reach its queue.
#[derive(Message)]
#[rtype(result = "(bool, i64)")]
struct Subscribe {
    id: SubId,
    /// Sorted, without repeats.
    filters: Vec<String>,
    hub: Hub,
}

impl Handler<Subscribe> for Broker {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) -> Self::Result {
        if self.closed {
            return MessageResult((false, self.delivered));
        }
        for key in &msg.filters {
            *self
                .index
                .entry(key.clone())
                .or_default()
                .entry(msg.hub.id)
                .or_default() += 1;
        }
        self.subscribers.insert(
            msg.id,
            Subscriber {
                filters: msg.filters,
                hub: msg.hub.id,
            },
        );
        self.hubs.insert(msg.hub.id, msg.hub);
        self.count_subscribers();
        MessageResult((true, self.delivered))
    }
}

/// Ends every stream (each closes with a `retry:` hint, so clients come back after the restart) and refuses
/// new ones: the first step of a graceful shutdown.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for Broker {
    type Result = ();

    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) {
        self.closed = true;
        for hub in self.hubs.values() {
            hub.send(ToHub::CloseAll);
        }
        self.subscribers.clear();
        self.index.clear();
        self.count_subscribers();
    }
}

/// Removes a subscriber (sent when its stream is dropped, or by its hub when its queue is full or closed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub SubId);

impl Handler<Unsubscribe> for Broker {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Context<Self>) {
        self.remove(msg.0);
        self.count_subscribers();
    }
}

/// Committed events, in seq order (sent by the recorder only).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Vec<Arc<Frame>>);

impl Handler<Deliver> for Broker {
    type Result = ();

    fn handle(&mut self, msg: Deliver, _ctx: &mut Context<Self>) {
        let mut batches: HashMap<HubId, Vec<Arc<Frame>>> = HashMap::new();
        for frame in msg.0 {
            self.delivered = self.delivered.max(frame.seq);
            for key in TopicFilter::keys_of(frame.kind, &frame.topic) {
                for hub in self.index.get(key).into_iter().flat_map(HashMap::keys) {
                    let batch = batches.entry(*hub).or_default();
                    if batch.last().is_none_or(|last| last.seq != frame.seq) {
                        batch.push(frame.clone());
                    }
                }
            }
        }
        let mut stopped = Vec::new();
        for (hub_id, frames) in batches {
            let sent = self
                .hubs
                .get(&hub_id)
                .is_some_and(|hub| hub.send(ToHub::Deliver(frames)));
            if !sent {
                stopped.push(hub_id);
            }
        }
        for hub in stopped {
            self.forget_hub(hub);
        }
        self.count_subscribers();
    }
}

/// A live subscription: frames arrive on `rx`; dropping it unsubscribes.
pub struct Subscription {
    pub rx: QueueReceiver,
    /// Events after this seq arrive on `rx`; earlier ones must be read from the log.
    pub live_after: i64,
    id: SubId,
    broker: Addr<Broker>,
}

impl Subscription {
    /// Subscribes through this thread's hub. During shutdown the subscription is refused and `rx` ends at once.
    pub async fn open(
        broker: &Addr<Broker>,
        filters: Vec<TopicFilter>,
        capacity: usize,
    ) -> Result<Subscription, actix::MailboxError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = queue::channel(capacity);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let hub = Hub::local(broker);
        let mut filters: Vec<String> = filters.iter().map(ToString::to_string).collect();
        filters.sort();
        filters.dedup();
        // Known to the hub before the broker can send it anything for this subscriber.
        hub::join(id, &filters, tx);
        let mut subscription = Subscription {
            rx,
            live_after: 0,
            id,
            broker: broker.clone(),
        };
        let (accepted, live_after) = broker.send(Subscribe { id, filters, hub }).await?;
        if !accepted {
            hub::leave(id);
        }
        subscription.live_after = live_after;
        Ok(subscription)
    }

    /// Waits for the entity's terminal event; false if `limit` passed first or the broker dropped us.
    pub async fn until_terminal(self, limit: Duration) -> bool {
        self.until_terminal_with(limit, |_| {}).await
    }

    /// Like `until_terminal`, showing every frame to `seen` on the way (e.g. to relay progress).
    pub async fn until_terminal_with(
        mut self,
        limit: Duration,
        mut seen: impl FnMut(&Frame),
    ) -> bool {
        let terminal = async {
            while let Some(frame) = self.rx.recv().await {
                seen(&frame);
                if frame.terminal {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(limit, terminal).await.unwrap_or(false)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        hub::leave(self.id);
        self.broker.do_send(Unsubscribe(self.id));
    }
}
