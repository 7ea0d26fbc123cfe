//! `audit`: one row per mutating call — who (a keyed fingerprint), what, on which target, with which arguments.

use diesel::prelude::*;

use super::schema::audit;
use super::{Conn, StoreError};

pub fn record(
    conn: &mut Conn,
    actor: &str,
    action: &str,
    target: &str,
    args: &serde_json::Value,
) -> Result<(), StoreError> {
    diesel::insert_into(audit::table)
        .values((
            audit::actor.eq(actor),
            audit::action.eq(action),
            audit::target.eq(target),
            audit::args.eq(args.to_string()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Who asked for a change, with what, for the `audit` row written in the same transaction as the change.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: String,
    pub action: &'static str,
    pub args: serde_json::Value,
}

impl AuditEntry {
    pub fn record(&self, conn: &mut Conn, target: &str) -> Result<(), StoreError> {
        record(conn, &self.actor, self.action, target, &self.args)
    }
}
