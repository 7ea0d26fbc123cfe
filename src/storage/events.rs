//! `events`: the append-only narrative log. Its `seq` is the SSE event id, so replay after a restart is a
//! range scan.

use super::Db;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::schema::events;
use super::{Conn, StoreError};
use crate::events::{EntityKind, RenderedEvent};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub seq: i64,
    pub topic: String,
    pub event: String,
    pub entity_id: String,
    pub data: String,
    pub narrative: String,
    pub created_at: String,
}

/// Which topics a replay reads.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    /// Every topic starting `<kind>/`.
    Kind(&'static str),
    Topic(String),
}

/// Appends a group's events, in order, as the last statements of its transaction; returns their seqs.
///
/// PostgreSQL: `UPDATE event_seq … RETURNING last` takes the counter row, which stays locked until this
/// transaction's commit is visible, so the next writer's seqs are larger and every snapshot that sees them
/// sees these: seq order is commit order with no gaps, however many writers there are. SQLite: the one
/// writer's `AUTOINCREMENT` gives the same.
pub fn append_all(conn: &mut Conn, group: &[&RenderedEvent]) -> Result<Vec<i64>, StoreError> {
    if group.is_empty() {
        return Ok(Vec::new());
    }
    match conn {
        Conn::Sqlite(c) => group
            .iter()
            .map(|event| {
                Ok(diesel::insert_into(events::table)
                    .values(columns(event))
                    .returning(events::seq)
                    .get_result(c)?)
            })
            .collect(),
        #[cfg(feature = "postgres")]
        Conn::Pg(c) => {
            use super::schema::event_seq;
            let n = i64::try_from(group.len()).unwrap_or(i64::MAX);
            let last: i64 = diesel::update(event_seq::table.find(1))
                .set(event_seq::last.eq(event_seq::last + n))
                .returning(event_seq::last)
                .get_result(c)?;
            let seqs: Vec<i64> = (last - n + 1..=last).collect();
            let rows: Vec<_> = group
                .iter()
                .zip(&seqs)
                .map(|(event, seq)| (events::seq.eq(*seq), columns(event)))
                .collect();
            diesel::insert_into(events::table).values(rows).execute(c)?;
            Ok(seqs)
        }
    }
}

/// An event's columns but its seq.
#[allow(clippy::type_complexity)]
fn columns(
    event: &RenderedEvent,
) -> (
    diesel::dsl::Eq<events::topic, &String>,
    diesel::dsl::Eq<events::event, &'static str>,
    diesel::dsl::Eq<events::entity_id, &String>,
    diesel::dsl::Eq<events::data, &String>,
    diesel::dsl::Eq<events::narrative, &String>,
    diesel::dsl::Eq<events::created_at, &String>,
) {
    (
        events::topic.eq(&event.topic),
        events::event.eq(event.event),
        events::entity_id.eq(&event.entity_id),
        events::data.eq(&event.data),
        events::narrative.eq(&event.narrative),
        events::created_at.eq(&event.created_at),
    )
}

/// Up to `limit` events after `cursor`, each in one of `scopes` after that scope's own seq; oldest first.
pub fn page(
    conn: &mut Conn,
    scopes: &[(Scope, i64)],
    cursor: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    type Condition = Box<dyn BoxableExpression<events::table, Db, SqlType = Bool>>;
    let mut any: Option<Condition> = None;
    for (scope, after) in scopes {
        let in_scope: Condition = match scope {
            Scope::All => Box::new(events::seq.gt(*after)),
            // `kind/` up to `kind0` ('0' follows '/'): a range on the (topic, seq) index, no LIKE escaping.
            Scope::Kind(prefix) => Box::new(
                events::topic
                    .ge(format!("{prefix}/"))
                    .and(events::topic.lt(format!("{prefix}0")))
                    .and(events::seq.gt(*after)),
            ),
            Scope::Topic(topic) => {
                Box::new(events::topic.eq(topic.clone()).and(events::seq.gt(*after)))
            }
        };
        any = Some(match any {
            None => in_scope,
            Some(previous) => Box::new(previous.or(in_scope)),
        });
    }
    let Some(condition) = any else {
        return Ok(Vec::new());
    };
    Ok(events::table
        .select(EventRow::as_select())
        .filter(events::seq.gt(cursor))
        .filter(condition)
        .order(events::seq.asc())
        .limit(limit)
        .load(conn)?)
}

/// The seq of the topic's first event among `names` (its terminal event), if any.
pub fn first_of(conn: &mut Conn, topic: &str, names: &[&str]) -> Result<Option<i64>, StoreError> {
    Ok(events::table
        .filter(events::topic.eq(topic))
        .filter(events::event.eq_any(names))
        .select(events::seq)
        .order(events::seq.asc())
        .first(conn)
        .optional()?)
}

/// Every event of one topic, oldest first (the narrative trail `why` shows), at most `limit`.
pub fn of_topic(conn: &mut Conn, topic: &str, limit: i64) -> Result<Vec<EventRow>, StoreError> {
    Ok(events::table
        .select(EventRow::as_select())
        .filter(events::topic.eq(topic))
        .order(events::seq.asc())
        .limit(limit)
        .load(conn)?)
}

/// One event by its seq (what a webhook sends).
pub fn get(conn: &mut Conn, seq: i64) -> Result<Option<EventRow>, StoreError> {
    Ok(events::table
        .find(seq)
        .select(EventRow::as_select())
        .first(conn)
        .optional()?)
}

/// The newest seq in the log (0 when empty).
pub fn latest_seq(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(events::table
        .select(diesel::dsl::max(events::seq))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}

/// Deletes every event of these entities (retention); returns how many.
pub fn delete_entities(
    conn: &mut Conn,
    kind: EntityKind,
    ids: &[String],
) -> Result<usize, StoreError> {
    let topics: Vec<String> = ids.iter().map(|id| kind.topic(id)).collect();
    Ok(diesel::delete(events::table.filter(events::topic.eq_any(&topics))).execute(conn)?)
}
