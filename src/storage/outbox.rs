//! `webhook_outbox`: the terminal events of decided canaries whose webhook is still to be delivered.

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::schema::webhook_outbox;
use super::StoreError;

pub fn insert(conn: &mut SqliteConnection, event_seq: i64) -> Result<(), StoreError> {
    diesel::insert_into(webhook_outbox::table)
        .values(webhook_outbox::event_seq.eq(event_seq))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut SqliteConnection, event_seq: i64) -> Result<(), StoreError> {
    diesel::delete(webhook_outbox::table.find(event_seq)).execute(conn)?;
    Ok(())
}

/// Every event still to deliver, oldest first.
pub fn pending(conn: &mut SqliteConnection) -> Result<Vec<i64>, StoreError> {
    Ok(webhook_outbox::table
        .select(webhook_outbox::event_seq)
        .order(webhook_outbox::event_seq.asc())
        .load(conn)?)
}
