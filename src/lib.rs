//! mcp-cockpit: model evaluations and SLO-guarded canary promotions driven through MCP, watched live over
//! Server-Sent Events, recorded in SQLite.
//!
//! Actors: the [`jobs::Registry`] supervises one job actor per running eval; the [`canary::CanaryRegistry`]
//! one actor per active canary, fed by the [`canary::PrometheusPoller`]; the [`recorder::Recorder`] is the
//! single writer of state and events; the [`broker::Broker`] fans committed events out to SSE streams.

pub mod auth;
pub mod broker;
pub mod canary;
pub mod cli;
pub mod clock;
pub mod config;
mod demo_eval;
pub mod events;
pub mod failpoints;
pub mod fuzzing;
pub mod http;
pub mod ids;
pub mod jobs;
mod logging;
pub mod mcp;
pub mod metrics;
pub mod notes;
pub mod recorder;
pub mod retention;
pub mod seconds;
pub mod slo;
pub mod startup;
pub mod storage;
pub mod webhooks;
