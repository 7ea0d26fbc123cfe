//! The recorder: the one writer of state changes and the event log, on a thread of its own.
//!
//! Group commit: the writer takes every change waiting in its queue (up to [`MAX_GROUP`]) and commits them in
//! one immediate transaction, each change in its own savepoint, so one failing change rolls back alone.
//! Nobody hears "done" before the commit (durability is as before: WAL, `synchronous=NORMAL`), but eight
//! concurrent writers pay for one commit instead of eight, and their events reach the broker as one batch,
//! which each SSE connection then writes with one send.
//!
//! Only after a commit are its events handed to the broker, and because there is a single writer they
//! arrive in `seq` order, so an SSE client resuming from `Last-Event-ID` can never skip an event that
//! committed before one it saw.

use std::sync::mpsc;
use std::sync::Arc;

use actix::Addr;
use diesel::connection::Connection;

use crate::broker::{Broker, Deliver, Frame};
use crate::clock;
use crate::events::{EntityKind, NewEvent};
use crate::failpoints::{self, Failpoint};
use crate::storage::{self, DbPool, StoreError};

/// Most changes committed together: bounds how long the first of them waits for the others' work.
const MAX_GROUP: usize = 256;

/// A transaction in progress: storage writes plus the events they produce.
pub struct Tx<'a> {
    pub conn: &'a mut storage::Conn,
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

    /// Runs one change in a savepoint: on error its writes and events are undone, the group's are not.
    fn savepoint<R>(
        &mut self,
        change: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let (value, frames) = self.conn.transaction(|conn| {
            let mut inner = Tx {
                conn,
                frames: Vec::new(),
            };
            let value = change(&mut inner)?;
            Ok::<_, StoreError>((value, inner.frames))
        })?;
        self.frames.extend(frames);
        Ok(value)
    }
}

/// What a change leaves for after the commit: the caller's answer, given the commit's outcome.
type Answer = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// A change waiting in the queue, its result type erased.
type Change = Box<dyn FnOnce(&mut Tx<'_>) -> Answer + Send>;

/// The handle to the writer thread; cheap to clone. The thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Change>,
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
    fn run(self, changes: mpsc::Receiver<Change>) {
        while let Ok(first) = changes.recv() {
            let mut group = vec![first];
            group.extend(changes.try_iter().take(MAX_GROUP - 1));
            self.commit(group);
        }
    }

    /// Commits a group in one transaction, then answers every caller and publishes the events.
    fn commit(&self, group: Vec<Change>) {
        let size = group.len();
        let mut answers: Vec<Answer> = Vec::with_capacity(size);
        let committed = self
            .pool
            .get()
            .map_err(StoreError::from)
            .and_then(|mut conn| {
                conn.immediate_transaction(|conn| {
                    let mut tx = Tx {
                        conn,
                        frames: Vec::new(),
                    };
                    answers.extend(group.into_iter().map(|change| change(&mut tx)));
                    if ends_a_canary(&tx.frames) {
                        failpoints::crash_if_armed(Failpoint::BeforeCommit);
                    }
                    Ok::<_, StoreError>(tx.frames)
                })
            });
        match committed {
            Ok(frames) => {
                crate::metrics::METRICS
                    .commit_group_size
                    .with_label_values::<&str>(&[])
                    .observe(size as f64);
                if ends_a_canary(&frames) {
                    failpoints::crash_if_armed(Failpoint::AfterCommit);
                }
                for answer in answers {
                    answer(None);
                }
                if !frames.is_empty() {
                    crate::metrics::METRICS
                        .events_published
                        .inc_by(frames.len() as u64);
                    self.sink.publish(frames);
                }
            }
            Err(e) => {
                // Changes that never ran (no connection, no BEGIN) are answered by their dropped senders.
                log::error!("a group of {size} changes did not commit: {e}");
                for answer in answers {
                    answer(Some(&e));
                }
            }
        }
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
    change: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    recorder.enqueue(change).await
}

impl Recorder {
    /// Queues a change now (changes commit in the order they are queued) and returns the wait for its
    /// commit: an actor can fix the order of its writes without holding its mailbox until they commit.
    pub fn enqueue<R: Send + 'static>(
        &self,
        change: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
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
    change: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
) -> (
    Change,
    tokio::sync::oneshot::Receiver<Result<R, StoreError>>,
) {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let queued: Change = Box::new(move |tx: &mut Tx<'_>| {
        let result = tx.savepoint(change);
        Box::new(move |commit_error: Option<&StoreError>| {
            let result = result.and_then(|value| match commit_error {
                None => Ok(value),
                Some(e) => Err(StoreError::NotCommitted(e.to_string())),
            });
            let _ = reply.send(result);
        })
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
        let (pool, _) = storage::open(&dir.path().join("cockpit.db"), 2).expect("open");
        let broker = Broker::new(0).start();
        let mut live = Subscription::open(&broker, vec![TopicFilter::All], 16)
            .await
            .expect("subscribed");
        let writer = Writer {
            pool: pool.clone(),
            sink: Box::new(broker),
        };

        let (first, first_seq) = erase(|tx| tx.emit(note("first")));
        let (failing, failed) = erase(|tx| {
            tx.emit(note("undone"))?;
            Err::<i64, _>(StoreError::Corrupt("the change gave up".into()))
        });
        let (last, last_seq) = erase(|tx| tx.emit(note("last")));
        writer.commit(vec![first, failing, last]);

        let first_seq = first_seq.await.expect("answered").expect("committed");
        let last_seq = last_seq.await.expect("answered").expect("committed");
        assert!(matches!(
            failed.await.expect("answered"),
            Err(StoreError::Corrupt(_))
        ));
        let stored: Vec<String> = storage::Store::new(pool.clone())
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
