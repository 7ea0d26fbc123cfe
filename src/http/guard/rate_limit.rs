//! Per-client rate limit: a token bucket of `bucket` requests refilled over `window` (GCRA, so one instant per
//! client is all the state). Memory is bounded: at `max_clients` the clients whose bucket is full again are
//! forgotten (that changes no decision), and if none is, newcomers share one overflow bucket. governor's
//! keyed limiter was considered; its store cannot be capped, which is the point here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    /// Time one request's token takes to come back.
    emission: Duration,
    /// How far ahead of now a client's theoretical arrival time may run: the burst.
    tolerance: Duration,
    max_clients: usize,
    clients: Mutex<HashMap<String, Instant>>,
}

const OVERFLOW: &str = "\u{0}overflow";

impl RateLimiter {
    /// `None` when limiting is off (`bucket` 0).
    pub fn new(bucket: u32, window: Duration, max_clients: usize) -> Option<Self> {
        if bucket == 0 {
            return None;
        }
        let emission = window / bucket;
        Some(Self {
            emission,
            tolerance: window.saturating_sub(emission),
            max_clients: max_clients.max(1),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// `Ok` to serve one request, or `Err(retry_after)`.
    pub fn check(&self, client: &str, now: Instant) -> Result<(), Duration> {
        self.take(client, 1, now)
    }

    /// `Ok` to serve work that costs `cost` tokens (a batch costs its length), or `Err(retry_after)`; a
    /// refused request takes nothing.
    pub fn take(&self, client: &str, cost: u32, now: Instant) -> Result<(), Duration> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = if clients.contains_key(client) || clients.len() < self.max_clients {
            client
        } else {
            clients.retain(|_, tat| *tat > now);
            if clients.len() < self.max_clients {
                client
            } else {
                OVERFLOW
            }
        };
        let tat = clients.get(key).copied().unwrap_or(now).max(now);
        // GCRA for `cost` cells: the last of them must conform, i.e. arrive within the tolerance.
        let ahead = tat + self.emission.saturating_mul(cost.saturating_sub(1)) - now;
        if ahead > self.tolerance {
            return Err(ahead.saturating_sub(self.tolerance));
        }
        clients.insert(key.to_string(), tat + self.emission.saturating_mul(cost));
        Ok(())
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients.lock().map_or(0, |c| c.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_a_burst_then_one_request_per_emission() {
        let limiter = RateLimiter::new(3, Duration::from_secs(3), 10).expect("on");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", t0).is_ok());
        }
        let retry = limiter.check("a", t0).expect_err("over the rate");
        assert_eq!(retry, Duration::from_secs(1));
        assert!(limiter.check("b", t0).is_ok(), "clients are separate");
        assert!(limiter.check("a", t0 + Duration::from_secs(1)).is_ok());
        assert!(limiter.check("a", t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn memory_stays_bounded_and_idle_clients_are_forgotten() {
        let limiter = RateLimiter::new(2, Duration::from_secs(2), 2).expect("on");
        let t0 = Instant::now();
        assert!(limiter.check("a", t0).is_ok());
        assert!(limiter.check("b", t0).is_ok());
        // Full: newcomers share the overflow bucket (2 requests), nobody new is tracked.
        assert!(limiter.check("c", t0).is_ok());
        assert!(limiter.check("d", t0).is_ok());
        assert!(limiter.check("e", t0).is_err());
        assert_eq!(
            limiter.tracked(),
            3,
            "two clients and the shared overflow bucket"
        );
        // Later a and b have full buckets again: forgotten, and a newcomer gets its own bucket.
        let later = t0 + Duration::from_secs(5);
        assert!(limiter.check("f", later).is_ok());
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn work_of_several_tokens_costs_them_all_or_nothing() {
        let limiter = RateLimiter::new(10, Duration::from_secs(10), 10).expect("on");
        let t0 = Instant::now();
        assert!(limiter.take("a", 7, t0).is_ok());
        assert!(limiter.take("a", 4, t0).is_err(), "only 3 tokens are left");
        assert!(limiter.take("a", 3, t0).is_ok(), "the refusal took nothing");
        assert!(limiter.check("a", t0).is_err());
        assert!(
            limiter.take("b", 11, t0).is_err(),
            "more than the bucket never fits"
        );
    }

    #[test]
    fn zero_turns_limiting_off() {
        assert!(RateLimiter::new(0, Duration::from_secs(60), 10).is_none());
    }
}
