//! The event model shared by the writer, the broker and the SSE route: what an event is, which topic it
//! belongs to, how it renders into the one-line JSON that is stored and sent, and which events end a stream.

mod kind;
mod topic;

pub use kind::EntityKind;
pub use topic::{TopicError, TopicFilter};

use serde_json::{Map, Value};

use crate::clock::{self, Timestamp};

/// An event about to be recorded: its entity, name, structured fields and the narrative text after the arrow.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EntityKind,
    pub entity_id: String,
    pub event: &'static str,
    pub fields: Map<String, Value>,
    pub narrative: String,
}

/// The rendered event: what goes into the `events` row and, with its seq, onto the wire.
#[derive(Debug, Clone)]
pub struct RenderedEvent {
    pub topic: String,
    pub event: &'static str,
    pub entity_id: String,
    pub data: String,
    pub narrative: String,
    pub created_at: String,
}

impl NewEvent {
    pub fn new(
        kind: EntityKind,
        entity_id: &str,
        event: &'static str,
        narrative: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            entity_id: entity_id.to_string(),
            event,
            fields: Map::new(),
            narrative: narrative.into(),
        }
    }

    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.to_string(), value.into());
        self
    }

    pub fn topic(&self) -> String {
        self.kind.topic(&self.entity_id)
    }

    /// Data always carries `topic`, `ts`, the entity id field, the structured fields and `narrative`.
    pub fn render(self, ts: Timestamp) -> RenderedEvent {
        let topic = self.topic();
        let narrative = format!(
            "{} {} → {}",
            clock::narrative_minute(ts),
            self.entity_id,
            self.narrative
        );
        let mut data = self.fields;
        data.insert("topic".into(), Value::String(topic.clone()));
        data.insert("ts".into(), Value::String(clock::rfc3339(ts)));
        data.insert(
            self.kind.id_field().into(),
            Value::String(self.entity_id.clone()),
        );
        data.insert("narrative".into(), Value::String(narrative.clone()));
        RenderedEvent {
            topic,
            event: self.event,
            entity_id: self.entity_id,
            data: Value::Object(data).to_string(),
            narrative,
            created_at: clock::sql(ts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_data_carries_topic_ts_id_fields_and_the_kit_narrative() {
        let ts = clock::parse_sql("2025-10-03 14:21:00").expect("valid");
        let rendered = NewEvent::new(
            EntityKind::Job,
            "job_9hd",
            "completed",
            "completed successfully (23s)",
        )
        .field("status", "completed")
        .render(ts);
        assert_eq!(rendered.topic, "job/job_9hd");
        assert_eq!(
            rendered.narrative,
            "[2025-10-03 14:21] job_9hd → completed successfully (23s)"
        );
        assert!(!rendered.data.contains('\n'));
        let data: Value = serde_json::from_str(&rendered.data).expect("json");
        assert_eq!(data["topic"], "job/job_9hd");
        assert_eq!(data["jobId"], "job_9hd");
        assert_eq!(data["status"], "completed");
        assert_eq!(data["ts"], "2025-10-03T14:21:00.000Z");
        assert_eq!(data["narrative"], rendered.narrative);
    }
}
