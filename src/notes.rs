//! Operators' notes: the record of `publish_note`. A note is event `note` on an `ops/<name>` topic or an
//! existing entity's topic, written with its audit row in one transaction.

use serde_json::{Map, Value};

use crate::events::{EntityKind, NewEvent};
use crate::recorder::{EventSeq, Tx};
use crate::storage::audit::AuditEntry;
use crate::storage::{self, StoreError};

/// The note's seq, or `None` when the entity does not exist. Checked inside the transaction, so a note never
/// lands on a job the retention sweep just removed.
pub fn noted(
    tx: &mut Tx<'_>,
    (kind, id): (EntityKind, &str),
    message: &str,
    data: Option<&Map<String, Value>>,
    audit: &AuditEntry,
) -> Result<Option<EventSeq>, StoreError> {
    if !storage::entity_exists(tx.conn, kind, id)? {
        return Ok(None);
    }
    let mut event =
        NewEvent::new(kind, id, "note", message.to_string()).field("message", message.to_string());
    if let Some(data) = data {
        event = event.field("data", Value::Object(data.clone()));
    }
    let seq = tx.emit(event);
    audit.record(tx.conn, &kind.topic(id))?;
    Ok(Some(seq))
}
