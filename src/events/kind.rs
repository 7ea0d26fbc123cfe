//! Entity kinds: the first segment of a topic, the id field in event data, and the events that end them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Job,
    Canary,
    Model,
    Ops,
}

impl EntityKind {
    pub const ALL: [EntityKind; 4] = [
        EntityKind::Job,
        EntityKind::Canary,
        EntityKind::Model,
        EntityKind::Ops,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            EntityKind::Job => "job",
            EntityKind::Canary => "canary",
            EntityKind::Model => "model",
            EntityKind::Ops => "ops",
        }
    }

    /// The pattern topic matching every entity of this kind.
    pub fn pattern(self) -> &'static str {
        match self {
            EntityKind::Job => "job/*",
            EntityKind::Canary => "canary/*",
            EntityKind::Model => "model/*",
            EntityKind::Ops => "ops/*",
        }
    }

    pub fn from_prefix(prefix: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.prefix() == prefix)
    }

    /// The field naming the entity in event data (`jobId`, …; notes use `name`).
    pub fn id_field(self) -> &'static str {
        match self {
            EntityKind::Job => "jobId",
            EntityKind::Canary => "canaryId",
            EntityKind::Model => "modelId",
            EntityKind::Ops => "name",
        }
    }

    pub fn topic(self, entity_id: &str) -> String {
        format!("{}/{entity_id}", self.prefix())
    }

    /// Events after which the entity never changes again. Models and ops topics never end.
    pub fn terminal_events(self) -> &'static [&'static str] {
        match self {
            EntityKind::Job => &["completed", "failed", "cancelled", "dry_run"],
            EntityKind::Canary => &["promoted", "rolled_back", "dry_run"],
            EntityKind::Model | EntityKind::Ops => &[],
        }
    }

    pub fn is_terminal(self, event: &str) -> bool {
        self.terminal_events().contains(&event)
    }

    /// Whether a stream of this single entity ends after its terminal event.
    pub fn ends(self) -> bool {
        !self.terminal_events().is_empty()
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}
