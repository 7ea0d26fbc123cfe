//! What a session's server-to-client stream carries for one cockpit event: a `notifications/message` when
//! the event is at or above the session's log level, and `notifications/resources/updated` when the session
//! subscribed to the entity's resource.

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
    if level >= session.log_level() {
        out.push(logging::message(
            level,
            happening.topic,
            happening.event,
            &(happening.narrative)(),
        ));
    }
    if let Some(uri) = resources::uri_of_topic(happening.topic).filter(|u| session.is_subscribed(u))
    {
        out.push(json!({
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": uri}
        }));
    }
    out
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
        session.subscribe("cockpit://job/job_x");
        let both = notifications(&session, &progress);
        assert_eq!(both[0]["params"]["data"]["narrative"], "job_x → 40%");
        assert_eq!(both[1]["params"]["uri"], "cockpit://job/job_x");
        session.set_log_level(LogLevel::Error);
        assert_eq!(notifications(&session, &progress).len(), 1);
    }
}
