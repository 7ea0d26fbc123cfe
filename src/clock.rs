//! Time as the cockpit writes it: SQLite's `YYYY-MM-DD HH:MM:SS` (UTC) in tables, RFC 3339 in event data,
//! `[YYYY-MM-DD HH:MM]` in narratives, and compact durations (`23s`, `12m`, `1h5m`).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now()
}

/// SQLite's `datetime()` form, so the kit's `created_at > datetime('now','-1 hour')` filters are correct.
pub fn sql(ts: Timestamp) -> String {
    ts.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// With milliseconds (`YYYY-MM-DD HH:MM:SS.SSS`), for schedules with sub-second intervals; it still compares
/// correctly with `datetime()` text.
pub fn sql_ms(ts: Timestamp) -> String {
    ts.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

pub fn parse_sql(text: &str) -> Option<Timestamp> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

/// Reads [`sql_ms`] text (and plain [`sql`] text).
pub fn parse_sql_ms(text: &str) -> Option<Timestamp> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

pub fn rfc3339(ts: Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The narrative prefix: UTC, to the minute.
pub fn narrative_minute(ts: Timestamp) -> String {
    ts.format("[%Y-%m-%d %H:%M]").to_string()
}

/// Compact duration for humans: `450ms`, `23s`, `12m`, `12m5s`, `1h5m` (seconds dropped from an hour on).
pub fn compact_duration(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m, s) {
        (0, 0, 0) => format!("{ms}ms"),
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_compact() {
        assert_eq!(compact_duration(450), "450ms");
        assert_eq!(compact_duration(23_400), "23s");
        assert_eq!(compact_duration(720_000), "12m");
        assert_eq!(compact_duration(725_000), "12m5s");
        assert_eq!(compact_duration(3_900_000), "1h5m");
        assert_eq!(compact_duration(7_200_000), "2h");
    }

    #[test]
    fn timestamps_use_the_sqlite_and_narrative_forms() {
        let ts = parse_sql("2025-10-03 14:21:09").expect("valid");
        assert_eq!(sql(ts), "2025-10-03 14:21:09");
        assert_eq!(narrative_minute(ts), "[2025-10-03 14:21]");
        assert_eq!(rfc3339(ts), "2025-10-03T14:21:09.000Z");
    }
}
