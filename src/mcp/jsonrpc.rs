//! JSON-RPC 2.0 messages: classifying what a client sent and building replies. Errors always echo the
//! request id when it could be read.

use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Server-defined: the request lacks a valid API key.
pub const UNAUTHORIZED: i64 = -32001;
/// Server-defined: the request's Origin or Host is not allowed.
pub const FORBIDDEN: i64 = -32003;
/// Server-defined: over the rate limit; the HTTP reply carries `Retry-After`.
pub const RATE_LIMITED: i64 = -32029;

#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// One message from the client.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A response to something we asked (we ask nothing yet); acknowledged, never answered.
    Response,
    Invalid {
        id: Value,
        error: RpcError,
    },
}

pub fn classify(message: Value) -> Incoming {
    let Value::Object(mut object) = message else {
        return invalid(Value::Null, "a JSON-RPC message must be an object");
    };
    let id = object.remove("id");
    let id_ok = matches!(id, None | Some(Value::String(_)) | Some(Value::Number(_)));
    let echo = if id_ok {
        id.clone().unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(echo, "`jsonrpc` must be \"2.0\"");
    }
    if !id_ok {
        return invalid(Value::Null, "`id` must be a string or a number");
    }
    match (object.remove("method"), id) {
        (Some(Value::String(method)), Some(id)) => Incoming::Request {
            id,
            method,
            params: object.remove("params"),
        },
        (Some(Value::String(method)), None) => Incoming::Notification {
            method,
            params: object.remove("params"),
        },
        (Some(_), _) => invalid(echo, "`method` must be a string"),
        (None, Some(_)) if object.contains_key("result") || object.contains_key("error") => {
            Incoming::Response
        }
        (None, _) => invalid(echo, "a request needs a `method`"),
    }
}

fn invalid(id: Value, why: &str) -> Incoming {
    Incoming::Invalid {
        id,
        error: RpcError::new(INVALID_REQUEST, format!("Invalid Request: {why}")),
    }
}

pub fn success(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn failure(id: Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": error.code, "message": error.message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let request = classify(json!({"jsonrpc":"2.0","id":7,"method":"ping"}));
        assert_eq!(
            request,
            Incoming::Request {
                id: json!(7),
                method: "ping".into(),
                params: None
            }
        );
        let note = classify(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert_eq!(
            note,
            Incoming::Notification {
                method: "notifications/initialized".into(),
                params: None
            }
        );
        assert_eq!(
            classify(json!({"jsonrpc":"2.0","id":"a","result":{}})),
            Incoming::Response
        );
    }

    #[test]
    fn invalid_messages_echo_a_readable_id() {
        let Incoming::Invalid { id, error } =
            classify(json!({"jsonrpc":"1.0","id":"x","method":"ping"}))
        else {
            panic!("must be invalid")
        };
        assert_eq!((id, error.code), (json!("x"), INVALID_REQUEST));
        for bad in [
            json!([1]),
            json!("s"),
            json!({"jsonrpc":"2.0","id":{},"method":"m"}),
            json!({"jsonrpc":"2.0","id":1}),
        ] {
            assert!(matches!(classify(bad), Incoming::Invalid { .. }));
        }
        let Incoming::Invalid { id, .. } =
            classify(json!({"jsonrpc":"2.0","id":null,"method":"m"}))
        else {
            panic!("null id must be invalid")
        };
        assert_eq!(id, Value::Null);
    }
}
