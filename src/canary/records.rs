//! Each step of a canary as one transaction: its row, its check with the evidence, its events, the model's
//! gate and the audit row. A terminal change is written only while the canary is still active, so it
//! happens exactly once.

use super::canary_events as events;
use super::rules::{wilson, Check, ReasonCode, Sample, Verdict};
use super::{CanaryState, Status};
use crate::clock::{self, Timestamp};
use crate::events::EntityKind;
use crate::recorder::{EventSeq, Tx};
use crate::slo::Gathered;
use crate::storage::audit::AuditEntry;
use crate::storage::canaries::{self, CanaryRow, CanaryUpdate, MetricRow, NewCanary};
use crate::storage::StoreError;

/// What `start` found or made.
#[derive(Debug)]
pub enum Started {
    Created,
    /// The same `idempotencyKey` with the same arguments was used before: that canary, unchanged.
    Existing(CanaryRow),
    /// The same `idempotencyKey` was used before for a different canary.
    KeyReused(CanaryRow),
    /// Another active canary already moves this model to this gate.
    Conflict(CanaryRow),
    /// Another model's active canary goes into this gate, and the SLO queries cannot tell the two apart.
    GateShared(CanaryRow),
    /// The model is known to be at another gate than `fromGate`.
    Elsewhere(String),
    /// As many canaries are active as `canary.max_active` allows.
    Full(usize),
}

/// The rules a start is checked against, inside its transaction.
#[derive(Debug, Clone, Copy)]
pub struct StartRules {
    pub max_active: usize,
    /// The SLO queries name `$__model`: canaries of two models into one gate see their own traffic.
    pub queries_name_model: bool,
}

/// Whether a stored canary is the one these arguments would start.
fn same_request(row: &CanaryRow, state: &CanaryState, policy: &str) -> bool {
    row.model_id == state.model_id
        && row.from_gate == state.from_gate
        && row.to_gate == state.to_gate
        && row.dry_run == state.dry_run
        && row.slo_policy == policy
}

/// Starts a canary unless something stands in the way (see [`Started`]). The checks run inside the
/// transaction; a writer that is not this one (another instance on PostgreSQL) can still commit a clashing
/// canary between the checks and the insert, and then the unique indexes refuse the insert: the checks run
/// again and give the same answer as if the other canary had been there first.
pub fn start(
    tx: &mut Tx<'_>,
    state: &CanaryState,
    idempotency_key: Option<&str>,
    (audit, rules): (&AuditEntry, StartRules),
) -> Result<Started, StoreError> {
    let policy = state.policy.to_json().to_string();
    if let Some(found) = standing_in_the_way(tx, state, idempotency_key, &policy, rules)? {
        return Ok(found);
    }
    let now = clock::sql(state.created);
    let next = state.next_check.map(clock::sql_ms);
    let row = NewCanary {
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
    };
    // Where another writer can race it, in a savepoint of its own, so a refused insert leaves the
    // transaction usable for the second look.
    let inserted = if crate::storage::shared_with_other_writers(tx.conn) {
        diesel::Connection::transaction(&mut *tx.conn, |conn| canaries::insert(conn, &row))
    } else {
        canaries::insert(tx.conn, &row)
    };
    if let Err(refused) = inserted {
        if !refused.is_unique_violation() {
            return Err(refused);
        }
        return standing_in_the_way(tx, state, idempotency_key, &policy, rules)?.ok_or(refused);
    }
    tx.emit(events::started(state));
    audit.record(tx.conn, &state.id)?;
    Ok(Started::Created)
}

/// What keeps these arguments from starting a canary now, if anything.
fn standing_in_the_way(
    tx: &mut Tx<'_>,
    state: &CanaryState,
    idempotency_key: Option<&str>,
    policy: &str,
    rules: StartRules,
) -> Result<Option<Started>, StoreError> {
    if let Some(existing) = idempotency_key
        .map(|key| canaries::by_idempotency_key(tx.conn, key))
        .transpose()?
        .flatten()
    {
        return Ok(Some(if same_request(&existing, state, policy) {
            Started::Existing(existing)
        } else {
            Started::KeyReused(existing)
        }));
    }
    if let Some(at) = canaries::model_gate(tx.conn, &state.model_id)? {
        if at.gate != state.from_gate {
            return Ok(Some(Started::Elsewhere(at.gate)));
        }
    }
    if !state.dry_run {
        if let Some(active) = canaries::active_for(tx.conn, &state.model_id, &state.to_gate)? {
            return Ok(Some(Started::Conflict(active)));
        }
        if !rules.queries_name_model {
            if let Some(active) = canaries::active_into(tx.conn, &state.to_gate)? {
                return Ok(Some(Started::GateShared(active)));
            }
        }
    }
    let active = usize::try_from(canaries::count_active(tx.conn)?).unwrap_or(usize::MAX);
    if active >= rules.max_active {
        return Ok(Some(Started::Full(rules.max_active)));
    }
    Ok(None)
}

/// Ends an active canary whose row cannot be read back (see the registry): `rolled_back`/`unrecoverable`,
/// its counters as they were. Nothing if it had ended meanwhile.
pub fn unrecoverable(
    tx: &mut Tx<'_>,
    row: &CanaryRow,
    why: &str,
    notify: bool,
) -> Result<Option<EventSeq>, StoreError> {
    let now = clock::now();
    let at = clock::sql(now);
    let updated = canaries::update(
        tx.conn,
        &row.id,
        &CanaryUpdate {
            status: Status::RolledBack.as_str(),
            checks: row.checks,
            passes: row.consecutive_passes,
            failures: row.consecutive_failures,
            no_decision: row.consecutive_no_decision,
            next_check_at: None,
            reason_code: Some(ReasonCode::Unrecoverable.as_str()),
            reason: Some(why),
            finished_at: Some(&at),
            at: &at,
        },
    )?;
    if !updated {
        return Ok(None);
    }
    let age = clock::parse_sql(&row.created_at)
        .and_then(|created| u64::try_from((now - created).num_milliseconds()).ok())
        .unwrap_or(0);
    let event = events::unrecoverable(row, why, age);
    let seq = if notify && !row.dry_run {
        tx.emit_announced(event)
    } else {
        tx.emit(event)
    };
    crate::metrics::METRICS
        .canary_decisions
        .with_label_values(&[
            Status::RolledBack.as_str(),
            ReasonCode::Unrecoverable.as_str(),
        ])
        .inc();
    Ok(Some(seq))
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
    let raw = gathered.raw.clone();
    let errors = observed.errors.and_then(Sample::value);
    let interval = errors
        .zip(observed.requests.value())
        .and_then(|(k, n)| wilson(k, n, state.policy.confidence));
    canaries::insert_metric(
        tx.conn,
        &MetricRow {
            canary_id: state.id.to_string(),
            gate: state.to_gate.clone(),
            latency_p95_ms: observed.latency_p95_ms.value(),
            error_rate: observed.error_rate.value(),
            requests: observed.requests.value(),
            raw_latency: Some(raw.latency),
            raw_error_rate: Some(raw.error_rate),
            raw_requests: Some(raw.requests),
            errors,
            raw_errors: observed.errors.map(|_| raw.errors),
            error_rate_lower: interval.map(|i| i.lower),
            error_rate_upper: interval.map(|i| i.upper),
            newest_sample_at: observed.newest.value(),
            raw_newest: Some(raw.newest),
            latency_threshold: state.policy.latency_p95_ms,
            error_rate_threshold: state.policy.error_rate,
            verdict: check.verdict.as_str().into(),
            reason_code: check.reason.as_str().into(),
            query: gathered.query.to_string(),
            evaluated_at: clock::sql_ms(due),
            created_at: clock::sql(now),
        },
    )?;
    tx.emit(events::metric(state, observed, check, state.counters));
    crate::metrics::METRICS
        .canary_checks
        .with_label_values(&[check.verdict.as_str(), check.reason.as_str()])
        .inc();
    if newly_held {
        tx.emit(events::held(state, check.reason));
    }
    Ok(true)
}

/// The end of a canary: its terminal status, its event, and — for a promotion — the model's new gate with
/// `gate_changed`, all in this one transaction. The terminal event's seq, or `None` (and nothing written) if
/// it had already ended.
/// How a canary ends: the reason, the operator's audit row for a manual end, and whether it is a
/// promotion (for a dry run: what it would have done).
#[derive(Debug, Clone)]
pub struct Ending {
    pub reason: ReasonCode,
    pub why: String,
    pub audit: Option<AuditEntry>,
    pub promote: bool,
    /// Webhooks are configured: a promotion or rollback is put in their outbox in the same transaction.
    pub notify: bool,
}

impl Ending {
    /// An operator's promotion or abort.
    pub fn manual(promote: bool, why: String, audit: AuditEntry, notify: bool) -> Self {
        Self {
            reason: ReasonCode::Manual,
            why,
            audit: Some(audit),
            promote,
            notify,
        }
    }
}

pub fn ended(
    tx: &mut Tx<'_>,
    state: &CanaryState,
    ending: &Ending,
) -> Result<Option<EventSeq>, StoreError> {
    let (reason, why, audit) = (ending.reason, ending.why.as_str(), ending.audit.as_ref());
    let now = clock::now();
    if !save(tx, state, Some((reason, why)), now)? {
        return Ok(None);
    }
    let age = state.age_ms(now);
    let event = match state.status {
        Status::Promoted => events::promoted(state, reason, why, age),
        Status::DryRun => {
            let would_have = if ending.promote {
                "promoted"
            } else {
                "rolled_back"
            };
            events::dry_run(state, reason, would_have, why, age)
        }
        _ => events::rolled_back(state, reason, why, age),
    };
    let seq = if ending.notify && matches!(state.status, Status::Promoted | Status::RolledBack) {
        tx.emit_announced(event)
    } else {
        tx.emit(event)
    };
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
/// Where the model is, if it is known to be at another gate than the canary's `fromGate`: it was moved
/// since the canary started.
pub fn model_moved(tx: &mut Tx<'_>, state: &CanaryState) -> Result<Option<String>, StoreError> {
    Ok(canaries::model_gate(tx.conn, &state.model_id)?
        .map(|row| row.gate)
        .filter(|gate| *gate != state.from_gate))
}

/// The `held` event of a canary held for `reason` outside the run of undecided checks (e.g. `gate_moved`).
pub fn held_for(
    tx: &mut Tx<'_>,
    state: &CanaryState,
    reason: ReasonCode,
) -> Result<(), StoreError> {
    tx.emit(events::held(state, reason));
    Ok(())
}

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
    ));
    Ok(previous)
}

/// An operator put the model at a gate (`promote_model`): the move, its event and the audit row. Returns
/// the gate it was at.
pub fn model_put(
    tx: &mut Tx<'_>,
    model_id: &str,
    gate: &str,
    audit: &AuditEntry,
) -> Result<Option<String>, StoreError> {
    let previous = move_model(tx, model_id, gate, None)?;
    audit.record(tx.conn, &EntityKind::Model.topic(model_id))?;
    Ok(previous)
}

/// The canaries a previous process left active.
pub fn unfinished(tx: &mut Tx<'_>) -> Result<Vec<CanaryRow>, StoreError> {
    canaries::unfinished(tx.conn)
}

/// A canary as stored now.
pub fn current(tx: &mut Tx<'_>, id: &str) -> Result<Option<CanaryRow>, StoreError> {
    canaries::get(tx.conn, id)
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
    tx.emit(event);
    audit.record(tx.conn, &state.id)?;
    Ok(true)
}

/// Every check and decision series the alert rules watch exists at 0 from the start, so `increase()`
/// sees the first rollback after a start (a series born at 1 has no earlier sample to rise from).
pub fn prime_metrics() {
    let metrics = &crate::metrics::METRICS;
    for (verdict, reasons) in [
        (Verdict::Pass, &ReasonCode::PASSING[..]),
        (Verdict::Fail, &ReasonCode::FAILING[..]),
        (Verdict::NoDecision, &ReasonCode::UNDECIDED[..]),
    ] {
        for reason in reasons {
            metrics
                .canary_checks
                .with_label_values(&[verdict.as_str(), reason.as_str()]);
        }
    }
    for (status, reasons) in [
        (Status::Promoted, &ReasonCode::PROMOTING[..]),
        (Status::RolledBack, &ReasonCode::ROLLING_BACK[..]),
        (Status::DryRun, &ReasonCode::PROMOTING[..]),
        (Status::DryRun, &ReasonCode::ROLLING_BACK[..]),
    ] {
        for reason in reasons {
            metrics
                .canary_decisions
                .with_label_values(&[status.as_str(), reason.as_str()]);
        }
    }
}
