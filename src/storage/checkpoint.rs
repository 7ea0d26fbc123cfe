//! WAL checkpoints off the commit path. SQLite's automatic checkpoint runs inside the commit that takes the
//! WAL past 1,000 pages, fsync included, so about one write in a hundred made its caller (and every event
//! it carried) wait for the disk: that was the tail of publish→receive latency. Pooled connections turn it
//! off (`wal_autocheckpoint = 0`) and this task runs a PASSIVE checkpoint every second instead, which never
//! blocks the writer or the readers; SQLite still checkpoints when the last connection closes.
//!
//! A passive checkpoint cannot restart the WAL while a reader holds an old snapshot, so under a burst with
//! long reads the file keeps growing (662 MB for a 17 MB database was seen). Past [`TRUNCATE_PAST`] bytes a
//! TRUNCATE checkpoint waits for the readers (briefly blocking the writer) and cuts the file to zero; the
//! same runs at shutdown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use tokio::time::MissedTickBehavior;

use super::{blocking, Conn, DbPool, StoreError};

/// How often the WAL is copied back into the database file.
pub const EVERY: Duration = Duration::from_secs(1);

/// A WAL larger than this after a passive checkpoint is truncated.
pub const TRUNCATE_PAST: u64 = 64 << 20;

/// Checkpoints every `every` for as long as the runtime lives; `database` is the file whose WAL is watched.
pub fn spawn(pool: DbPool, every: Duration, database: &Path) {
    let wal = PathBuf::from(format!("{}-wal", database.display()));
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let too_big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > TRUNCATE_PAST);
            let run = if too_big { truncate } else { passive };
            if let Err(e) = blocking(&pool, run).await {
                log::warn!("WAL checkpoint failed: {e}");
            }
        }
    });
}

/// Copies the whole WAL into the database, waiting for readers, and cuts the WAL file to zero bytes.
/// PostgreSQL checkpoints on its own: nothing to do there.
pub fn truncate(conn: &mut Conn) -> Result<(), StoreError> {
    if let Some(sqlite) = super::backend::as_sqlite(conn) {
        sqlite.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    Ok(())
}

/// Copies what it can of the WAL into the database without waiting for anyone.
pub fn passive(conn: &mut Conn) -> Result<(), StoreError> {
    if let Some(sqlite) = super::backend::as_sqlite(conn) {
        sqlite.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")?;
    }
    Ok(())
}
