//! The recorder: the one writer of state changes and the event log. Each change runs in one immediate
//! transaction; only after it commits are its events handed to the broker, and because there is a single
//! writer thread they arrive in `seq` order — so an SSE client resuming from `Last-Event-ID` can never skip
//! an event that committed before one it saw.

use std::sync::Arc;

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};
use diesel::sqlite::SqliteConnection;

use crate::broker::{Broker, Deliver, Frame};
use crate::clock;
use crate::events::{EntityKind, NewEvent};
use crate::failpoints::{self, Failpoint};
use crate::storage::{self, DbPool, StoreError};

pub struct Recorder {
    pool: DbPool,
    broker: Addr<Broker>,
    /// `before_commit` or `after_commit` (tests only): crash around the first transaction that ends a canary.
    crash: Option<Failpoint>,
}

impl Actor for Recorder {
    type Context = SyncContext<Self>;
}

impl Recorder {
    /// Starts the writer on a thread of its own.
    pub fn start(
        pool: DbPool,
        broker: Addr<Broker>,
        failpoint: Option<Failpoint>,
    ) -> Addr<Recorder> {
        let crash =
            failpoint.filter(|f| matches!(f, Failpoint::BeforeCommit | Failpoint::AfterCommit));
        SyncArbiter::start(1, move || Recorder {
            pool: pool.clone(),
            broker: broker.clone(),
            crash,
        })
    }
}

/// A transaction in progress: storage writes plus the events they produce.
pub struct Tx<'a> {
    pub conn: &'a mut SqliteConnection,
    frames: Vec<Arc<Frame>>,
}

impl Tx<'_> {
    /// Appends an event to the log; it is published once the transaction commits.
    pub fn emit(&mut self, event: NewEvent) -> Result<i64, StoreError> {
        let kind = event.kind;
        let rendered = event.render(clock::now());
        let seq = storage::events::append(self.conn, &rendered)?;
        self.frames.push(Frame::new(
            seq,
            kind,
            &rendered.topic,
            rendered.event,
            &rendered.data,
        ));
        Ok(seq)
    }
}

type Change<R> = Box<dyn FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send>;

/// A state change to commit atomically with its events. Sent by the job registry, job actors and tools.
pub struct Record<R> {
    change: Change<R>,
}

impl<R> Record<R> {
    pub fn new(change: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static) -> Self {
        Self {
            change: Box::new(change),
        }
    }
}

impl<R: Send + 'static> Message for Record<R> {
    type Result = Result<R, StoreError>;
}

impl<R: Send + 'static> Handler<Record<R>> for Recorder {
    type Result = Result<R, StoreError>;

    fn handle(&mut self, msg: Record<R>, _ctx: &mut SyncContext<Self>) -> Self::Result {
        let mut conn = self.pool.get()?;
        let crash = self.crash;
        let (value, frames) = conn.immediate_transaction(|conn| {
            let mut tx = Tx {
                conn,
                frames: Vec::new(),
            };
            let value = (msg.change)(&mut tx)?;
            if crash == Some(Failpoint::BeforeCommit) && ends_a_canary(&tx.frames) {
                failpoints::crash(Failpoint::BeforeCommit);
            }
            Ok::<_, StoreError>((value, tx.frames))
        })?;
        if crash == Some(Failpoint::AfterCommit) && ends_a_canary(&frames) {
            failpoints::crash(Failpoint::AfterCommit);
        }
        if !frames.is_empty() {
            crate::metrics::METRICS
                .events_published
                .inc_by(frames.len() as u64);
            self.broker.do_send(Deliver(frames));
        }
        Ok(value)
    }
}

/// Whether these events end a canary (where the commit failpoints strike).
fn ends_a_canary(frames: &[Arc<Frame>]) -> bool {
    frames
        .iter()
        .any(|f| f.terminal && f.kind == EntityKind::Canary)
}

/// Sends a change to the recorder and waits for its commit.
pub async fn record<R: Send + 'static>(
    recorder: &Addr<Recorder>,
    change: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    recorder
        .send(Record::new(change))
        .await
        .map_err(|_| StoreError::WorkerGone)?
}
