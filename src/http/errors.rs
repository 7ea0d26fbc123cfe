//! The error bodies of every route, in one place: a JSON-RPC error object (id `null`) on `/mcp`, where
//! clients parse JSON-RPC, and `{"error": <code>, "message": <text>}` everywhere else. Messages say what to
//! do; internal causes never reach a body (they are logged where they happen).

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::{json, Value};

use crate::mcp::jsonrpc::{self, RpcError};

/// A refusal on a plain route (`/sse`, `/metrics`, the pages).
pub fn plain(status: StatusCode, code: &str, message: String) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": code, "message": message}))
}

/// A refusal on `/mcp` before any message is read: a JSON-RPC error with a null id.
pub fn rpc(status: StatusCode, code: i64, message: String) -> HttpResponse {
    HttpResponse::build(status).json(jsonrpc::failure(Value::Null, &RpcError::new(code, message)))
}
