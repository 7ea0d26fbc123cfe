//! A cap on concurrent event streams per client (its API key, or its address in keyless mode): one client
//! cannot hold every file descriptor with idle streams. A stream takes a [`StreamPermit`] when it opens and
//! gives it back when its response body is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub struct StreamLimits {
    per_client: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream of one client; dropping it frees the place.
pub struct StreamPermit {
    client: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl StreamLimits {
    pub fn new(per_client: usize) -> Self {
        Self {
            per_client,
            open: Arc::default(),
        }
    }

    /// A permit, or `None` when the client already has `per_client` streams open.
    pub fn acquire(&self, client: &str) -> Option<StreamPermit> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client.to_string()).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(StreamPermit {
            client: client.to_string(),
            open: self.open.clone(),
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_places_and_a_closed_stream_frees_one() {
        let limits = StreamLimits::new(2);
        let a1 = limits.acquire("a").expect("first");
        let _a2 = limits.acquire("a").expect("second");
        assert!(limits.acquire("a").is_none(), "third of a is refused");
        assert!(limits.acquire("b").is_some(), "b is not held up by a");
        drop(a1);
        assert!(
            limits.acquire("a").is_some(),
            "a closed stream frees its place"
        );
    }

    #[test]
    fn forgotten_clients_leave_no_entry() {
        let limits = StreamLimits::new(1);
        drop(limits.acquire("gone"));
        assert!(limits.open.lock().expect("lock").is_empty());
    }
}
