//! `/mcp`: POST carries JSON-RPC; DELETE ends a session; GET opens the session's server-to-client stream.
//! Lenient with the kit's curl commands: no `Content-Type` or `Accept` needed, no session needed.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use futures_util::stream::LocalBoxStream;
use futures_util::StreamExt;

use super::mcp_stream::{session_stream, Position, Projection, Setup};
use super::{AppState, ClientKey};
use crate::auth::Caller;
use crate::broker::Subscription;
use crate::events::TopicFilter;
use crate::mcp::call_streams::{self, Outgoing};
use crate::mcp::jsonrpc;
use crate::mcp::{self as protocol, modern, PostContext, PostReply, Session};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

use super::errors::rpc as rpc_error;

/// The body, or a 413 reply as soon as it is known to be over `limit` (by `Content-Length` or while reading),
/// or a 408 when the whole body has not arrived within `deadline` (a client trickling bytes holds a worker's
/// connection and memory otherwise).
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<web::Bytes, HttpResponse> {
    match tokio::time::timeout(deadline, read_limited(req, payload, limit)).await {
        Ok(read) => read,
        Err(_) => Err(rpc_error(
            StatusCode::REQUEST_TIMEOUT,
            jsonrpc::INVALID_REQUEST,
            format!(
                "Request timeout: the body did not arrive within {} s",
                deadline.as_secs_f64()
            ),
        )),
    }
}

async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, HttpResponse> {
    let too_large = || {
        rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            jsonrpc::INVALID_REQUEST,
            format!("Payload too large: the request body may be at most {limit} bytes"),
        )
    };
    let declared = header_str(req, "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            rpc_error(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                format!("Bad Request: the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A request refused before JSON-RPC: its HTTP status and message (sent as a JSON-RPC error object).
struct Refusal(StatusCode, String);

impl Refusal {
    fn response(self) -> HttpResponse {
        rpc_error(self.0, jsonrpc::INVALID_REQUEST, self.1)
    }
}

/// 400 with the versions we speak for an `MCP-Protocol-Version` we do not.
fn check_version(req: &HttpRequest) -> Result<Option<&str>, Box<HttpResponse>> {
    let version = header_str(req, VERSION_HEADER);
    match version.filter(|v| !protocol::is_supported(v) && *v != modern::VERSION) {
        None => Ok(version),
        Some(v) => Err(Box::new(HttpResponse::BadRequest().json(jsonrpc::failure(
            serde_json::Value::Null,
            &modern::unsupported(v),
        )))),
    }
}

/// The session the request names (404 if it ended, never existed, or is another client's); `None` when it
/// names none.
fn named_session(
    req: &HttpRequest,
    state: &AppState,
    client: &ClientKey,
) -> Result<Option<Session>, Refusal> {
    let Some(id) = header_str(req, SESSION_HEADER) else {
        return Ok(None);
    };
    state
        .mcp
        .sessions
        .get(id, &client.0)
        .map(Some)
        .ok_or_else(|| {
            Refusal(
                StatusCode::NOT_FOUND,
                "Session not found: it ended or never existed; send initialize for a new one"
                    .into(),
            )
        })
}

pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    (caller, client): (Caller, ClientKey),
    state: web::Data<AppState>,
) -> HttpResponse {
    let version = match check_version(&req) {
        Ok(version) => version,
        Err(refused) => return *refused,
    };
    // The modern revision has no sessions: a session header beside it is ignored.
    let session = match version {
        Some(modern::VERSION) => None,
        _ => match named_session(&req, &state, &client) {
            Ok(session) => session,
            Err(refusal) => return refusal.response(),
        },
    };
    let charge = |cost: u32| state.guard.charge(&client, cost);
    let context = PostContext {
        session: session.as_ref(),
        headers: modern::Headers {
            protocol_version: version,
            method: header_str(&req, "mcp-method"),
            name: header_str(&req, "mcp-name"),
        },
        caller: &caller,
        client: &client.0,
        charge: &charge,
    };
    let body = match read_body(&req, payload, state.body_limit, state.body_read_timeout).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match state.mcp.handle_post(&body, &context).await {
        PostReply::Accepted => HttpResponse::Accepted().finish(),
        PostReply::Refused(body) => HttpResponse::BadRequest().json(body),
        PostReply::MethodNotFound(body) => HttpResponse::NotFound().json(body),
        PostReply::Listen {
            id,
            uris,
            task_ids,
            acknowledged,
        } => {
            let projection = Projection::Listen {
                id,
                uris: uris.into_iter().collect(),
                tasks: task_ids.into_iter().collect(),
                acknowledged,
            };
            listen(&state, &client, projection).await
        }
        PostReply::RateLimited(wait) => super::guard::mcp_rate_limited(wait),
        PostReply::Stream(messages) => call_stream(messages, state.sse.retry_ms),
        PostReply::Json { body, new_session } => {
            let mut response = HttpResponse::Ok();
            if let Some(id) = new_session {
                response.insert_header((SESSION_HEADER, id));
            }
            response.json(body)
        }
    }
}

/// A `subscriptions/listen` stream: counted against the client's stream limit like any other stream.
async fn listen(state: &AppState, client: &ClientKey, projection: Projection) -> HttpResponse {
    let permit = match state.guard.stream_permit(client, true) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let Ok(live) = Subscription::open(&state.broker, vec![TopicFilter::All], state.sse.queue).await
    else {
        return broker_stopping();
    };
    let stream = session_stream(Setup {
        projection,
        live,
        store: state.store.clone(),
        resume: None,
        retry_ms: state.sse.retry_ms,
        keep_alive: state.sse.keep_alive,
    });
    super::held_event_stream(stream, permit)
}

fn broker_stopping() -> HttpResponse {
    rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        jsonrpc::INTERNAL_ERROR,
        "the event broker is stopping".into(),
    )
}

/// A streamed call as `text/event-stream`: the priming event carries the reconnect hint.
fn call_stream(messages: LocalBoxStream<'static, Outgoing>, retry_ms: u64) -> HttpResponse {
    let frames = messages.map(move |outgoing| {
        let text = match outgoing {
            Outgoing::Event {
                id: Some(id),
                message: None,
            } => format!("retry: {retry_ms}\n\nid: {id}\ndata: \n\n"),
            Outgoing::Event { id, message } => {
                let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
                let data = message.map(|m| m.to_string()).unwrap_or_default();
                format!("{id}data: {data}\n\n")
            }
            Outgoing::KeepAlive => ": keep-alive\n\n".to_string(),
        };
        Ok::<_, std::convert::Infallible>(web::Bytes::from(text))
    });
    super::event_stream(frames)
}

/// `GET /mcp` with the `Last-Event-ID` of a streamed call's event: the rest of that call's stream, to its
/// response. 404 once it has been forgotten (or was never this client's).
fn resume_call(
    state: &AppState,
    client: &ClientKey,
    (stream, after): (String, usize),
) -> HttpResponse {
    match state
        .mcp
        .streams
        .follow(&stream, &client.0, after, (true, state.sse.keep_alive))
    {
        Some(rest) => call_stream(rest, state.sse.retry_ms),
        None => rpc_error(
            StatusCode::NOT_FOUND,
            jsonrpc::INVALID_REQUEST,
            "Not Found: that call's stream has ended and been forgotten; read the result with the job's tools"
                .into(),
        ),
    }
}

/// Only the client that created a session may end it.
pub async fn delete(
    req: HttpRequest,
    client: ClientKey,
    state: web::Data<AppState>,
) -> HttpResponse {
    match header_str(&req, SESSION_HEADER) {
        None => rpc_error(
            StatusCode::BAD_REQUEST,
            jsonrpc::INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header required".into(),
        ),
        Some(id) if state.mcp.sessions.end(id, &client.0) => HttpResponse::NoContent().finish(),
        Some(_) => rpc_error(
            StatusCode::NOT_FOUND,
            jsonrpc::INVALID_REQUEST,
            "Session not found".into(),
        ),
    }
}

/// `GET /mcp`: the session's server-to-client stream. A client that does not accept `text/event-stream`
/// gets 405, as MCP says.
pub async fn get(req: HttpRequest, client: ClientKey, state: web::Data<AppState>) -> HttpResponse {
    let accepts_sse = header_str(&req, "accept").is_some_and(|a| a.contains("text/event-stream"));
    if !accepts_sse {
        let mut refusal = rpc_error(
            StatusCode::METHOD_NOT_ALLOWED,
            jsonrpc::INVALID_REQUEST,
            "Method Not Allowed: GET /mcp opens a session's event stream and needs \
             `Accept: text/event-stream` with the Mcp-Session-Id from initialize; send JSON-RPC messages \
             with POST /mcp"
                .into(),
        );
        refusal.headers_mut().insert(
            header::ALLOW,
            header::HeaderValue::from_static("GET, POST, DELETE"),
        );
        return refusal;
    }
    match check_version(&req) {
        Err(refused) => return *refused,
        Ok(Some(modern::VERSION)) => {
            let mut refusal = rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                jsonrpc::INVALID_REQUEST,
                format!(
                    "Method Not Allowed: protocol {} has no GET stream; POST subscriptions/listen instead",
                    modern::VERSION
                ),
            );
            refusal
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            return refusal;
        }
        Ok(_) => {}
    }
    if let Some(call) = header_str(&req, "last-event-id").and_then(call_streams::parse_event_id) {
        return resume_call(&state, &client, call);
    }
    let session = match named_session(&req, &state, &client) {
        Ok(Some(session)) => session,
        Ok(None) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "Bad Request: GET /mcp needs the Mcp-Session-Id from initialize".into(),
            )
        }
        Err(refusal) => return refusal.response(),
    };
    let permit = match state.guard.stream_permit(&client, true) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    // Without Last-Event-ID the stream starts where the session did, so nothing since initialize is missed.
    let resume = header_str(&req, "last-event-id")
        .and_then(Position::parse)
        .or(Some(Position::after(session.since)));
    let Ok(live) = Subscription::open(&state.broker, vec![TopicFilter::All], state.sse.queue).await
    else {
        return broker_stopping();
    };
    let stream = session_stream(Setup {
        projection: Projection::Session(session.state),
        live,
        store: state.store.clone(),
        resume,
        retry_ms: state.sse.retry_ms,
        keep_alive: state.sse.keep_alive,
    });
    super::held_event_stream(stream, permit)
}
