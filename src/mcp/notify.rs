//! What a session's server-to-client stream carries for one cockpit event: a `notifications/message` when
//! the event is the session's business (an `ops/` note, a job or canary its own calls started, or a
//! resource it subscribed to) and at or above its log level, and `notifications/resources/updated` when the
//! session subscribed to the entity's resource. Nobody hears of another session's work unasked. A `subscriptions/listen` stream carries the updates alone.

use serde_json::{json, Value};

use super::logging;
use super::resources;
use super::session::SessionState;

/// One event as the stream sees it; `narrative` is read only when a log message is due.
pub struct Happening<'a> {
    pub topic: &'a str,
    pub event: &'a str,
    pub narrative: &'a dyn Fn() -> String,
}

pub fn notifications(session: &SessionState, happening: &Happening<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    let level = logging::level_of(happening.event);
    let subscribed =
        resources::uri_of_topic(happening.topic).is_some_and(|u| session.is_subscribed(&u));
    let its_own =
        happening.topic.starts_with("ops/") || session.owns(happening.topic) || subscribed;
    if its_own && level >= session.log_level() {
        out.push(logging::message(
            level,
            happening.topic,
            happening.event,
            &(happening.narrative)(),
        ));
    }
    out.extend(resource_updated(happening.topic, |uri| {
        session.is_subscribed(uri)
    }));
    out
}

/// `notifications/resources/updated` for the resource an event's topic belongs to, if it is `wanted`.
pub fn resource_updated(topic: &str, wanted: impl Fn(&str) -> bool) -> Option<Value> {
    let uri = resources::uri_of_topic(topic).filter(|u| wanted(u))?;
    Some(json!({
        "jsonrpc": "2.0",
        "method": "notifications/resources/updated",
        "params": {"uri": uri}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::logging::LogLevel;

    #[test]
    fn a_session_hears_what_its_level_and_subscriptions_ask_for() {
        let session = SessionState::default();
        let narrative = || "job_x → 40%".to_string();
        let progress = Happening {
            topic: "job/job_x",
            event: "progress",
            narrative: &narrative,
        };
        assert!(
            notifications(&session, &progress).is_empty(),
            "debug is below the default info"
        );
        session.set_log_level(LogLevel::Debug);
        assert!(
            notifications(&session, &progress).is_empty(),
            "another session's job is not this session's business"
        );
        session.subscribe("cockpit://job/job_x");
        let both = notifications(&session, &progress);
        assert_eq!(both[0]["params"]["data"]["narrative"], "job_x → 40%");
        assert_eq!(both[1]["params"]["uri"], "cockpit://job/job_x");
        session.set_log_level(LogLevel::Error);
        assert_eq!(notifications(&session, &progress).len(), 1);
    }

    #[test]
    fn a_session_hears_the_jobs_it_started_and_ops_notes_without_subscribing() {
        let session = SessionState::default();
        let narrative = String::new;
        let queued = |topic| Happening {
            topic,
            event: "queued",
            narrative: &narrative,
        };
        assert!(notifications(&session, &queued("job/job_mine")).is_empty());
        session.own("job/job_mine".into());
        let heard = notifications(&session, &queued("job/job_mine"));
        assert_eq!(
            heard.len(),
            1,
            "a log message, no resource update: {heard:?}"
        );
        assert_eq!(heard[0]["method"], "notifications/message");
        assert_eq!(notifications(&session, &queued("ops/deploys")).len(), 1);
    }
}
