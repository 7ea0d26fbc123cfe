//! `publish_note`: an operator's note ("deploy of v2 started") as event `note` on an `ops/<name>` topic or an
//! existing entity's topic — in the ledger, the audit trail and every matching stream.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::args::{invalid, parse};
use super::{Call, ToolContext, ToolError};
use crate::events::TopicFilter;
use crate::notes;
use crate::recorder::record;
use crate::storage::audit::AuditEntry;

pub(super) const EXAMPLE: &str =
    r#"{"topic":"ops/deploys","message":"deploy of v2 started","data":{"version":"v2"}}"#;

/// Longest `message`, in bytes of UTF-8.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest `data`, in bytes of its JSON text.
pub const MAX_DATA_BYTES: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoteArgs {
    topic: String,
    message: String,
    data: Option<Map<String, Value>>,
}

pub async fn publish_note(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let Call {
        caller, arguments, ..
    } = call;
    let args: NoteArgs = parse(arguments.clone(), EXAMPLE)?;
    let (kind, id) = match TopicFilter::parse(&args.topic) {
        Ok(TopicFilter::Entity(kind, id)) => (kind, id),
        Ok(_) => {
            let problem = "must name one topic (ops/<name>, job/<jobId>, canary/<canaryId>, model/<modelId>), not a pattern".into();
            return Err(invalid("topic", problem, EXAMPLE));
        }
        Err(e) => return Err(invalid("topic", e.to_string(), EXAMPLE)),
    };
    if args.message.trim().is_empty() || args.message.len() > MAX_MESSAGE_BYTES {
        let problem = format!(
            "must be 1 to {MAX_MESSAGE_BYTES} bytes of text (got {})",
            args.message.len()
        );
        return Err(invalid("message", problem, EXAMPLE));
    }
    let data = args.data;
    let data_size = data
        .as_ref()
        .and_then(|d| serde_json::to_string(d).ok())
        .map_or(0, |text| text.len());
    if data_size > MAX_DATA_BYTES {
        let problem =
            format!("must be a JSON object of at most {MAX_DATA_BYTES} bytes (got {data_size})");
        return Err(invalid("data", problem, EXAMPLE));
    }

    let topic = kind.topic(id.as_str());
    let audit = AuditEntry {
        actor: caller.actor.clone(),
        action: "publish_note",
        args: arguments,
    };
    let message = args.message;
    let recorded = record(&ctx.recorder, move |tx| {
        notes::noted(tx, (kind, id.as_str()), &message, data.as_ref(), &audit)
    })
    .await?;
    match recorded {
        Some(seq) => Ok(json!({"topic": topic, "event": "note", "seq": seq.get()})),
        None => Err(ToolError::Refused(format!(
            "No {kind} for topic `{topic}`: notes go to ops/<name> (always available) or to an existing \
             entity's topic (list_jobs, list_canaries and model_gates show them)."
        ))),
    }
}
