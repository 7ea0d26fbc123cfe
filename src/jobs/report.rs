//! The eval process's stdout protocol: `{"progress":0.3,"message":"…"}` lines, a final `{"result":{…}}`,
//! anything else is log output.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Progress {
        progress: f64,
        message: Option<String>,
    },
    Result(Value),
    Log,
}

pub fn parse_line(line: &str) -> Report {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(line.trim()) else {
        return Report::Log;
    };
    if let Some(result) = object.remove("result") {
        return Report::Result(result);
    }
    match object.get("progress").and_then(Value::as_f64) {
        Some(p) if p.is_finite() => Report::Progress {
            progress: p.clamp(0.0, 1.0),
            message: object
                .get("message")
                .and_then(Value::as_str)
                .map(|m| m.chars().take(500).collect()),
        },
        _ => Report::Log,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_result_and_log_lines_are_told_apart() {
        assert_eq!(
            parse_line(r#"{"progress":0.3,"message":"loading"}"#),
            Report::Progress {
                progress: 0.3,
                message: Some("loading".into())
            }
        );
        assert_eq!(
            parse_line(r#"{"progress":7}"#),
            Report::Progress {
                progress: 1.0,
                message: None
            }
        );
        assert_eq!(
            parse_line(r#"{"progress":-1}"#),
            Report::Progress {
                progress: 0.0,
                message: None
            }
        );
        assert_eq!(
            parse_line(r#"{"result":{"accuracy":0.9}}"#),
            Report::Result(json!({"accuracy":0.9}))
        );
        for log in [
            "hello",
            "",
            "[1,2]",
            r#"{"progress":"x"}"#,
            r#"{"other":1}"#,
            "{",
        ] {
            assert_eq!(parse_line(log), Report::Log, "{log:?}");
        }
    }
}
