//! The events a canary writes on `canary/<canaryId>`, and `gate_changed` on `model/<modelId>`, with their
//! narrative lines.

use serde_json::Value;

use super::rules::{wilson, Check, Counters, Observation, ReasonCode, Sample};
use super::CanaryState;
use crate::clock::compact_duration;
use crate::events::{EntityKind, NewEvent};
use crate::storage::canaries::CanaryRow;

fn event(state: &CanaryState, name: &'static str, narrative: String) -> NewEvent {
    NewEvent::new(EntityKind::Canary, &state.id, name, narrative)
        .field("modelId", state.model_id.as_str())
        .field("status", state.status.as_str())
}

fn percent(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

pub fn started(state: &CanaryState) -> NewEvent {
    let p = &state.policy;
    let mode = if state.dry_run { "dry run" } else { "canary" };
    event(
        state,
        "started",
        format!(
            "{mode} started: {} {} → {} (p95 ≤ {}ms, errors ≤ {}, every {})",
            state.model_id,
            state.from_gate,
            state.to_gate,
            p.latency_p95_ms,
            percent(p.error_rate),
            super::policy::show_duration(p.interval)
        ),
    )
    .field("fromGate", state.from_gate.as_str())
    .field("toGate", state.to_gate.as_str())
    .field("policy", p.to_json())
    .field("dryRun", state.dry_run)
}

fn number(sample: Sample) -> Value {
    sample.value().map_or(Value::Null, Value::from)
}

/// A sample as a person reads it: the value shown by `show`, or the reason there is none.
fn shown(sample: Sample, show: impl Fn(f64) -> String) -> String {
    match sample {
        Sample::Value(v) => show(v),
        Sample::Missing(reason) => reason.to_string(),
    }
}

/// The error rate as a person reads it: with counts, `1/160 = 0.62% (95% CI 0.11%–3.45%)`.
fn errors_text(observed: &Observation, confidence: f64) -> String {
    let rate = shown(observed.error_rate, percent);
    let counts = observed
        .errors
        .and_then(Sample::value)
        .zip(observed.requests.value());
    match counts.and_then(|(k, n)| Some((k, n, wilson(k, n, confidence)?))) {
        Some((k, n, ci)) => format!(
            "{k:.0}/{n:.0} = {rate} ({:.0}% CI {}–{})",
            confidence * 100.0,
            percent(ci.lower),
            percent(ci.upper)
        ),
        None => rate,
    }
}

pub fn metric(
    state: &CanaryState,
    observed: &Observation,
    check: Check,
    counters: Counters,
) -> NewEvent {
    let progress = match check.verdict {
        super::rules::Verdict::Pass => format!(
            " ({}/{} to promote)",
            counters.passes, state.policy.successes_to_promote
        ),
        super::rules::Verdict::Fail => format!(
            " ({}/{} to roll back)",
            counters.failures, state.policy.failure_limit
        ),
        super::rules::Verdict::NoDecision => String::new(),
    };
    event(
        state,
        "metric",
        format!(
            "check {} on {}: p95 {}, errors {}, {} requests → {} [{}]{progress}",
            counters.checks,
            state.to_gate,
            shown(observed.latency_p95_ms, |v| format!("{v:.0}ms")),
            errors_text(observed, state.policy.confidence),
            shown(observed.requests, |v| format!("{v:.0}")),
            check.verdict.as_str(),
            check.reason,
        ),
    )
    .field("gate", state.to_gate.as_str())
    .field("latency_p95_ms", number(observed.latency_p95_ms))
    .field("error_rate", number(observed.error_rate))
    .field(
        "errors",
        observed.errors.map_or(serde_json::Value::Null, number),
    )
    .field("requests", number(observed.requests))
    .field("verdict", check.verdict.as_str())
    .field("reasonCode", check.reason.as_str())
    .field("check", counters.checks)
    .field("passes", counters.passes)
    .field("failures", counters.failures)
    .field("undecided", counters.no_decision)
}

pub fn held(state: &CanaryState, last: ReasonCode) -> NewEvent {
    let why = if last == ReasonCode::GateMoved {
        format!(
            "held: it would promote {} to {}, but the model was moved off {} since the start",
            state.model_id, state.to_gate, state.from_gate
        )
    } else {
        format!(
            "held: {} checks in a row decided nothing (last: {last})",
            state.policy.max_no_decision
        )
    };
    event(
        state,
        "held",
        format!("{why}; resume_canary, promote_canary or abort_canary"),
    )
    .field("reasonCode", last.as_str())
}

pub fn paused(state: &CanaryState) -> NewEvent {
    event(
        state,
        "paused",
        "paused: no checks until resumed (the deadline keeps running)".into(),
    )
}

pub fn resumed(state: &CanaryState) -> NewEvent {
    event(
        state,
        "resumed",
        "resumed: checks go on, counters kept".into(),
    )
}

fn ended(
    state: &CanaryState,
    name: &'static str,
    narrative: String,
    reason: ReasonCode,
    duration_ms: u64,
) -> NewEvent {
    let duration = compact_duration(duration_ms);
    event(state, name, format!("{narrative} ({duration})"))
        .field("reasonCode", reason.as_str())
        .field("duration", duration)
        .field("durationMs", duration_ms)
}

pub fn promoted(state: &CanaryState, reason: ReasonCode, why: &str, duration_ms: u64) -> NewEvent {
    ended(
        state,
        "promoted",
        format!(
            "promoted {} {} → {}: {why}",
            state.model_id, state.from_gate, state.to_gate
        ),
        reason,
        duration_ms,
    )
    .field("fromGate", state.from_gate.as_str())
    .field("toGate", state.to_gate.as_str())
    .field("reason", why)
}

pub fn rolled_back(
    state: &CanaryState,
    reason: ReasonCode,
    why: &str,
    duration_ms: u64,
) -> NewEvent {
    ended(
        state,
        "rolled_back",
        format!(
            "rolled back: {why}; {} stays at {}",
            state.model_id, state.from_gate
        ),
        reason,
        duration_ms,
    )
    .field("reason", why)
    .field("fromGate", state.from_gate.as_str())
    .field("toGate", state.to_gate.as_str())
}

pub fn dry_run(
    state: &CanaryState,
    reason: ReasonCode,
    would_have: &str,
    why: &str,
    duration_ms: u64,
) -> NewEvent {
    ended(
        state,
        "dry_run",
        format!("dry run ended: would have {would_have} ({why}); nothing changed"),
        reason,
        duration_ms,
    )
    .field("wouldHave", would_have)
    .field("reason", why)
}

/// The end of a canary whose row could not be read back: built from the row's plain columns alone.
pub fn unrecoverable(row: &CanaryRow, why: &str, duration_ms: u64) -> NewEvent {
    let duration = compact_duration(duration_ms);
    NewEvent::new(
        EntityKind::Canary,
        &row.id,
        "rolled_back",
        format!(
            "rolled back: cannot be resumed ({why}); {} stays at {} ({duration})",
            row.model_id, row.from_gate
        ),
    )
    .field("modelId", row.model_id.as_str())
    .field("status", "rolled_back")
    .field("reasonCode", ReasonCode::Unrecoverable.as_str())
    .field("reason", why)
    .field("fromGate", row.from_gate.as_str())
    .field("toGate", row.to_gate.as_str())
    .field("duration", duration)
    .field("durationMs", duration_ms)
}

pub fn gate_changed(
    model_id: &str,
    gate: &str,
    previous: Option<&str>,
    canary_id: Option<&str>,
) -> NewEvent {
    let by = canary_id.map_or("by promote_model".to_string(), |c| format!("by {c}"));
    let from = previous.unwrap_or("no gate");
    NewEvent::new(
        EntityKind::Model,
        model_id,
        "gate_changed",
        format!("moved from {from} to {gate} {by}"),
    )
    .field("gate", gate)
    .field("previousGate", previous.map_or(Value::Null, Value::from))
    .field("canaryId", canary_id.map_or(Value::Null, Value::from))
}
