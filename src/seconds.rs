//! Durations that configuration gives in seconds (`kill_grace_seconds = 5.0`), read without a panic:
//! through `Duration::try_from_secs_f64` and bounded, so no timer, deadline or `Instant` arithmetic built
//! from them can overflow. Each setting's own lower bound is checked where the settings are validated.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The longest duration any setting may hold: one year.
pub const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// The shortest positive duration a setting may hold, so a timer never spins.
pub const MIN_POSITIVE: Duration = Duration::from_millis(1);

/// `seconds` as a duration from 0 to [`MAX`], or the rule it breaks.
pub fn from_f64(seconds: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| *d <= MAX)
        .ok_or_else(|| {
            format!(
                "must be a number of seconds from 0 to {} (one year), got {seconds}",
                MAX.as_secs()
            )
        })
}

/// For `#[serde(deserialize_with = "crate::seconds::deserialize")]`: an integer or a float of seconds.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    from_f64(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_a_duration_cannot_hold_are_errors_never_panics() {
        assert_eq!(from_f64(1.5), Ok(Duration::from_millis(1500)));
        assert_eq!(from_f64(0.0), Ok(Duration::ZERO));
        for bad in [1e20, 1e300, -1.0, f64::NAN, f64::INFINITY, 4e7] {
            let err = from_f64(bad).expect_err("out of range");
            assert!(err.contains("one year"), "{err}");
        }
    }
}
