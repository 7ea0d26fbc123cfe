//! WAL checkpoints off the commit path. SQLite's automatic checkpoint runs inside the commit that takes the
//! WAL past 1,000 pages, fsync included, so about one write in a hundred made its caller (and every event
//! it carried) wait for the disk: that was the tail of publish→receive latency. Pooled connections turn it
//! off (`wal_autocheckpoint = 0`) and this task runs a PASSIVE checkpoint every second instead, which never
//! blocks the writer or the readers; SQLite still checkpoints when the last connection closes.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sqlite::SqliteConnection;
use tokio::time::MissedTickBehavior;

use super::{blocking, DbPool, StoreError};

/// How often the WAL is copied back into the database file.
pub const EVERY: Duration = Duration::from_secs(1);

/// Checkpoints every `every` for as long as the runtime lives.
pub fn spawn(pool: DbPool, every: Duration) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = blocking(&pool, passive).await {
                log::warn!("WAL checkpoint failed: {e}");
            }
        }
    });
}

/// Copies what it can of the WAL into the database without waiting for anyone.
pub fn passive(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")?;
    Ok(())
}
