//! `GET /sse?topic=…`: server-sent events. The subscription is registered with the broker before the log is
//! read, and frames already replayed are skipped live, so a client sees every event once and in order.

pub(crate) mod request;
mod stream;

use std::collections::HashSet;

use actix_web::{web, HttpRequest, HttpResponse};

use super::{AppState, ClientKey};
use crate::broker::Subscription;
use crate::events::{EntityKind, TopicFilter};
use crate::storage::events::Scope;
use request::SseRequest;
use stream::{sse_stream, Plan};

use super::errors::plain as error;

/// The gate has checked the key (header or `?key=`) before this runs.
pub async fn stream(
    req: HttpRequest,
    client: ClientKey,
    state: web::Data<AppState>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let permit = match state.guard.stream_permit(&client, false) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let last_event_header = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok());
    let request = match SseRequest::parse(req.query_string(), last_event_header) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };

    let entities: Vec<(EntityKind, String)> = request
        .filters
        .iter()
        .filter_map(|f| match f {
            TopicFilter::Entity(kind, id) => Some((*kind, id.to_string())),
            _ => None,
        })
        .collect();
    let states = state.store.entity_states(entities.clone()).await;
    let states = match states {
        Ok(states) => states,
        Err(e) => {
            log::error!("SSE lookup failed: {e}");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the event log cannot be read".into(),
            );
        }
    };
    if let Some(((kind, id), _)) = entities.iter().zip(&states).find(|(_, s)| !s.exists) {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {kind} `{id}`; its topic does not exist"),
        );
    }

    let last = request.last_event_id;
    let all_end = request.filters.iter().all(|f| f.ending_entity().is_some());
    let open_entities: Option<HashSet<String>> = all_end.then(|| {
        entities
            .iter()
            .zip(&states)
            .filter(|(_, s)| !matches!((s.terminal_seq, last), (Some(t), Some(l)) if l >= t))
            .map(|((kind, id), _)| kind.topic(id))
            .collect()
    });
    if open_entities.as_ref().is_some_and(HashSet::is_empty) {
        // Everything asked for has ended and the client has seen it: stop reconnecting.
        return HttpResponse::NoContent().finish();
    }

    let Ok(live) =
        Subscription::open(&state.broker, request.filters.clone(), state.sse.queue).await
    else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the event broker is stopping".into(),
        );
    };
    let plan = Plan {
        replay: replay_scopes(&request.filters, last, live.live_after),
        open_entities,
        retry_ms: state.sse.retry_ms,
        keep_alive: state.sse.keep_alive,
    };
    super::held_event_stream(sse_stream(plan, live, state.store.clone()), permit)
}

/// Single entities replay their history (after `Last-Event-ID` if given); patterns replay what came after
/// `Last-Event-ID`, or else only what committed while the subscription was being registered — so the
/// stream is in seq order and resumable, with nothing lost between the log and the live queue.
fn replay_scopes(filters: &[TopicFilter], last: Option<i64>, live_after: i64) -> Vec<(Scope, i64)> {
    filters
        .iter()
        .map(|f| match f {
            TopicFilter::Entity(kind, id) => {
                (Scope::Topic(kind.topic(id.as_str())), last.unwrap_or(0))
            }
            TopicFilter::Kind(kind) => (Scope::Kind(kind.prefix()), last.unwrap_or(live_after)),
            TopicFilter::All => (Scope::All, last.unwrap_or(live_after)),
        })
        .collect()
}
