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
//! queue senders of its thread's subscribers. All of its state changes arrive on its one channel, so a
//! subscriber added before it subscribes with the broker is always known here before its first frame.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::Addr;
use tokio::sync::mpsc;

use super::{Broker, Frame, SubId, Unsubscribe};

pub type HubId = u64;

pub enum ToHub {
    /// A subscriber on this thread and its queue (sent before the broker hears of it).
    Add(SubId, mpsc::Sender<Arc<Frame>>),
    /// Its stream is gone or refused: drop the queue, which ends the stream.
    Remove(SubId),
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
    let mut queues: HashMap<SubId, mpsc::Sender<Arc<Frame>>> = HashMap::new();
    while let Some(message) = messages.recv().await {
        match message {
            ToHub::Add(id, queue) => {
                queues.insert(id, queue);
            }
            ToHub::Remove(id) => {
                queues.remove(&id);
            }
            ToHub::CloseAll => queues.clear(),
            ToHub::Deliver(routes) => {
                for (id, frame) in routes {
                    let Some(queue) = queues.get(&id) else {
                        continue;
                    };
                    let full = match queue.try_send(frame) {
                        Ok(()) => continue,
                        Err(mpsc::error::TrySendError::Full(_)) => true,
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                    };
                    if full {
                        crate::metrics::METRICS.events_dropped.inc();
                        log::warn!(
                            "SSE subscriber {id} fell {} events behind; disconnecting it",
                            queue.max_capacity()
                        );
                    }
                    // Dropping the queue ends the stream after what it holds, with a retry hint.
                    queues.remove(&id);
                    broker.do_send(Unsubscribe(id));
                }
            }
        }
    }
}
