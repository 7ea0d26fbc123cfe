//! SQLite storage through diesel: the pool, connection pragmas, embedded migrations, and one module of
//! query functions per table. Query functions take `&mut Conn` and know nothing of HTTP or MCP.

pub mod audit;
pub mod canaries;
pub mod checkpoint;
pub mod completion;
pub mod events;
pub mod jobs;
mod lock;
pub mod meta;
pub mod outbox;
mod schema;
mod store;

pub use lock::ServerLock;
pub use store::{AsOf, CanaryChecks, EntityState, Listed, Store};

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::events::EntityKind;
use crate::failpoints::{self, Failpoint};

/// The one place the backend's connection type is named.
pub type Conn = SqliteConnection;
pub type DbPool = Pool<ConnectionManager<Conn>>;
pub type DbConn = PooledConnection<ConnectionManager<Conn>>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// What one retention batch removed: the rows of the swept table, their checks (canaries only) and events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub rows: usize,
    pub checks: usize,
    pub events: usize,
}

/// The storage layer's one error type.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database migrations: {0}")]
    Migration(String),
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("backup refused: {0}")]
    BackupTarget(String),
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{database} is in use by {holder}: one server per database (stop it, or set LUKHAS_MCP_DB to another file)"
    )]
    Locked { database: String, holder: String },
    #[error("database worker stopped")]
    WorkerGone,
    #[error("the change was not committed: {0}")]
    NotCommitted(String),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

/// Busy timeout first (so the WAL switch itself waits for a lock), then WAL with NORMAL sync: commits
/// survive a process crash (kill -9), not a power loss (SPEC §9).
#[derive(Debug)]
struct Pragmas;

/// `wal_autocheckpoint = 0`: checkpoints run beside the writer, not inside a commit ([`checkpoint`]).
/// `journal_size_limit`: a WAL that a checkpoint has emptied is cut back to this size instead of keeping
/// the largest size it ever reached.
const PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                       PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                       PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 16777216;";

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut Conn) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(PRAGMAS)
            .map_err(diesel::r2d2::Error::QueryError)?;
        // The `db_readonly` failpoint (tests only): every pooled connection refuses writes.
        if failpoints::armed(Failpoint::DbReadonly) {
            conn.batch_execute("PRAGMA query_only = ON;")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Creates the directory a database file goes in.
fn create_parent(path: &Path) -> Result<(), StoreError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        }),
        None => Ok(()),
    }
}

/// Opens (creating if needed) the database file, runs pending migrations, and returns the pool with the
/// installation secret (made on first start).
pub fn open(path: &Path, pool_size: u32) -> Result<(DbPool, String), StoreError> {
    create_parent(path)?;
    let cannot_open =
        |e: &dyn std::fmt::Display| StoreError::Open(format!("{}: {e}", path.display()));
    owner_only(path).map_err(|e| cannot_open(&e))?;
    // One connection first switches a new file to WAL (which persists) and migrates it, so the pool's
    // connections, opened in parallel, never race for that switch ("database is locked").
    let mut first =
        SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| cannot_open(&e))?;
    first.batch_execute(PRAGMAS)?;
    migrate(&mut first)?;
    let secret = meta::installation_secret(&mut first)?;
    drop(first);
    let manager = ConnectionManager::<SqliteConnection>::new(path.to_string_lossy());
    let pool = Pool::builder()
        .max_size(pool_size)
        .connection_timeout(Duration::from_secs(10))
        // A SQLite file connection cannot go stale; r2d2's default `SELECT 1` per checkout was parsed anew
        // each time and cost more than the point reads it guarded.
        .test_on_check_out(false)
        .connection_customizer(Box::new(Pragmas))
        .build(manager)
        .map_err(|e| cannot_open(&e))?;
    Ok((pool, secret))
}

/// The database holds the installation secret behind every audit fingerprint: it, its WAL and its shared
/// memory file are readable by their owner only. A new file is created 0600 (SQLite gives the WAL and shm
/// files the database's mode); files left more open by an older version are narrowed.
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn migrate(conn: &mut Conn) -> Result<usize, StoreError> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(applied.len())
}

pub fn pending_migrations(conn: &mut Conn) -> Result<usize, StoreError> {
    let pending = conn
        .pending_migrations(MIGRATIONS)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(pending.len())
}

/// Readiness: a write transaction can be taken and no migration is pending.
/// Whether an entity exists, so its topic may be subscribed to or noted on. `ops/<name>` topics always do.
pub fn entity_exists(conn: &mut Conn, kind: EntityKind, id: &str) -> Result<bool, StoreError> {
    Ok(match kind {
        EntityKind::Job => jobs::get(conn, id)?.is_some(),
        EntityKind::Ops => true,
        EntityKind::Canary => canaries::get(conn, id)?.is_some(),
        EntityKind::Model => canaries::model_known(conn, id)?,
    })
}

/// An online, consistent copy of the database into `target` (which must not exist), taken while the
/// service runs: SQLite's `VACUUM INTO` reads one snapshot and writes a compact file.
pub fn backup(conn: &mut Conn, target: &Path) -> Result<(), StoreError> {
    if target.exists() {
        return Err(StoreError::BackupTarget(format!(
            "{} exists already; choose a new file",
            target.display()
        )));
    }
    // Created empty and 0600 first (VACUUM INTO accepts an empty file): the copy holds the secret too.
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)
            .map_err(|e| StoreError::BackupTarget(format!("{}: {e}", target.display())))?;
    }
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(target.to_string_lossy().to_string())
        .execute(conn)?;
    Ok(())
}

pub fn check_writable(conn: &mut Conn) -> Result<(), StoreError> {
    if pending_migrations(conn)? > 0 {
        return Err(StoreError::Migration("migrations pending".into()));
    }
    conn.immediate_transaction(meta::touch)
}

/// Runs blocking storage work off the async threads.
pub(super) async fn blocking<T, F>(pool: &DbPool, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || work(&mut *pool.get()?))
        .await
        .map_err(|_| StoreError::WorkerGone)?
}

#[cfg(test)]
mod tests {
    use diesel::RunQueryDsl;

    use super::*;

    #[derive(diesel::QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }

    #[derive(diesel::QueryableByName)]
    struct Checkpoint {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        log: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        checkpointed: i32,
    }

    #[test]
    fn commits_leave_the_wal_to_the_checkpointer_which_copies_it_all_back() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (pool, _) = open(&dir.path().join("cockpit.db"), 1).expect("open");
        let mut conn = pool.get().expect("a connection");
        for n in 0..3000 {
            diesel::sql_query("INSERT INTO meta (key, value) VALUES (?, 'x')")
                .bind::<diesel::sql_types::Text, _>(format!("bench-{n}"))
                .execute(&mut conn)
                .expect("insert");
        }
        // Without automatic checkpoints the WAL holds every commit (far past SQLite's 1,000-page trigger)…
        let pending: Checkpoint = diesel::sql_query("PRAGMA wal_checkpoint(NOOP)")
            .get_result(&mut conn)
            .expect("wal state");
        assert!(pending.log > 1000, "WAL pages: {}", pending.log);
        // …until a passive checkpoint copies all of it back.
        checkpoint::passive(&mut conn).expect("checkpoint");
        let after: Checkpoint = diesel::sql_query("PRAGMA wal_checkpoint(NOOP)")
            .get_result(&mut conn)
            .expect("wal state");
        assert_eq!(after.checkpointed, after.log);
    }

    #[test]
    fn a_wal_that_a_reader_kept_growing_is_cut_to_nothing_by_a_truncate_checkpoint() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("cockpit.db");
        let (pool, _) = open(&db, 2).expect("open");
        let mut reader = pool.get().expect("a reader");
        let mut writer = pool.get().expect("a writer");
        // A read transaction holds its snapshot, so no checkpoint may restart the WAL under it.
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM meta;")
            .expect("snapshot");
        for n in 0..2000 {
            diesel::sql_query("INSERT INTO meta (key, value) VALUES (?, ?)")
                .bind::<diesel::sql_types::Text, _>(format!("burst-{n}"))
                .bind::<diesel::sql_types::Text, _>("x".repeat(500))
                .execute(&mut writer)
                .expect("insert");
            if n % 500 == 0 {
                checkpoint::passive(&mut writer).expect("passive checkpoint");
            }
        }
        let wal = dir.path().join("cockpit.db-wal");
        let grown = std::fs::metadata(&wal).expect("wal").len();
        assert!(
            grown > 1 << 20,
            "passive checkpoints could not restart it: {grown} bytes"
        );
        reader.batch_execute("COMMIT;").expect("release");
        checkpoint::truncate(&mut writer).expect("truncate");
        assert_eq!(std::fs::metadata(&wal).expect("wal").len(), 0);
        use std::os::unix::fs::PermissionsExt;
        for file in [&db, &wal] {
            let mode = std::fs::metadata(file).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }

    #[test]
    fn sqlite_is_built_with_the_planner_stability_guarantee() {
        // .cargo/config.toml sets it; without it every `.first()` statement is re-prepared on each run.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (pool, _) = open(&dir.path().join("cockpit.db"), 1).expect("open");
        let mut conn = pool.get().expect("a connection");
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<CompileOption>(&mut conn)
            .expect("compile options")
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        assert!(options.iter().any(|o| o == "ENABLE_QPSG"), "{options:?}");
    }
}
