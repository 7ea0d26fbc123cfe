//! A streamed call's messages (its progress, then its response), kept past the connection that carried
//! them, so a handshake-era client that lost the stream resumes it as 2025-11-25 allows: `GET /mcp` with
//! `Last-Event-ID: <stream>-<n>` replays what came after message `n`, then follows the call to its response.
//! Bounded: a stream is forgotten [`KEPT_AFTER_END`] after its end, at most [`MAX_STREAMS`] are kept (the
//! oldest ended one goes first), and a stream keeps at most [`MAX_MESSAGES`] (progress past that is dropped;
//! the response always has its place).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::stream::LocalBoxStream;
use serde_json::Value;
use tokio::sync::Notify;

/// How long an ended stream can still be resumed.
pub const KEPT_AFTER_END: Duration = Duration::from_secs(300);
/// Streams kept at once.
pub const MAX_STREAMS: usize = 1_000;
/// Messages one stream keeps.
pub const MAX_MESSAGES: usize = 1_000;
/// Stream ids start with this, so they never read as a session stream's `<seq>-<n>`.
const PREFIX: &str = "call";

/// What a stream carries, for the transport to frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// An event: its id (resumable streams only) and its JSON-RPC message (none: the priming event).
    Event {
        id: Option<String>,
        message: Option<Value>,
    },
    /// Nothing has happened for a while: a comment keeps the connection open.
    KeepAlive,
}

struct Entry {
    owner: String,
    messages: Vec<Value>,
    ended_at: Option<Instant>,
    changed: Arc<Notify>,
}

#[derive(Clone, Default)]
pub struct CallStreams(Arc<Mutex<HashMap<String, Entry>>>);

fn lock(streams: &CallStreams) -> MutexGuard<'_, HashMap<String, Entry>> {
    streams
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds a stream's messages; ends it when dropped (however the call ended).
pub struct Writer {
    streams: CallStreams,
    pub id: String,
}

impl Writer {
    pub fn push(&self, message: Value) {
        let mut streams = lock(&self.streams);
        if let Some(entry) = streams.get_mut(&self.id) {
            let is_response = message.get("id").is_some();
            if entry.messages.len() < MAX_MESSAGES - 1 || is_response {
                entry.messages.push(message);
                entry.changed.notify_waiters();
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(entry) = lock(&self.streams).get_mut(&self.id) {
            entry.ended_at = Some(Instant::now());
            entry.changed.notify_waiters();
        }
    }
}

/// `<stream>-<n>`: the stream id and the message number, if `text` names a call stream's event.
pub fn parse_event_id(text: &str) -> Option<(String, usize)> {
    let (stream, number) = text.trim().rsplit_once('-')?;
    if !stream.starts_with(PREFIX) {
        return None;
    }
    Some((stream.to_string(), number.parse().ok()?))
}

impl CallStreams {
    /// A new stream owned by `owner` (only it may resume it).
    pub fn open(&self, owner: &str) -> Writer {
        let id = format!("{PREFIX}{}", nanoid::nanoid!(12, &crate::ids::ID_ALPHABET));
        let mut streams = lock(self);
        streams.retain(|_, e| e.ended_at.is_none_or(|at| at.elapsed() < KEPT_AFTER_END));
        if streams.len() >= MAX_STREAMS {
            let oldest = streams
                .iter()
                .filter_map(|(id, e)| e.ended_at.map(|at| (at, id.clone())))
                .min();
            if let Some((_, id)) = oldest {
                streams.remove(&id);
            }
        }
        streams.insert(
            id.clone(),
            Entry {
                owner: owner.to_string(),
                messages: Vec::new(),
                ended_at: None,
                changed: Arc::new(Notify::new()),
            },
        );
        Writer {
            streams: self.clone(),
            id,
        }
    }

    /// The messages after number `after` of stream `id` as they come, until its response; `None` if `owner`
    /// has no such stream (never had, or it has been forgotten). `numbered` gives each event its id.
    pub fn follow(
        &self,
        id: &str,
        owner: &str,
        after: usize,
        (numbered, keep_alive): (bool, Duration),
    ) -> Option<LocalBoxStream<'static, Outgoing>> {
        if lock(self).get(id).is_none_or(|e| e.owner != owner) {
            return None;
        }
        let state = (self.clone(), id.to_string(), after, false);
        Some(Box::pin(futures_util::stream::unfold(
            state,
            move |(streams, id, next, done)| async move {
                if done {
                    return None;
                }
                loop {
                    let changed = lock(&streams).get(&id)?.changed.clone();
                    let notified = changed.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    let (message, ended) = {
                        let all = lock(&streams);
                        let entry = all.get(&id)?;
                        (entry.messages.get(next).cloned(), entry.ended_at.is_some())
                    };
                    if let Some(message) = message {
                        let last = message.get("id").is_some();
                        let event = Outgoing::Event {
                            id: numbered.then(|| format!("{id}-{}", next + 1)),
                            message: Some(message),
                        };
                        return Some((event, (streams, id, next + 1, last)));
                    }
                    if ended {
                        return None;
                    }
                    if tokio::time::timeout(keep_alive, notified).await.is_err() {
                        return Some((Outgoing::KeepAlive, (streams, id, next, false)));
                    }
                }
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use serde_json::json;

    #[actix_web::test]
    async fn a_follower_gets_what_came_after_its_event_then_the_response_and_nothing_more() {
        let streams = CallStreams::default();
        let writer = streams.open("me");
        writer.push(json!({"method": "notifications/progress", "params": {"progress": 0.5}}));
        writer.push(json!({"method": "notifications/progress", "params": {"progress": 0.9}}));
        assert!(streams
            .follow(
                &writer.id,
                "someone else",
                0,
                (true, Duration::from_secs(1))
            )
            .is_none());
        let mut resumed = streams
            .follow(&writer.id, "me", 1, (true, Duration::from_secs(60)))
            .expect("mine");
        let Some(Outgoing::Event { id, message }) = resumed.next().await else {
            panic!("an event")
        };
        assert_eq!(id, Some(format!("{}-2", writer.id)));
        assert_eq!(message.expect("message")["params"]["progress"], 0.9);
        writer.push(json!({"id": 7, "result": {}}));
        let Some(Outgoing::Event { message, .. }) = resumed.next().await else {
            panic!("the response")
        };
        assert_eq!(message.expect("message")["id"], 7);
        assert_eq!(
            resumed.next().await,
            None,
            "the stream ends with the response"
        );
        assert_eq!(
            parse_event_id(&format!("{}-2", writer.id)),
            Some((writer.id.clone(), 2))
        );
        assert_eq!(
            parse_event_id("12-3"),
            None,
            "a session stream's id is not a call stream's"
        );
    }

    #[actix_web::test]
    async fn a_quiet_stream_sends_keep_alives_and_one_that_ended_unanswered_just_ends() {
        let streams = CallStreams::default();
        let writer = streams.open("me");
        let mut quiet = streams
            .follow(&writer.id, "me", 0, (false, Duration::from_millis(20)))
            .expect("mine");
        assert_eq!(quiet.next().await, Some(Outgoing::KeepAlive));
        drop(writer);
        assert_eq!(quiet.next().await, None);
    }
}
