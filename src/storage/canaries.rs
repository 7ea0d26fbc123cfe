//! `canaries`, `canary_metrics` and `model_gates`: a canary's row with its counters and schedule, each check
//! with its evidence, and the gate every model is at.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::schema::{canaries, canary_metrics, model_gates};
use super::{insertion_order, per_backend};
use super::{Conn, StoreError, Swept};
use crate::events::EntityKind;

/// Statuses in which a canary still changes.
pub const ACTIVE: [&str; 3] = ["running", "paused", "held"];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = canaries)]
pub struct CanaryRow {
    pub id: String,
    pub model_id: String,
    pub from_gate: String,
    pub to_gate: String,
    pub slo_policy: String,
    pub status: String,
    pub dry_run: bool,
    pub idempotency_key: Option<String>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub checks: i32,
    pub consecutive_passes: i32,
    pub consecutive_failures: i32,
    pub consecutive_no_decision: i32,
    pub next_check_at: Option<String>,
    pub deadline_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl CanaryRow {
    pub fn is_active(&self) -> bool {
        ACTIVE.contains(&self.status.as_str())
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = canaries)]
pub struct NewCanary<'a> {
    pub id: &'a str,
    pub model_id: &'a str,
    pub from_gate: &'a str,
    pub to_gate: &'a str,
    pub slo_policy: &'a str,
    pub status: &'a str,
    pub dry_run: bool,
    pub idempotency_key: Option<&'a str>,
    pub next_check_at: Option<&'a str>,
    pub deadline_at: &'a str,
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

pub fn insert(conn: &mut Conn, canary: &NewCanary<'_>) -> Result<(), StoreError> {
    diesel::insert_into(canaries::table)
        .values(canary)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut Conn, id: &str) -> Result<Option<CanaryRow>, StoreError> {
    Ok(canaries::table
        .find(id)
        .select(CanaryRow::as_select())
        .first(conn)
        .optional()?)
}

/// The active, deciding canary moving `model_id` to `to_gate`, if any (dry runs never block).
pub fn active_for(
    conn: &mut Conn,
    model_id: &str,
    to_gate: &str,
) -> Result<Option<CanaryRow>, StoreError> {
    Ok(canaries::table
        .select(CanaryRow::as_select())
        .filter(canaries::model_id.eq(model_id))
        .filter(canaries::to_gate.eq(to_gate))
        .filter(canaries::status.eq_any(ACTIVE))
        .filter(canaries::dry_run.eq(false))
        .first(conn)
        .optional()?)
}

/// An active canary (not a dry run) into `to_gate`, of any model.
pub fn active_into(conn: &mut Conn, to_gate: &str) -> Result<Option<CanaryRow>, StoreError> {
    Ok(canaries::table
        .select(CanaryRow::as_select())
        .filter(canaries::to_gate.eq(to_gate))
        .filter(canaries::status.eq_any(ACTIVE))
        .filter(canaries::dry_run.eq(false))
        .first(conn)
        .optional()?)
}

/// Active canaries, dry runs included.
pub fn count_active(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(canaries::table
        .filter(canaries::status.eq_any(ACTIVE))
        .count()
        .get_result(conn)?)
}

pub fn by_idempotency_key(conn: &mut Conn, key: &str) -> Result<Option<CanaryRow>, StoreError> {
    Ok(canaries::table
        .select(CanaryRow::as_select())
        .filter(canaries::idempotency_key.eq(key))
        .first(conn)
        .optional()?)
}

#[derive(Debug, Default)]
pub struct CanaryFilter {
    pub status: Option<String>,
    pub model_id: Option<String>,
    pub limit: i64,
}

/// Newest first.
pub fn list(conn: &mut Conn, filter: &CanaryFilter) -> Result<Vec<CanaryRow>, StoreError> {
    let mut query = canaries::table.select(CanaryRow::as_select()).into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(canaries::status.eq(status));
    }
    if let Some(model_id) = &filter.model_id {
        query = query.filter(canaries::model_id.eq(model_id));
    }
    Ok(query
        .order(sql::<BigInt>(insertion_order(conn, true)))
        .limit(filter.limit)
        .load(conn)?)
}

/// Up to `limit` canaries by id, after `after` (keyset paging).
pub fn page_after(
    conn: &mut Conn,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<CanaryRow>, StoreError> {
    let mut query = canaries::table.select(CanaryRow::as_select()).into_boxed();
    if let Some(after) = after {
        query = query.filter(canaries::id.gt(after));
    }
    Ok(query.order(canaries::id.asc()).limit(limit).load(conn)?)
}

/// Up to `limit` model gates by model id, after `after` (keyset paging).
pub fn model_gates_after(
    conn: &mut Conn,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ModelGateRow>, StoreError> {
    let mut query = model_gates::table
        .select(ModelGateRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(model_gates::model_id.gt(after));
    }
    Ok(query
        .order(model_gates::model_id.asc())
        .limit(limit)
        .load(conn)?)
}

/// Active canaries, oldest first: what a restart resumes.
pub fn unfinished(conn: &mut Conn) -> Result<Vec<CanaryRow>, StoreError> {
    Ok(canaries::table
        .select(CanaryRow::as_select())
        .filter(canaries::status.eq_any(ACTIVE))
        .order(sql::<BigInt>(insertion_order(conn, false)))
        .load(conn)?)
}

/// A canary's state after a check or an operator's action, written only while it is active; false if it
/// had already ended (so an ended canary never changes again).
#[derive(Debug, Clone)]
pub struct CanaryUpdate<'a> {
    pub status: &'a str,
    pub checks: i32,
    pub passes: i32,
    pub failures: i32,
    pub no_decision: i32,
    pub next_check_at: Option<&'a str>,
    pub reason_code: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub finished_at: Option<&'a str>,
    pub at: &'a str,
}

pub fn update(conn: &mut Conn, id: &str, change: &CanaryUpdate<'_>) -> Result<bool, StoreError> {
    let changed = diesel::update(
        canaries::table
            .find(id)
            .filter(canaries::status.eq_any(ACTIVE)),
    )
    .set((
        canaries::status.eq(change.status),
        canaries::checks.eq(change.checks),
        canaries::consecutive_passes.eq(change.passes),
        canaries::consecutive_failures.eq(change.failures),
        canaries::consecutive_no_decision.eq(change.no_decision),
        canaries::next_check_at.eq(change.next_check_at),
        canaries::reason_code.eq(change.reason_code),
        canaries::reason.eq(change.reason),
        canaries::finished_at.eq(change.finished_at),
        canaries::updated_at.eq(change.at),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = canary_metrics)]
pub struct MetricRow {
    pub canary_id: String,
    pub gate: String,
    pub latency_p95_ms: Option<f64>,
    pub error_rate: Option<f64>,
    pub requests: Option<f64>,
    pub raw_latency: Option<String>,
    pub raw_error_rate: Option<String>,
    pub raw_requests: Option<String>,
    pub latency_threshold: f64,
    pub error_rate_threshold: f64,
    pub verdict: String,
    pub reason_code: String,
    pub query: String,
    pub evaluated_at: String,
    pub created_at: String,
    /// Errors in the window (k; `requests` is n); NULL when a ratio query gave the rate.
    pub errors: Option<f64>,
    pub raw_errors: Option<String>,
    /// The Wilson interval of the error rate at the policy's confidence.
    pub error_rate_lower: Option<f64>,
    pub error_rate_upper: Option<f64>,
    /// Unix seconds of the newest sample behind the values.
    pub newest_sample_at: Option<f64>,
    pub raw_newest: Option<String>,
}

pub fn insert_metric(conn: &mut Conn, metric: &MetricRow) -> Result<(), StoreError> {
    diesel::insert_into(canary_metrics::table)
        .values(metric)
        .execute(conn)?;
    Ok(())
}

/// A canary's checks, oldest first.
/// A page of a canary's checks, oldest first: `limit` from the `offset`-th (0-based).
pub fn metrics_page(
    conn: &mut Conn,
    canary_id: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<MetricRow>, StoreError> {
    Ok(canary_metrics::table
        .select(MetricRow::as_select())
        .filter(canary_metrics::canary_id.eq(canary_id))
        .order(canary_metrics::id.asc())
        .offset(offset)
        .limit(limit)
        .load(conn)?)
}

/// A canary's last `limit` checks, oldest first.
pub fn metrics_recent(
    conn: &mut Conn,
    canary_id: &str,
    limit: i64,
) -> Result<Vec<MetricRow>, StoreError> {
    let mut recent: Vec<MetricRow> = canary_metrics::table
        .select(MetricRow::as_select())
        .filter(canary_metrics::canary_id.eq(canary_id))
        .order(canary_metrics::id.desc())
        .limit(limit)
        .load(conn)?;
    recent.reverse();
    Ok(recent)
}

/// How many of a canary's checks had each verdict.
pub fn verdict_counts(conn: &mut Conn, canary_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(canary_metrics::table
        .filter(canary_metrics::canary_id.eq(canary_id))
        .group_by(canary_metrics::verdict)
        .select((canary_metrics::verdict, diesel::dsl::count_star()))
        .load(conn)?)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = model_gates)]
pub struct ModelGateRow {
    pub model_id: String,
    pub gate: String,
    pub canary_id: Option<String>,
    pub updated_at: String,
}

pub fn model_gate(conn: &mut Conn, model_id: &str) -> Result<Option<ModelGateRow>, StoreError> {
    Ok(model_gates::table
        .find(model_id)
        .select(ModelGateRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn model_gates(conn: &mut Conn) -> Result<Vec<ModelGateRow>, StoreError> {
    Ok(model_gates::table
        .select(ModelGateRow::as_select())
        .order(model_gates::model_id.asc())
        .load(conn)?)
}

/// Puts the model at `gate`.
pub fn set_model_gate(
    conn: &mut Conn,
    model_id: &str,
    gate: &str,
    canary_id: Option<&str>,
    at: &str,
) -> Result<(), StoreError> {
    per_backend!(conn, c => diesel::insert_into(model_gates::table)
        .values((
            model_gates::model_id.eq(model_id),
            model_gates::gate.eq(gate),
            model_gates::canary_id.eq(canary_id),
            model_gates::updated_at.eq(at),
        ))
        .on_conflict(model_gates::model_id)
        .do_update()
        .set((
            model_gates::gate.eq(gate),
            model_gates::canary_id.eq(canary_id),
            model_gates::updated_at.eq(at),
        ))
        .execute(c))?;
    Ok(())
}

/// Whether a model has a gate or has ever had a canary: its `model/<id>` topic exists.
pub fn model_known(conn: &mut Conn, model_id: &str) -> Result<bool, StoreError> {
    if model_gate(conn, model_id)?.is_some() {
        return Ok(true);
    }
    let any: i64 = canaries::table
        .filter(canaries::model_id.eq(model_id))
        .count()
        .get_result(conn)?;
    Ok(any > 0)
}

/// Deletes up to `batch` canaries that ended before `cutoff` (SQL time text), with their checks and events.
/// Kept whatever their age: active canaries, the canary each model's gate names (`model_gates`), and any
/// canary with a webhook still to deliver. The audit table is kept.
pub fn sweep_ended(conn: &mut Conn, cutoff: &str, batch: i64) -> Result<Swept, StoreError> {
    use super::schema::events;
    let mut keep: Vec<String> = model_gates::table
        .select(model_gates::canary_id)
        .filter(model_gates::canary_id.is_not_null())
        .load::<Option<String>>(conn)?
        .into_iter()
        .flatten()
        .collect();
    let undelivered: Vec<String> = events::table
        .select(events::entity_id)
        .filter(events::seq.eq_any(super::outbox::pending(conn)?))
        .load(conn)?;
    keep.extend(undelivered);
    let ids: Vec<String> = canaries::table
        .select(canaries::id)
        .filter(canaries::finished_at.lt(cutoff))
        .filter(canaries::status.ne_all(ACTIVE))
        .filter(canaries::id.ne_all(&keep))
        .limit(batch)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(Swept::default());
    }
    let events = super::events::delete_entities(conn, EntityKind::Canary, &ids)?;
    let checks =
        diesel::delete(canary_metrics::table.filter(canary_metrics::canary_id.eq_any(&ids)))
            .execute(conn)?;
    let rows = diesel::delete(canaries::table.filter(canaries::id.eq_any(&ids))).execute(conn)?;
    Ok(Swept {
        rows,
        checks,
        events,
    })
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::Text;
    use diesel::{QueryableByName, RunQueryDsl};

    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// `start_canary` counts and looks up active canaries inside the writer's transaction: by index, never
    /// by reading every canary ever started (which grew with the history in the soak).
    #[test]
    fn active_canaries_are_found_by_index_not_by_scanning_the_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pool, _) =
            super::super::open(&super::super::Database::Sqlite(dir.path().join("c.db")), 1)
                .expect("open");
        let mut conn = pool.get().expect("conn");
        for query in [
            "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM canaries WHERE status IN (?, ?, ?)",
            "EXPLAIN QUERY PLAN SELECT id FROM canaries WHERE to_gate = ? AND status IN (?, ?, ?) AND dry_run = 0",
        ] {
            // The statuses and gate as bound parameters, as diesel sends them.
            let plan: Vec<Plan> = match query.matches('?').count() {
                3 => diesel::sql_query(query)
                    .bind::<Text, _>("running")
                    .bind::<Text, _>("paused")
                    .bind::<Text, _>("held")
                    .load(&mut conn),
                _ => diesel::sql_query(query)
                    .bind::<Text, _>("production")
                    .bind::<Text, _>("running")
                    .bind::<Text, _>("paused")
                    .bind::<Text, _>("held")
                    .load(&mut conn),
            }
            .expect("plan");
            let detail: Vec<&str> = plan.iter().map(|p| p.detail.as_str()).collect();
            assert!(
                detail.iter().any(|d| d.contains("canaries_status_gate")),
                "{query}: {detail:?}"
            );
        }
    }

    /// The sweep keeps a canary whose decision still waits in the webhook outbox: its event is the payload.
    #[test]
    fn the_sweep_keeps_canaries_with_a_webhook_still_to_deliver() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pool, _) =
            super::super::open(&super::super::Database::Sqlite(dir.path().join("c.db")), 1)
                .expect("open");
        let mut conn = pool.get().expect("conn");
        let old = "2000-01-01 00:00:00";
        for id in ["cn_sent", "cn_waiting"] {
            super::insert(
                &mut conn,
                &super::NewCanary {
                    id,
                    model_id: "m",
                    from_gate: "a",
                    to_gate: "b",
                    slo_policy: "{}",
                    status: "rolled_back",
                    dry_run: false,
                    idempotency_key: None,
                    next_check_at: None,
                    deadline_at: old,
                    created_at: old,
                    updated_at: old,
                },
            )
            .expect("insert");
            diesel::sql_query(format!(
                "UPDATE canaries SET finished_at = '{old}' WHERE id = '{id}'; "
            ))
            .execute(&mut conn)
            .expect("finish");
            diesel::sql_query(format!(
                "INSERT INTO events (topic, event, entity_id, data, narrative, created_at) \
                 VALUES ('canary/{id}', 'rolled_back', '{id}', '{{}}', '', '{old}')"
            ))
            .execute(&mut conn)
            .expect("event");
        }
        let waiting: i64 = super::super::events::latest_seq(&mut conn).expect("seq");
        super::super::outbox::insert(&mut conn, waiting).expect("outbox");

        let swept = super::sweep_ended(&mut conn, "2001-01-01 00:00:00", 10).expect("sweep");
        assert_eq!((swept.rows, swept.events), (1, 1));
        assert!(super::get(&mut conn, "cn_sent").expect("get").is_none());
        assert!(super::get(&mut conn, "cn_waiting").expect("get").is_some());
    }
}
