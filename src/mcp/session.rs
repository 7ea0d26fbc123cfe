//! MCP sessions: issued by `initialize`, ended by `DELETE /mcp`. Sessions are optional (the kit's curl
//! commands never initialize); a request naming an unknown or ended one gets 404. Memory is bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The most sessions kept; past it the least recently used is forgotten.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub protocol_version: String,
}

#[derive(Default)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, (Session, Instant)>>,
}

impl SessionStore {
    pub fn create(&self, protocol_version: &str) -> Session {
        let session = Session {
            id: nanoid::nanoid!(32),
            protocol_version: protocol_version.to_string(),
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
