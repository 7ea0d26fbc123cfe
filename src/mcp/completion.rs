//! `completion/complete`: what may follow the characters typed so far in a prompt argument (task and config
//! ids, models, gates, canaries) or in a resource template's variable (job, canary and model ids).
//! Prefix-matched, sorted, at most [`MAX_VALUES`] with the total and whether there are more.

use serde_json::{json, Value};

use super::jsonrpc::{self, RpcError};
use super::prompts::{self, Source};
use super::ToolContext;
use crate::storage::completion::{Field, Matches};

/// The most values one answer carries (MCP's limit).
pub const MAX_VALUES: usize = 100;

const EXAMPLE: &str = r#"{"ref": {"type": "ref/prompt", "name": "explain_canary"}, "argument": {"name": "canaryId", "value": "canary_"}}"#;

fn invalid(message: &str) -> RpcError {
    RpcError::new(
        jsonrpc::INVALID_PARAMS,
        format!("Invalid params: {message}; e.g. {EXAMPLE}"),
    )
}

/// Where the completions of a reference's argument come from.
fn source_of(reference: &Value, argument: &str) -> Result<Source, RpcError> {
    match reference["type"].as_str() {
        Some("ref/prompt") => {
            let prompt = reference["name"]
                .as_str()
                .and_then(prompts::find)
                .ok_or_else(|| invalid("`ref.name` must name one of our prompts (prompts/list)"))?;
            prompt
                .arguments
                .iter()
                .find(|a| a.name == argument)
                .map(|a| a.source)
                .ok_or_else(|| invalid(&format!("prompt {} has no argument `{argument}`", prompt.name)))
        }
        Some("ref/resource") => match (reference["uri"].as_str(), argument) {
            (Some("cockpit://job/{jobId}"), "jobId") => Ok(Source::Job),
            (Some("cockpit://canary/{canaryId}"), "canaryId") => Ok(Source::Canary),
            (Some("cockpit://model/{modelId}"), "modelId") => Ok(Source::Model),
            _ => Err(invalid(
                "`ref.uri` must be one of our resource templates (resources/templates/list) and `argument.name` its variable",
            )),
        },
        _ => Err(invalid("`ref.type` must be \"ref/prompt\" or \"ref/resource\"")),
    }
}

/// Names from a fixed list that begin with `prefix`.
fn from_list<'a>(names: impl Iterator<Item = &'a String>, prefix: &str) -> Matches {
    let found: Vec<String> = names.filter(|n| n.starts_with(prefix)).cloned().collect();
    Matches {
        total: found.len(),
        values: found.into_iter().take(MAX_VALUES).collect(),
    }
}

pub async fn complete(ctx: &ToolContext, params: Option<&Value>) -> Result<Value, RpcError> {
    let params = params.ok_or_else(|| invalid("`ref` and `argument` are required"))?;
    let name = params["argument"]["name"]
        .as_str()
        .ok_or_else(|| invalid("`argument.name` (a string) is required"))?;
    let typed = params["argument"]["value"].as_str().ok_or_else(|| {
        invalid("`argument.value` (a string, the characters typed so far) is required")
    })?;
    // Cut to one character past the longest identifier: it still matches nothing, and a client's megabyte
    // of text never reaches the database.
    let prefix: String = typed.chars().take(129).collect();
    let source = source_of(&params["ref"], name)?;
    let stored = |field| async move { ctx.store.completions(field, &prefix, MAX_VALUES).await };
    let matches = match source {
        Source::Task => from_list(ctx.catalog.task_ids(), typed),
        Source::Config => {
            let task = params["context"]["arguments"]["taskId"].as_str();
            let configs = task
                .and_then(|t| ctx.catalog.get(t))
                .and_then(|t| t.configs.as_ref());
            configs.map_or_else(Matches::default, |c| from_list(c.iter(), typed))
        }
        Source::Model => stored(Field::ModelId).await?,
        Source::Gate => stored(Field::Gate).await?,
        Source::Canary => stored(Field::CanaryId).await?,
        Source::Job => stored(Field::JobId).await?,
    };
    let has_more = matches.total > matches.values.len();
    Ok(
        json!({"completion": {"values": matches.values, "total": matches.total, "hasMore": has_more}}),
    )
}
