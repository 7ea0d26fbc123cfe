//! MCP resources: every job, canary and model as `cockpit://job/{jobId}`, `cockpit://canary/{canaryId}` and
//! `cockpit://model/{modelId}` — listed with cursor paging, read as the JSON the tools return, and
//! subscribable: a subscribed session hears `notifications/resources/updated` when the entity changes.

use serde_json::{json, Value};

use super::jsonrpc::{self, RpcError};
use super::tools::{canary_view, gate_view, job_view, RECENT_CHECKS};
use super::ToolContext;
use crate::events::EntityKind;
use crate::ids::Ident;
use crate::storage::Listed;

/// Resources per `resources/list` page.
const PAGE: usize = 50;
/// MCP's "resource not found".
pub const RESOURCE_NOT_FOUND: i64 = -32002;

const KINDS: [EntityKind; 3] = [EntityKind::Job, EntityKind::Canary, EntityKind::Model];

pub fn uri(kind: EntityKind, id: &str) -> String {
    format!("cockpit://{}/{id}", kind.prefix())
}

/// The entity a resource URI names, if it is one of ours and the id is valid.
pub fn parse_uri(uri: &str) -> Option<(EntityKind, Ident)> {
    let rest = uri.strip_prefix("cockpit://")?;
    let (kind, id) = rest.split_once('/')?;
    let kind = EntityKind::from_prefix(kind).filter(|k| KINDS.contains(k))?;
    Some((kind, Ident::parse(id).ok()?))
}

pub fn templates() -> Value {
    let template = |kind: EntityKind, id: &str, title: &str, description: &str| {
        json!({
            "uriTemplate": format!("cockpit://{}/{{{id}}}", kind.prefix()),
            "name": kind.prefix(),
            "title": title,
            "description": description,
            "mimeType": "application/json",
        })
    };
    json!({"resourceTemplates": [
        template(EntityKind::Job, "jobId", "Eval job", "A job: status, progress, result, timings"),
        template(EntityKind::Canary, "canaryId", "Canary", "A canary: policy, status, counters, recent checks"),
        template(EntityKind::Model, "modelId", "Model", "A model's gate and the canary that put it there"),
    ]})
}

fn entry(kind: EntityKind, id: &str, title: String) -> Value {
    json!({"uri": uri(kind, id), "name": id, "title": title, "mimeType": "application/json"})
}

fn invalid_params(message: String) -> RpcError {
    RpcError::new(jsonrpc::INVALID_PARAMS, message)
}

/// A `resources/list` (or `tasks/list`) cursor: the last entity of the previous page, `<kind>:<id>` (keyset paging, so a page
/// costs the same wherever it starts and no arithmetic on a client's number can overflow).
pub(super) fn parse_cursor(
    params: Option<&Value>,
    kinds: &[EntityKind],
) -> Result<Option<(EntityKind, String)>, RpcError> {
    let cursor = match params.and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(c)) => c,
        Some(_) => {
            return Err(invalid_params(
                "Invalid params: `cursor` must be a string".into(),
            ))
        }
    };
    let unknown = || {
        invalid_params(format!(
            "Invalid params: unknown cursor `{}`; use the nextCursor of a previous page",
            cursor.chars().take(64).collect::<String>()
        ))
    };
    let (kind, id) = cursor.split_once(':').ok_or_else(unknown)?;
    let kind = EntityKind::from_prefix(kind)
        .filter(|k| kinds.contains(k))
        .ok_or_else(unknown)?;
    let id = Ident::parse(id).map_err(|_| unknown())?;
    Ok(Some((kind, id.to_string())))
}

/// `resources/list`: jobs, then canaries, then models, each by id, [`PAGE`] at a time.
pub async fn list(ctx: &ToolContext, params: Option<&Value>) -> Result<Value, RpcError> {
    let after = parse_cursor(params, &KINDS)?;
    // One more than a page, to know whether another follows.
    let page: Vec<(EntityKind, String, String)> = ctx
        .store
        .entities_after(&KINDS, after, PAGE + 1)
        .await?
        .into_iter()
        .map(|listed| match listed {
            Listed::Job(j) => {
                let title = format!("{} {} ({})", j.task_id, j.config_id, j.status);
                (EntityKind::Job, j.job_id, title)
            }
            Listed::Canary(c) => {
                let title = format!(
                    "{} {} → {} ({})",
                    c.model_id, c.from_gate, c.to_gate, c.status
                );
                (EntityKind::Canary, c.id, title)
            }
            Listed::Model(m) => {
                let title = format!("{} at {}", m.model_id, m.gate);
                (EntityKind::Model, m.model_id, title)
            }
        })
        .collect();
    let more = page.len() > PAGE;
    let shown = &page[..page.len().min(PAGE)];
    let resources: Vec<Value> = shown
        .iter()
        .map(|(kind, id, title)| entry(*kind, id, title.clone()))
        .collect();
    let mut result = json!({ "resources": resources });
    if let (true, Some((kind, id, _))) = (more, shown.last()) {
        result["nextCursor"] = json!(format!("{}:{id}", kind.prefix()));
    }
    Ok(result)
}

/// The `uri` param, parsed.
pub fn uri_param(params: Option<&Value>) -> Result<(String, EntityKind, Ident), RpcError> {
    let uri = params
        .and_then(|p| p.get("uri"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params("Invalid params: `uri` (a string) is required".into()))?;
    let (kind, id) = parse_uri(uri).ok_or_else(|| {
        invalid_params(format!(
            "Invalid params: `{uri}` is not a cockpit resource; use cockpit://job/<jobId>, cockpit://canary/<canaryId> or cockpit://model/<modelId>"
        ))
    })?;
    Ok((uri.to_string(), kind, id))
}

/// `resources/read`: the entity as JSON text.
pub async fn read(ctx: &ToolContext, params: Option<&Value>) -> Result<Value, RpcError> {
    let (uri, kind, id) = uri_param(params)?;
    let key = id.to_string();
    let store = &ctx.store;
    let view = match kind {
        EntityKind::Job => store.job(&key).await.map(|row| row.map(|r| job_view(&r))),
        EntityKind::Canary => store
            .canary_with_recent(&key, RECENT_CHECKS)
            .await
            .map(|found| found.map(|(row, recent)| canary_view(&row, Some(&recent)))),
        _ => store
            .model_gate(&key)
            .await
            .map(|row| row.map(|r| gate_view(&r))),
    }?;
    match view {
        Some(view) => Ok(
            json!({"contents": [{"uri": uri, "mimeType": "application/json", "text": view.to_string()}]}),
        ),
        None => Err(RpcError::new(
            RESOURCE_NOT_FOUND,
            format!("Resource not found: {uri}; resources/list shows what exists"),
        )),
    }
}

/// `subscriptions/listen {notifications}`: the resources whose updates the stream will carry (each must
/// exist; at most [`super::session::MAX_SUBSCRIPTIONS`]), and the acknowledgment naming what is honoured.
/// The tool, prompt and resource lists never change while the server runs, so their filters are not
/// acknowledged.
pub async fn listen(
    ctx: &ToolContext,
    params: Option<&Value>,
) -> Result<(Vec<String>, Value), RpcError> {
    let example =
        r#"{"notifications": {"resourceSubscriptions": ["cockpit://job/job_abc123def456"]}}"#;
    let wanted = params
        .and_then(|p| p.get("notifications"))
        .and_then(|n| n.get("resourceSubscriptions"));
    let uris = match wanted {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(uris)) => uris.clone(),
        Some(_) => {
            return Err(invalid_params(format!(
                "Invalid params: `notifications.resourceSubscriptions` must be an array of resource URIs, e.g. {example}"
            )))
        }
    };
    if uris.len() > super::session::MAX_SUBSCRIPTIONS {
        return Err(invalid_params(format!(
            "Invalid params: a subscription may name at most {} resources (got {}); open another for the rest",
            super::session::MAX_SUBSCRIPTIONS,
            uris.len()
        )));
    }
    let mut honoured = Vec::with_capacity(uris.len());
    for uri in &uris {
        let Some((uri, (kind, id))) = uri.as_str().and_then(|u| Some((u, parse_uri(u)?))) else {
            return Err(invalid_params(format!(
                "Invalid params: `notifications.resourceSubscriptions` holds {uri}, not a cockpit resource \
                 (cockpit://job/<jobId>, cockpit://canary/<canaryId>, cockpit://model/<modelId>); e.g. {example}"
            )));
        };
        let uri = uri.to_string();
        if !exists(ctx, kind, &id).await? {
            return Err(invalid_params(format!(
                "Invalid params: resource not found: {uri}; resources/list shows what exists"
            )));
        }
        if !honoured.contains(&uri) {
            honoured.push(uri);
        }
    }
    let acknowledged = json!({"notifications": {"resourceSubscriptions": honoured}});
    Ok((honoured, acknowledged))
}

/// Whether the entity a resource names exists.
pub async fn exists(ctx: &ToolContext, kind: EntityKind, id: &Ident) -> Result<bool, RpcError> {
    let key = id.to_string();
    ctx.store
        .entity_exists(kind, &key)
        .await
        .map_err(RpcError::from)
}

/// The resource an event's topic belongs to (jobs, canaries and models have one; ops topics do not).
pub fn uri_of_topic(topic: &str) -> Option<String> {
    let (kind, id) = topic.split_once('/')?;
    let kind = EntityKind::from_prefix(kind).filter(|k| KINDS.contains(k))?;
    Some(uri(kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_jobs_canaries_and_models_only() {
        assert!(matches!(
            parse_uri("cockpit://job/job_abc"),
            Some((EntityKind::Job, _))
        ));
        assert!(matches!(
            parse_uri("cockpit://model/lukhas-v2"),
            Some((EntityKind::Model, _))
        ));
        assert!(parse_uri("cockpit://ops/deploys").is_none());
        assert!(parse_uri("cockpit://job/a b").is_none());
        assert!(parse_uri("file:///etc/passwd").is_none());
        assert_eq!(
            uri_of_topic("canary/canary_x").as_deref(),
            Some("cockpit://canary/canary_x")
        );
        assert_eq!(uri_of_topic("ops/x"), None);
    }
}
