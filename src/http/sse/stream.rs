//! One SSE response: a `retry:` hint, the replay from the event log, then live frames from the broker
//! (skipping what replay already sent), keep-alive comments while idle, and the end after the terminal
//! event of every single entity the stream is about.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{interval_at, Instant, Interval};

use crate::broker::{self, Frame, Subscription};
use crate::storage::events::Scope;
use crate::storage::{self, DbPool};

const REPLAY_PAGE: i64 = 500;

pub struct Plan {
    /// What to replay: each scope after its own seq.
    pub replay: Vec<(Scope, i64)>,
    /// Topics still to end; `None` for streams that never end (patterns, models, ops).
    pub open_entities: Option<HashSet<String>>,
    pub retry_ms: u64,
    pub keep_alive: Duration,
}

struct SseStream {
    prelude: Option<Bytes>,
    /// Sent again when the broker ends the stream, so the client reconnects after that long.
    retry: Bytes,
    pending: VecDeque<Arc<Frame>>,
    /// Scopes still to read from the log, and the cursor (last seq read); `None` once replay is done.
    replay: Option<(Vec<(Scope, i64)>, i64)>,
    pool: DbPool,
    live: Subscription,
    last_sent: i64,
    open_entities: Option<HashSet<String>>,
    keep_alive: Interval,
    done: bool,
}

pub fn sse_stream(
    plan: Plan,
    live: Subscription,
    pool: DbPool,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let prelude = [broker::retry(plan.retry_ms), broker::comment("connected")].concat();
    let state = SseStream {
        prelude: Some(Bytes::from(prelude)),
        retry: broker::retry(plan.retry_ms),
        pending: VecDeque::new(),
        replay: (!plan.replay.is_empty()).then_some((plan.replay, 0)),
        pool,
        live,
        last_sent: 0,
        open_entities: plan.open_entities,
        keep_alive: interval_at(Instant::now() + plan.keep_alive, plan.keep_alive),
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let bytes = state.next_chunk().await?;
        Some((Ok(bytes), state))
    })
}

impl SseStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            if let Some(prelude) = self.prelude.take() {
                return Some(prelude);
            }
            if let Some(frame) = self.pending.pop_front() {
                match self.emit(&frame) {
                    Some(bytes) => return Some(bytes),
                    None => continue,
                }
            }
            if self.replay.is_some() {
                self.fetch_replay_page().await;
                continue;
            }
            tokio::select! {
                frame = self.live.rx.recv() => match frame {
                    Some(frame) => if let Some(bytes) = self.emit(&frame) { return Some(bytes) },
                    // The broker ended us (we fell behind, or the service is shutting down): a last retry
                    // hint, then the end; the client resumes with Last-Event-ID.
                    None => {
                        self.done = true;
                        return Some(self.retry.clone());
                    }
                },
                _ = self.keep_alive.tick() => return Some(broker::comment("keep-alive")),
            }
        }
    }

    async fn fetch_replay_page(&mut self) {
        let Some((scopes, cursor)) = self.replay.take() else {
            return;
        };
        let query_scopes = scopes.clone();
        let page = storage::blocking(&self.pool, move |conn| {
            storage::events::page(conn, &query_scopes, cursor, REPLAY_PAGE)
        })
        .await;
        match page {
            Ok(rows) => {
                if let Some(last) = rows.last() {
                    if rows.len() as i64 == REPLAY_PAGE {
                        self.replay = Some((scopes, last.seq));
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
