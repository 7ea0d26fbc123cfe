//! HTTP routes: `/mcp` (MCP Streamable HTTP), `/sse` (event streams), `/healthz`, `/readyz`, all behind the
//! [`gate`] (host, origin, key, rate). Handlers reach storage only through the storage module, the actors,
//! or the MCP layer.

mod assets;
mod auth;
mod guard;
mod health;
mod mcp;
mod mcp_stream;
mod sse;

use std::time::Duration;

use actix::Addr;
use actix_web::web;

pub use auth::Auth;
pub use guard::{gate, Guard, RateLimiter, SitePolicy, TrustedProxies};

use crate::broker::Broker;
use crate::canary::PrometheusPoller;
use crate::mcp::McpServer;
use crate::storage::DbPool;

/// Shared by every worker.
pub struct AppState {
    pub pool: DbPool,
    pub broker: Addr<Broker>,
    pub guard: Guard,
    /// Owns the SLO source; `/readyz` asks it whether Prometheus answers.
    pub slo: Addr<PrometheusPoller>,
    pub mcp: McpServer,
    pub sse: SseConfig,
    /// Largest `/mcp` request body; bigger → 413.
    pub body_limit: usize,
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
    .route("/", web::get().to(assets::cockpit))
    .route("/probe", web::get().to(assets::probe))
    .route("/sseClient.js", web::get().to(assets::client))
    .route("/healthz", web::get().to(health::alive))
    .route("/metrics", web::get().to(health::metrics))
    .route("/readyz", web::get().to(health::ready));
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
