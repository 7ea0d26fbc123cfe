//! `Store`: the read side of storage as named operations, each run on the blocking pool with a connection of
//! its own. Writes go through the recorder (the one writer), never through here, except the WAL checkpoint
//! and the readiness probe's write test, which are the database's own housekeeping.
//!
//! Reads that belong together (a list and the log position it was read at, a canary and its checks) are
//! one operation, so they come from one connection.

use super::canaries::{self, CanaryFilter, CanaryRow, MetricRow, ModelGateRow};
use super::events::{self, EventRow, Scope};
use super::jobs::{self, JobFilter, JobRow};
use super::{checkpoint, completion, outbox, Conn, DbPool, StoreError};
use crate::events::EntityKind;

#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    backend: &'static str,
}

/// What the log says about one single-entity topic (`/sse?topic=job/<id>`).
#[derive(Debug, Clone, Copy)]
pub struct EntityState {
    pub exists: bool,
    /// The seq of the entity's terminal event, once it has ended.
    pub terminal_seq: Option<i64>,
}

/// A page of rows as of a position in the event log (`asOf`): a client that subscribes with
/// `Last-Event-ID: as_of` misses nothing and sees nothing twice.
#[derive(Debug, Clone)]
pub struct AsOf<T> {
    pub as_of: i64,
    pub rows: Vec<T>,
}

/// A canary with a page of its checks and how many checks had each verdict.
#[derive(Debug, Clone)]
pub struct CanaryChecks {
    pub canary: CanaryRow,
    pub checks: Vec<MetricRow>,
    pub verdicts: Vec<(String, i64)>,
}

/// One entity in the listing of every job, canary and model (`resources/list`).
#[derive(Debug, Clone)]
pub enum Listed {
    Job(JobRow),
    Canary(CanaryRow),
    Model(ModelGateRow),
}

impl Store {
    /// Reads `pool`, a pool on the database that `backend` names (`sqlite` or `postgres`).
    pub fn new(pool: DbPool, backend: &'static str) -> Self {
        Self { pool, backend }
    }

    /// Which backend holds the state: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    {
        super::blocking(&self.pool, work).await
    }

    /// Rows with the log position they were read at, from one connection.
    async fn as_of<T, F>(&self, rows: F) -> Result<AsOf<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<Vec<T>, StoreError> + Send + 'static,
    {
        self.read(move |conn| {
            let as_of = events::latest_seq(conn)?;
            Ok(AsOf {
                as_of,
                rows: rows(conn)?,
            })
        })
        .await
    }

    /// The newest seq in the event log (0 when empty).
    pub async fn latest_seq(&self) -> Result<i64, StoreError> {
        self.read(events::latest_seq).await
    }

    /// Whether the database takes a write and has no migration pending (`/readyz`).
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.read(super::check_writable).await
    }

    /// Folds the WAL into the database and empties it (at shutdown).
    pub async fn truncate_wal(&self) -> Result<(), StoreError> {
        self.read(checkpoint::truncate).await
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRow>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| jobs::get(conn, &id)).await
    }

    pub async fn jobs(&self, filter: JobFilter) -> Result<AsOf<JobRow>, StoreError> {
        self.as_of(move |conn| jobs::list(conn, &filter)).await
    }

    pub async fn canary(&self, id: &str) -> Result<Option<CanaryRow>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| canaries::get(conn, &id)).await
    }

    /// A canary with its last `recent` checks, oldest first.
    pub async fn canary_with_recent(
        &self,
        id: &str,
        recent: i64,
    ) -> Result<Option<(CanaryRow, Vec<MetricRow>)>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            let Some(row) = canaries::get(conn, &id)? else {
                return Ok(None);
            };
            Ok(Some((row, canaries::metrics_recent(conn, &id, recent)?)))
        })
        .await
    }

    /// A canary with `limit` of its checks from the `offset`-th (0-based), and its verdict counts.
    pub async fn canary_with_checks(
        &self,
        id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Option<CanaryChecks>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            let Some(canary) = canaries::get(conn, &id)? else {
                return Ok(None);
            };
            Ok(Some(CanaryChecks {
                canary,
                checks: canaries::metrics_page(conn, &id, offset, limit)?,
                verdicts: canaries::verdict_counts(conn, &id)?,
            }))
        })
        .await
    }

    /// A canary and the gate its model is at now (`None`: the model has no gate yet).
    pub async fn canary_and_gate(
        &self,
        id: &str,
    ) -> Result<Option<(CanaryRow, Option<String>)>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            let Some(row) = canaries::get(conn, &id)? else {
                return Ok(None);
            };
            let at = canaries::model_gate(conn, &row.model_id)?.map(|g| g.gate);
            Ok(Some((row, at)))
        })
        .await
    }

    pub async fn canaries(&self, filter: CanaryFilter) -> Result<AsOf<CanaryRow>, StoreError> {
        self.as_of(move |conn| canaries::list(conn, &filter)).await
    }

    pub async fn model_gate(&self, model_id: &str) -> Result<Option<ModelGateRow>, StoreError> {
        let id = model_id.to_string();
        self.read(move |conn| canaries::model_gate(conn, &id)).await
    }

    /// Every model's gate, or one model's.
    pub async fn model_gates(
        &self,
        model: Option<String>,
    ) -> Result<AsOf<ModelGateRow>, StoreError> {
        self.as_of(move |conn| match &model {
            Some(m) => Ok(canaries::model_gate(conn, m)?.into_iter().collect()),
            None => canaries::model_gates(conn),
        })
        .await
    }

    /// A topic's events, oldest first, at most `limit`.
    pub async fn trail(&self, topic: &str, limit: i64) -> Result<Vec<EventRow>, StoreError> {
        let topic = topic.to_string();
        self.read(move |conn| events::of_topic(conn, &topic, limit))
            .await
    }

    pub async fn event(&self, seq: i64) -> Result<Option<EventRow>, StoreError> {
        self.read(move |conn| events::get(conn, seq)).await
    }

    /// Up to `limit` events after `cursor` in the given scopes, in seq order.
    pub async fn replay_page(
        &self,
        scopes: Vec<(Scope, i64)>,
        cursor: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.read(move |conn| events::page(conn, &scopes, cursor, limit))
            .await
    }

    /// Up to `limit` values of `field` that begin with `prefix`, and how many there are.
    pub async fn completions(
        &self,
        field: completion::Field,
        prefix: &str,
        limit: usize,
    ) -> Result<completion::Matches, StoreError> {
        let prefix = prefix.to_string();
        self.read(move |conn| completion::matching(conn, field, &prefix, limit))
            .await
    }

    pub async fn entity_exists(&self, kind: EntityKind, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.read(move |conn| super::entity_exists(conn, kind, &id))
            .await
    }

    /// What the log says about each entity: whether it exists, and where it ended.
    pub async fn entity_states(
        &self,
        entities: Vec<(EntityKind, String)>,
    ) -> Result<Vec<EntityState>, StoreError> {
        self.read(move |conn| {
            entities
                .iter()
                .map(|(kind, id)| {
                    let exists = super::entity_exists(conn, *kind, id)?;
                    let terminal_seq = if exists && kind.ends() {
                        events::first_of(conn, &kind.topic(id), kind.terminal_events())?
                    } else {
                        None
                    };
                    Ok(EntityState {
                        exists,
                        terminal_seq,
                    })
                })
                .collect()
        })
        .await
    }

    /// Webhook deliveries still owed, by event seq.
    pub async fn outbox_pending(&self) -> Result<Vec<i64>, StoreError> {
        self.read(outbox::pending).await
    }

    /// Up to `wanted` entities of the given kinds (in that order, each by id) after `after` (keyset paging).
    pub async fn entities_after(
        &self,
        kinds: &'static [EntityKind],
        after: Option<(EntityKind, String)>,
        wanted: usize,
    ) -> Result<Vec<Listed>, StoreError> {
        self.read(move |conn| {
            let start = after
                .as_ref()
                .and_then(|(kind, _)| kinds.iter().position(|k| k == kind))
                .unwrap_or(0);
            let mut page = Vec::new();
            for (index, kind) in kinds.iter().enumerate().skip(start) {
                let from = after
                    .as_ref()
                    .filter(|_| index == start)
                    .map(|(_, id)| id.as_str());
                let limit = i64::try_from(wanted.saturating_sub(page.len())).unwrap_or(1);
                match kind {
                    EntityKind::Job => page.extend(
                        jobs::page_after(conn, from, limit)?
                            .into_iter()
                            .map(Listed::Job),
                    ),
                    EntityKind::Canary => page.extend(
                        canaries::page_after(conn, from, limit)?
                            .into_iter()
                            .map(Listed::Canary),
                    ),
                    EntityKind::Model => page.extend(
                        canaries::model_gates_after(conn, from, limit)?
                            .into_iter()
                            .map(Listed::Model),
                    ),
                    EntityKind::Ops => {}
                }
                if page.len() >= wanted {
                    break;
                }
            }
            Ok(page)
        })
        .await
    }
}
