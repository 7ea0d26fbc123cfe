//! Each step of a canary as one transaction: its row, its check with the evidence, its events, the model's
//! gate and the audit row. A terminal change is written only while the canary is still active, so it
//! happens exactly once.

use super::canary_events as events;
use super::rules::{Check, ReasonCode};
use super::{CanaryState, Status};
use crate::clock::{self, Timestamp};
use crate::recorder::Tx;
use crate::slo::Gathered;
use crate::storage::audit::AuditEntry;
use crate::storage::canaries::{self, CanaryRow, CanaryUpdate, MetricRow, NewCanary};
use crate::storage::StoreError;

/// What `start` found or made.
#[derive(Debug)]
pub enum Started {
    Created,
    /// The same `idempotencyKey` was used before: that canary, unchanged.
    Existing(CanaryRow),
    /// Another active canary already moves this model to this gate.
    Conflict(CanaryRow),
}

pub fn start(
    tx: &mut Tx<'_>,
    state: &CanaryState,
    idempotency_key: Option<&str>,
    audit: &AuditEntry,
) -> Result<Started, StoreError> {
    if let Some(existing) = idempotency_key
        .map(|key| canaries::by_idempotency_key(tx.conn, key))
        .transpose()?
        .flatten()
    {
        return Ok(Started::Existing(existing));
    }
    if !state.dry_run {
        if let Some(active) = canaries::active_for(tx.conn, &state.model_id, &state.to_gate)? {
            return Ok(Started::Conflict(active));
        }
    }
    let policy = state.policy.to_json().to_string();
    let now = clock::sql(state.created);
    let next = state.next_check.map(clock::sql_ms);
    canaries::insert(
        tx.conn,
        &NewCanary {
            id: &state.id,
            model_id: &state.model_id,
            from_gate: &state.from_gate,
            to_gate: &state.to_gate,
            slo_policy: &policy,
            status: state.status.as_str(),
            dry_run: state.dry_run,
            idempotency_key,
            next_check_at: next.as_deref(),
            deadline_at: &clock::sql_ms(state.deadline),
            created_at: &now,
            updated_at: &now,
        },
    )?;
    tx.emit(events::started(state))?;
    audit.record(tx.conn, &state.id)?;
    Ok(Started::Created)
}

/// Writes the canary's status, counters and schedule; false if it had already ended.
fn save(
    tx: &mut Tx<'_>,
    state: &CanaryState,
    ending: Option<(ReasonCode, &str)>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let at = clock::sql(now);
    let next = state.next_check.map(clock::sql_ms);
    let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    canaries::update(
        tx.conn,
        &state.id,
        &CanaryUpdate {
            status: state.status.as_str(),
            checks: count(state.counters.checks),
            passes: count(state.counters.passes),
            failures: count(state.counters.failures),
            no_decision: count(state.counters.no_decision),
            next_check_at: next.as_deref(),
            reason_code: ending.map(|(code, _)| code.as_str()),
            reason: ending.map(|(_, why)| why),
            finished_at: ending.map(|_| at.as_str()),
            at: &at,
        },
    )
}

/// One check: its evidence row, the counters and schedule, and its `metric` event (plus `held` when this
/// check held the canary). False, and nothing written, if the canary had already ended.
pub fn checked(
    tx: &mut Tx<'_>,
    state: &CanaryState,
    gathered: &Gathered,
    check: Check,
    due: Timestamp,
    newly_held: bool,
) -> Result<bool, StoreError> {
    let now = clock::now();
    if !save(tx, state, None, now)? {
        return Ok(false);
    }
    let observed = &gathered.observation;
    let [raw_latency, raw_error_rate, raw_requests] = gathered.raw.clone();
    canaries::insert_metric(
        tx.conn,
        &MetricRow {
            canary_id: state.id.clone(),
            gate: state.to_gate.clone(),
            latency_p95_ms: observed.latency_p95_ms.value(),
            error_rate: observed.error_rate.value(),
            requests: observed.requests.value(),
            raw_latency: Some(raw_latency),
            raw_error_rate: Some(raw_error_rate),
            raw_requests: Some(raw_requests),
            latency_threshold: state.policy.latency_p95_ms,
            error_rate_threshold: state.policy.error_rate,
            verdict: check.verdict.as_str().into(),
            reason_code: check.reason.as_str().into(),
            query: gathered.query.to_string(),
            evaluated_at: clock::sql_ms(due),
            created_at: clock::sql(now),
        },
    )?;
    tx.emit(events::metric(state, observed, check, state.counters))?;
    crate::metrics::METRICS
        .canary_checks
        .with_label_values(&[check.verdict.as_str(), check.reason.as_str()])
        .inc();
    if newly_held {
        tx.emit(events::held(state, check.reason))?;
    }
    Ok(true)
}

/// The end of a canary: its terminal status, its event, and — for a promotion — the model's new gate with
/// `gate_changed`, all in this one transaction. The terminal event's seq, or `None` (and nothing written) if
/// it had already ended.
pub fn ended(
    tx: &mut Tx<'_>,
    state: &CanaryState,
    reason: ReasonCode,
    why: &str,
    audit: Option<&AuditEntry>,
) -> Result<Option<i64>, StoreError> {
    let now = clock::now();
    if !save(tx, state, Some((reason, why)), now)? {
        return Ok(None);
    }
    let age = state.age_ms(now);
    let event = match state.status {
        Status::Promoted => events::promoted(state, reason, why, age),
        Status::DryRun => {
            let would_have = if reason == ReasonCode::SloMet {
                "promoted"
            } else {
                "rolled_back"
            };
            events::dry_run(state, reason, would_have, why, age)
        }
        _ => events::rolled_back(state, reason, why, age),
    };
    let seq = tx.emit(event)?;
    crate::metrics::METRICS
        .canary_decisions
        .with_label_values(&[state.status.as_str(), reason.as_str()])
        .inc();
    if state.status == Status::Promoted {
        move_model(
            tx,
            &state.model_id,
            &state.to_gate,
            Some((&state.id, &state.from_gate)),
        )?;
    }
    if let Some(audit) = audit {
        audit.record(tx.conn, &state.id)?;
    }
    Ok(Some(seq))
}

/// Puts a model at a gate with its `gate_changed` event, by a canary (its id and `fromGate`, the gate it
/// was at if none was recorded) or by `promote_model`. Returns the gate it was at.
pub fn move_model(
    tx: &mut Tx<'_>,
    model_id: &str,
    gate: &str,
    canary: Option<(&str, &str)>,
) -> Result<Option<String>, StoreError> {
    let previous = canaries::model_gate(tx.conn, model_id)?
        .map(|row| row.gate)
        .or_else(|| canary.map(|(_, from)| from.to_string()));
    let canary_id = canary.map(|(id, _)| id);
    canaries::set_model_gate(
        tx.conn,
        model_id,
        gate,
        canary_id,
        &clock::sql(clock::now()),
    )?;
    tx.emit(events::gate_changed(
        model_id,
        gate,
        previous.as_deref(),
        canary_id,
    ))?;
    Ok(previous)
}

/// Pause or resume: the new status, its event and the audit row. False if the canary had already ended.
pub fn operated(
    tx: &mut Tx<'_>,
    state: &CanaryState,
    audit: &AuditEntry,
) -> Result<bool, StoreError> {
    if !save(tx, state, None, clock::now())? {
        return Ok(false);
    }
    let event = if state.status == Status::Paused {
        events::paused(state)
    } else {
        events::resumed(state)
    };
    tx.emit(event)?;
    audit.record(tx.conn, &state.id)?;
    Ok(true)
}
