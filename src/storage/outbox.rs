//! `webhook_outbox`: the terminal events of decided canaries whose webhook is still to be delivered.

use diesel::prelude::*;

use super::schema::webhook_outbox;
use super::{Conn, StoreError};

pub fn insert(conn: &mut Conn, event_seq: i64) -> Result<(), StoreError> {
    diesel::insert_into(webhook_outbox::table)
        .values(webhook_outbox::event_seq.eq(event_seq))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut Conn, event_seq: i64) -> Result<(), StoreError> {
    diesel::delete(webhook_outbox::table.find(event_seq)).execute(conn)?;
    Ok(())
}

/// Every event still to deliver, oldest first.
pub fn pending(conn: &mut Conn) -> Result<Vec<i64>, StoreError> {
    Ok(webhook_outbox::table
        .select(webhook_outbox::event_seq)
        .order(webhook_outbox::event_seq.asc())
        .load(conn)?)
}
