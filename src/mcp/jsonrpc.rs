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
    /// What a client can act on besides the message (e.g. the versions we support).
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
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

/// Parses a body as JSON, refusing an object with the same key twice: parsers disagree on which one wins
/// (`{"name":"job_status","name":"cancel_job"}`), so such a message means different things to a proxy that
/// checked it and to us.
pub fn parse_strict(body: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Strict>(body).map(|strict| strict.0)
}

struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{}` in an object",
                    key.chars().take(64).collect::<String>()
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A request id we can echo back exactly: a string, or an integer within 64 bits (a 30-digit number would
/// come back as `1e30`, and the client could not match our reply to its request).
pub fn id_round_trips(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

pub fn classify(message: Value) -> Incoming {
    let Value::Object(mut object) = message else {
        return invalid(Value::Null, "a JSON-RPC message must be an object");
    };
    let id = object.remove("id");
    let id_ok = id.as_ref().is_none_or(id_round_trips);
    let echo = if id_ok {
        id.clone().unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(echo, "`jsonrpc` must be \"2.0\"");
    }
    if !id_ok {
        return invalid(
            Value::Null,
            "`id` must be a string or an integer within 64 bits (e.g. 1 or \"req-1\")",
        );
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

/// An error with its causes, for the log (internal causes are logged, never sent).
pub fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A storage failure under a protocol method (resources, tasks, completions): logged with its causes,
/// answered as an internal error.
impl From<crate::storage::StoreError> for RpcError {
    fn from(e: crate::storage::StoreError) -> Self {
        log::error!("{}", with_sources(&e));
        internal_error()
    }
}

/// What a client hears of a failure inside the server; the log has the cause.
pub fn internal_error() -> RpcError {
    RpcError::new(
        INTERNAL_ERROR,
        "Internal error; the server log has the details",
    )
}

/// The panic boundary around a handler: a panic (already logged once by the panic hook, as an error) is
/// `Err(())`, to be answered -32603, and takes no other request with it; a batch goes on with its next
/// message, and the replies of those before it are still sent.
pub async fn panic_boundary<T>(work: impl std::future::Future<Output = T>) -> Result<T, ()> {
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|_| ())
}

pub fn success(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn failure(id: Value, error: &RpcError) -> Value {
    let mut body = json!({"code": error.code, "message": error.message});
    if let Some(data) = &error.data {
        body["data"] = data.clone();
    }
    json!({"jsonrpc": "2.0", "id": id, "error": body})
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
    fn objects_with_a_key_twice_are_refused_at_any_depth() {
        let error = parse_strict(br#"{"a":1,"b":{"c":1,"c":2}}"#).expect_err("duplicate");
        assert!(error.to_string().contains("duplicate key `c`"), "{error}");
        assert!(parse_strict(br#"{"jsonrpc":"2.0","jsonrpc":"2.0"}"#).is_err());
        assert_eq!(
            parse_strict(br#"[{"a":[1,2.5,"x",null,true]},{"a":-3}]"#).expect("valid"),
            json!([{"a":[1,2.5,"x",null,true]},{"a":-3}])
        );
    }

    #[test]
    fn ids_that_cannot_be_echoed_exactly_are_refused() {
        let huge = parse_strict(
            br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#,
        )
        .expect("JSON");
        assert!(matches!(classify(huge), Incoming::Invalid { .. }));
        let fraction = json!({"jsonrpc":"2.0","id":1.5,"method":"ping"});
        assert!(matches!(classify(fraction), Incoming::Invalid { .. }));
        let big = json!({"jsonrpc":"2.0","id":u64::MAX,"method":"ping"});
        assert!(matches!(classify(big), Incoming::Request { .. }));
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
