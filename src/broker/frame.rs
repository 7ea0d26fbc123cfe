//! SSE frames, encoded once per event and shared by every subscriber (`Arc<Frame>`, `Bytes` clones).

use std::sync::Arc;

use bytes::Bytes;

use crate::events::EntityKind;
use crate::storage::events::EventRow;

#[derive(Debug)]
pub struct Frame {
    pub seq: i64,
    pub kind: EntityKind,
    pub topic: String,
    /// The event's name (`queued`, `metric`, …).
    pub event: String,
    /// The entity's last event: single-entity streams end after it.
    pub terminal: bool,
    /// `id: <seq>\nevent: <name>\ndata: <json>\n\n`
    pub bytes: Bytes,
}

impl Frame {
    pub fn new(seq: i64, kind: EntityKind, topic: &str, event: &str, data: &str) -> Arc<Frame> {
        let bytes = Bytes::from(format!("id: {seq}\nevent: {event}\ndata: {data}\n\n"));
        Arc::new(Frame {
            seq,
            kind,
            topic: topic.to_string(),
            event: event.to_string(),
            terminal: kind.is_terminal(event),
            bytes,
        })
    }

    /// The event's one-line JSON data.
    pub fn data(&self) -> &str {
        std::str::from_utf8(&self.bytes)
            .ok()
            .and_then(|text| text.split_once("\ndata: "))
            .map_or("", |(_, rest)| rest.trim_end())
    }

    /// The frame of a logged event (replay); `None` for a row whose topic names no known kind.
    pub fn from_row(row: &EventRow) -> Option<Arc<Frame>> {
        let kind = EntityKind::from_prefix(row.topic.split_once('/')?.0)?;
        Some(Frame::new(row.seq, kind, &row.topic, &row.event, &row.data))
    }
}

/// A comment line: ignored by SSE parsers, keeps proxies and dead-peer detection working.
pub fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

/// The reconnect delay hint.
pub fn retry(ms: u64) -> Bytes {
    Bytes::from(format!("retry: {ms}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_the_sse_wire_form_and_knows_terminal_events() {
        let frame = Frame::new(7, EntityKind::Job, "job/job_1", "completed", r#"{"a":1}"#);
        assert_eq!(
            &frame.bytes[..],
            b"id: 7\nevent: completed\ndata: {\"a\":1}\n\n"
        );
        assert!(frame.terminal);
        assert!(!Frame::new(8, EntityKind::Job, "job/job_1", "progress", "{}").terminal);
        assert!(!Frame::new(9, EntityKind::Ops, "ops/x", "note", "{}").terminal);
    }
}
