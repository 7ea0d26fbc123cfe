//! Per-thread delivery: each worker thread that holds subscribers has one hub task, and the broker sends it
//! one message per batch of committed events, naming which of its subscribers get which frames.
//!
//! Why: a subscriber's stream task lives on its worker thread. If the broker (on its own thread) pushed into
//! every subscriber's queue itself, each push would be a cross-thread wake-up, and each woken stream would
//! write its one frame at once: one `send` per event per subscriber. The hub wakes its streams from their
//! own thread (a local run-queue push, no system call), and while that thread is busy writing, batches wait
//! in the hub's channel, so each stream later writes several events with one `send`.
//!
//! The broker still owns the subscriptions (filters, order, duplicates, counts); the hub only holds the
//! queues of its thread's subscribers, in a thread-local map that a subscription joins before it
//! subscribes with the broker, so the hub always knows a subscriber before its first frame.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::Addr;
use tokio::sync::mpsc;

use super::queue::{Pushed, QueueSender};
use super::{Broker, Frame, SubId, Unsubscribe};

pub type HubId = u64;

pub enum ToHub {
    /// Committed frames, in seq order, each with the subscriber it goes to.
    Deliver(Vec<(SubId, Arc<Frame>)>),
    /// Shutdown: end every stream.
    CloseAll,
}

/// The handle of one thread's hub.
#[derive(Clone)]
pub struct Hub {
    pub id: HubId,
    tx: mpsc::UnboundedSender<ToHub>,
}

thread_local! {
    static THIS_THREAD: RefCell<Option<Hub>> = const { RefCell::new(None) };
    /// The queues of this thread's subscribers.
    static QUEUES: RefCell<HashMap<SubId, QueueSender>> = RefCell::new(HashMap::new());
}

/// A subscriber of this thread joins its hub (before the broker can route anything to it).
pub fn join(id: SubId, queue: QueueSender) {
    QUEUES.with(|queues| queues.borrow_mut().insert(id, queue));
}

/// Drops a subscriber's queue, which ends its stream after what it holds.
pub fn leave(id: SubId) {
    // Taken out first and dropped after the borrow: dropping wakes the stream.
    // `try_with`: a stream dropped while its thread shuts down finds the map already gone, which is fine.
    let queue = QUEUES.try_with(|queues| queues.borrow_mut().remove(&id));
    drop(queue);
}

impl Hub {
    /// This thread's hub, started on first use (and again if its runtime has gone since).
    pub fn local(broker: &Addr<Broker>) -> Hub {
        THIS_THREAD.with(|cell| {
            let mut hub = cell.borrow_mut();
            match hub.as_ref() {
                Some(existing) if !existing.tx.is_closed() => existing.clone(),
                _ => hub.insert(Hub::start(broker.clone())).clone(),
            }
        })
    }

    fn start(broker: Addr<Broker>) -> Hub {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::unbounded_channel();
        actix_web::rt::spawn(run(rx, broker));
        Hub {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            tx,
        }
    }

    /// False when the hub's thread has stopped.
    pub fn send(&self, message: ToHub) -> bool {
        self.tx.send(message).is_ok()
    }
}

async fn run(mut messages: mpsc::UnboundedReceiver<ToHub>, broker: Addr<Broker>) {
    while let Some(message) = messages.recv().await {
        match message {
            ToHub::CloseAll => {
                let all = QUEUES.with(|queues| std::mem::take(&mut *queues.borrow_mut()));
                drop(all);
            }
            ToHub::Deliver(routes) => deliver(routes, &broker),
        }
    }
}

fn deliver(routes: Vec<(SubId, Arc<Frame>)>, broker: &Addr<Broker>) {
    let mut gone = Vec::new();
    QUEUES.with(|queues| {
        let queues = queues.borrow();
        for (id, frame) in routes {
            let Some(queue) = queues.get(&id) else {
                continue;
            };
            match queue.push(frame) {
                Pushed::Queued => {}
                Pushed::Full => {
                    if !gone.contains(&id) {
                        crate::metrics::METRICS.events_dropped.inc();
                        log::warn!(
                            "SSE subscriber {id} fell {} events behind; disconnecting it",
                            queue.capacity()
                        );
                        gone.push(id);
                    }
                }
                Pushed::Closed => {
                    if !gone.contains(&id) {
                        gone.push(id);
                    }
                }
            }
        }
    });
    for id in gone {
        leave(id);
        broker.do_send(Unsubscribe(id));
    }
}
