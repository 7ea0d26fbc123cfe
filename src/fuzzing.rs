//! The parsers that take outside input, each behind one `fn(&[u8])` for the libFuzzer targets in `fuzz/`.
//! Each entry also checks what must hold for any input (a resolved policy reads back as itself, a parsed
//! `Last-Event-ID` is never negative, …), so a fuzzer finds wrong answers as well as panics. The unit test
//! below replays every seed and every saved crash through them, so CI keeps both compiling and fixed.

#![allow(
    clippy::expect_used,
    reason = "an entry asserts what must hold for any input: a failed expectation is the fuzzer's finding"
)]

use serde_json::Value;

use crate::canary::policy::{self, Limits, Policy, PolicyPatch, PolicyTable};
use crate::config::{EnvSource, Settings};
use crate::http::sse::request::SseRequest;
use crate::mcp::jsonrpc::{self, Incoming};

/// A `POST /mcp` body: strict JSON (no duplicate keys), then each message (or each of a batch) classified.
pub fn jsonrpc_envelope(data: &[u8]) {
    let Ok(message) = jsonrpc::parse_strict(data) else {
        return;
    };
    let messages = match message {
        Value::Array(batch) => batch.into_iter().take(crate::mcp::MAX_BATCH).collect(),
        single => vec![single],
    };
    for message in messages {
        match jsonrpc::classify(message) {
            Incoming::Request { id, .. } => assert!(jsonrpc::id_round_trips(&id)),
            Incoming::Invalid { id, error } => {
                assert!(id.is_null() || jsonrpc::id_round_trips(&id));
                assert_eq!(error.code, jsonrpc::INVALID_REQUEST);
            }
            Incoming::Notification { .. } | Incoming::Response => {}
        }
    }
}

/// `start_canary`'s `sloPolicy` (durations included) against a config policy table: the effective policy
/// is within the limits it was checked against, and reads back from its stored form as itself.
pub fn tool_arguments(data: &[u8]) {
    let Ok(arguments) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let table: PolicyTable = [(
        "*".to_string(),
        [(
            "production".to_string(),
            serde_json::from_value(serde_json::json!({"minRequests": 10})).expect("a valid layer"),
        )]
        .into(),
    )]
    .into();
    let Ok(patch) = serde_json::from_value::<PolicyPatch>(arguments) else {
        return;
    };
    let limits = Limits {
        min_interval: std::time::Duration::from_millis(10),
    };
    let Ok(policy) = policy::effective(&table, "m", "production", &patch) else {
        return;
    };
    if policy.within(&limits).is_err() {
        return;
    }
    let stored = policy.to_json();
    let read_back = Policy::from_json(&stored).expect("a stored policy reads back");
    assert_eq!(read_back.to_json(), stored, "the stored form round-trips");
}

/// A `GET /sse` query string, then a newline, then a `Last-Event-ID` header value.
pub fn sse_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (query, header) = match text.split_once('\n') {
        Some((query, header)) => (query, Some(header)),
        None => (text.as_ref(), None),
    };
    if let Ok(request) = SseRequest::parse(query, header) {
        assert!(!request.filters.is_empty());
        assert!(request.last_event_id.is_none_or(|id| id >= 0));
    }
}

/// A `--config` file over the built-in defaults; what loads is valid by its own rules.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(settings) = Settings::load_text(text, "fuzz.toml", &EnvSource::empty()) {
        settings.validate().expect("loaded settings are valid");
    }
}

/// A Prometheus instant-query response body.
pub fn prometheus_response(data: &[u8]) {
    let (sample, raw) = crate::slo::prometheus::classify(data);
    if let crate::slo::Sample::Value(v) = sample {
        assert!(v.is_finite(), "a value is finite: {v}");
    }
    assert!(raw.chars().count() <= 501, "the stored raw text is bounded");
}

/// One target: a parser's entry.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/seeds/<name>/` call them.
pub const TARGETS: [(&str, Target); 5] = [
    ("jsonrpc_envelope", jsonrpc_envelope),
    ("tool_arguments", tool_arguments),
    ("sse_request", sse_request),
    ("config_file", config_file),
    ("prometheus_response", prometheus_response),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed and every saved crash (`fuzz/regressions/<target>/`) still passes its target.
    #[test]
    fn the_fuzz_seeds_and_saved_crashes_pass_their_targets() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            for dir in ["seeds", "regressions"] {
                let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(name)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.expect("entry").path();
                    target(&std::fs::read(&path).expect("read"));
                    replayed += 1;
                }
            }
        }
        assert!(replayed >= TARGETS.len(), "seeds exist for every target");
    }
}
