//! `GET /mcp`: a session's server-to-client stream (log messages, resource updates). It is a projection of
//! the event log through the session's level and subscriptions, so its event ids (`<seq>-<n>`) resume
//! exactly: `Last-Event-ID` replays from the log what the session's stream would have carried since.
//! `subscriptions/listen` (2026-07-28) is the same projection through a fixed set of resources, with no
//! ids (that revision does not resume streams), each message tagged with the listen request's id.

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;
use tokio::time::{interval_at, Instant, Interval};

use crate::broker::{self, Frame, Subscription};
use crate::mcp::modern::META_SUBSCRIPTION;
use crate::mcp::notify::{self, Happening};
use crate::mcp::session::SessionState;
use crate::storage::events::{EventRow, Scope};
use crate::storage::Store;

const REPLAY_PAGE: i64 = 500;

/// A position in a session stream: the event's seq and the index of the notification it produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    seq: i64,
    index: i64,
}

impl Position {
    /// Everything after event `seq`.
    pub fn after(seq: i64) -> Position {
        Position {
            seq,
            index: i64::MAX,
        }
    }

    /// Reads `<seq>-<n>` (or a bare `<seq>`).
    pub fn parse(text: &str) -> Option<Position> {
        let (seq, index) = match text.trim().split_once('-') {
            Some((seq, index)) => (seq.parse().ok()?, index.parse().ok()?),
            None => (text.trim().parse().ok()?, i64::MAX),
        };
        Some(Position { seq, index })
    }
}

/// Which messages a stream carries, and how it marks them.
pub enum Projection {
    /// A session's GET stream: its log level and subscriptions, with resumable ids.
    Session(Arc<SessionState>),
    /// A `subscriptions/listen` stream: updates of these resources and the state of these tasks (job and
    /// canary ids), tagged with the request's id.
    Listen {
        id: Value,
        uris: BTreeSet<String>,
        tasks: BTreeSet<String>,
        acknowledged: Value,
    },
}

impl Projection {
    /// The task an event's topic is about, when this stream follows it.
    fn task_of(&self, topic: &str) -> Option<String> {
        let Projection::Listen { tasks, .. } = self else {
            return None;
        };
        let (_, id) = topic.split_once('/')?;
        tasks.contains(id).then(|| id.to_string())
    }

    fn messages(&self, happening: &Happening<'_>) -> Vec<Value> {
        match self {
            Projection::Session(session) => notify::notifications(session, happening),
            Projection::Listen { id, uris, .. } => {
                notify::resource_updated(happening.topic, |uri| uris.contains(uri))
                    .map(|update| tagged(update, id))
                    .into_iter()
                    .collect()
            }
        }
    }
}

/// A listen stream's message, carrying the id of the request that opened it.
fn tagged(mut message: Value, id: &Value) -> Value {
    message["params"]["_meta"] = serde_json::json!({ (META_SUBSCRIPTION): id });
    message
}

pub struct Setup {
    pub projection: Projection,
    pub live: Subscription,
    pub store: Store,
    /// From `Last-Event-ID`: replay what came after it.
    pub resume: Option<Position>,
    pub retry_ms: u64,
    pub keep_alive: Duration,
}

struct SessionStream {
    projection: Projection,
    live: Subscription,
    store: Store,
    prelude: Option<Bytes>,
    retry: Bytes,
    /// Log rows still to replay from, and the seq read up to.
    replay_from: Option<i64>,
    pending: VecDeque<Bytes>,
    /// Tasks whose state changed and is still to be read and sent (each once, however many events).
    tasks_changed: VecDeque<String>,
    after: Position,
    keep_alive: Interval,
    done: bool,
}

/// The narrative in an event's data line (read only when a log message is due).
fn narrative_of(data: &str) -> String {
    serde_json::from_str::<Value>(data)
        .ok()
        .and_then(|v| v["narrative"].as_str().map(String::from))
        .unwrap_or_default()
}

pub fn session_stream(setup: Setup) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let start = Position {
        seq: setup.live.live_after,
        index: i64::MAX,
    };
    let after = setup.resume.unwrap_or(start);
    let prelude = match &setup.projection {
        // 2025-11-25 priming event: an id to resume from, and no data to act on.
        Projection::Session(_) => format!(
            "retry: {}\n\nid: {}-{}\ndata: \n\n",
            setup.retry_ms, after.seq, after.index
        ),
        // The acknowledgment comes first and says what the stream will carry.
        Projection::Listen {
            id, acknowledged, ..
        } => {
            let ack = serde_json::json!({
                "jsonrpc": "2.0",
                "method": "notifications/subscriptions/acknowledged",
                "params": acknowledged,
            });
            format!("data: {}\n\n", tagged(ack, id))
        }
    };
    let state = SessionStream {
        projection: setup.projection,
        live: setup.live,
        store: setup.store,
        prelude: Some(Bytes::from(prelude)),
        retry: broker::retry(setup.retry_ms),
        replay_from: setup.resume.map(|p| p.seq - 1),
        pending: VecDeque::new(),
        tasks_changed: VecDeque::new(),
        after,
        keep_alive: interval_at(Instant::now() + setup.keep_alive, setup.keep_alive),
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let bytes = state.next_chunk().await?;
        Some((Ok(bytes), state))
    })
}

impl SessionStream {
    /// Queues the notifications one event produces for this session, past the resume position.
    fn take(&mut self, seq: i64, topic: &str, event: &str, data: &str) {
        if seq < self.after.seq {
            return;
        }
        let narrative = || narrative_of(data);
        let happening = Happening {
            topic,
            event,
            narrative: &narrative,
        };
        if let Some(task) = self.projection.task_of(topic) {
            if !self.tasks_changed.contains(&task) {
                self.tasks_changed.push_back(task);
            }
        }
        let listening = matches!(self.projection, Projection::Listen { .. });
        for (index, message) in self.projection.messages(&happening).into_iter().enumerate() {
            let position = Position {
                seq,
                index: index as i64,
            };
            if position <= self.after {
                continue;
            }
            self.after = position;
            self.pending.push_back(Bytes::from(if listening {
                format!("data: {message}\n\n")
            } else {
                format!("id: {seq}-{index}\ndata: {message}\n\n")
            }));
        }
        // Nothing more from this event, whatever it produced.
        self.after = self.after.max(Position {
            seq,
            index: i64::MAX,
        });
    }

    async fn replay_page(&mut self) {
        let Some(from) = self.replay_from.take() else {
            return;
        };
        let page = self
            .store
            .replay_page(vec![(Scope::All, from)], from, REPLAY_PAGE)
            .await;
        match page {
            Ok(rows) => {
                if rows.len() as i64 == REPLAY_PAGE {
                    self.replay_from = rows.last().map(|r: &EventRow| r.seq);
                }
                crate::metrics::METRICS
                    .events_replayed
                    .inc_by(rows.len() as u64);
                for row in &rows {
                    self.take(row.seq, &row.topic, &row.event, &row.data);
                }
            }
            Err(e) => {
                log::error!("MCP stream replay failed: {e}");
                self.done = true;
            }
        }
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            if let Some(prelude) = self.prelude.take() {
                return Some(prelude);
            }
            if let Some(bytes) = self.pending.pop_front() {
                return Some(bytes);
            }
            if let Some(task) = self.tasks_changed.pop_front() {
                let note = crate::mcp::tasks::notification(&self.store, &task).await;
                if let (Some(note), Projection::Listen { id, .. }) = (note, &self.projection) {
                    return Some(Bytes::from(format!("data: {}\n\n", tagged(note, id))));
                }
                continue;
            }
            if self.replay_from.is_some() {
                self.replay_page().await;
                continue;
            }
            tokio::select! {
                frame = self.live.rx.recv() => if let Some(frame) = frame {
                    let frame: Arc<Frame> = frame;
                    self.take(frame.seq, &frame.topic, &frame.event, frame.data());
                } else {
                    self.done = true;
                    return Some(self.retry.clone());
                },
                _ = self.keep_alive.tick() => return Some(broker::comment("keep-alive")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_and_order_like_the_stream() {
        let a = Position::parse("12-0").expect("valid");
        let b = Position::parse("12-1").expect("valid");
        assert!(a < b && b < Position::parse("13-0").expect("valid"));
        assert!(Position::parse("12").expect("bare seq") > b);
        assert_eq!(Position::parse("x-1"), None);
    }
}
