//! The two backends behind one connection type: SQLite (the embedded default, a file) and PostgreSQL (a URL,
//! with the `postgres` feature). Query code is written once against [`Conn`], diesel's `MultiConnection`
//! over both; the few statements the backends spell differently (upserts, the insertion order, how a
//! write transaction starts) go through [`per_backend!`], which compiles one body for each.

use std::fmt;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{ManageConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
#[cfg(feature = "postgres")]
use secrecy::ExposeSecret;

use super::StoreError;
pub use crate::config::Database;
use crate::failpoints::{self, Failpoint};

/// One connection to either backend.
#[cfg(feature = "postgres")]
#[derive(diesel::MultiConnection)]
pub enum Conn {
    Sqlite(SqliteConnection),
    Pg(diesel::PgConnection),
}

/// One connection to either backend (this build has SQLite only).
#[cfg(not(feature = "postgres"))]
#[derive(diesel::MultiConnection)]
pub enum Conn {
    Sqlite(SqliteConnection),
}

/// The backend type the shared query code is written against.
pub type Db = <Conn as Connection>::Backend;

/// Runs `$body` with `$c` bound to the inner connection of whichever backend `$conn` is: for the statements
/// diesel's common subset cannot express (`ON CONFLICT`), written once and compiled for each backend.
macro_rules! per_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::storage::Conn::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            $crate::storage::Conn::Pg($c) => $body,
        }
    };
}
pub(crate) use per_backend;

/// A backend's spelling of one thing the SQL must say differently.
#[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
pub fn spelled(conn: &Conn, sqlite: &'static str, postgres: &'static str) -> &'static str {
    match conn {
        Conn::Sqlite(_) => sqlite,
        #[cfg(feature = "postgres")]
        Conn::Pg(_) => postgres,
    }
}

/// The SQLite connection, for what only SQLite has (its pragmas, `VACUUM INTO`).
#[cfg_attr(not(feature = "postgres"), allow(clippy::unnecessary_wraps))]
pub fn as_sqlite(conn: &mut Conn) -> Option<&mut SqliteConnection> {
    match conn {
        Conn::Sqlite(c) => Some(c),
        #[cfg(feature = "postgres")]
        Conn::Pg(_) => None,
    }
}

/// Whether other writers can commit between this transaction's reads and its writes: on PostgreSQL
/// (another instance, any session); never on SQLite, whose one writer holds the write lock from `BEGIN`.
pub fn shared_with_other_writers(conn: &Conn) -> bool {
    match conn {
        Conn::Sqlite(_) => false,
        #[cfg(feature = "postgres")]
        Conn::Pg(_) => true,
    }
}

/// Runs `work` in a write transaction: on SQLite `BEGIN IMMEDIATE` (the write lock first, so a transaction
/// that reads before it writes never fails to upgrade), on PostgreSQL a plain `BEGIN` (READ COMMITTED).
pub fn write_transaction<T, E>(
    conn: &mut Conn,
    work: impl FnOnce(&mut Conn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    per_backend!(&mut *conn, c => Begin::begin(c)?);
    match work(conn) {
        Ok(value) => {
            <Conn as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            <Conn as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(e)
        }
    }
}

/// How each backend starts a write transaction.
trait Begin {
    fn begin(&mut self) -> diesel::QueryResult<()>;
}

impl Begin for SqliteConnection {
    fn begin(&mut self) -> diesel::QueryResult<()> {
        AnsiTransactionManager::begin_transaction_sql(self, "BEGIN IMMEDIATE")
    }
}

#[cfg(feature = "postgres")]
impl Begin for diesel::PgConnection {
    fn begin(&mut self) -> diesel::QueryResult<()> {
        AnsiTransactionManager::begin_transaction(self)
    }
}

/// Busy timeout first (so the WAL switch itself waits for a lock), then WAL with NORMAL sync: commits
/// survive a process crash (kill -9), not a power loss (SPEC §9).
///
/// `wal_autocheckpoint = 0`: checkpoints run beside the writer, not inside a commit (`checkpoint`).
/// `journal_size_limit`: a WAL that a checkpoint has emptied is cut back to this size instead of keeping
/// the largest size it ever reached.
const SQLITE_SETTINGS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                       PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                       PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 16777216;";

/// Every PostgreSQL session: a writer that stalls after taking the event counter frees it within 5 s, a
/// waiter gives up after 2 s (the recorder retries its group), no statement runs past 10 s, and the
/// server's views name us. Timestamps are written by us in UTC text; the session's zone is UTC so the
/// `datetime('now')` defaults agree.
const POSTGRES_SETTINGS: &str = "SET lock_timeout = '2s'; \
                                 SET idle_in_transaction_session_timeout = '5s'; \
                                 SET statement_timeout = '10s'; \
                                 SET application_name = 'mcp-cockpit'; SET TIME ZONE 'UTC';";

/// Opens connections to one database, each set up for this service before the pool hands it out.
pub struct Manager {
    database: Database,
}

impl Manager {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// A new connection with the service's session settings.
    pub fn establish(&self) -> Result<Conn, StoreError> {
        // One line, whatever the driver says (libpq breaks its messages over lines).
        let cannot_open = |e: &dyn fmt::Display| {
            let said: Vec<String> = e
                .to_string()
                .lines()
                .map(|l| l.trim().to_string())
                .collect();
            StoreError::Open(format!("{}: {}", self.database, said.join(" ")))
        };
        let mut conn =
            match &self.database {
                Database::Sqlite(path) => Conn::Sqlite(
                    SqliteConnection::establish(&path.to_string_lossy())
                        .map_err(|e| cannot_open(&e))?,
                ),
                #[cfg(feature = "postgres")]
                Database::Postgres(url) => Conn::Pg(
                    // libpq's own message never repeats the password.
                    diesel::PgConnection::establish(url.expose_secret())
                        .map_err(|e| cannot_open(&e))?,
                ),
                #[cfg(not(feature = "postgres"))]
                Database::Postgres(_) => return Err(cannot_open(
                    &"this build has no PostgreSQL support (build it with `--features postgres`)",
                )),
            };
        let settings = spelled(&conn, SQLITE_SETTINGS, POSTGRES_SETTINGS);
        conn.batch_execute(settings)?;
        Ok(conn)
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = StoreError;

    /// A pooled connection; with the `db_readonly` failpoint (tests only), one that refuses writes.
    fn connect(&self) -> Result<Conn, StoreError> {
        let mut conn = self.establish()?;
        if failpoints::armed(Failpoint::DbReadonly) {
            conn.batch_execute(spelled(
                &conn,
                "PRAGMA query_only = ON;",
                "SET default_transaction_read_only = on;",
            ))?;
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), StoreError> {
        Ok(conn.ping()?)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}
