//! A subscriber's queue of frames: bounded, and single-threaded, because the hub that fills it and the
//! stream that drains it run on the same worker thread. A push is a `VecDeque` push and, if the stream is
//! waiting, one local wake-up: no atomics, no semaphore, no lock (a tokio channel spent about a tenth of a
//! busy hub's CPU on those). Neither end is `Send`, so the compiler keeps both on their thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::Frame;

struct Shared {
    frames: VecDeque<Arc<Frame>>,
    /// The newest seq taken: a frame offered again (through a second matching filter) is skipped.
    last_seq: i64,
    capacity: usize,
    waker: Option<Waker>,
    sender_alive: bool,
    receiver_alive: bool,
}

/// The hub's end.
pub struct QueueSender(Rc<RefCell<Shared>>);

/// The stream's end.
pub struct QueueReceiver(Rc<RefCell<Shared>>);

/// What became of a pushed frame.
pub enum Pushed {
    Queued,
    /// The subscriber is `capacity` frames behind.
    Full,
    /// The stream has gone.
    Closed,
}

pub fn channel(capacity: usize) -> (QueueSender, QueueReceiver) {
    let shared = Rc::new(RefCell::new(Shared {
        frames: VecDeque::new(),
        last_seq: 0,
        capacity: capacity.max(1),
        waker: None,
        sender_alive: true,
        receiver_alive: true,
    }));
    (QueueSender(shared.clone()), QueueReceiver(shared))
}

impl QueueSender {
    pub fn push(&self, frame: &Arc<Frame>) -> Pushed {
        let waker = {
            let mut shared = self.0.borrow_mut();
            if !shared.receiver_alive {
                return Pushed::Closed;
            }
            if frame.seq <= shared.last_seq {
                return Pushed::Queued;
            }
            if shared.frames.len() >= shared.capacity {
                return Pushed::Full;
            }
            shared.last_seq = frame.seq;
            shared.frames.push_back(frame.clone());
            shared.waker.take()
        };
        // Woken outside the borrow: a waker may run code that touches this queue.
        if let Some(waker) = waker {
            waker.wake();
        }
        Pushed::Queued
    }

    pub fn capacity(&self) -> usize {
        self.0.borrow().capacity
    }
}

impl Drop for QueueSender {
    /// The receiver gets what is queued, then the end.
    fn drop(&mut self) {
        let waker = {
            let mut shared = self.0.borrow_mut();
            shared.sender_alive = false;
            shared.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl QueueReceiver {
    /// The next frame; `None` once the sender is gone and the queue is empty.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<Frame>>> {
        let mut shared = self.0.borrow_mut();
        if let Some(frame) = shared.frames.pop_front() {
            return Poll::Ready(Some(frame));
        }
        if !shared.sender_alive {
            return Poll::Ready(None);
        }
        match &shared.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => shared.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    pub async fn recv(&mut self) -> Option<Arc<Frame>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// A frame already queued, if any.
    pub fn try_recv(&mut self) -> Option<Arc<Frame>> {
        self.0.borrow_mut().frames.pop_front()
    }
}

impl Drop for QueueReceiver {
    fn drop(&mut self) {
        let mut shared = self.0.borrow_mut();
        shared.receiver_alive = false;
        shared.frames.clear();
        shared.waker = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EntityKind;

    fn frame(seq: i64) -> Arc<Frame> {
        Frame::new(seq, EntityKind::Ops, "ops/q", "note", "{}")
    }

    #[actix_web::test]
    async fn frames_arrive_in_order_up_to_the_capacity_then_the_end_after_the_sender_goes() {
        let (tx, mut rx) = channel(2);
        assert!(matches!(tx.push(&frame(1)), Pushed::Queued));
        assert!(matches!(tx.push(&frame(2)), Pushed::Queued));
        assert!(matches!(tx.push(&frame(3)), Pushed::Full));
        assert_eq!(rx.recv().await.map(|f| f.seq), Some(1));
        drop(tx);
        assert_eq!(rx.recv().await.map(|f| f.seq), Some(2));
        assert!(rx.recv().await.is_none());
    }

    #[actix_web::test]
    async fn a_frame_offered_twice_through_two_filters_is_queued_once() {
        let (tx, mut rx) = channel(4);
        let same = frame(5);
        assert!(matches!(tx.push(&same), Pushed::Queued));
        assert!(matches!(tx.push(&same), Pushed::Queued));
        assert!(matches!(tx.push(&frame(6)), Pushed::Queued));
        assert_eq!(rx.try_recv().map(|f| f.seq), Some(5));
        assert_eq!(rx.try_recv().map(|f| f.seq), Some(6));
        assert!(rx.try_recv().is_none());
    }

    #[actix_web::test]
    async fn a_waiting_receiver_is_woken_by_a_push_and_a_gone_receiver_refuses_frames() {
        let (tx, mut rx) = channel(4);
        let waiting = actix_web::rt::spawn(async move {
            let first = rx.recv().await.map(|f| f.seq);
            (first, rx)
        });
        tokio::task::yield_now().await; // the receiver is now parked on the empty queue
        assert!(matches!(tx.push(&frame(7)), Pushed::Queued));
        let (first, rx) = waiting.await.expect("the receiver ran");
        assert_eq!(first, Some(7));
        drop(rx);
        assert!(matches!(tx.push(&frame(8)), Pushed::Closed));
    }
}
