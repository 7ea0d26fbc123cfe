//! MCP sessions: issued by `initialize`, ended by `DELETE /mcp`. Sessions are optional (the kit's curl
//! commands never initialize); a request naming an unknown or ended one gets 404. Memory is bounded. A
//! session remembers what its server-to-client stream should carry: the log level and the subscribed
//! resources.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::logging::LogLevel;

/// The most sessions kept in all; past it `initialize` is refused rather than anyone's session dropped.
const MAX_SESSIONS: usize = 10_000;
/// The most sessions one client (an API key, or an address in keyless mode) keeps; its own least recently
/// used one makes room for its next, so no client can flush another's.
pub const MAX_SESSIONS_PER_CLIENT: usize = 256;
/// Resources one session may subscribe to.
pub const MAX_SUBSCRIPTIONS: usize = 256;
/// Jobs and canaries a session remembers starting (its oldest forgotten first): their events are its own.
pub const MAX_OWNED: usize = 1024;

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub protocol_version: String,
    /// The newest event seq when the session began: its stream carries what happened since.
    pub since: i64,
    pub state: Arc<SessionState>,
}

/// What `logging/setLevel` and `resources/subscribe` changed, and the jobs and canaries the session's own
/// calls started: what its stream carries.
#[derive(Debug, Default)]
pub struct SessionState {
    log_level: Mutex<LogLevel>,
    subscriptions: Mutex<BTreeSet<String>>,
    /// Topics (`job/<id>`, `canary/<id>`) of what this session started: looked up for every event its
    /// stream sees, and forgotten oldest first.
    owned: Mutex<Owned>,
}

#[derive(Debug, Default)]
struct Owned {
    topics: HashSet<String>,
    order: VecDeque<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SessionState {
    pub fn log_level(&self) -> LogLevel {
        *lock(&self.log_level)
    }

    pub fn set_log_level(&self, level: LogLevel) {
        *lock(&self.log_level) = level;
    }

    /// `false` when the session already holds [`MAX_SUBSCRIPTIONS`] other subscriptions.
    pub fn subscribe(&self, uri: &str) -> bool {
        let mut subscriptions = lock(&self.subscriptions);
        if subscriptions.len() >= MAX_SUBSCRIPTIONS && !subscriptions.contains(uri) {
            return false;
        }
        subscriptions.insert(uri.to_string());
        true
    }

    pub fn unsubscribe(&self, uri: &str) -> bool {
        lock(&self.subscriptions).remove(uri)
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains(uri)
    }

    /// Remembers that this session started what `topic` is about (before it exists, so none of its events
    /// can pass unheard).
    pub fn own(&self, topic: String) {
        let mut owned = lock(&self.owned);
        if !owned.topics.insert(topic.clone()) {
            return;
        }
        owned.order.push_back(topic);
        if owned.order.len() > MAX_OWNED {
            if let Some(oldest) = owned.order.pop_front() {
                owned.topics.remove(&oldest);
            }
        }
    }

    pub fn owns(&self, topic: &str) -> bool {
        lock(&self.owned).topics.contains(topic)
    }
}

/// A kept session: who created it, and when it was last used.
struct Entry {
    session: Session,
    owner: String,
    used: Instant,
}

#[derive(Default)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Entry>>,
}

impl SessionStore {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        lock(&self.sessions)
    }

    /// A new session owned by `owner`, or `None` when the server holds all the sessions it may.
    pub fn create(&self, protocol_version: &str, since: i64, owner: &str) -> Option<Session> {
        let session = Session {
            id: nanoid::nanoid!(32),
            protocol_version: protocol_version.to_string(),
            since,
            state: Arc::default(),
        };
        let mut sessions = self.map();
        let mine = sessions.values().filter(|e| e.owner == owner);
        if mine.clone().count() >= MAX_SESSIONS_PER_CLIENT {
            let oldest = mine.min_by_key(|e| e.used).map(|e| e.session.id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        } else if sessions.len() >= MAX_SESSIONS {
            return None;
        }
        let entry = Entry {
            session: session.clone(),
            owner: owner.to_string(),
            used: Instant::now(),
        };
        sessions.insert(session.id.clone(), entry);
        Some(session)
    }

    /// The session, if it exists and belongs to `owner` (another client's session id is as good as unknown).
    pub fn get(&self, id: &str, owner: &str) -> Option<Session> {
        let mut sessions = self.map();
        let entry = sessions.get_mut(id).filter(|e| e.owner == owner)?;
        entry.used = Instant::now();
        Some(entry.session.clone())
    }

    pub fn end(&self, id: &str, owner: &str) -> bool {
        let mut sessions = self.map();
        if sessions.get(id).is_some_and(|e| e.owner == owner) {
            sessions.remove(id);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_belongs_to_the_client_that_created_it() {
        let store = SessionStore::default();
        let session = store.create("2025-11-25", 0, "key:a").expect("room");
        assert!(store.get(&session.id, "key:a").is_some());
        assert!(store.get(&session.id, "key:b").is_none());
        assert!(!store.end(&session.id, "key:b"), "b cannot end a's session");
        assert!(store.end(&session.id, "key:a"));
        assert!(store.get(&session.id, "key:a").is_none());
    }

    #[test]
    fn a_client_over_its_quota_replaces_its_own_oldest_session_not_anyone_else_s() {
        let store = SessionStore::default();
        let other = store.create("2025-11-25", 0, "key:b").expect("room");
        let first = store.create("2025-11-25", 0, "key:a").expect("room");
        for _ in 0..MAX_SESSIONS_PER_CLIENT {
            store.create("2025-11-25", 0, "key:a").expect("room");
        }
        assert!(store.get(&first.id, "key:a").is_none(), "a's oldest went");
        assert!(store.get(&other.id, "key:b").is_some(), "b's stayed");
    }

    #[test]
    fn subscriptions_per_session_are_capped() {
        let state = SessionState::default();
        for i in 0..MAX_SUBSCRIPTIONS {
            assert!(state.subscribe(&format!("cockpit://job/job_{i}")));
        }
        assert!(!state.subscribe("cockpit://job/one_more"));
        assert!(state.subscribe("cockpit://job/job_0"), "again is not more");
    }
}
