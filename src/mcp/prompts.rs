//! MCP prompts: the cockpit's routines as an operator picks them from a client's slash menu — run an eval
//! and report it, promote a model safely, explain a canary's decision. Each renders one user message that
//! names the tools to call, in order, with the arguments filled in.

use serde_json::{json, Value};

use super::jsonrpc::{self, RpcError};
use crate::ids::{Ident, IDENT_RULE};

/// Where an argument's completions come from (`completion/complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Task,
    /// The configs the task named in the `taskId` argument allows.
    Config,
    Model,
    Gate,
    Canary,
    /// Resource templates only: no prompt takes a job.
    Job,
}

pub struct Argument {
    pub name: &'static str,
    pub description: &'static str,
    pub source: Source,
}

pub struct Prompt {
    pub name: &'static str,
    title: &'static str,
    description: &'static str,
    pub arguments: &'static [Argument],
    /// The message, given each argument's value in the order of `arguments`.
    render: fn(&[&str]) -> String,
}

pub const PROMPTS: [Prompt; 3] = [
    Prompt {
        name: "evaluate",
        title: "Run an eval and report it",
        description: "Runs an eval task with a config, waits for its end and reports its result",
        arguments: &[
            Argument { name: "taskId", description: "The eval task (run_eval's catalogue)", source: Source::Task },
            Argument { name: "configId", description: "The model config to evaluate", source: Source::Config },
        ],
        render: |a| {
            format!(
                "Run the cockpit eval `{task}` on config `{config}`: call run_eval with \
                 {{\"taskId\": \"{task}\", \"configId\": \"{config}\", \"wait\": true}}. If the call comes back \
                 before the job ends, follow it with job_status {{\"jobId\": <the jobId>}} until its status is \
                 completed, failed or cancelled. Then report the status, the duration and every metric in the \
                 result, and say plainly whether the eval passed.",
                task = a[0],
                config = a[1]
            )
        },
    },
    Prompt {
        name: "safe_promotion",
        title: "Promote a model safely",
        description: "Checks the target gate's SLOs, starts an SLO-guarded canary and watches it to its decision",
        arguments: &[
            Argument { name: "modelId", description: "The model to promote", source: Source::Model },
            Argument { name: "fromGate", description: "The gate it serves at now", source: Source::Gate },
            Argument { name: "toGate", description: "The gate to promote it to", source: Source::Gate },
        ],
        render: |a| {
            format!(
                "Promote `{model}` from `{from}` to `{to}` safely. 1. Call model_gates {{\"modelId\": \"{model}\"}} \
                 and confirm the model is at `{from}`. 2. Call evaluate_slo {{\"gate\": \"{to}\", \"modelId\": \
                 \"{model}\", \"sloPolicy\": {{\"latency_p95_ms\": 800, \"error_rate\": 0.01}}}} (ask me first if \
                 another policy fits better) and stop if it does not pass. 3. Call start_canary {{\"modelId\": \"{model}\", \"fromGate\": \
                 \"{from}\", \"toGate\": \"{to}\", \"sloPolicy\": <that policy>}}. 4. Watch it with \
                 canary_status {{\"canaryId\": <the canaryId>}} (or subscribe to cockpit://canary/<canaryId>) \
                 until it is promoted or rolled back. 5. Call why {{\"id\": <the canaryId>}} for the decision and tell me what happened, \
                 with the numbers.",
                model = a[0],
                from = a[1],
                to = a[2]
            )
        },
    },
    Prompt {
        name: "explain_canary",
        title: "Explain a canary's decision",
        description: "Why a canary was promoted, rolled back or held, with the arithmetic behind it",
        arguments: &[Argument { name: "canaryId", description: "The canary to explain", source: Source::Canary }],
        render: |a| {
            format!(
                "Explain canary `{id}`. Call canary_status {{\"canaryId\": \"{id}\"}}, why {{\"id\": \"{id}\"}} and \
                 why_math {{\"id\": \"{id}\"}}. Then say in plain words what it decided or \
                 is waiting for, which SLO drove it, the observed values against the thresholds with their \
                 confidence intervals, and what an operator could do next (pause, resume, abort or promote).",
                id = a[0]
            )
        },
    },
];

fn invalid(message: String) -> RpcError {
    RpcError::new(
        jsonrpc::INVALID_PARAMS,
        format!("Invalid params: {message}"),
    )
}

fn names() -> String {
    PROMPTS.map(|p| p.name).join(", ")
}

pub fn find(name: &str) -> Option<&'static Prompt> {
    PROMPTS.iter().find(|p| p.name == name)
}

/// `prompts/list`.
pub fn list() -> Value {
    let prompts: Vec<Value> = PROMPTS
        .iter()
        .map(|p| {
            let arguments: Vec<Value> = p
                .arguments
                .iter()
                .map(|a| json!({"name": a.name, "description": a.description, "required": true}))
                .collect();
            json!({"name": p.name, "title": p.title, "description": p.description, "arguments": arguments})
        })
        .collect();
    json!({ "prompts": prompts })
}

/// `prompts/get {name, arguments}`: the prompt's message with every argument filled in.
pub fn get(params: Option<&Value>) -> Result<Value, RpcError> {
    let name = params.and_then(|p| p.get("name")).and_then(Value::as_str);
    let prompt = name.and_then(find).ok_or_else(|| {
        invalid(format!(
            "`name` must be one of {}; e.g. {{\"name\": \"explain_canary\", \"arguments\": {{\"canaryId\": \"canary_abc123def456\"}}}}",
            names()
        ))
    })?;
    let given = params.and_then(|p| p.get("arguments"));
    let mut values = Vec::with_capacity(prompt.arguments.len());
    for argument in prompt.arguments {
        let value = given
            .and_then(|g| g.get(argument.name))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                invalid(format!(
                    "`arguments.{}` (a string) is required by prompt {}",
                    argument.name, prompt.name
                ))
            })?;
        Ident::parse(value).map_err(|rule| {
            invalid(format!(
                "`arguments.{}` {rule} ({IDENT_RULE})",
                argument.name
            ))
        })?;
        values.push(value);
    }
    Ok(json!({
        "description": prompt.description,
        "messages": [{"role": "user", "content": {"type": "text", "text": (prompt.render)(&values)}}]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prompt_renders_with_its_arguments_and_names_what_is_missing() {
        for prompt in &PROMPTS {
            let arguments: serde_json::Map<String, Value> = prompt
                .arguments
                .iter()
                .map(|a| (a.name.to_string(), json!(format!("x-{}", a.name))))
                .collect();
            let got =
                get(Some(&json!({"name": prompt.name, "arguments": arguments}))).expect("renders");
            let text = got["messages"][0]["content"]["text"]
                .as_str()
                .expect("text");
            for argument in prompt.arguments {
                assert!(
                    text.contains(&format!("x-{}", argument.name)),
                    "{}: {text}",
                    prompt.name
                );
            }
        }
        let missing =
            get(Some(&json!({"name": "explain_canary", "arguments": {}}))).expect_err("missing");
        assert!(
            missing.message.contains("arguments.canaryId"),
            "{}",
            missing.message
        );
        let hostile = get(Some(
            &json!({"name": "explain_canary", "arguments": {"canaryId": "a\"; drop"}}),
        ));
        assert_eq!(hostile.expect_err("refused").code, jsonrpc::INVALID_PARAMS);
        assert!(get(Some(&json!({"name": "nope"})))
            .expect_err("unknown")
            .message
            .contains("safe_promotion"));
    }
}
