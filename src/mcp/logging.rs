//! MCP logging (`logging/setLevel`, `notifications/message`): which cockpit happenings a session hears
//! about, at which syslog level. Messages carry the event's topic, name and narrative — never a key or token.

use serde_json::{json, Value};

/// RFC 5424 severities, least severe first (the order MCP compares them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    const ALL: [LogLevel; 8] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Notice,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
        LogLevel::Alert,
        LogLevel::Emergency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }

    pub fn parse(text: &str) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|l| l.as_str() == text)
    }

    pub fn names() -> String {
        LogLevel::ALL.map(LogLevel::as_str).join(", ")
    }
}

/// How loud a cockpit event is: routine progress is debug, ordinary steps info, decisions notice, and
/// failures, rollbacks and held canaries warning.
pub fn level_of(event: &str) -> LogLevel {
    match event {
        "progress" | "metric" => LogLevel::Debug,
        "promoted" | "gate_changed" | "completed" => LogLevel::Notice,
        "failed" | "rolled_back" | "held" | "cancelled" => LogLevel::Warning,
        _ => LogLevel::Info,
    }
}

/// The `notifications/message` for one event.
pub fn message(level: LogLevel, topic: &str, event: &str, narrative: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {
            "level": level.as_str(),
            "logger": "cockpit",
            "data": {"topic": topic, "event": event, "narrative": narrative}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_like_syslog_and_events_map_to_them() {
        assert!(LogLevel::Debug < LogLevel::Info && LogLevel::Warning < LogLevel::Emergency);
        assert_eq!(LogLevel::parse("warning"), Some(LogLevel::Warning));
        assert_eq!(LogLevel::parse("loud"), None);
        assert_eq!(level_of("rolled_back"), LogLevel::Warning);
        assert_eq!(level_of("progress"), LogLevel::Debug);
        assert_eq!(level_of("started"), LogLevel::Info);
    }
}
