//! Per-thread delivery: each worker thread that holds subscribers has one hub task. The broker sends it one
//! message per batch of committed events: the frames its thread's subscribers want.
//!
//! Why: a subscriber's stream task lives on its worker thread. If the broker (on its own thread) pushed into
//! every subscriber's queue itself, each push would be a cross-thread wake-up. The hub wakes its streams
//! from their own thread (a local run-queue push, no system call), and it finds them through its own index
//! of filter → queues, so a frame costs the broker one look-up per filter, not one per subscriber.
//!
//! The broker still owns the subscriptions (who, which filters, which thread, counts, shutdown); the hub
//! mirrors its thread's part in a thread-local index that a subscription joins before it subscribes with
//! the broker, so the hub always knows a subscriber before its first frame. A subscriber matching a frame
//! through two filters is offered it twice; its queue keeps the first (it skips seqs it has had).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::Addr;
use tokio::sync::mpsc;

use super::queue::{Pushed, QueueSender};
use super::{Broker, Frame, SubId, Unsubscribe};
use crate::events::TopicFilter;

pub type HubId = u64;

pub enum ToHub {
    /// Committed frames, in seq order, that some subscriber on this thread wants.
    Deliver(Vec<Arc<Frame>>),
    /// Shutdown: end every stream.
    CloseAll,
}

/// This thread's subscribers, by filter text (`job/job_x`, `job/*`, `*`), and each one's filters.
#[derive(Default)]
struct Local {
    by_filter: HashMap<String, Vec<(SubId, Rc<QueueSender>)>>,
    filters_of: HashMap<SubId, Vec<String>>,
}

impl Local {
    fn remove(&mut self, id: SubId) -> Option<Rc<QueueSender>> {
        let mut queue = None;
        for key in self.filters_of.remove(&id).unwrap_or_default() {
            if let Some(subscribers) = self.by_filter.get_mut(&key) {
                if let Some(at) = subscribers.iter().position(|(sub, _)| *sub == id) {
                    queue = Some(subscribers.swap_remove(at).1);
                }
                if subscribers.is_empty() {
                    self.by_filter.remove(&key);
                }
            }
        }
        queue
    }
}

/// The handle of one thread's hub.
#[derive(Clone)]
pub struct Hub {
    pub id: HubId,
    tx: mpsc::UnboundedSender<ToHub>,
}

thread_local! {
    static THIS_THREAD: RefCell<Option<Hub>> = const { RefCell::new(None) };
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// A subscriber of this thread joins its hub with its filters (before the broker can send it anything).
pub fn join(id: SubId, filters: &[String], queue: QueueSender) {
    let queue = Rc::new(queue);
    LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        for key in filters {
            local
                .by_filter
                .entry(key.clone())
                .or_default()
                .push((id, queue.clone()));
        }
        local.filters_of.insert(id, filters.to_vec());
    });
}

/// Drops a subscriber's queue, which ends its stream after what it holds.
pub fn leave(id: SubId) {
    // Taken out first and dropped after the borrow: dropping wakes the stream.
    // `try_with`: a stream dropped while its thread shuts down finds the index already gone, which is fine.
    let queue = LOCAL.try_with(|local| local.borrow_mut().remove(id));
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
                let all = LOCAL.with(|local| std::mem::take(&mut *local.borrow_mut()));
                drop(all);
            }
            ToHub::Deliver(frames) => deliver(&frames, &broker),
        }
    }
}

fn deliver(frames: &[Arc<Frame>], broker: &Addr<Broker>) {
    let mut gone: Vec<SubId> = Vec::new();
    LOCAL.with(|local| {
        let local = local.borrow();
        for frame in frames {
            for key in TopicFilter::keys_of(frame.kind, &frame.topic) {
                let Some(subscribers) = local.by_filter.get(key) else {
                    continue;
                };
                for (id, queue) in subscribers {
                    match queue.push(frame) {
                        Pushed::Queued => {}
                        Pushed::Full if !gone.contains(id) => {
                            crate::metrics::METRICS.events_dropped.inc();
                            log::warn!(
                                "SSE subscriber {id} fell {} events behind; disconnecting it",
                                queue.capacity()
                            );
                            gone.push(*id);
                        }
                        Pushed::Closed if !gone.contains(id) => gone.push(*id),
                        Pushed::Full | Pushed::Closed => {}
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
