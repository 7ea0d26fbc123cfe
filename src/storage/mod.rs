//! Storage through diesel on SQLite (the embedded default) or PostgreSQL: the pool, each backend's
//! session settings, embedded migrations, and one module of query functions per table. Query functions
//! take `&mut Conn` and know nothing of HTTP or MCP.

pub mod audit;
mod backend;
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

pub(crate) use backend::{per_backend, spelled};
pub use backend::{shared_with_other_writers, write_transaction, Conn, Database, Db, Manager};
pub use lock::ServerLock;
pub use store::{AsOf, CanaryChecks, EntityState, Listed, Store};

use std::path::Path;
use std::time::Duration;

use diesel::r2d2::{Pool, PooledConnection};
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::events::EntityKind;

pub type DbPool = Pool<Manager>;
pub type DbConn = PooledConnection<Manager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations_postgres");

impl StoreError {
    /// A unique index refused the write (another writer got there first).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

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
        "{database} is in use by {holder}: one server per database (stop it, or point this one at another database)"
    )]
    Locked { database: String, holder: String },
    #[error("database worker stopped")]
    WorkerGone,
    #[error("the change was not committed: {0}")]
    NotCommitted(String),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

/// Insertion order as an `ORDER BY` term: SQLite's `rowid`, PostgreSQL's identity column `position`.
fn insertion_order(conn: &Conn, newest_first: bool) -> &'static str {
    if newest_first {
        spelled(conn, "rowid DESC", "position DESC")
    } else {
        spelled(conn, "rowid ASC", "position ASC")
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

/// Opens the database (creating a SQLite file if needed), runs pending migrations, and returns the pool
/// with the installation secret (made on first start).
pub fn open(database: &Database, pool_size: u32) -> Result<(DbPool, String), StoreError> {
    if let Database::Sqlite(path) = database {
        create_parent(path)?;
        owner_only(path).map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
    }
    let manager = Manager::new(database.clone());
    // One connection first switches a new SQLite file to WAL (which persists) and migrates it, so the
    // pool's connections, opened in parallel, never race for that switch ("database is locked").
    let mut first = manager.establish()?;
    migrate(&mut first)?;
    let secret = meta::installation_secret(&mut first)?;
    drop(first);
    let pool = Pool::builder()
        .max_size(pool_size)
        .connection_timeout(Duration::from_secs(10))
        // A SQLite file connection cannot go stale, and r2d2's `SELECT 1` per checkout cost more than the
        // point reads it guarded; a PostgreSQL connection can be cut by the network or a restart.
        .test_on_check_out(matches!(database, Database::Postgres(_)))
        .build(manager)
        .map_err(|e| StoreError::Open(format!("{database}: {e}")))?;
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

/// Applies pending migrations; returns how many. On PostgreSQL under a transaction-scoped advisory lock,
/// so servers started together migrate one after the other.
pub fn migrate(conn: &mut Conn) -> Result<usize, StoreError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    match conn {
        Conn::Sqlite(c) => Ok(c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(failed)?
            .len()),
        #[cfg(feature = "postgres")]
        Conn::Pg(c) => {
            use diesel::connection::{Connection, SimpleConnection};
            c.transaction(|c| {
                c.batch_execute("SELECT pg_advisory_xact_lock(7306355);")?;
                Ok(c.run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map_err(failed)?
                    .len())
            })
        }
    }
}

pub fn pending_migrations(conn: &mut Conn) -> Result<usize, StoreError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    Ok(match conn {
        Conn::Sqlite(c) => c
            .pending_migrations(SQLITE_MIGRATIONS)
            .map_err(failed)?
            .len(),
        #[cfg(feature = "postgres")]
        Conn::Pg(c) => c
            .pending_migrations(POSTGRES_MIGRATIONS)
            .map_err(failed)?
            .len(),
    })
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
/// service runs: SQLite's `VACUUM INTO` reads one snapshot and writes a compact file. PostgreSQL has its
/// own tools for this.
pub fn backup(conn: &mut Conn, target: &Path) -> Result<(), StoreError> {
    let Some(conn) = backend::as_sqlite(conn) else {
        return Err(StoreError::BackupTarget(
            "the database is PostgreSQL: back it up with its own tools, e.g. \
             `pg_dump --format=custom --file=cockpit.dump \"$COCKPIT_DATABASE_URL\"`"
                .into(),
        ));
    };
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
    write_transaction(conn, meta::touch)
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
    use diesel::connection::SimpleConnection;
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
        let (pool, _) = open(&Database::Sqlite(dir.path().join("cockpit.db")), 1).expect("open");
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
        let (pool, _) = open(&Database::Sqlite(db.clone()), 2).expect("open");
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
        let (pool, _) = open(&Database::Sqlite(dir.path().join("cockpit.db")), 1).expect("open");
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
