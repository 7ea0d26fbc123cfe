//! MCP sessions: issued by `initialize`, ended by `DELETE /mcp`. Sessions are optional (the kit's curl
//! commands never initialize); a request naming an unknown or ended one gets 404. Memory is bounded. A
//! session remembers what its server-to-client stream should carry: the log level and the subscribed
//! resources.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::logging::LogLevel;

/// The most sessions kept; past it the least recently used is forgotten.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub protocol_version: String,
    /// The newest event seq when the session began: its stream carries what happened since.
    pub since: i64,
    pub state: Arc<SessionState>,
}

/// What `logging/setLevel` and `resources/subscribe` changed.
#[derive(Debug, Default)]
pub struct SessionState {
    log_level: Mutex<LogLevel>,
    subscriptions: Mutex<BTreeSet<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SessionState {
    pub fn log_level(&self) -> LogLevel {
        *lock(&self.log_level)
    }

    pub fn set_log_level(&self, level: LogLevel) {
        *lock(&self.log_level) = level;
    }

    pub fn subscribe(&self, uri: &str) {
        lock(&self.subscriptions).insert(uri.to_string());
    }

    pub fn unsubscribe(&self, uri: &str) -> bool {
        lock(&self.subscriptions).remove(uri)
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains(uri)
    }
}

#[derive(Default)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, (Session, Instant)>>,
}

impl SessionStore {
    pub fn create(&self, protocol_version: &str, since: i64) -> Session {
        let session = Session {
            id: nanoid::nanoid!(32),
            protocol_version: protocol_version.to_string(),
            since,
            state: Arc::default(),
        };
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| id.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(session.id.clone(), (session.clone(), Instant::now()));
        session
    }

    pub fn get(&self, id: &str) -> Option<Session> {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.get_mut(id).map(|(session, used)| {
            *used = Instant::now();
            session.clone()
        })
    }

    pub fn end(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(id)
            .is_some()
    }
}
