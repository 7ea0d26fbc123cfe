//! The MCP protocol over Streamable HTTP, independent of the HTTP framework: version negotiation,
//! sessions, method dispatch, batches, and tools. The HTTP route only maps a [`PostReply`] to a response.

pub mod jsonrpc;
pub mod logging;
pub mod notify;
mod progress;
pub mod resources;
pub mod session;
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
pub enum PostReply {
    /// Only notifications or responses were sent: 202 with no body.
    Accepted,
    /// A JSON-RPC response (or batch of them), with the new session id after `initialize`.
    Json {
        body: Value,
        new_session: Option<String>,
    },
    /// Messages to send as `text/event-stream`: progress notifications, then the response.
    Stream(futures_util::stream::LocalBoxStream<'static, Value>),
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
    pub in_flight: progress::InFlight,
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
        if let Some(stream) = self.streamed(&message, post) {
            return PostReply::Stream(stream);
        }
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
            Incoming::Notification { method, params } => {
                log::debug!("notification {method}");
                if method == "notifications/cancelled" {
                    let session = post.session.map(|s| s.id.as_str());
                    self.in_flight.cancel(&self.tools, session, params.as_ref());
                }
                (None, None)
            }
            Incoming::Response => (None, None),
            Incoming::Invalid { id, error } => (Some(jsonrpc::failure(id, &error)), None),
            Incoming::Request { id, method, params } => {
                let mut new_session = None;
                let outcome = match method.as_str() {
                    "initialize" => match self.initialize(params.as_ref()).await {
                        Ok((result, session)) => {
                            new_session = Some(session.id);
                            Ok(result)
                        }
                        Err(e) => Err(e),
                    },
                    "ping" => Ok(json!({})),
                    "tools/list" => Ok(json!({ "tools": tools::definitions() })),
                    "tools/call" => self.tools.call(params, post.caller, None).await,
                    "logging/setLevel" => set_level(post.session, params.as_ref()),
                    "resources/list" => resources::list(&self.tools, params.as_ref()).await,
                    "resources/templates/list" => Ok(resources::templates()),
                    "resources/read" => resources::read(&self.tools, params.as_ref()).await,
                    "resources/subscribe" | "resources/unsubscribe" => {
                        subscription(post.session, &method, params.as_ref())
                    }
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

    /// A single waiting `tools/call` with a progress token is answered as a stream.
    fn streamed(
        &self,
        message: &Value,
        post: &PostContext<'_>,
    ) -> Option<futures_util::stream::LocalBoxStream<'static, Value>> {
        if message["method"] != "tools/call" || message["jsonrpc"] != "2.0" {
            return None;
        }
        let id = message
            .get("id")
            .filter(|id| id.is_string() || id.is_number())?
            .clone();
        let params = message.get("params").cloned();
        let token = progress::progress_token(params.as_ref())?;
        let key = progress::InFlight::key(post.session.map(|s| s.id.as_str()), &id);
        Some(progress::stream_call(
            self.tools.clone(),
            self.in_flight.clone(),
            key,
            (id, params, token),
            post.caller.clone(),
        ))
    }

    async fn initialize(&self, params: Option<&Value>) -> Result<(Value, Session), RpcError> {
        let requested = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = if is_supported(requested) {
            requested
        } else {
            SUPPORTED_VERSIONS[0]
        };
        let since = crate::storage::blocking(&self.tools.pool, crate::storage::events::latest_seq)
            .await
            .map_err(|e| {
                log::error!("initialize: {e}");
                RpcError::new(
                    jsonrpc::INTERNAL_ERROR,
                    "Internal error; the server log has the details",
                )
            })?;
        let session = self.sessions.create(version, since);
        let result = json!({
            "protocolVersion": version,
            "capabilities": {
                "tools": { "listChanged": false },
                "logging": {},
                "resources": { "subscribe": true, "listChanged": false }
            },
            "serverInfo": { "name": "mcp-cockpit", "title": "MCP Cockpit", "version": env!("CARGO_PKG_VERSION") },
            "instructions": "Run model evaluations with run_eval and follow them with job_status, or live over \
                SSE at /sse?topic=job/<jobId>. Every result is also JSON text in content[0].text."
        });
        Ok((result, session))
    }
}

/// Session-scoped methods need a session to remember their effect in.
fn session_of<'a>(session: Option<&'a Session>, method: &str) -> Result<&'a Session, RpcError> {
    session.ok_or_else(|| {
        RpcError::new(
            jsonrpc::INVALID_REQUEST,
            format!("Invalid Request: {method} needs a session: send initialize, then the Mcp-Session-Id header"),
        )
    })
}

/// `logging/setLevel {level}`: the least severe level the session's stream carries.
fn set_level(session: Option<&Session>, params: Option<&Value>) -> Result<Value, RpcError> {
    let session = session_of(session, "logging/setLevel")?;
    let text = params.and_then(|p| p.get("level")).and_then(Value::as_str);
    let level = text.and_then(logging::LogLevel::parse).ok_or_else(|| {
        RpcError::new(
            jsonrpc::INVALID_PARAMS,
            format!(
                "Invalid params: `level` must be one of {}",
                logging::LogLevel::names()
            ),
        )
    })?;
    session.state.set_log_level(level);
    Ok(json!({}))
}

/// `resources/subscribe` and `resources/unsubscribe {uri}`.
fn subscription(
    session: Option<&Session>,
    method: &str,
    params: Option<&Value>,
) -> Result<Value, RpcError> {
    let session = session_of(session, method)?;
    let (uri, _, _) = resources::uri_param(params)?;
    if method == "resources/subscribe" {
        session.state.subscribe(&uri);
    } else {
        session.state.unsubscribe(&uri);
    }
    Ok(json!({}))
}
