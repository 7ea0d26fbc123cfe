//! HTTP routes: `/mcp` (MCP Streamable HTTP), `/sse` (event streams), `/healthz`, `/readyz`, all behind the
//! [`gate`] (host, origin, key, rate). Handlers reach storage only through the storage module, the actors,
//! or the MCP layer.

mod assets;
mod auth;
mod errors;
mod guard;
mod health;
mod mcp;
mod mcp_stream;
pub(crate) mod sse;

use std::time::Duration;

use actix::Addr;
use actix_web::web;

pub use guard::{gate, ClientKey, Guard, RateLimiter, SitePolicy, StreamLimits, TrustedProxies};

use crate::broker::Broker;
use crate::canary::PrometheusPoller;
use crate::mcp::McpServer;
use crate::storage::Store;

/// Shared by every worker.
pub struct AppState {
    pub store: Store,
    pub broker: Addr<Broker>,
    pub guard: Guard,
    /// Owns the SLO source; `/readyz` asks it whether Prometheus answers.
    pub slo: Addr<PrometheusPoller>,
    pub mcp: McpServer,
    pub sse: SseConfig,
    /// Largest `/mcp` request body; bigger → 413.
    pub body_limit: usize,
    /// Longest an admitted request may take to send its body; slower → 408.
    pub body_read_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SseConfig {
    pub keep_alive: Duration,
    pub retry_ms: u64,
    pub queue: usize,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/mcp")
            .route(web::post().to(mcp::post))
            .route(web::delete().to(mcp::delete))
            .route(web::get().to(mcp::get)),
    )
    .route("/sse", web::get().to(sse::stream))
    .route("/", get_or_head().to(assets::cockpit))
    .route("/probe", get_or_head().to(assets::probe))
    .route("/sseClient.js", get_or_head().to(assets::client))
    .route("/cockpit.js", get_or_head().to(assets::cockpit_script))
    .route("/favicon.svg", get_or_head().to(assets::favicon))
    .route("/favicon.ico", get_or_head().to(assets::favicon))
    .route("/healthz", get_or_head().to(health::alive))
    .route("/metrics", get_or_head().to(health::metrics))
    .route("/readyz", get_or_head().to(health::ready));
}

/// GET, and HEAD wherever GET is a plain document (the server sends the head without the body).
fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// [`event_stream`] for a long-lived stream: its permit is given back when the response body is dropped.
pub(crate) fn held_event_stream<S>(
    stream: S,
    permit: guard::StreamPermit,
) -> actix_web::HttpResponse
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + 'static,
{
    use futures_util::StreamExt;
    event_stream(stream.map(move |frame| {
        let _held = &permit;
        frame
    }))
}

/// A `text/event-stream` response with the headers every stream needs: no caching, no proxy buffering.
pub(crate) fn event_stream<S>(stream: S) -> actix_web::HttpResponse
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + 'static,
{
    actix_web::HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}
