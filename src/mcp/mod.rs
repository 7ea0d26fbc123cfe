//! The MCP protocol over Streamable HTTP, independent of the HTTP framework: version negotiation,
//! sessions, method dispatch, batches, and tools. The HTTP route only maps a [`PostReply`] to a response.

pub mod call_streams;
mod completion;
pub mod jsonrpc;
pub mod logging;
pub mod modern;
pub mod notify;
mod progress;
pub mod prompts;
pub use progress::InFlight;
pub mod resources;
pub mod session;
pub mod tasks;
pub mod tools;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::auth::Caller;
use jsonrpc::{Incoming, RpcError};
pub use session::{Session, SessionStore};
pub use tools::ToolContext;

/// Newest first: an unknown requested version gets the first.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The one revision that allowed JSON-RPC batches.
const BATCH_VERSION: &str = "2025-03-26";
/// Elements one batch may hold; a longer batch is refused whole.
pub const MAX_BATCH: usize = 100;
/// Bytes of replies one batch may gather; the elements after that are answered with an error, unrun.
const MAX_BATCH_REPLY_BYTES: usize = 4 << 20;

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
    /// Messages to send as `text/event-stream`: progress notifications, then the response (in the handshake
    /// era after a priming event, every event with an id to resume from, keep-alives between).
    Stream(futures_util::stream::LocalBoxStream<'static, call_streams::Outgoing>),
    /// The body as a whole is refused (it does not parse, is a batch that cannot be taken, or is a modern
    /// request whose `_meta` or headers are wrong): nothing ran. The transport answers HTTP 400 with this
    /// JSON-RPC error.
    Refused(Value),
    /// A modern request for a method we do not have: HTTP 404 with this JSON-RPC error.
    MethodNotFound(Value),
    /// `subscriptions/listen`: a stream for the transport to open, acknowledged by `acknowledged` and then
    /// carrying updates of these resources and the state of these tasks, each tagged with the request's id.
    Listen {
        id: Value,
        uris: Vec<String>,
        task_ids: Vec<String>,
        acknowledged: Value,
    },
    /// A batch costs more than the client's rate limit has left: nothing ran; retry after this long.
    RateLimited(std::time::Duration),
}

/// What the transport knows about a POST.
pub struct PostContext<'a> {
    pub session: Option<&'a Session>,
    /// The headers a modern request mirrors its version, method and name in.
    pub headers: modern::Headers<'a>,
    pub caller: &'a Caller,
    /// Who the request is charged to (a key's fingerprint, or the address in keyless mode): it owns the
    /// sessions it creates and the calls it waits on.
    pub client: &'a str,
    /// Takes `n` more rate-limit tokens (the transport took one for the request; a batch costs one per
    /// element); `Err` is the time to wait.
    pub charge: &'a dyn Fn(u32) -> Result<(), std::time::Duration>,
}

pub struct McpServer {
    pub tools: ToolContext,
    pub sessions: SessionStore,
    pub in_flight: progress::InFlight,
    /// Streamed calls, resumable for a while.
    pub streams: call_streams::CallStreams,
    /// How long a stream stays quiet before a keep-alive comment.
    pub keep_alive: std::time::Duration,
}

impl McpServer {
    pub async fn handle_post(&self, body: &[u8], post: &PostContext<'_>) -> PostReply {
        let message: Value = match jsonrpc::parse_strict(body) {
            Ok(value) => value,
            Err(e) => {
                let error = RpcError::new(jsonrpc::PARSE_ERROR, format!("Parse error: {e}"));
                return PostReply::Refused(jsonrpc::failure(Value::Null, &error));
            }
        };
        if !message.is_array() && modern::is_modern(&message, &post.headers) {
            return self.handle_modern(message, post).await;
        }
        if let Some(stream) = self.streamed(&message, post, true) {
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
            None => post.headers.protocol_version.is_none(),
        };
        let refusal = if batch.is_empty() {
            Some("an empty batch".to_string())
        } else if !batch_allowed {
            Some("batches are only accepted in protocol 2025-03-26".to_string())
        } else if batch.len() > MAX_BATCH {
            Some(format!(
                "a batch holds at most {MAX_BATCH} messages (this one has {}); send the rest in another",
                batch.len()
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            let error = RpcError::new(jsonrpc::INVALID_REQUEST, format!("Invalid Request: {why}"));
            return PostReply::Refused(jsonrpc::failure(Value::Null, &error));
        }
        let extra = u32::try_from(batch.len() - 1).unwrap_or(u32::MAX);
        if let Err(wait) = (post.charge)(extra) {
            return PostReply::RateLimited(wait);
        }
        let mut replies = Vec::new();
        let mut reply_bytes = 0;
        for message in batch {
            if reply_bytes > MAX_BATCH_REPLY_BYTES {
                replies.extend(unrun(message));
                continue;
            }
            if message["method"] == "initialize" {
                let id = message.get("id").cloned().unwrap_or(Value::Null);
                let error = RpcError::new(
                    jsonrpc::INVALID_REQUEST,
                    "Invalid Request: initialize must be sent alone, not inside a batch",
                );
                replies.push(jsonrpc::failure(id, &error));
                continue;
            }
            if let (Some(reply), _) = self.handle_one(message, post).await {
                reply_bytes += serde_json::to_vec(&reply).map_or(0, |bytes| bytes.len());
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
                    let who = (post.client, session);
                    self.in_flight
                        .cancel(&self.tools, post.caller, who, params.as_ref())
                        .await;
                }
                (None, None)
            }
            Incoming::Response => (None, None),
            Incoming::Invalid { id, error } => (Some(jsonrpc::failure(id, &error)), None),
            Incoming::Request { id, method, params } => {
                let mut new_session = None;
                let handled = jsonrpc::panic_boundary(async {
                    match method.as_str() {
                        "initialize" => match self.initialize(params.as_ref(), post.client).await {
                            Ok((result, session)) => {
                                new_session = Some(session.id);
                                Ok(result)
                            }
                            Err(e) => Err(e),
                        },
                        "ping" => Ok(json!({})),
                        "logging/setLevel" => set_level(post.session, params.as_ref()),
                        "resources/subscribe" | "resources/unsubscribe" => {
                            self.subscription(post.session, &method, params.as_ref())
                                .await
                        }
                        _ => {
                            self.either_era(&id, &method, params, (post, tasks::Era::Legacy))
                                .await
                        }
                    }
                });
                let outcome = handled
                    .await
                    .unwrap_or_else(|()| Err(jsonrpc::internal_error()));
                let reply = match outcome {
                    Ok(result) => jsonrpc::success(id, result),
                    Err(error) => jsonrpc::failure(id, &error),
                };
                (Some(reply), new_session)
            }
        }
    }

    /// A single waiting `tools/call` with a progress token is answered as a stream.
    /// `resumable` (the handshake era): a priming event first and an id on every event, so a client that
    /// loses the stream can resume it; 2026-07-28 streams have neither.
    fn streamed(
        &self,
        message: &Value,
        post: &PostContext<'_>,
        resumable: bool,
    ) -> Option<futures_util::stream::LocalBoxStream<'static, call_streams::Outgoing>> {
        // A call made as a task answers at once instead.
        let task = message["params"].get("task").is_some_and(|t| !t.is_null());
        if message["method"] != "tools/call" || message["jsonrpc"] != "2.0" || task {
            return None;
        }
        let id = message
            .get("id")
            .filter(|id| jsonrpc::id_round_trips(id))?
            .clone();
        let params = message.get("params").cloned();
        let token = progress::progress_token(params.as_ref())?;
        let key = progress::InFlight::key(post.client, post.session.map(|s| s.id.as_str()), &id);
        let writer = self.streams.open(post.client);
        let stream_id = writer.id.clone();
        progress::stream_call(
            self.tools.clone(),
            self.in_flight.clone(),
            key.clone(),
            (id, params, token),
            (
                post.caller.clone(),
                post.session.map(|s| s.state.clone()),
                writer,
            ),
        );
        let follow =
            self.streams
                .follow(&stream_id, post.client, 0, (resumable, self.keep_alive))?;
        if !resumable {
            // Closing this stream cancels the request (2026-07-28), unless its response went out.
            let mut on_close = progress::CancelOnClose {
                in_flight: self.in_flight.clone(),
                tools: self.tools.clone(),
                caller: post.caller.clone(),
                key,
                answered: false,
            };
            let watched = follow.map(move |outgoing| {
                if let call_streams::Outgoing::Event {
                    message: Some(message),
                    ..
                } = &outgoing
                {
                    // Through a borrow of the whole guard, so the closure owns it (not just the flag).
                    let guard = &mut on_close;
                    guard.answered |= message.get("id").is_some();
                }
                outgoing
            });
            return Some(Box::pin(watched));
        }
        let priming = call_streams::Outgoing::Event {
            id: Some(format!("{stream_id}-0")),
            message: None,
        };
        Some(Box::pin(
            futures_util::stream::iter([priming]).chain(follow),
        ))
    }

    /// The methods both eras share (some in the shape of one era only).
    async fn either_era(
        &self,
        id: &Value,
        method: &str,
        params: Option<Value>,
        (post, era): (&PostContext<'_>, tasks::Era),
    ) -> Result<Value, RpcError> {
        let legacy = era == tasks::Era::Legacy;
        let listeners = tools::Listeners {
            progress: None,
            session: post.session.map(|s| &*s.state),
        };
        match method {
            "tools/list" if legacy => {
                Ok(json!({ "tools": tasks::with_task_support(tools::definitions()) }))
            }
            "tools/list" => Ok(json!({ "tools": tools::definitions() })),
            "tools/call" if tasks::wanted(params.as_ref(), era)? => {
                tasks::create(&self.tools, params, (post.caller, listeners), era).await
            }
            "tools/call" if progress::waits(params.as_ref()) => {
                let session = post.session.map(|s| s.id.as_str());
                let key = progress::InFlight::key(post.client, session, id);
                let session = post.session.map(|s| &*s.state);
                self.in_flight
                    .call_registered(&self.tools, key, params, (post.caller, session))
                    .await
            }
            "tools/call" => self.tools.call(params, post.caller, listeners).await,
            "tasks/get" => tasks::get(&self.tools, params.as_ref(), era).await,
            "tasks/cancel" => tasks::cancel(&self.tools, post.caller, params.as_ref(), era).await,
            "tasks/result" if legacy => tasks::result(&self.tools, params.as_ref()).await,
            "tasks/list" if legacy => tasks::list(&self.tools, params.as_ref()).await,
            "tasks/update" if !legacy => tasks::update(&self.tools, params.as_ref()).await,
            "resources/list" => resources::list(&self.tools, params.as_ref()).await,
            "resources/templates/list" => Ok(resources::templates()),
            "resources/read" => resources::read(&self.tools, params.as_ref()).await,
            "prompts/list" => Ok(prompts::list()),
            "prompts/get" => prompts::get(params.as_ref()),
            "completion/complete" => completion::complete(&self.tools, params.as_ref()).await,
            other => Err(RpcError::new(
                jsonrpc::METHOD_NOT_FOUND,
                format!("Method not found: {other}"),
            )),
        }
    }

    /// One modern (2026-07-28) message: admitted by its `_meta` and headers, then run with no session.
    async fn handle_modern(&self, message: Value, post: &PostContext<'_>) -> PostReply {
        let (id, method, params) = match jsonrpc::classify(message.clone()) {
            Incoming::Request { id, method, params } => (id, method, params),
            Incoming::Invalid { id, error } => {
                return PostReply::Refused(jsonrpc::failure(id, &error))
            }
            // The revision defines no notification a client sends over HTTP: taken and ignored.
            Incoming::Notification { .. } | Incoming::Response => return PostReply::Accepted,
        };
        if let Err(error) = modern::admit(&message, &method, &post.headers) {
            return PostReply::Refused(jsonrpc::failure(id, &error));
        }
        let post = PostContext {
            session: None,
            ..*post
        };
        let as_task = tasks::wanted(params.as_ref(), tasks::Era::Modern).unwrap_or(false);
        if let Some(stream) = (!as_task)
            .then(|| self.streamed(&message, &post, false))
            .flatten()
        {
            let finished = stream.map(|mut outgoing| {
                if let call_streams::Outgoing::Event {
                    message: Some(message),
                    ..
                } = &mut outgoing
                {
                    if let Some(result) = message.get_mut("result") {
                        *result = modern::complete("tools/call", result.take());
                    }
                }
                outgoing
            });
            return PostReply::Stream(Box::pin(finished));
        }
        if method == "subscriptions/listen" {
            return self.listen(id, params.as_ref()).await;
        }
        let handled = jsonrpc::panic_boundary(async {
            if method == "server/discover" {
                return Ok(modern::discover(capabilities(false), INSTRUCTIONS));
            }
            self.either_era(&id, &method, params, (&post, tasks::Era::Modern))
                .await
        })
        .await
        .unwrap_or_else(|()| Err(jsonrpc::internal_error()));
        match handled {
            Ok(result) => PostReply::Json {
                body: jsonrpc::success(id, modern::complete(&method, result)),
                new_session: None,
            },
            Err(error) if error.code == jsonrpc::METHOD_NOT_FOUND => {
                PostReply::MethodNotFound(jsonrpc::failure(id, &error))
            }
            Err(mut error) => {
                // This revision says "invalid params" for a resource that does not exist.
                if error.code == resources::RESOURCE_NOT_FOUND {
                    error.code = jsonrpc::INVALID_PARAMS;
                }
                PostReply::Json {
                    body: jsonrpc::failure(id, &error),
                    new_session: None,
                }
            }
        }
    }

    /// `subscriptions/listen`: resources to follow, and tasks for a client that declared the extension.
    async fn listen(&self, id: Value, params: Option<&Value>) -> PostReply {
        let tasks = match tasks::listened(&self.tools, params).await {
            Ok(tasks) => tasks,
            Err(error) if error.code == modern::MISSING_CAPABILITY => {
                return PostReply::Refused(jsonrpc::failure(id, &error))
            }
            Err(error) => {
                return PostReply::Json {
                    body: jsonrpc::failure(id, &error),
                    new_session: None,
                }
            }
        };
        match resources::listen(&self.tools, params).await {
            Ok((uris, mut acknowledged)) => {
                if params.is_some_and(|p| p.pointer("/notifications/taskIds").is_some()) {
                    acknowledged["notifications"]["taskIds"] = json!(tasks);
                }
                PostReply::Listen {
                    id,
                    uris,
                    task_ids: tasks,
                    acknowledged,
                }
            }
            Err(error) => PostReply::Json {
                body: jsonrpc::failure(id, &error),
                new_session: None,
            },
        }
    }

    async fn initialize(
        &self,
        params: Option<&Value>,
        owner: &str,
    ) -> Result<(Value, Session), RpcError> {
        let requested = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = if is_supported(requested) {
            requested
        } else {
            SUPPORTED_VERSIONS[0]
        };
        let since = self.tools.store.latest_seq().await.map_err(|e| {
            log::error!("initialize: {e}");
            jsonrpc::internal_error()
        })?;
        let session = self.sessions.create(version, since, owner).ok_or_else(|| {
            RpcError::new(
                jsonrpc::INTERNAL_ERROR,
                "Server busy: it holds as many sessions as it may; retry later, or call without a session",
            )
        })?;
        let result = json!({
            "protocolVersion": version,
            "capabilities": capabilities(true),
            "serverInfo": modern::server_info(),
            "instructions": INSTRUCTIONS,
        });
        Ok((result, session))
    }
}

/// What the server offers; `logging` (deprecated in 2026-07-28, which sets levels per request) only to the
/// handshake era, whose sessions have a level.
/// Tasks are the 2025-11-25 `tasks` capability there, and the `io.modelcontextprotocol/tasks` extension in
/// 2026-07-28.
fn capabilities(legacy: bool) -> Value {
    let mut offered = json!({
        "tools": { "listChanged": false },
        "resources": { "subscribe": true, "listChanged": false },
        "prompts": { "listChanged": false },
        "completions": {}
    });
    if legacy {
        offered["logging"] = json!({});
        offered["tasks"] = json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
    } else {
        offered["extensions"] = json!({ (tasks::EXTENSION): {} });
    }
    offered
}

const INSTRUCTIONS: &str = "The cockpit runs model evaluations and SLO-guarded canary promotions. run_eval starts \
    an eval (wait:true replies at its end; job_status follows it); evaluate_slo checks a gate once; \
    start_canary moves a model to a gate and promotes or rolls it back on its SLOs (canary_status, \
    why and why_math explain each decision; model_gates says where every model is). Jobs, canaries \
    and models are also resources (cockpit://job/<jobId>, cockpit://canary/<canaryId>, \
    cockpit://model/<modelId>) that can be subscribed to. Every result is also JSON text in \
    content[0].text.";

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

/// What a batch element past the reply cap gets instead of running (notifications and responses get none).
fn unrun(message: Value) -> Option<Value> {
    match jsonrpc::classify(message) {
        Incoming::Request { id, .. } | Incoming::Invalid { id, .. } => {
            let error = RpcError::new(
                jsonrpc::INVALID_REQUEST,
                format!(
                    "Invalid Request: not run, the batch's replies passed {MAX_BATCH_REPLY_BYTES} bytes; \
                     send this request again on its own"
                ),
            );
            Some(jsonrpc::failure(id, &error))
        }
        Incoming::Notification { .. } | Incoming::Response => None,
    }
}

impl McpServer {
    /// `resources/subscribe` and `resources/unsubscribe {uri}`: only existing entities, at most
    /// [`session::MAX_SUBSCRIPTIONS`] per session.
    async fn subscription(
        &self,
        session: Option<&Session>,
        method: &str,
        params: Option<&Value>,
    ) -> Result<Value, RpcError> {
        let session = session_of(session, method)?;
        let (uri, kind, id) = resources::uri_param(params)?;
        if method == "resources/unsubscribe" {
            session.state.unsubscribe(&uri);
            return Ok(json!({}));
        }
        if !resources::exists(&self.tools, kind, &id).await? {
            return Err(RpcError::new(
                resources::RESOURCE_NOT_FOUND,
                format!("Resource not found: {uri}; resources/list shows what exists"),
            ));
        }
        if !session.state.subscribe(&uri) {
            return Err(RpcError::new(
                jsonrpc::INVALID_PARAMS,
                format!(
                    "Invalid params: a session may subscribe to at most {} resources; unsubscribe from one first",
                    session::MAX_SUBSCRIPTIONS
                ),
            ));
        }
        Ok(json!({}))
    }
}
