//! One server per database: `serve` holds an exclusive lock on `<database>.lock` for its whole life, so a
//! second `serve` on the same file refuses to start instead of racing the first one's writer. The lock
//! file holds the holder's pid, which the refusal names. `migrate`, `check-config` and `backup` take no
//! lock: SQLite's own locking keeps them safe beside a running server.
//!
//! `std::fs::File::try_lock` is `flock(2)` here: released by the kernel when the process dies however it
//! dies (no stale lock after `kill -9`), and exclusive between two opens in one process too, so two
//! in-process servers (tests) are refused the same way.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Held while the server runs; dropping it releases the lock.
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
}

impl ServerLock {
    pub fn acquire(database: &Path) -> Result<Self, StoreError> {
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
        Ok(Self { _file: file })
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
        let first = ServerLock::acquire(&db).expect("first");
        let err = ServerLock::acquire(&db).expect_err("second");
        let text = err.to_string();
        assert!(text.contains(&db.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        drop(first);
        ServerLock::acquire(&db).expect("free again");
    }
}
