//! The TTL sweep (`MCP_JOB_TTL_MS`): every `sweep_interval_seconds`, jobs that ended longer ago than the TTL
//! are deleted with their events, in small batches through the recorder so other writes interleave. What
//! was removed is announced as event `swept` on `ops/retention`, so operators (and tests) can see it.

use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};

use crate::clock;
use crate::events::{EntityKind, NewEvent};
use crate::recorder::{record, Recorder};
use crate::storage::jobs::{self, Swept};
use crate::storage::StoreError;

/// Jobs deleted per transaction.
const BATCH: i64 = 500;

pub struct RetentionSweeper {
    ttl: Duration,
    interval: Duration,
    recorder: Recorder,
    sweeping: bool,
}

impl RetentionSweeper {
    /// `None` when the TTL is 0 (keep forever).
    pub fn new(ttl: Duration, interval: Duration, recorder: Recorder) -> Option<Self> {
        (!ttl.is_zero()).then_some(Self {
            ttl,
            interval,
            recorder,
            sweeping: false,
        })
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.sweeping {
            return;
        }
        self.sweeping = true;
        let work = sweep_expired(self.recorder.clone(), self.ttl);
        ctx.spawn(work.into_actor(self).map(|outcome, sweeper, _| {
            sweeper.sweeping = false;
            match outcome {
                Ok(swept) if swept.jobs > 0 => log::info!(
                    "retention: removed {} ended jobs and {} events",
                    swept.jobs,
                    swept.events
                ),
                Ok(_) => {}
                Err(e) => log::error!("retention sweep failed: {e}"),
            }
        }));
    }
}

impl Actor for RetentionSweeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.sweep(ctx);
        ctx.run_interval(self.interval, Self::sweep);
    }
}

async fn sweep_expired(recorder: Recorder, ttl: Duration) -> Result<Swept, StoreError> {
    let age = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let cutoff = clock::sql(
        clock::now()
            .checked_sub_signed(age)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
    );
    let mut total = Swept::default();
    loop {
        let bound = cutoff.clone();
        let batch = record(&recorder, move |tx| {
            jobs::sweep_ended(tx.conn, &bound, BATCH)
        })
        .await?;
        total.jobs += batch.jobs;
        total.events += batch.events;
        if batch.jobs < BATCH as usize {
            break;
        }
    }
    if total.jobs > 0 {
        let note = NewEvent::new(
            EntityKind::Ops,
            "retention",
            "swept",
            format!(
                "removed {} ended jobs and {} events (ended before {cutoff} UTC)",
                total.jobs, total.events
            ),
        )
        .field("jobs", total.jobs)
        .field("events", total.events)
        .field("endedBefore", cutoff);
        record(&recorder, move |tx| tx.emit(note).map(|_| ())).await?;
    }
    Ok(total)
}
