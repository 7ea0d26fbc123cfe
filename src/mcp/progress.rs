//! A `tools/call` with `_meta.progressToken` that waits (`run_eval` with `wait: true`) is answered as a
//! stream: increasing `notifications/progress` from the job's real progress, then the result. While any
//! waiting call waits, with a progress token or without, `notifications/cancelled` naming the request
//! cancels the job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::call_streams::Writer;
use super::jsonrpc::{self, RpcError};
use super::session::SessionState;
use super::tools::{Listeners, ProgressUpdate, ToolContext};
use crate::auth::Caller;
use crate::ids::JobId;
use crate::jobs::{records, CancelJob};
use crate::recorder::record;
use crate::storage::audit::AuditEntry;

/// Waiting calls by who made them — `<client>/<session>/<request id>` — with the job each waits on, so a
/// client can only ever cancel its own calls.
#[derive(Default, Clone)]
pub struct InFlight(Arc<Mutex<HashMap<String, JobId>>>);

impl InFlight {
    /// `client` is who the request is charged to (a key's fingerprint, or the address in keyless mode).
    pub fn key(client: &str, session: Option<&str>, request_id: &Value) -> String {
        format!("{client}/{}/{request_id}", session.unwrap_or("-"))
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, JobId>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `notifications/cancelled`: cancels the job the named request of this client waits on, if any, and
    /// audits it like `cancel_job`. Without keys and without a session nothing tells two clients on one
    /// address apart, so such a cancellation is ignored (a session, or a key, makes it work).
    pub async fn cancel(
        &self,
        tools: &ToolContext,
        caller: &Caller,
        (client, session): (&str, Option<&str>),
        params: Option<&Value>,
    ) {
        let Some(request_id) = params.and_then(|p| p.get("requestId")) else {
            return;
        };
        if caller.is_keyless() && session.is_none() {
            log::debug!("notifications/cancelled without a session in keyless mode: ignored");
            return;
        }
        let reason: String = params
            .and_then(|p| p.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or("cancelled by the client (notifications/cancelled)")
            .chars()
            .take(500)
            .collect();
        let key = Self::key(client, session, request_id);
        self.cancel_waiting(tools, caller, &key, (reason, "notifications/cancelled"))
            .await;
    }

    /// Cancels the job the call under `key` waits on, if it still waits, audited like `cancel_job` with
    /// `via` saying what asked.
    pub async fn cancel_waiting(
        &self,
        tools: &ToolContext,
        caller: &Caller,
        key: &str,
        (reason, via): (String, &str),
    ) {
        let job = self.map().get(key).cloned();
        let Some(job_id) = job else {
            return;
        };
        let audit = AuditEntry {
            actor: caller.actor.clone(),
            action: "cancel_job",
            args: json!({"jobId": job_id, "reason": reason, "via": via}),
        };
        let target = job_id.clone();
        let audited = record(&tools.recorder, move |tx| {
            records::cancel_asked(tx, &target, &audit)
        })
        .await;
        if let Err(e) = audited {
            log::error!("cannot audit the cancellation of {job_id}: {e}");
            return;
        }
        tools.registry.do_send(CancelJob { job_id, reason });
    }
}

/// Whether this `tools/call` waits on a job: `run_eval` with `wait: true`.
pub fn waits(params: Option<&Value>) -> bool {
    params.is_some_and(|p| p["name"] == "run_eval" && p["arguments"]["wait"] == true)
}

/// Whether this `tools/call` asks for progress on a call that waits: its progress token.
pub fn progress_token(params: Option<&Value>) -> Option<Value> {
    let token = params
        .filter(|p| waits(Some(p)))?
        .get("_meta")?
        .get("progressToken")?;
    (token.is_string() || token.is_number()).then(|| token.clone())
}

impl InFlight {
    /// A waiting call answered as plain JSON (no progress token): registered under `key` while it waits, so
    /// `notifications/cancelled` naming it cancels its job as it would a streamed one.
    pub async fn call_registered(
        &self,
        tools: &ToolContext,
        key: String,
        params: Option<Value>,
        (caller, session): (&Caller, Option<&SessionState>),
    ) -> Result<Value, RpcError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let register = async {
            while let Some(update) = rx.recv().await {
                if let ProgressUpdate::Job(job_id) = update {
                    self.map().insert(key.clone(), job_id);
                }
            }
        };
        // The call owns the sender, so the registration loop ends with it.
        let call = async move {
            let listeners = Listeners {
                progress: Some(&tx),
                session,
            };
            tools.call(params, caller, listeners).await
        };
        let (outcome, ()) = futures_util::future::join(call, register).await;
        self.map().remove(&key);
        outcome
    }
}

/// Runs the call in the background, writing its progress notifications, then its response, to `writer`
/// (which a stream follows, and a client that lost the stream can follow again).
pub fn stream_call(
    tools: ToolContext,
    in_flight: InFlight,
    key: String,
    (id, params, token): (Value, Option<Value>, Value),
    (caller, session, writer): (Caller, Option<Arc<SessionState>>, Writer),
) {
    actix_web::rt::spawn(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        // The call owns the sender, so the forwarding below ends with the call.
        let call = async {
            let listeners = Listeners {
                progress: Some(&tx),
                session: session.as_deref(),
            };
            let outcome = tools.call(params, &caller, listeners).await;
            drop(tx);
            outcome
        };
        let forward = async {
            let mut last = -1.0;
            while let Some(update) = rx.recv().await {
                match update {
                    ProgressUpdate::Job(job_id) => {
                        in_flight.map().insert(key.clone(), job_id);
                    }
                    // Progress only ever increases.
                    ProgressUpdate::Step { progress, message } if progress > last => {
                        last = progress;
                        let mut params =
                            json!({"progressToken": token, "progress": progress, "total": 1.0});
                        if let Some(message) = message {
                            params["message"] = json!(message);
                        }
                        writer.push(json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params}));
                    }
                    ProgressUpdate::Step { .. } => {}
                }
            }
        };
        let (outcome, ()) = futures_util::future::join(call, forward).await;
        in_flight.map().remove(&key);
        writer.push(match outcome {
            Ok(result) => jsonrpc::success(id, result),
            Err(error) => jsonrpc::failure(id, &error),
        });
    });
}

/// Held by a 2026-07-28 call stream: dropped before the response went out (the client closed the stream,
/// which that revision defines as cancelling the request), it cancels the job the call waits on.
pub struct CancelOnClose {
    pub in_flight: InFlight,
    pub tools: ToolContext,
    pub caller: Caller,
    pub key: String,
    pub answered: bool,
}

impl Drop for CancelOnClose {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let (in_flight, tools, caller, key) = (
            self.in_flight.clone(),
            self.tools.clone(),
            self.caller.clone(),
            std::mem::take(&mut self.key),
        );
        actix_web::rt::spawn(async move {
            let reason = "the client closed the request's stream".to_string();
            in_flight
                .cancel_waiting(&tools, &caller, &key, (reason, "stream closed"))
                .await;
        });
    }
}
