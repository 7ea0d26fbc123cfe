//! Tool arguments: typed with serde, and every failure turned into an `isError` result that names the
//! field, the rule it broke and a valid example (MCP SEP-1303).

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

use super::ToolError;
use crate::ids::Ident;

impl<'de> Deserialize<'de> for Ident {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ident::parse(&text).map_err(D::Error::custom)
    }
}

/// An argument that parsed but broke a rule.
pub fn invalid(field: &str, problem: String, example: &'static str) -> ToolError {
    ToolError::InvalidArgument {
        field: field.into(),
        problem,
        example,
    }
}

/// A list tool's `limit`: 1–500, default 50.
pub fn list_limit(limit: Option<i64>, example: &'static str) -> Result<i64, ToolError> {
    let limit = limit.unwrap_or(50);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(invalid(
            "limit",
            format!("must be from 1 to 500 (got {limit})"),
            example,
        ))
    }
}

/// An optional value that must be one of `allowed` (e.g. a status filter).
pub fn one_of(
    field: &str,
    value: Option<&str>,
    allowed: &[&str],
    example: &'static str,
) -> Result<(), ToolError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(invalid(
            field,
            format!("must be one of {} (got `{v}`)", allowed.join(", ")),
            example,
        )),
        _ => Ok(()),
    }
}

/// The JSON Schema of `asOf` in list results.
pub fn as_of_property() -> Value {
    serde_json::json!({"type": "integer", "description": "The newest event seq when the list was read: follow /sse with Last-Event-ID set to it to hear everything after, with no gap"})
}

/// A duration: `"250ms"`, `"30s"`, `"5m"`, `"1h5m"`, or a number of seconds.
fn duration_property(description: &str) -> Value {
    serde_json::json!({
        "type": ["string", "number"],
        "pattern": "^ *[0-9]+(\\.[0-9]+)? *(ms|s|m|h|d)?( *[0-9]+(\\.[0-9]+)? *(ms|s|m|h|d))* *$",
        "minimum": 0,
        "description": description
    })
}

/// `sloPolicy` of `start_canary` and `evaluate_slo`: every field optional, each over the defaults that
/// `[policies]` in the config and the built-in policy give.
pub fn slo_policy_schema() -> Value {
    let count = |description: &str| serde_json::json!({"type": "integer", "minimum": 0, "maximum": 10_000, "description": description});
    serde_json::json!({
        "type": "object",
        "description": "The SLO the canary is judged by. latency_p95_ms and error_rate are needed unless the server's \
            [policies] config gives them; every other field has a default.",
        "properties": {
            "latency_p95_ms": {"type": "number", "exclusiveMinimum": 0, "maximum": 86_400_000, "description": "p95 latency SLO in ms; a check fails above it"},
            "error_rate": {"type": "number", "minimum": 0, "maximum": 1, "description": "Error-rate SLO as a fraction 0-1; a check fails above it"},
            "interval": duration_property("Time between checks, e.g. \"30s\" (default 10s)"),
            "window": duration_property("Range each check's queries cover, e.g. \"5m\" (default 5m), never before the canary started"),
            "successesToPromote": count("Passing checks in a row that promote (default 3)"),
            "failureLimit": count("Failing checks in a row that roll back (default 2)"),
            "minRequests": {"type": "number", "minimum": 0, "maximum": 1e12, "description": "Requests a window needs before it can decide (default 0)"},
            "warmupChecks": count("First checks that only record, never decide (default 0)"),
            "maxNoDecision": count("Undecided checks in a row after which the canary is held for an operator (default 6)"),
            "deadline": duration_property("Longest a canary may run before it rolls back, e.g. \"1h\" (at most 30 days)"),
            "criticalFactor": {"type": "number", "minimum": 1, "maximum": 1000, "description": "A value this many times over its SLO rolls back at once (default 2)"},
            "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "description": "Confidence of the error rate's interval (default 0.95)"},
            "maxStaleness": duration_property("Evidence older than this at the due time decides nothing, e.g. \"1m\""),
            "windowSeconds": {"type": "number", "exclusiveMinimum": 0, "description": "The original server's name for window, in seconds"},
            "targets": {"type": "object", "description": "The original server's thresholds: latency_p95_ms and max_error_rate", "properties": {
                "latency_p95_ms": {"type": "number", "exclusiveMinimum": 0, "description": "As latency_p95_ms"},
                "max_error_rate": {"type": "number", "minimum": 0, "maximum": 1, "description": "As error_rate"}
            }, "additionalProperties": false}
        },
        "additionalProperties": false
    })
}

/// The JSON Schema of a client identifier.
pub fn id_property(description: &str) -> Value {
    serde_json::json!({"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$", "description": description})
}

/// Hints a client may use to decide whether to ask before calling (MCP tool annotations).
#[derive(Clone, Copy)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    /// It reaches outside the cockpit (queries Prometheus).
    pub open_world: bool,
}

pub const READ_ONLY: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

/// A tool's `tools/list` entry; `input` is the properties of a closed object with `required` fields.
pub fn definition(
    name: &str,
    title: &str,
    description: &str,
    (input, required): (Value, &[&str]),
    output: Value,
    hints: Hints,
) -> Value {
    serde_json::json!({
        "name": name,
        "title": title,
        "description": description,
        "inputSchema": {"type": "object", "properties": input, "required": required, "additionalProperties": false},
        "outputSchema": output,
        "annotations": {
            "title": title, "readOnlyHint": hints.read_only, "destructiveHint": hints.destructive,
            "idempotentHint": hints.idempotent, "openWorldHint": hints.open_world
        }
    })
}

pub fn parse<T: DeserializeOwned>(arguments: Value, example: &'static str) -> Result<T, ToolError> {
    if !arguments.is_object() {
        let problem = "must be a JSON object of named arguments".to_string();
        return Err(ToolError::InvalidArgument {
            field: "arguments".into(),
            problem,
            example,
        });
    }
    serde_path_to_error::deserialize(arguments).map_err(|e| {
        let path = e.path().to_string();
        let problem = e.into_inner().to_string();
        let field = if path == "." {
            quoted_name(&problem).unwrap_or_else(|| "arguments".into())
        } else {
            path
        };
        ToolError::InvalidArgument {
            field,
            problem,
            example,
        }
    })
}

/// serde names a missing or unknown field between backticks.
fn quoted_name(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Args {
        #[allow(dead_code)]
        task_id: Ident,
    }

    fn field_of(arguments: Value) -> String {
        match parse::<Args>(arguments, "{}") {
            Err(ToolError::InvalidArgument { field, .. }) => field,
            other => panic!("expected an argument error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(json!({})), "taskId");
        assert_eq!(field_of(json!({"taskId": "a;b"})), "taskId");
        assert_eq!(field_of(json!({"taskId": 3})), "taskId");
        assert_eq!(field_of(json!({"taskId": "a", "extra": 1})), "extra");
        assert_eq!(field_of(json!([1])), "arguments");
    }
}
