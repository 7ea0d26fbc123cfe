//! The MCP protocol over Streamable HTTP, independent of the HTTP framework: version negotiation,
//! sessions, method dispatch, batches, and tools. The HTTP route only maps a [`PostReply`] to a response.

pub mod jsonrpc;
mod session;
pub mod tools;

use serde_json::{json, Value};

use jsonrpc::{Incoming, RpcError};
pub use session::{Session, SessionStore};
pub use tools::{Caller, ToolContext};

/// Newest first: an unknown requested version gets the first.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The one revision that allowed JSON-RPC batches.
const BATCH_VERSION: &str = "2025-03-26";

pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// What a POST to `/mcp` produces.
#[derive(Debug)]
pub enum PostReply {
    /// Only notifications or responses were sent: 202 with no body.
    Accepted,
    /// A JSON-RPC response (or batch of them), with the new session id after `initialize`.
    Json {
        body: Value,
        new_session: Option<String>,
    },
}

/// What the transport knows about a POST.
pub struct PostContext<'a> {
    pub session: Option<&'a Session>,
    pub has_version_header: bool,
    pub caller: &'a Caller,
}

pub struct McpServer {
    pub tools: ToolContext,
    pub sessions: SessionStore,
}

impl McpServer {
    pub async fn handle_post(&self, body: &[u8], post: &PostContext<'_>) -> PostReply {
        let message: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => {
                let error = RpcError::new(jsonrpc::PARSE_ERROR, format!("Parse error: {e}"));
                return PostReply::Json {
                    body: jsonrpc::failure(Value::Null, &error),
                    new_session: None,
                };
            }
        };
        let Value::Array(batch) = message else {
            let (body, new_session) = self.handle_one(message, post).await;
            return match body {
                Some(body) => PostReply::Json { body, new_session },
                None => PostReply::Accepted,
            };
        };
        let batch_allowed = match post.session {
            Some(session) => session.protocol_version == BATCH_VERSION,
            None => !post.has_version_header,
        };
        if !batch_allowed || batch.is_empty() {
            let why = if batch.is_empty() {
                "an empty batch"
            } else {
                "batches are only accepted in protocol 2025-03-26"
            };
            let error = RpcError::new(jsonrpc::INVALID_REQUEST, format!("Invalid Request: {why}"));
            return PostReply::Json {
                body: jsonrpc::failure(Value::Null, &error),
                new_session: None,
            };
        }
        let mut replies = Vec::new();
        for message in batch {
            if let (Some(reply), _) = self.handle_one(message, post).await {
                replies.push(reply);
            }
        }
        if replies.is_empty() {
            PostReply::Accepted
        } else {
            PostReply::Json {
                body: Value::Array(replies),
                new_session: None,
            }
        }
    }

    /// One message: `(reply, new session id)`; no reply for notifications and responses.
    async fn handle_one(
        &self,
        message: Value,
        post: &PostContext<'_>,
    ) -> (Option<Value>, Option<String>) {
        match jsonrpc::classify(message) {
            Incoming::Notification { method } => {
                log::debug!("notification {method}");
                (None, None)
            }
            Incoming::Response => (None, None),
            Incoming::Invalid { id, error } => (Some(jsonrpc::failure(id, &error)), None),
            Incoming::Request { id, method, params } => {
                let mut new_session = None;
                let outcome = match method.as_str() {
                    "initialize" => {
                        let (result, session) = self.initialize(params.as_ref());
                        new_session = Some(session.id);
                        Ok(result)
                    }
                    "ping" => Ok(json!({})),
                    "tools/list" => Ok(json!({ "tools": tools::definitions() })),
                    "tools/call" => self.tools.call(params, post.caller).await,
                    other => Err(RpcError::new(
                        jsonrpc::METHOD_NOT_FOUND,
                        format!("Method not found: {other}"),
                    )),
                };
                let reply = match outcome {
                    Ok(result) => jsonrpc::success(id, result),
                    Err(error) => jsonrpc::failure(id, &error),
                };
                (Some(reply), new_session)
            }
        }
    }

    fn initialize(&self, params: Option<&Value>) -> (Value, Session) {
        let requested = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = if is_supported(requested) {
            requested
        } else {
            SUPPORTED_VERSIONS[0]
        };
        let session = self.sessions.create(version);
        let result = json!({
            "protocolVersion": version,
            "capabilities": { "tools": { "listChanged": false } },
            "serverInfo": { "name": "mcp-cockpit", "title": "MCP Cockpit", "version": env!("CARGO_PKG_VERSION") },
            "instructions": "Run model evaluations with run_eval and follow them with job_status, or live over \
                SSE at /sse?topic=job/<jobId>. Every result is also JSON text in content[0].text."
        });
        (result, session)
    }
}
