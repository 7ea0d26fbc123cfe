//! MCP tools: their definitions for `tools/list`, and `tools/call` — protocol errors (-32602 for an unknown
//! tool or malformed params) versus tool results, where bad arguments and domain refusals are `isError`
//! results a person or an LLM can act on.

mod args;
mod canaries;
mod catalogue;
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
use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};

use super::jsonrpc::{self, with_sources, RpcError};
use super::session::SessionState;
use crate::auth::Caller;
use crate::broker::Broker;
use crate::canary::policy::{Limits, PolicyTable};
use crate::canary::{CanaryRegistry, PrometheusPoller, StartRules};
use crate::failpoints::{self, Failpoint};
use crate::ids::JobId;
use crate::jobs::{JobError, Registry, TaskCatalog};
use crate::recorder::Recorder;
use crate::storage::{Store, StoreError};
use crate::webhooks::Webhooks;

/// Everything a tool may reach.
#[derive(Clone)]
pub struct ToolContext {
    pub store: Store,
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
}

/// What a waiting `run_eval` tells a caller that asked for progress.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressUpdate {
    /// The job it waits on (so `notifications/cancelled` can cancel it).
    Job(JobId),
    Step {
        progress: f64,
        message: Option<String>,
    },
}

pub type ProgressSink = tokio::sync::mpsc::UnboundedSender<ProgressUpdate>;

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

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        ToolError::Internal(with_sources(&e))
    }
}

impl From<actix::MailboxError> for ToolError {
    fn from(e: actix::MailboxError) -> Self {
        ToolError::Internal(format!("an actor is gone: {e}"))
    }
}

impl From<JobError> for ToolError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::QueueFull(max) => ToolError::Refused(format!(
                "The job queue is full ({max} waiting). Try again when jobs have finished, or cancel some \
                 with cancel_job."
            )),
            other => ToolError::Internal(with_sources(&other)),
        }
    }
}

/// What a tool call carries besides the context.
pub struct Call<'a> {
    pub caller: &'a Caller,
    pub arguments: Value,
    /// Hears the job of a waiting `run_eval` and its progress, when the request carried a progress token.
    pub progress: Option<&'a ProgressSink>,
    /// The session whose call this is: what the call starts becomes its business.
    pub session: Option<&'a SessionState>,
}

/// Who hears of a call besides its reply.
#[derive(Clone, Copy, Default)]
pub struct Listeners<'a> {
    /// Hears the job of a waiting `run_eval` and its progress, when the request carried a progress token.
    pub progress: Option<&'a ProgressSink>,
    /// The session the call was made in, if any.
    pub session: Option<&'a SessionState>,
}

type Handler =
    for<'a> fn(&'a ToolContext, Call<'a>) -> LocalBoxFuture<'a, Result<Value, ToolError>>;

/// One tool: its name, its definition for `tools/list`, the example of valid arguments its errors show,
/// and its handler. The whole table is `catalogue::TOOLS`.
pub struct Tool {
    pub name: &'static str,
    /// Other names it answers to, unlisted (`status` for `job_status`, as the original server had).
    pub aliases: &'static [&'static str],
    pub definition: fn() -> Value,
    pub example: &'static str,
    /// Parses arguments with the tool's own argument type (a unit test feeds it the example).
    pub parses: fn(Value) -> Result<(), ToolError>,
    pub handler: Handler,
}

/// A tool's answer as `tools/call` returns it: the JSON as text for every client, and structured.
pub fn tool_result(result: &Value) -> Value {
    json!({
        "content": [{ "type": "text", "text": result.to_string() }],
        "structuredContent": result,
        "isError": false,
    })
}

fn all_tools() -> impl Iterator<Item = &'static Tool> {
    catalogue::TOOLS.iter()
}

fn find(name: &str) -> Option<&'static Tool> {
    all_tools().find(|tool| tool.name == name || tool.aliases.contains(&name))
}

pub fn definitions() -> Vec<Value> {
    all_tools().map(|tool| (tool.definition)()).collect()
}

impl ToolContext {
    /// `tools/call`: `params` must be an object with a known `name`; `arguments` default to `{}`.
    /// `progress`, when the request carried a progress token, hears the job of a waiting `run_eval` and its
    /// progress.
    pub async fn call(
        &self,
        params: Option<Value>,
        caller: &Caller,
        listeners: Listeners<'_>,
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
        let dispatched =
            jsonrpc::panic_boundary(self.dispatch(&name, caller, arguments, listeners));
        let outcome = match dispatched.await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                let known: Vec<&str> = all_tools().map(|tool| tool.name).collect();
                return Err(RpcError::new(
                    jsonrpc::INVALID_PARAMS,
                    format!("Unknown tool: {name}. Known tools: {}", known.join(", ")),
                ));
            }
            Err(()) => return Err(jsonrpc::internal_error()),
        };
        match outcome {
            Ok(result) => Ok(tool_result(&result)),
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
        listeners: Listeners<'_>,
    ) -> Option<Result<Value, ToolError>> {
        if name == "model_gates" && failpoints::armed(Failpoint::ToolPanic) {
            panic!("failpoint tool_panic: model_gates panics in its handler");
        }
        let tool = find(name)?;
        let call = Call {
            caller,
            arguments,
            progress: listeners.progress,
            session: listeners.session,
        };
        Some((tool.handler)(self, call).await)
    }
}

fn error_result(message: String) -> Value {
    json!({ "content": [{ "type": "text", "text": message }], "isError": true })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example every error of a tool shows is valid for that very tool, names only keys its schema
    /// has, and each definition carries the name the tool is called by.
    #[test]
    fn every_tool_s_example_parses_with_its_own_argument_type() {
        let mut names = std::collections::HashSet::new();
        for tool in all_tools() {
            assert!(names.insert(tool.name), "{} listed twice", tool.name);
            let example: Value = serde_json::from_str(tool.example).expect("the example is JSON");
            if let Err(e) = (tool.parses)(example.clone()) {
                panic!(
                    "{}: its example {} does not parse: {e:?}",
                    tool.name, tool.example
                );
            }
            let definition = (tool.definition)();
            assert_eq!(definition["name"], tool.name);
            let properties = &definition["inputSchema"]["properties"];
            for key in example.as_object().expect("an object").keys() {
                assert!(
                    properties.get(key).is_some(),
                    "{}: the example's `{key}` is not in its input schema",
                    tool.name
                );
            }
        }
        assert!(find("status").is_some_and(|tool| tool.name == "job_status"));
    }

    /// Every field the `sloPolicy` schema offers is one the policy type takes (it refuses unknown ones).
    #[test]
    fn the_slo_policy_schema_names_only_fields_the_policy_takes() {
        let schema = args::slo_policy_schema();
        let properties = schema["properties"].as_object().expect("properties");
        for (name, property) in properties {
            let value = match property["type"].as_str() {
                Some("object") => json!({}),
                Some("integer") => json!(1),
                Some(_) => json!(0.5),
                None => json!("30s"),
            };
            let patch = serde_json::from_value::<crate::config::policy::PolicyPatch>(
                json!({ name: value }),
            );
            assert!(patch.is_ok(), "{name}: {patch:?}");
        }
        assert!(
            properties.contains_key("latency_p95_ms") && properties.contains_key("maxStaleness")
        );
        // The duration forms the schema's pattern describes are the ones the server reads.
        for text in ["250ms", "30s", "5m", "1h5m", "1.5", "1d"] {
            assert!(
                crate::config::policy::parse_duration(text).is_ok(),
                "{text}"
            );
        }
    }

    /// An MCP-only agent cannot open `GET /sse`: descriptions send it to tools and resources; the tools that
    /// query Prometheus say they reach outside.
    #[test]
    fn descriptions_point_to_mcp_and_prometheus_tools_are_open_world() {
        for tool in all_tools() {
            let definition = (tool.definition)();
            let description = definition["description"].as_str().unwrap_or_default();
            assert!(
                !description.contains("/sse"),
                "{}: {description}",
                tool.name
            );
            let properties = definition["inputSchema"]["properties"]
                .as_object()
                .expect("an input schema");
            for (name, property) in properties {
                assert!(
                    property["description"].is_string(),
                    "{}: `{name}` has no description",
                    tool.name
                );
            }
            let open_world = matches!(tool.name, "start_canary" | "evaluate_slo");
            assert_eq!(
                definition["annotations"]["openWorldHint"], open_world,
                "{}",
                tool.name
            );
        }
        assert!(find("nope").is_none());
    }
}
