//! The TTL sweep: every `sweep_interval_seconds`, jobs that ended longer ago than `job_ttl_ms`
//! (`MCP_JOB_TTL_MS`) and canaries that ended longer ago than `canary_ttl_ms` (`COCKPIT_CANARY_TTL_MS`) are
//! deleted with their events (and a canary's checks), in small batches through the recorder so other writes
//! interleave. What was removed is announced as event `swept` on `ops/retention`, so operators (and tests)
//! can see it. The audit table is never swept.

use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};

use crate::clock;
use crate::events::{EntityKind, NewEvent};
use crate::recorder::{record, Recorder};
use crate::storage::{canaries, jobs, Conn, StoreError, Swept};

/// Rows deleted per transaction.
const BATCH: i64 = 500;

/// How long ended entities are kept; zero keeps them forever.
#[derive(Debug, Clone, Copy)]
pub struct Ttls {
    pub jobs: Duration,
    pub canaries: Duration,
}

pub struct RetentionSweeper {
    ttls: Ttls,
    interval: Duration,
    recorder: Recorder,
    sweeping: bool,
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy)]
struct Removed {
    jobs: Swept,
    canaries: Swept,
}

impl RetentionSweeper {
    /// `None` when both TTLs are 0 (keep everything forever).
    pub fn new(ttls: Ttls, interval: Duration, recorder: Recorder) -> Option<Self> {
        (!(ttls.jobs.is_zero() && ttls.canaries.is_zero())).then_some(Self {
            ttls,
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
        let work = sweep_expired(self.recorder.clone(), self.ttls);
        ctx.spawn(work.into_actor(self).map(|outcome, sweeper, _| {
            sweeper.sweeping = false;
            match outcome {
                Ok(removed) if removed.any() => {
                    log::info!("retention: removed {}", removed.summary());
                }
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

impl Removed {
    fn any(&self) -> bool {
        self.jobs.rows > 0 || self.canaries.rows > 0
    }

    fn summary(&self) -> String {
        format!(
            "{} ended jobs, {} ended canaries with {} checks, and {} events",
            self.jobs.rows,
            self.canaries.rows,
            self.canaries.checks,
            self.jobs.events + self.canaries.events
        )
    }
}

type SweepBatch = fn(&mut Conn, &str, i64) -> Result<Swept, StoreError>;

async fn sweep_expired(recorder: Recorder, ttls: Ttls) -> Result<Removed, StoreError> {
    let removed = Removed {
        jobs: sweep_kind(&recorder, ttls.jobs, jobs::sweep_ended).await?,
        canaries: sweep_kind(&recorder, ttls.canaries, canaries::sweep_ended).await?,
    };
    if removed.any() {
        let note = NewEvent::new(
            EntityKind::Ops,
            "retention",
            "swept",
            format!("removed {}", removed.summary()),
        )
        .field("jobs", removed.jobs.rows)
        .field("canaries", removed.canaries.rows)
        .field("checks", removed.canaries.checks)
        .field("events", removed.jobs.events + removed.canaries.events);
        record(&recorder, move |tx| {
            tx.emit(note.clone());
            Ok(())
        })
        .await?;
    }
    Ok(removed)
}

/// Sweeps one kind in batches until a batch comes back short; nothing when its TTL is zero.
async fn sweep_kind(
    recorder: &Recorder,
    ttl: Duration,
    batch: SweepBatch,
) -> Result<Swept, StoreError> {
    let mut total = Swept::default();
    if ttl.is_zero() {
        return Ok(total);
    }
    let age = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let cutoff = clock::sql(
        clock::now()
            .checked_sub_signed(age)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
    );
    loop {
        let bound = cutoff.clone();
        let swept = record(recorder, move |tx| batch(tx.conn, &bound, BATCH)).await?;
        total.rows += swept.rows;
        total.checks += swept.checks;
        total.events += swept.events;
        if swept.rows < BATCH as usize {
            return Ok(total);
        }
    }
}
