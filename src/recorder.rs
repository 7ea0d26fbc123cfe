//! The recorder: the one writer of state changes and the event log, on a thread of its own.
//!
//! Group commit: the writer takes every change waiting in its queue (up to [`MAX_GROUP`]) and commits them in
//! one transaction, each change in its own savepoint, so one failing change rolls back alone. Nobody hears
//! "done" before the commit (SQLite: WAL with `synchronous=NORMAL`; PostgreSQL: its own WAL), but eight
//! concurrent writers pay for one commit instead of eight, and their events reach the broker as one batch,
//! which each SSE connection then writes with one send.
//!
//! **The event log is the sequencer.** A change's events are collected, not written, while it runs; they
//! are appended as the group's last statements (`storage::events::append_all`). On PostgreSQL that takes
//! the one `event_seq` counter row and holds it until the commit is visible, so seq order is commit order
//! with no gaps whoever writes; on SQLite the single writer gives the same. So an event's seq is known only
//! once its group is written ([`EventSeq`]), and an SSE client resuming from `Last-Event-ID` can never skip
//! an event that committed before one it saw. Events reach the broker only after the commit, in seq order.
//!
//! On PostgreSQL a group, or one change in it, can fail for reasons that have nothing to do with what it
//! asks (a deadlock, a serialization failure, a lock wait past `lock_timeout` on a row or the event counter
//! another writer holds): the group is then rolled back and run again, whole, up to [`RETRIES`] times; on
//! the last attempt such a change fails alone, as any failing change does. Changes are `Fn` so that they can run again; their writes and events of the failed
//! attempt were rolled back with it, but a process counter a change bumps (a decision metric) is bumped
//! again, so such counters can run ahead by the rare retried group.

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Addr;
use diesel::connection::Connection;

use crate::broker::{Broker, Deliver, Frame};
use crate::clock;
use crate::events::{EntityKind, NewEvent, RenderedEvent};
use crate::failpoints::{self, Failpoint};
use crate::storage::{self, DbPool, StoreError};

/// Most changes committed together: bounds how long the first of them waits for the others' work.
const MAX_GROUP: usize = 256;

/// How many times a group that failed as a whole for a transient reason is run again.
const RETRIES: u32 = 3;

/// The seq an emitted event is given when its group is written; read it after the change has committed.
#[derive(Debug, Clone, Default)]
pub struct EventSeq(Arc<OnceLock<i64>>);

impl EventSeq {
    /// The seq, once the group is written (always, after `record` answered `Ok`).
    pub fn get(&self) -> Option<i64> {
        self.0.get().copied()
    }
}

/// An event a change emitted, waiting for the group's end to be given its seq and written.
struct Emitted {
    kind: EntityKind,
    rendered: RenderedEvent,
    /// Also queue a webhook delivery of this event (`webhook_outbox`), keyed by its seq.
    announce: bool,
    seq: EventSeq,
}

/// A transaction in progress: storage writes plus the events they produce.
pub struct Tx<'a> {
    pub conn: &'a mut storage::Conn,
    emitted: Vec<Emitted>,
}

impl Tx<'_> {
    /// Appends an event to the log; it is given its seq when the group is written and published once the
    /// transaction commits.
    pub fn emit(&mut self, event: NewEvent) -> EventSeq {
        self.push(event, false)
    }

    /// [`Tx::emit`], and the event is also owed to the webhook (`webhook_outbox`) until delivered.
    pub fn emit_announced(&mut self, event: NewEvent) -> EventSeq {
        self.push(event, true)
    }

    fn push(&mut self, event: NewEvent, announce: bool) -> EventSeq {
        let seq = EventSeq::default();
        self.emitted.push(Emitted {
            kind: event.kind,
            rendered: event.render(clock::now()),
            announce,
            seq: seq.clone(),
        });
        seq
    }

    /// Runs one change in a savepoint: on error its writes and events are undone, the group's are not.
    fn savepoint<R>(
        &mut self,
        change: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let (value, emitted) = self.conn.transaction(|conn| {
            let mut inner = Tx {
                conn,
                emitted: Vec::new(),
            };
            let value = change(&mut inner)?;
            Ok::<_, StoreError>((value, inner.emitted))
        })?;
        self.emitted.extend(emitted);
        Ok(value)
    }

    /// The group's last statements: its events get their seqs and are written (with their webhook
    /// deliveries); returns the frames to publish after the commit.
    fn append_events(self) -> Result<Vec<Arc<Frame>>, StoreError> {
        let rendered: Vec<&RenderedEvent> = self.emitted.iter().map(|e| &e.rendered).collect();
        let seqs = storage::events::append_all(self.conn, &rendered)?;
        let mut frames = Vec::with_capacity(seqs.len());
        for (emitted, seq) in self.emitted.iter().zip(seqs) {
            let _ = emitted.seq.0.set(seq);
            if emitted.announce {
                storage::outbox::insert(self.conn, seq)?;
            }
            let r = &emitted.rendered;
            frames.push(Frame::new(seq, emitted.kind, &r.topic, r.event, &r.data));
        }
        Ok(frames)
    }
}

/// A change in the queue, its result type erased: it can run (again), and is answered once at the end.
trait Change: Send {
    /// Runs the change in its savepoint, keeping its result for the answer.
    fn run(&mut self, tx: &mut Tx<'_>);
    /// The change failed for a transient reason (it waited too long for a lock another writer held): the
    /// error, taken, so that the group can be run again.
    fn take_transient(&mut self) -> Option<StoreError>;
    /// Answers the caller, given the commit's outcome.
    fn answer(self: Box<Self>, commit_error: Option<&StoreError>);
}

struct Waiting<F, R> {
    change: F,
    result: Option<Result<R, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Change for Waiting<F, R>
where
    F: Fn(&mut Tx<'_>) -> Result<R, StoreError> + Send,
    R: Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) {
        self.result = Some(tx.savepoint(&self.change));
    }

    fn take_transient(&mut self) -> Option<StoreError> {
        match self.result.take() {
            Some(Err(e)) if transient(&e) => Some(e),
            kept => {
                self.result = kept;
                None
            }
        }
    }

    fn answer(self: Box<Self>, commit_error: Option<&StoreError>) {
        let result = match (self.result, commit_error) {
            (Some(result), None) => result,
            (Some(Err(e)), Some(_)) => Err(e),
            (_, Some(e)) => Err(StoreError::NotCommitted(e.to_string())),
            (None, None) => Err(StoreError::NotCommitted("the change never ran".into())),
        };
        let _ = self.reply.send(result);
    }
}

/// The handle to the writer thread; cheap to clone. The thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Box<dyn Change>>,
}

/// Where committed events go, in commit (and so `seq`) order: today the local broker; with several
/// instances, the bus (SCALEOUT.md). The one seam between writing and publishing.
pub trait EventSink: Send + 'static {
    fn publish(&self, frames: Vec<Arc<Frame>>);
}

impl EventSink for Addr<Broker> {
    fn publish(&self, frames: Vec<Arc<Frame>>) {
        self.do_send(Deliver(frames));
    }
}

impl Recorder {
    /// Starts the writer on a thread of its own.
    pub fn start(pool: DbPool, sink: impl EventSink) -> Recorder {
        let (queue, changes) = mpsc::channel();
        let writer = Writer {
            pool,
            sink: Box::new(sink),
        };
        let spawned = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || writer.run(changes));
        if let Err(e) = spawned {
            // Every write will then answer WorkerGone, which callers report as an internal error.
            log::error!("cannot start the recorder thread: {e}");
        }
        Recorder { queue }
    }
}

struct Writer {
    pool: DbPool,
    sink: Box<dyn EventSink>,
}

impl Writer {
    fn run(self, changes: mpsc::Receiver<Box<dyn Change>>) {
        while let Ok(first) = changes.recv() {
            let mut group = vec![first];
            group.extend(changes.try_iter().take(MAX_GROUP - 1));
            self.commit(group);
        }
    }

    /// Commits a group in one transaction (again, after a transient failure), then answers every caller
    /// and publishes the events.
    fn commit(&self, mut group: Vec<Box<dyn Change>>) {
        let size = group.len();
        let mut attempt = 0;
        let committed = loop {
            match self.write(&mut group, attempt < RETRIES) {
                Err(e) if attempt < RETRIES && transient(&e) => {
                    attempt += 1;
                    crate::metrics::METRICS.commit_retries.inc();
                    log::warn!("a group of {size} changes is run again (attempt {attempt}): {e}");
                    std::thread::sleep(Duration::from_millis(10 << attempt));
                }
                outcome => break outcome,
            }
        };
        match committed {
            Ok(frames) => {
                crate::metrics::METRICS
                    .commit_group_size
                    .with_label_values::<&str>(&[])
                    .observe(size as f64);
                if ends_a_canary(&frames) {
                    failpoints::crash_if_armed(Failpoint::AfterCommit);
                }
                for change in group {
                    change.answer(None);
                }
                if !frames.is_empty() {
                    crate::metrics::METRICS
                        .events_published
                        .inc_by(frames.len() as u64);
                    self.sink.publish(frames);
                }
            }
            Err(e) => {
                log::error!("a group of {size} changes did not commit: {e}");
                for change in group {
                    change.answer(Some(&e));
                }
            }
        }
    }

    /// One attempt: every change in its savepoint, then the events, then COMMIT. While another attempt is
    /// allowed, a change that failed for a transient reason rolls the whole group back, to run again.
    fn write(
        &self,
        group: &mut [Box<dyn Change>],
        may_retry: bool,
    ) -> Result<Vec<Arc<Frame>>, StoreError> {
        let mut conn = self.pool.get()?;
        storage::write_transaction(&mut conn, |conn| {
            let mut tx = Tx {
                conn,
                emitted: Vec::new(),
            };
            for change in group.iter_mut() {
                change.run(&mut tx);
                if let Some(e) = may_retry.then(|| change.take_transient()).flatten() {
                    return Err(e);
                }
            }
            let frames = tx.append_events()?;
            if ends_a_canary(&frames) {
                failpoints::crash_if_armed(Failpoint::BeforeCommit);
            }
            Ok(frames)
        })
    }
}

/// Whether a group or one of its changes failed for a reason that running it again may clear:
/// PostgreSQL's serialization failure (40001), deadlock (40P01) or lock wait past `lock_timeout` (55P03).
fn transient(e: &StoreError) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        StoreError::Database(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => {
            true
        }
        StoreError::Database(Error::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
            let message = info.message();
            message.contains("deadlock detected") || message.contains("lock timeout")
        }
        _ => false,
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
    recorder: &Recorder,
    change: impl Fn(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    recorder.enqueue(change).await
}

impl Recorder {
    /// Queues a change now (changes commit in the order they are queued) and returns the wait for its
    /// commit: an actor can fix the order of its writes without holding its mailbox until they commit.
    pub fn enqueue<R: Send + 'static>(
        &self,
        change: impl Fn(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<R, StoreError>> + 'static {
        let (queued, answer) = erase(change);
        let sent = self.queue.send(queued);
        async move {
            sent.map_err(|_| StoreError::WorkerGone)?;
            answer
                .await
                .map_err(|_| StoreError::NotCommitted("see the service log".into()))?
        }
    }
}

/// A change as the writer queues it, and where its result will arrive after the commit.
fn erase<R: Send + 'static>(
    change: impl Fn(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
) -> (
    Box<dyn Change>,
    tokio::sync::oneshot::Receiver<Result<R, StoreError>>,
) {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let queued = Box::new(Waiting {
        change,
        result: None,
        reply,
    });
    (queued, answer)
}

#[cfg(test)]
mod tests {

    use actix::Actor;

    use super::*;
    use crate::broker::Subscription;
    use crate::events::TopicFilter;

    fn note(name: &str) -> NewEvent {
        NewEvent::new(EntityKind::Ops, "group", "note", name.to_string())
    }

    #[actix_web::test]
    async fn a_group_commits_together_and_a_failing_change_rolls_back_alone() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = storage::Database::Sqlite(dir.path().join("cockpit.db"));
        let (pool, _) = storage::open(&database, 2).expect("open");
        let broker = Broker::new(0).start();
        let mut live = Subscription::open(&broker, vec![TopicFilter::All], 16)
            .await
            .expect("subscribed");
        let writer = Writer {
            pool: pool.clone(),
            sink: Box::new(broker),
        };

        let (first, first_seq) = erase(|tx| Ok(tx.emit(note("first"))));
        let (failing, failed) = erase(|tx| {
            tx.emit(note("undone"));
            Err::<EventSeq, _>(StoreError::Corrupt("the change gave up".into()))
        });
        let (last, last_seq) = erase(|tx| Ok(tx.emit(note("last"))));
        writer.commit(vec![first, failing, last]);

        let [first_seq, last_seq] = [first_seq.await, last_seq.await].map(|answer| {
            answer
                .expect("answered")
                .expect("committed")
                .get()
                .expect("seq")
        });
        assert!(matches!(
            failed.await.expect("answered"),
            Err(StoreError::Corrupt(_))
        ));
        let stored: Vec<String> = storage::Store::new(pool.clone(), database.backend())
            .trail("ops/group", 10)
            .await
            .expect("read")
            .into_iter()
            .map(|row| row.data)
            .collect();
        assert_eq!(
            stored.len(),
            2,
            "only the two good changes are stored: {stored:?}"
        );
        assert!(stored.iter().all(|data| !data.contains("undone")));
        let delivered: Vec<i64> = [live.rx.recv().await, live.rx.recv().await]
            .into_iter()
            .flatten()
            .map(|frame| frame.seq)
            .collect();
        assert_eq!(delivered, vec![first_seq, last_seq]);
        assert!(
            live.rx.try_recv().is_none(),
            "the undone event is never sent"
        );
    }
}
