//! Integration tests: each test starts the real application (`Application::build`) or the real binary on a
//! free loopback port with a database of its own, and drives it over HTTP. Jobs run real subprocesses. The
//! whole suite runs twice in the test command: on SQLite files, then on a PostgreSQL cluster
//! (`backend.rs`).

#![allow(
    clippy::expect_used,
    reason = "test helpers stop the test with a message when the system under test misbehaves"
)]

mod attacks;
mod attacks_evals;
mod backend;
mod bad_input;
mod bad_numbers;
mod canaries;
mod canary_recovery;
mod canary_rules;
mod crash;
mod helpers;
mod jobs;
mod layers;
mod mcp;
mod mcp_modern;
mod mcp_prompts;
mod mcp_stream;
mod mcp_tasks;
mod nginx;
mod notes;
mod operations;
mod panics;
mod postgres;
mod prom_harness;
mod prometheus_evidence;
mod prometheus_fake;
mod prometheus_real;
mod restart;
mod security;
mod sse;
mod startup;
mod streams;
mod webhooks;
