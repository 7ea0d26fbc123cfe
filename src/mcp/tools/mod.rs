//! MCP tools: their definitions for `tools/list`, and `tools/call` — protocol errors (-32602 for an unknown
//! tool or malformed params) versus tool results, where bad arguments and domain refusals are `isError`
//! results a person or an LLM can act on.

mod args;
mod canaries;
mod evaluate;
mod jobs;
mod models;
mod notes;

pub use canaries::{canary_view, RECENT_CHECKS};
pub use jobs::job_view;
pub use models::gate_view;

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use serde_json::{json, Value};

use super::jsonrpc::{self, RpcError};
use crate::broker::Broker;
use crate::canary::policy::{Limits, PolicyTable};
use crate::canary::{CanaryRegistry, PrometheusPoller, StartRules};
use crate::failpoints::Failpoint;
use crate::jobs::{Registry, TaskCatalog};
use crate::recorder::Recorder;
use crate::storage::DbPool;
use crate::webhooks::Webhooks;

/// Everything a tool may reach.
#[derive(Clone)]
pub struct ToolContext {
    pub pool: DbPool,
    pub registry: Addr<Registry>,
    pub canaries: Addr<CanaryRegistry>,
    /// Delivers promotion and rollback webhooks (for decisions a tool makes on a canary's row itself).
    pub webhooks: Option<Addr<Webhooks>>,
    /// Owns the SLO source (for `evaluate_slo`).
    pub poller: Addr<PrometheusPoller>,
    /// Canary policy defaults from config.
    pub policies: Arc<PolicyTable>,
    /// Bounds every started canary's policy must keep.
    pub limits: Limits,
    /// What a start is checked against inside its transaction.
    pub start_rules: StartRules,
    /// Said in `start_canary`'s `warnings` (e.g. that a ratio query judges error rates as point values).
    pub canary_warnings: Arc<Vec<String>>,
    pub broker: Addr<Broker>,
    pub recorder: Recorder,
    pub catalog: Arc<TaskCatalog>,
    /// SIGTERM → SIGKILL grace of jobs, to bound how long `cancel_job` waits.
    pub kill_grace: Duration,
    pub subscriber_queue: usize,
    /// The armed test failpoint (`tool_panic`), if any.
    pub failpoint: Option<Failpoint>,
}

/// What a waiting `run_eval` tells a caller that asked for progress.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressUpdate {
    /// The job it waits on (so `notifications/cancelled` can cancel it).
    Job(String),
    Step {
        progress: f64,
        message: Option<String>,
    },
}

pub type ProgressSink = tokio::sync::mpsc::UnboundedSender<ProgressUpdate>;

/// Who is calling, as recorded in `audit` (a keyed fingerprint, never the key).
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: String,
}

impl Caller {
    /// The actor of every call when no keys are configured.
    pub const KEYLESS: &'static str = "keyless";

    pub fn keyless() -> Self {
        Self {
            actor: Self::KEYLESS.into(),
        }
    }

    pub fn is_keyless(&self) -> bool {
        self.actor == Self::KEYLESS
    }
}

/// The tools layer's error type.
#[derive(Debug)]
pub enum ToolError {
    /// An argument broke the schema or a rule.
    InvalidArgument {
        field: String,
        problem: String,
        example: &'static str,
    },
    /// A refusal the caller can act on (unknown id, ended job, full queue).
    Refused(String),
    /// Our fault: logged, reported as JSON-RPC -32603 without internals.
    Internal(String),
}

pub fn internal(e: impl std::fmt::Display) -> ToolError {
    ToolError::Internal(e.to_string())
}

pub fn definitions() -> Vec<Value> {
    let mut all = jobs::definitions();
    all.extend(canaries::definitions());
    all.extend(models::definitions());
    all.extend(evaluate::definitions());
    all.extend(notes::definitions());
    all
}

impl ToolContext {
    /// `tools/call`: `params` must be an object with a known `name`; `arguments` default to `{}`.
    /// `progress`, when the request carried a progress token, hears the job of a waiting `run_eval` and its
    /// progress.
    pub async fn call(
        &self,
        params: Option<Value>,
        caller: &Caller,
        progress: Option<&ProgressSink>,
    ) -> Result<Value, RpcError> {
        let Some(Value::Object(mut params)) = params else {
            return Err(RpcError::new(
                jsonrpc::INVALID_PARAMS,
                "Invalid params: tools/call needs an object with `name`",
            ));
        };
        let Some(Value::String(name)) = params.remove("name") else {
            return Err(RpcError::new(
                jsonrpc::INVALID_PARAMS,
                "Invalid params: `name` (a tool name string) is required",
            ));
        };
        let arguments = params.remove("arguments").unwrap_or_else(|| json!({}));
        let dispatched = jsonrpc::panic_boundary(self.dispatch(&name, caller, arguments, progress));
        let outcome = match dispatched.await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                let known: Vec<String> = definitions()
                    .iter()
                    .filter_map(|d| d["name"].as_str().map(String::from))
                    .collect();
                return Err(RpcError::new(
                    jsonrpc::INVALID_PARAMS,
                    format!("Unknown tool: {name}. Known tools: {}", known.join(", ")),
                ));
            }
            Err(()) => return Err(jsonrpc::internal_error()),
        };
        match outcome {
            Ok(result) => Ok(json!({
                "content": [{ "type": "text", "text": result.to_string() }],
                "structuredContent": result,
                "isError": false,
            })),
            Err(ToolError::InvalidArgument {
                field,
                problem,
                example,
            }) => Ok(error_result(format!(
                "Invalid argument `{field}`: {problem}. Example of valid arguments: {example}"
            ))),
            Err(ToolError::Refused(message)) => Ok(error_result(message)),
            Err(ToolError::Internal(cause)) => {
                log::error!("tool {name} failed: {cause}");
                Err(jsonrpc::internal_error())
            }
        }
    }

    async fn dispatch(
        &self,
        name: &str,
        caller: &Caller,
        arguments: Value,
        progress: Option<&ProgressSink>,
    ) -> Option<Result<Value, ToolError>> {
        if name == "model_gates" && self.failpoint == Some(Failpoint::ToolPanic) {
            panic!("failpoint tool_panic: model_gates panics in its handler");
        }
        let outcome = match name {
            "run_eval" => jobs::run_eval(self, caller, arguments, progress).await,
            "job_status" | "status" => jobs::job_status(self, arguments).await,
            "list_jobs" => jobs::list_jobs(self, arguments).await,
            "cancel_job" => jobs::cancel_job(self, caller, arguments).await,
            "start_canary" => canaries::start_canary(self, caller, arguments).await,
            "abort_canary" => canaries::act(self, caller, "abort_canary", arguments).await,
            "canary_status" => canaries::canary_status(self, arguments).await,
            "list_canaries" => canaries::list_canaries(self, arguments).await,
            "pause_canary" => canaries::act(self, caller, "pause_canary", arguments).await,
            "resume_canary" => canaries::act(self, caller, "resume_canary", arguments).await,
            "promote_canary" => canaries::act(self, caller, "promote_canary", arguments).await,
            "promote_model" => models::promote_model(self, caller, arguments).await,
            "model_gates" => models::model_gates(self, arguments).await,
            "why" => models::why(self, arguments).await,
            "why_math" => models::why_math(self, arguments).await,
            "evaluate_slo" => evaluate::evaluate_slo(self, arguments).await,
            "publish_note" => notes::publish_note(self, caller, arguments).await,
            _ => return None,
        };
        Some(outcome)
    }
}

fn error_result(message: String) -> Value {
    json!({ "content": [{ "type": "text", "text": message }], "isError": true })
}
