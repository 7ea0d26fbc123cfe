//! `events`: the append-only narrative log. Its `seq` is the SSE event id, so replay after a restart is a
//! range scan.

use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel::sqlite::Sqlite;

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

/// Appends an event and returns its seq.
pub fn append(conn: &mut Conn, event: &RenderedEvent) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(events::table)
        .values((
            events::topic.eq(&event.topic),
            events::event.eq(event.event),
            events::entity_id.eq(&event.entity_id),
            events::data.eq(&event.data),
            events::narrative.eq(&event.narrative),
            events::created_at.eq(&event.created_at),
        ))
        .returning(events::seq)
        .get_result(conn)?)
}

/// Up to `limit` events after `cursor`, each in one of `scopes` after that scope's own seq; oldest first.
pub fn page(
    conn: &mut Conn,
    scopes: &[(Scope, i64)],
    cursor: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    type Condition = Box<dyn BoxableExpression<events::table, Sqlite, SqlType = Bool>>;
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
