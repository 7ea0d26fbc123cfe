//! The SSE broker actor: owns every subscription and fans committed events out to them. An event's frame
//! is encoded once (by the recorder) and shared; the broker never awaits a subscriber: it `try_send`s into
//! each bounded queue and drops a subscriber whose queue is full (it can resume with `Last-Event-ID`) or
//! closed, so a slow or vanished client never slows anyone else.

mod frame;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult};
use tokio::sync::mpsc;

pub use frame::{comment, retry, Frame};

use crate::events::TopicFilter;

pub type SubId = u64;

struct Subscriber {
    keys: Vec<String>,
    tx: mpsc::Sender<Arc<Frame>>,
    /// The last seq queued, so a subscriber matching an event through several filters gets it once.
    last_seq: i64,
}

pub struct Broker {
    subscribers: HashMap<SubId, Subscriber>,
    /// Filter text (`job/job_x`, `job/*`, `*`) → subscribers.
    index: HashMap<String, Vec<SubId>>,
    next_id: SubId,
    /// The newest seq delivered: a new subscriber gets everything after it live.
    delivered: i64,
    sweep_every: Duration,
    /// Set at shutdown: every stream has been ended and new ones end at once.
    closed: bool,
}

impl Broker {
    /// `sweep_every`: how often subscribers whose stream has gone are pruned (the keep-alive period).
    pub fn new(sweep_every: Duration) -> Self {
        Self {
            subscribers: HashMap::new(),
            index: HashMap::new(),
            next_id: 1,
            delivered: 0,
            sweep_every,
            closed: false,
        }
    }

    fn count_subscribers(&self) {
        crate::metrics::METRICS
            .sse_subscribers
            .set(i64::try_from(self.subscribers.len()).unwrap_or(i64::MAX));
    }

    fn remove(&mut self, id: SubId) {
        if let Some(sub) = self.subscribers.remove(&id) {
            for key in sub.keys {
                if let Some(ids) = self.index.get_mut(&key) {
                    ids.retain(|other| *other != id);
                    if ids.is_empty() {
                        self.index.remove(&key);
                    }
                }
            }
        }
    }
}

impl Actor for Broker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.sweep_every, |broker, _| {
            let closed: Vec<SubId> = broker
                .subscribers
                .iter()
                .filter(|(_, s)| s.tx.is_closed())
                .map(|(id, _)| *id)
                .collect();
            closed.into_iter().for_each(|id| broker.remove(id));
        });
    }
}

/// Registers a subscriber (sent by the SSE route and by tools that wait for a job). Replies with its id and
/// the newest seq already delivered: every later matching event will reach the subscriber's queue.
#[derive(Message)]
#[rtype(result = "(SubId, i64)")]
pub struct Subscribe {
    pub filters: Vec<TopicFilter>,
    pub tx: mpsc::Sender<Arc<Frame>>,
}

impl Handler<Subscribe> for Broker {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) -> Self::Result {
        let id = self.next_id;
        self.next_id += 1;
        if self.closed {
            // Shutting down: the sender is dropped, so the new stream ends at once with its retry hint.
            return MessageResult((id, self.delivered));
        }
        let mut keys: Vec<String> = msg.filters.iter().map(ToString::to_string).collect();
        keys.sort();
        keys.dedup();
        for key in &keys {
            self.index.entry(key.clone()).or_default().push(id);
        }
        self.subscribers.insert(
            id,
            Subscriber {
                keys,
                tx: msg.tx,
                last_seq: 0,
            },
        );
        self.count_subscribers();
        MessageResult((id, self.delivered))
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
        self.subscribers.clear();
        self.index.clear();
        self.count_subscribers();
    }
}

/// Removes a subscriber (sent when its stream is dropped).
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
        let mut dropped = Vec::new();
        for frame in msg.0 {
            self.delivered = self.delivered.max(frame.seq);
            for key in TopicFilter::keys_of(frame.kind, &frame.topic) {
                let Some(ids) = self.index.get(key) else {
                    continue;
                };
                for id in ids {
                    let Some(sub) = self.subscribers.get_mut(id) else {
                        continue;
                    };
                    if sub.last_seq >= frame.seq {
                        continue;
                    }
                    sub.last_seq = frame.seq;
                    match sub.tx.try_send(frame.clone()) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            crate::metrics::METRICS.events_dropped.inc();
                            log::warn!(
                                "SSE subscriber {id} fell {} events behind; disconnecting it",
                                sub.tx.max_capacity()
                            );
                            dropped.push(*id);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => dropped.push(*id),
                    }
                }
            }
        }
        dropped.into_iter().for_each(|id| self.remove(id));
        self.count_subscribers();
    }
}

/// A live subscription: frames arrive on `rx`; dropping it unsubscribes.
pub struct Subscription {
    pub rx: mpsc::Receiver<Arc<Frame>>,
    /// Events after this seq arrive on `rx`; earlier ones must be read from the log.
    pub live_after: i64,
    id: SubId,
    broker: Addr<Broker>,
}

impl Subscription {
    pub async fn open(
        broker: &Addr<Broker>,
        filters: Vec<TopicFilter>,
        capacity: usize,
    ) -> Result<Subscription, actix::MailboxError> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (id, live_after) = broker.send(Subscribe { filters, tx }).await?;
        Ok(Subscription {
            rx,
            live_after,
            id,
            broker: broker.clone(),
        })
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
        self.broker.do_send(Unsubscribe(self.id));
    }
}
