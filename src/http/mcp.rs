//! `/mcp`: POST carries JSON-RPC; DELETE ends a session; GET (the server-to-client stream) is not offered.
//! Lenient with the kit's curl commands: no `Content-Type` or `Accept` needed, no session needed.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::auth::{self, AuthError};
use super::AppState;
use crate::mcp::jsonrpc::{self, RpcError};
use crate::mcp::{self as protocol, PostContext, PostReply};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

fn rpc_error(status: StatusCode, code: i64, message: String) -> HttpResponse {
    HttpResponse::build(status).json(jsonrpc::failure(Value::Null, &RpcError::new(code, message)))
}

fn unauthorized(error: AuthError) -> HttpResponse {
    let message = match error {
        AuthError::Missing => {
            "Unauthorized: send the API key as `X-API-Key: <key>` or `Authorization: Bearer <key>`"
        }
        AuthError::Wrong => "Unauthorized: the API key is not valid",
    };
    let mut response = rpc_error(
        StatusCode::UNAUTHORIZED,
        jsonrpc::UNAUTHORIZED,
        message.into(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(auth::CHALLENGE.1),
    );
    response
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub async fn post(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let caller = match state.auth.check(auth::presented_key(&req)) {
        Ok(caller) => caller,
        Err(e) => return unauthorized(e),
    };
    let version = header_str(&req, VERSION_HEADER);
    if let Some(v) = version.filter(|v| !protocol::is_supported(v)) {
        let message = format!(
            "Bad Request: unsupported MCP-Protocol-Version `{}`; supported: {}",
            v.chars().take(40).collect::<String>(),
            protocol::SUPPORTED_VERSIONS.join(", ")
        );
        return rpc_error(StatusCode::BAD_REQUEST, jsonrpc::INVALID_REQUEST, message);
    }
    let session = match header_str(&req, SESSION_HEADER) {
        None => None,
        Some(id) => {
            match state.mcp.sessions.get(id) {
                Some(session) => Some(session),
                None => {
                    let message = "Session not found: it ended or never existed; send initialize for a new one".into();
                    return rpc_error(StatusCode::NOT_FOUND, jsonrpc::INVALID_REQUEST, message);
                }
            }
        }
    };
    let context = PostContext {
        session: session.as_ref(),
        has_version_header: version.is_some(),
        caller: &caller,
    };
    match state.mcp.handle_post(&body, &context).await {
        PostReply::Accepted => HttpResponse::Accepted().finish(),
        PostReply::Json { body, new_session } => {
            let mut response = HttpResponse::Ok();
            if let Some(id) = new_session {
                response.insert_header((SESSION_HEADER, id));
            }
            response.json(body)
        }
    }
}

pub async fn delete(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(e) = state.auth.check(auth::presented_key(&req)) {
        return unauthorized(e);
    }
    match header_str(&req, SESSION_HEADER) {
        None => rpc_error(
            StatusCode::BAD_REQUEST,
            jsonrpc::INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header required".into(),
        ),
        Some(id) if state.mcp.sessions.end(id) => HttpResponse::NoContent().finish(),
        Some(_) => rpc_error(
            StatusCode::NOT_FOUND,
            jsonrpc::INVALID_REQUEST,
            "Session not found".into(),
        ),
    }
}

/// The server-to-client stream is not offered yet, which MCP allows: 405.
pub async fn get() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST, DELETE"))
        .finish()
}
