//! Which database the API tests run on. By default each test root has its own SQLite file. When the test
//! command sets `COCKPIT_TEST_POSTGRES` to the URL of a PostgreSQL cluster it started (a temporary
//! directory, a free loopback port), the same tests run on PostgreSQL instead: each test root gets a schema
//! of its own in that cluster, named in the URL's `search_path`, so tests never see each other's rows and
//! a restarted binary finds its state again.

use std::path::Path;
use std::process::Command;

use mcp_cockpit::config::Database;

/// Set by the test command to the cluster's URL (`postgres://postgres@127.0.0.1:<port>/postgres`).
const CLUSTER: &str = "COCKPIT_TEST_POSTGRES";

/// The cluster's URL, when the tests run on PostgreSQL.
pub fn postgres_cluster() -> Option<String> {
    std::env::var(CLUSTER).ok().filter(|url| !url.is_empty())
}

/// Whether this run is the PostgreSQL one.
pub fn on_postgres() -> bool {
    postgres_cluster().is_some()
}

/// Everything the database of a test root holds, as bytes, by where it is: the SQLite file and its WAL, or
/// a `pg_dump` of the root's schema (rows and definitions).
pub fn stored(root: &Path) -> Vec<(String, Vec<u8>)> {
    match database_url_for(root) {
        None => ["", "-wal"]
            .iter()
            .map(|suffix| {
                let path = root.join(format!(".mcp-state.db{suffix}"));
                (
                    path.display().to_string(),
                    std::fs::read(&path).unwrap_or_default(),
                )
            })
            .collect(),
        Some(url) => {
            let output = Command::new("pg_dump")
                .args(["--no-owner", "-d", &url])
                .output()
                .expect("pg_dump runs");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            vec![("the pg_dump of the test's schema".into(), output.stdout)]
        }
    }
}

/// The database of a test root: `<root>/.mcp-state.db` (where the binary puts it when its repo root is
/// set), or the root's schema in the test cluster, made on first use.
pub fn database_for(root: &Path) -> Database {
    match postgres_cluster() {
        None => Database::Sqlite(root.join(".mcp-state.db")),
        Some(cluster) => Database::Postgres(schema_url(&cluster, root).into()),
    }
}

/// The URL the server gets (`COCKPIT_DATABASE_URL`), when the tests run on PostgreSQL.
pub fn database_url_for(root: &Path) -> Option<String> {
    postgres_cluster().map(|cluster| schema_url(&cluster, root))
}

fn schema_url(cluster: &str, root: &Path) -> String {
    let marker = root.join(".pg-schema");
    let schema = std::fs::read_to_string(&marker).unwrap_or_else(|_| {
        let alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
        let name = format!("t_{}", nanoid::nanoid!(16, &alphabet));
        psql(cluster, &format!("CREATE SCHEMA {name}"));
        std::fs::write(&marker, &name).expect("the schema marker is written");
        name
    });
    format!("{cluster}?options=-csearch_path%3D{schema}")
}

/// Runs SQL with `psql` against `url`; rows unaligned with `|` between columns, as `sqlite3` prints them.
pub fn psql(url: &str, sql: &str) -> String {
    let mut command = Command::new("psql");
    command.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-F",
        "|",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-c",
        sql,
    ]);
    String::from_utf8_lossy(&printed(&mut command, "psql")).into_owned()
}

/// What a command printed; the test fails with its error output if it fails.
pub fn printed(command: &mut Command, what: &str) -> Vec<u8> {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} runs (the test command installs it): {e}"));
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
