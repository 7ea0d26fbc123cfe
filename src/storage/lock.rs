//! One server per database: `serve` holds an exclusive lock on `<database>.lock` for its whole life, so a
//! second `serve` on the same file refuses to start instead of racing the first one's writer. The lock
//! file holds the holder's pid, which the refusal names. `migrate`, `check-config` and `backup` take no
//! lock: SQLite's own locking keeps them safe beside a running server.
//!
//! `std::fs::File::try_lock` is `flock(2)` here: released by the kernel when the process dies however it
//! dies (no stale lock after `kill -9`), and exclusive between two opens in one process too, so two
//! in-process servers (tests) are refused the same way.
//!
//! On PostgreSQL the same rule holds until instances share work (leases and fencing, SCALEOUT): `serve`
//! holds a session-level advisory lock on a connection of its own. The server releases it when that
//! connection ends, however the process ends; the refusal names the holder's host and backend pid.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Held while the server runs; dropping it releases the lock.
pub enum ServerLock {
    File(File),
    Session(super::Conn),
}

impl std::fmt::Debug for ServerLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerLock::File(_) => "ServerLock::File",
            ServerLock::Session(_) => "ServerLock::Session",
        })
    }
}

/// The advisory lock's first key ("cock" in ASCII); the second is the hash of the schema the tables are
/// in, so cockpits in different schemas of one database do not exclude each other.
const ADVISORY_CLASS: i32 = 0x636f_636b;

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

#[derive(diesel::QueryableByName)]
struct Holder {
    #[diesel(sql_type = diesel::sql_types::Text)]
    holder: String,
}

impl ServerLock {
    pub fn acquire(database: &super::Database) -> Result<Self, StoreError> {
        match database {
            super::Database::Sqlite(path) => Self::file(path),
            super::Database::Postgres(_) => Self::session(database),
        }
    }

    fn session(database: &super::Database) -> Result<Self, StoreError> {
        use diesel::{OptionalExtension, RunQueryDsl};
        let mut conn = super::Manager::new(database.clone()).establish()?;
        let taken: Locked = diesel::sql_query(format!(
            "SELECT pg_try_advisory_lock({ADVISORY_CLASS}, hashtext(current_schema())) AS locked"
        ))
        .get_result(&mut conn)?;
        if taken.locked {
            return Ok(ServerLock::Session(conn));
        }
        let holder: Option<Holder> = diesel::sql_query(format!(
            "SELECT 'the server on ' || COALESCE(host(a.client_addr), 'a local socket') || \
             ' (PostgreSQL backend pid ' || a.pid || ')' AS holder \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted \
             AND l.objsubid = 2 AND l.classid = {ADVISORY_CLASS} \
             AND l.objid::bigint = (hashtext(current_schema())::bigint & 4294967295) LIMIT 1"
        ))
        .get_result(&mut conn)
        .optional()?;
        Err(StoreError::Locked {
            database: database.to_string(),
            holder: holder.map_or_else(|| "another server".into(), |h| h.holder),
        })
    }

    fn file(database: &Path) -> Result<Self, StoreError> {
        super::create_parent(database)?;
        let path = lock_path(database);
        let io = |e: std::io::Error| StoreError::Open(format!("{}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // The holder wrote its pid after it locked; a read racing that write names no process.
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    database: database.display().to_string(),
                    holder: if holder.is_empty() {
                        "another process".into()
                    } else {
                        format!("process {holder}")
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(ServerLock::File(file))
    }
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first_and_the_lock_returns_when_it_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("c.db");
        let db = crate::storage::Database::Sqlite(db);
        let first = ServerLock::acquire(&db).expect("first");
        let err = ServerLock::acquire(&db).expect_err("second");
        let text = err.to_string();
        assert!(text.contains(&db.to_string()), "{text}");
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        drop(first);
        ServerLock::acquire(&db).expect("free again");
    }
}
