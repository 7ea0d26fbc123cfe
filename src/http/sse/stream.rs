//! One SSE response: a `retry:` hint, the replay from the event log, then live frames from the broker
//! (skipping what replay already sent), keep-alive comments while idle, and the end after the terminal
//! event of every single entity the stream is about.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use crate::broker::{self, Frame, Subscription};
use crate::storage::events::{EventRow, Scope};
use crate::storage::{Store, StoreError};

const REPLAY_PAGE: i64 = 500;

pub struct Plan {
    /// What to replay: each scope after its own seq.
    pub replay: Vec<(Scope, i64)>,
    /// Topics still to end; `None` for streams that never end (patterns, models, ops).
    pub open_entities: Option<HashSet<String>>,
    pub retry_ms: u64,
    pub keep_alive: Duration,
}

/// One page of replay, read off the event loop.
type PageRead = Pin<Box<dyn Future<Output = Result<Vec<EventRow>, StoreError>>>>;

/// Replay still to do: the scopes, the cursor (last seq read), and the page being read, if any.
struct Replay {
    scopes: Vec<(Scope, i64)>,
    cursor: i64,
    reading: Option<PageRead>,
}

/// A hand-written stream rather than an `unfold` of an async block: a live frame is one `poll_recv` and a
/// `Bytes` clone, with no future built, no state moved and no timer polled per event (the keep-alive timer
/// is only looked at when the queue is empty), which is most of what a busy hub spends per subscriber.
struct SseStream {
    prelude: Option<Bytes>,
    /// Sent again when the broker ends the stream, so the client reconnects after that long.
    retry: Bytes,
    pending: VecDeque<Arc<Frame>>,
    /// `None` once replay is done.
    replay: Option<Replay>,
    store: Store,
    live: Subscription,
    last_sent: i64,
    open_entities: Option<HashSet<String>>,
    keep_alive: Interval,
    done: bool,
}

pub fn sse_stream(
    plan: Plan,
    live: Subscription,
    store: Store,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let prelude = [broker::retry(plan.retry_ms), broker::comment("connected")].concat();
    let mut keep_alive = interval_at(Instant::now() + plan.keep_alive, plan.keep_alive);
    // A stream busy with events polls its timer late; that must not release a burst of keep-alives.
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    SseStream {
        prelude: Some(Bytes::from(prelude)),
        retry: broker::retry(plan.retry_ms),
        pending: VecDeque::new(),
        replay: (!plan.replay.is_empty()).then_some(Replay {
            scopes: plan.replay,
            cursor: 0,
            reading: None,
        }),
        store,
        live,
        last_sent: 0,
        open_entities: plan.open_entities,
        keep_alive,
        done: false,
    }
}

impl Stream for SseStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(prelude) = this.prelude.take() {
                return Poll::Ready(Some(Ok(prelude)));
            }
            if let Some(frame) = this.pending.pop_front() {
                match this.emit(&frame) {
                    Some(bytes) => return Poll::Ready(Some(Ok(bytes))),
                    None => continue,
                }
            }
            if let Some(replay) = this.replay.as_mut() {
                let store = this.store.clone();
                let reading = replay.reading.get_or_insert_with(|| {
                    let (scopes, cursor) = (replay.scopes.clone(), replay.cursor);
                    Box::pin(async move { store.replay_page(scopes, cursor, REPLAY_PAGE).await })
                });
                let page = std::task::ready!(reading.as_mut().poll(cx));
                this.take_page(page);
                continue;
            }
            match this.live.rx.poll_recv(cx) {
                Poll::Ready(Some(frame)) => match this.emit(&frame) {
                    Some(bytes) => return Poll::Ready(Some(Ok(bytes))),
                    None => continue,
                },
                // The broker ended us (we fell behind, or the service is shutting down): a last retry hint,
                // then the end; the client resumes with Last-Event-ID.
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Some(Ok(this.retry.clone())));
                }
                Poll::Pending => {}
            }
            std::task::ready!(this.keep_alive.poll_tick(cx));
            return Poll::Ready(Some(Ok(broker::comment("keep-alive"))));
        }
    }
}

impl SseStream {
    /// Queues a replayed page; replay ends with a short page (or an error, which ends the stream).
    fn take_page(&mut self, page: Result<Vec<EventRow>, StoreError>) {
        let Some(mut replay) = self.replay.take() else {
            return;
        };
        match page {
            Ok(rows) => {
                if let Some(last) = rows.last() {
                    if rows.len() as i64 == REPLAY_PAGE {
                        replay.cursor = last.seq;
                        replay.reading = None;
                        self.replay = Some(replay);
                    }
                }
                crate::metrics::METRICS
                    .events_replayed
                    .inc_by(rows.len() as u64);
                self.pending.extend(rows.iter().filter_map(Frame::from_row));
            }
            Err(e) => {
                log::error!("SSE replay failed: {e}");
                self.done = true;
            }
        }
    }

    /// The frame's bytes unless already sent; notes the end of single entities.
    fn emit(&mut self, frame: &Frame) -> Option<Bytes> {
        if frame.seq <= self.last_sent {
            return None;
        }
        self.last_sent = frame.seq;
        if let (true, Some(open)) = (frame.terminal, self.open_entities.as_mut()) {
            open.remove(&frame.topic);
            self.done = open.is_empty();
        }
        Some(frame.bytes.clone())
    }
}
