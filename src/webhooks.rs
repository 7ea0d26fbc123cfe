//! Webhooks on promotion and rollback (SPEC §7): after the decision has committed, the event is POSTed to the
//! configured URL with its id (`seq`, also in `X-Cockpit-Event-Id`) so receivers can drop repeats. Delivery is
//! retried with backoff and never blocks or changes a decision; a delivery that finally fails is recorded in
//! the audit trail. Each decision's event waits in `webhook_outbox`, written in the deciding transaction and
//! re-driven at start, so a decision whose process died before the POST is still delivered (at least once).

use std::time::Duration;

use actix::prelude::*;
use serde_json::{json, Value};

use crate::config::WebhookSettings;
use crate::recorder::{record, Recorder};
use crate::storage::{self, audit, Store};

pub struct Webhooks {
    url: String,
    timeout: Duration,
    retries: u32,
    client: awc::Client,
    store: Store,
    recorder: Recorder,
}

impl Webhooks {
    /// `None` when no URL is configured.
    pub fn new(settings: &WebhookSettings, store: Store, recorder: Recorder) -> Option<Self> {
        let url = settings.url.trim();
        (!url.is_empty()).then(|| Self {
            url: url.to_string(),
            timeout: settings.timeout_seconds,
            retries: settings.retries,
            client: awc::Client::builder().disable_redirects().finish(),
            store,
            recorder,
        })
    }
}

impl Actor for Webhooks {
    type Context = Context<Self>;

    /// Re-drives what a previous process left in the outbox.
    fn started(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let load = async move { store.outbox_pending().await };
        ctx.wait(load.into_actor(self).map(|pending, _, ctx| match pending {
            Ok(seqs) => {
                if !seqs.is_empty() {
                    log::info!("re-driving {} webhook(s) left undelivered", seqs.len());
                }
                for seq in seqs {
                    ctx.notify(Notify { seq });
                }
            }
            Err(e) => log::error!("cannot read the webhook outbox: {e}"),
        }));
    }
}

/// Deliver the event with this seq.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Notify {
    pub seq: i64,
}

/// The delay before attempt `n` (1-based retries): 250 ms, 500 ms, 1 s, … up to 30 s.
fn backoff(retry: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1u64 << retry.saturating_sub(1).min(7)))
        .min(Duration::from_secs(30))
}

impl Handler<Notify> for Webhooks {
    type Result = ();

    fn handle(&mut self, msg: Notify, ctx: &mut Context<Self>) {
        let (client, url, timeout, retries) = (
            self.client.clone(),
            self.url.clone(),
            self.timeout,
            self.retries,
        );
        let (store, recorder) = (self.store.clone(), self.recorder.clone());
        let seq = msg.seq;
        let delivery = async move {
            let row = match store.event(seq).await {
                Ok(Some(row)) => row,
                Ok(None) => return,
                Err(e) => {
                    log::error!("webhook for event {seq}: cannot read it: {e}");
                    return;
                }
            };
            let data: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
            let body = json!({"id": seq, "event": row.event, "topic": row.topic, "data": data});
            let mut last_error = String::new();
            for attempt in 0..=retries {
                if attempt > 0 {
                    actix_web::rt::time::sleep(backoff(attempt)).await;
                }
                let sent = client
                    .post(&url)
                    .timeout(timeout)
                    .insert_header(("X-Cockpit-Event-Id", seq.to_string()))
                    .send_json(&body)
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        delivered(&recorder, seq).await;
                        return;
                    }
                    Ok(response) => last_error = format!("HTTP {}", response.status()),
                    Err(e) => last_error = e.to_string(),
                }
            }
            log::warn!(
                "webhook for event {seq} failed after {} attempts: {last_error}",
                retries + 1
            );
            let args = json!({"eventId": seq, "event": row.event, "attempts": retries + 1, "error": last_error});
            let topic = row.topic;
            let recorded = record(&recorder, move |tx| {
                audit::record(tx.conn, "webhook", "webhook_failed", &topic, &args)
            })
            .await;
            if let Err(e) = recorded {
                log::error!("cannot record the failed webhook for event {seq}: {e}");
            }
            delivered(&recorder, seq).await;
        };
        ctx.spawn(delivery.into_actor(self));
    }
}

/// Takes the event out of the outbox: taken by the receiver, or given up on (and audited).
async fn delivered(recorder: &Recorder, seq: i64) {
    if let Err(e) = record(recorder, move |tx| storage::outbox::delete(tx.conn, seq)).await {
        log::error!("cannot clear webhook {seq} from the outbox: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_are_capped() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(1));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
