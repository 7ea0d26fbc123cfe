//! Topic filters as clients write them: `job/<id>`, `canary/<id>`, `model/<id>`, `ops/<name>`, the kind
//! patterns `job/*` … and `*`. Parsing validates the id, so a filter is safe for SQL and logs.

use std::fmt;

use super::EntityKind;
use crate::ids::Ident;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicFilter {
    /// Every topic.
    All,
    /// Every entity of one kind (`job/*`).
    Kind(EntityKind),
    /// One entity (`job/job_x`, `ops/deploys`).
    Entity(EntityKind, Ident),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic `{topic}`: {problem}; use job/<jobId>, canary/<canaryId>, model/<modelId>, ops/<name>, job/*, canary/*, model/*, ops/* or *")]
pub struct TopicError {
    pub topic: String,
    pub problem: String,
}

impl TopicFilter {
    pub fn parse(text: &str) -> Result<Self, TopicError> {
        let err = |problem: &str| TopicError {
            topic: text.chars().take(200).collect(),
            problem: problem.into(),
        };
        if text == "*" {
            return Ok(TopicFilter::All);
        }
        let (prefix, rest) = text
            .split_once('/')
            .ok_or_else(|| err("a topic is <kind>/<id>"))?;
        let kind = EntityKind::from_prefix(prefix).ok_or_else(|| err("unknown kind"))?;
        if rest == "*" {
            return Ok(TopicFilter::Kind(kind));
        }
        Ident::parse(rest)
            .map(|id| TopicFilter::Entity(kind, id))
            .map_err(|rule| err(&format!("the id {rule}")))
    }

    /// The broker's index key of an event's concrete topic, its kind pattern and `*`.
    pub fn keys_of(kind: EntityKind, topic: &str) -> [&str; 3] {
        [topic, kind.pattern(), "*"]
    }

    /// A single job or canary: its stream ends with the entity.
    pub fn ending_entity(&self) -> Option<(EntityKind, &Ident)> {
        match self {
            TopicFilter::Entity(kind, id) if kind.ends() => Some((*kind, id)),
            _ => None,
        }
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicFilter::All => f.write_str("*"),
            TopicFilter::Kind(kind) => f.write_str(kind.pattern()),
            TopicFilter::Entity(kind, id) => write!(f, "{kind}/{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> TopicFilter {
        TopicFilter::parse(text).expect("valid topic")
    }

    #[test]
    fn patterns_and_entities_parse_and_print_back() {
        for text in [
            "*",
            "job/*",
            "canary/*",
            "model/*",
            "ops/*",
            "job/job_abc",
            "ops/deploys",
            "model/lukhas-v2",
        ] {
            assert_eq!(parse(text).to_string(), text);
        }
    }

    #[test]
    fn bad_topics_are_rejected_with_the_reason() {
        for bad in [
            "", "job", "jobs/x", "job/", "job/a b", "job/../x", "job/x/y", "job/*x", "**",
        ] {
            assert!(TopicFilter::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TopicFilter::parse("nope/x")
            .expect_err("bad")
            .to_string()
            .contains("unknown kind"));
    }

    #[test]
    fn only_jobs_and_canaries_end_their_streams() {
        assert!(parse("job/j").ending_entity().is_some());
        assert!(parse("canary/c").ending_entity().is_some());
        assert!(parse("model/m").ending_entity().is_none());
        assert!(parse("ops/o").ending_entity().is_none());
        assert!(parse("job/*").ending_entity().is_none());
    }
}
