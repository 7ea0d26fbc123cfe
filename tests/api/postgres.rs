//! What only PostgreSQL has. On a cluster the test starts itself (Debian's PostgreSQL, a free loopback port, a
//! temporary directory, `initdb` as `postgres` when the tests run as root, stopped when the test ends): the
//! schema (`migrations_postgres/`) migrates up and down; one active canary per model and gate, and one canary
//! per idempotency key, hold against any writer; the kit's three audit queries run verbatim in `psql`; and two
//! writers committing through the recorder's own calls never let a reader following `seq` skip an event. On
//! the test command's PostgreSQL pass (`backend.rs`), against the running service: a start that loses a race
//! to another writer, and a group blocked past `lock_timeout` on the event counter or on a row.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

/// A PostgreSQL cluster of the test's own.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
}

/// `id -u [user]`.
fn uid_of(user: &[&str]) -> u32 {
    let output = Command::new("id")
        .arg("-u")
        .args(user)
        .output()
        .expect("id runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a uid")
}

/// The newest installed PostgreSQL's programs (`/usr/lib/postgresql/<version>/bin`).
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (the test command installs Debian's postgresql)")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version").1
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let as_root = uid_of(&[]) == 0;
        if as_root {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            std::os::unix::fs::chown(dir.path(), Some(uid_of(&["postgres"])), None).expect("chown");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cluster = PgCluster {
            dir,
            bin: postgres_bin(),
            port,
            as_root,
        };
        let data = cluster.dir.path().join("data");
        cluster.run_as_owner(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "cockpit",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("server.log");
        cluster.run_as_owner(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        cluster
    }

    fn run_as_owner(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let output = command.args(args).output().expect("runs");
        assert!(
            output.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The cluster's `postgres` database, as `COCKPIT_DATABASE_URL` names it.
    pub fn url(&self) -> String {
        format!("postgres://cockpit@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs SQL in `psql` (unaligned, tuples only); `Err` with psql's error text when it fails.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let output = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "cockpit",
                "-d",
                "postgres",
            ])
            .args(["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).to_string())
        }
    }

    pub fn migrate(&self, file: &Path) {
        let sql = std::fs::read_to_string(file).expect("migration");
        self.psql(&sql)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let path = self.bin.join("pg_ctl");
        let mut command = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = command
            .args(["-D", &data.to_string_lossy(), "-m", "immediate", "stop"])
            .output();
    }
}

fn schema(direction: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations_postgres/2026-11-30-000001_schema")
        .join(format!("{direction}.sql"))
}

fn canary(id: &str, model: &str, status: &str, extra: &str) -> String {
    format!(
        "INSERT INTO canaries (id, model_id, from_gate, to_gate, slo_policy, status, deadline_at{}) \
         VALUES ('{id}', '{model}', 'stage', 'production', '{{}}', '{status}', '2099-01-01 00:00:00'{})",
        extra.split_once('=').map(|(c, _)| format!(", {c}")).unwrap_or_default(),
        extra.split_once('=').map(|(_, v)| format!(", {v}")).unwrap_or_default(),
    )
}

#[test]
fn the_postgresql_schema_migrates_up_and_down_and_keeps_one_active_canary_per_gate() {
    let pg = PgCluster::start();
    pg.migrate(&schema("up"));
    pg.psql(&canary("c1", "m", "running", ""))
        .expect("the first active canary");
    let second = pg
        .psql(&canary("c2", "m", "paused", ""))
        .expect_err("a second active one");
    assert!(second.contains("canaries_one_active"), "{second}");
    pg.psql(&canary("c3", "m", "running", "dry_run=true"))
        .expect("a dry run beside it");
    pg.psql(&canary("c4", "m", "promoted", ""))
        .expect("an ended one beside it");
    pg.psql(&canary("c5", "n", "running", "idempotency_key='k'"))
        .expect("a keyed canary");
    let reused = pg
        .psql(&canary("c6", "o", "running", "idempotency_key='k'"))
        .expect_err("the same key twice");
    assert!(reused.contains("canaries_idempotency_key"), "{reused}");
    let order = pg
        .psql("SELECT string_agg(id, ',' ORDER BY position) FROM canaries")
        .expect("rows");
    assert_eq!(
        order, "c1,c3,c4,c5",
        "position keeps insertion order, as rowid does in SQLite"
    );

    pg.migrate(&schema("down"));
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .expect("tables"),
        "0"
    );
    pg.migrate(&schema("up"));
}

#[test]
fn the_kits_three_audit_queries_run_verbatim_on_postgresql() {
    let pg = PgCluster::start();
    pg.migrate(&schema("up"));
    pg.psql(
        "INSERT INTO jobs (job_id, task_id, config_id, status, result, timeout_seconds) \
         VALUES ('job_new', 'demo', 'default', 'completed', '{\"passed\":true}', 60); \
         INSERT INTO jobs (job_id, task_id, config_id, status, timeout_seconds, created_at) \
         VALUES ('job_old', 'demo', 'default', 'completed', 60, '2000-01-01 00:00:00')",
    )
    .expect("jobs");
    pg.psql(&canary("canary_p", "m", "promoted", ""))
        .expect("a promoted canary");
    pg.psql(&canary("canary_r", "n", "rolled_back", ""))
        .expect("a rolled-back canary");
    pg.psql(
        "INSERT INTO canary_metrics (canary_id, gate, latency_p95_ms, error_rate, latency_threshold, \
         error_rate_threshold, verdict, reason_code, query, evaluated_at) \
         VALUES ('canary_r', 'production', 1200, 0.002, 800, 0.01, 'fail', 'latency_above_slo', '{}', '2026-11-30 00:00:00')",
    )
    .expect("a breaching check");

    // The kit's queries, as the kit prints them.
    let recent = pg
        .psql(
            "SELECT created_at, job_id, status, result \nFROM jobs \nWHERE created_at > datetime('now', '-1 hour') \nORDER BY created_at DESC;",
        )
        .expect("recent job activity");
    assert!(
        recent.contains("|job_new|completed|{\"passed\":true}") && !recent.contains("job_old"),
        "{recent}"
    );
    let success = pg
        .psql(
            "SELECT \n  status,\n  COUNT(*) as count,\n  ROUND(COUNT(*) * 100.0 / SUM(COUNT(*)) OVER(), 1) as percentage\nFROM canaries \nWHERE created_at > datetime('now', '-24 hours')\nGROUP BY status;",
        )
        .expect("canary success rate");
    let mut rows: Vec<&str> = success.lines().collect();
    rows.sort_unstable();
    assert_eq!(rows, ["promoted|1|50.0", "rolled_back|1|50.0"]);
    let breaches = pg
        .psql(
            "SELECT \n  cm.canary_id,\n  cm.latency_p95_ms,\n  cm.error_rate,\n  c.from_gate,\n  c.to_gate,\n  c.status\nFROM canary_metrics cm\nJOIN canaries c ON cm.canary_id = c.id\nWHERE cm.latency_p95_ms > 800 OR cm.error_rate > 0.01\nORDER BY cm.created_at DESC\nLIMIT 20;",
        )
        .expect("SLO breach analysis");
    assert_eq!(breaches, "canary_r|1200|0.002|stage|production|rolled_back");
}

/// One group commit as the recorder makes it, through the recorder's own storage calls: a write first,
/// then `events::append_all` (the counter row, then the events with its seqs) as the last statements, then
/// COMMIT, which releases the row only once the commit is visible.
fn group_commit(conn: &mut mcp_cockpit::storage::Conn, writer: usize, group: usize) {
    use mcp_cockpit::events::{EntityKind, NewEvent};
    use mcp_cockpit::storage::{audit::AuditEntry, events, write_transaction, StoreError};
    write_transaction(conn, |conn| {
        let audit = AuditEntry {
            actor: format!("w{writer}"),
            action: "test",
            args: json!({"group": group}),
        };
        audit.record(conn, &format!("ops/w{writer}"))?;
        let rendered: Vec<_> = ["a", "b"]
            .iter()
            .map(|part| {
                NewEvent::new(
                    EntityKind::Ops,
                    &format!("w{writer}"),
                    "note",
                    format!("g{group} {part}"),
                )
                .render(mcp_cockpit::clock::now())
            })
            .collect();
        events::append_all(conn, &rendered.iter().collect::<Vec<_>>())?;
        Ok::<_, StoreError>(())
    })
    .expect("the writer's group commits");
}

/// Two writers (two connections, as two instances would have) commit groups of events while a reader
/// follows the log as an instance does, reading everything after the last seq it has seen: it never sees
/// seq k+1 before k, and ends with exactly the committed events. (The same test with seqs from a plain
/// sequence at insert time fails: a later seq can commit first.)
#[test]
fn with_two_writers_committing_a_reader_following_seq_never_sees_a_later_event_before_an_earlier_one(
) {
    use mcp_cockpit::storage::{events, Database, Manager};
    const GROUPS: usize = 150;
    let pg = PgCluster::start();
    let database = Database::Postgres(pg.url().into());
    mcp_cockpit::storage::open(&database, 1).expect("migrated");
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let database = database.clone();
            std::thread::spawn(move || {
                let mut conn = Manager::new(database)
                    .establish()
                    .expect("a writer's session");
                for group in 0..GROUPS {
                    group_commit(&mut conn, writer, group);
                }
            })
        })
        .collect();
    let mut reader = Manager::new(database)
        .establish()
        .expect("the reader's session");
    let mut seen = 0_i64;
    let mut reads = 0;
    loop {
        let writing = writers.iter().any(|w| !w.is_finished());
        let page =
            events::page(&mut reader, &[(events::Scope::All, seen)], seen, 10_000).expect("read");
        for event in page {
            assert_eq!(
                event.seq,
                seen + 1,
                "after {seen} the reader saw {}: an event skipped",
                event.seq
            );
            seen = event.seq;
        }
        reads += 1;
        if !writing {
            break;
        }
    }
    for writer in writers {
        writer.join().expect("writer");
    }
    let total = i64::try_from(2 * 2 * GROUPS).expect("small");
    assert_eq!(seen, total, "the reader ends with every committed event");
    assert_eq!(
        pg.psql("SELECT count(*) FROM audit").expect("audit"),
        (2 * GROUPS).to_string()
    );
    assert!(
        reads > 2,
        "the reader followed the log while it was written ({reads} reads)"
    );
}

/// Another writer (as another instance would be): a session of the app's database that has run `sql` in a
/// transaction it keeps open, holding whatever locks that took, until the test sends `COMMIT`.
fn another_writer(app: &crate::helpers::TestApp, sql: &str) -> mcp_cockpit::storage::Conn {
    use diesel::connection::SimpleConnection;
    let mut side = mcp_cockpit::storage::Manager::new(app.database.clone())
        .establish()
        .expect("a second session");
    side.batch_execute(&format!("BEGIN; {sql}"))
        .unwrap_or_else(|e| panic!("the other writer: {sql}: {e}"));
    side
}

/// Waits (bounded) until the recorder has run a group again (`cockpit_commit_retries_total` > 0): past the
/// 2 s `lock_timeout`, a blocked attempt fails and is counted.
async fn a_retry_is_counted(app: &crate::helpers::TestApp) {
    crate::helpers::eventually_async(
        "a blocked group is counted as run again",
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(50),
        || async {
            let mut metrics = app.get("/metrics", &[]).await;
            let text = String::from_utf8_lossy(&metrics.body().await.expect("metrics")).to_string();
            text.lines()
                .any(|l| l.starts_with("cockpit_commit_retries_total ") && !l.ends_with(" 0"))
                .then_some(())
        },
    )
    .await;
}

/// Waits (bounded) until some session of the app's database waits for a lock that another holds.
async fn someone_waits_for_a_lock(side: &mut mcp_cockpit::storage::Conn) {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    crate::helpers::eventually_async(
        "the start's insert waits for the other writer's row",
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(5),
        || {
            let waiting: Waiting =
                diesel::sql_query("SELECT count(*) AS n FROM pg_locks WHERE NOT granted")
                    .get_result(side)
                    .expect("pg_locks");
            std::future::ready((waiting.n > 0).then_some(()))
        },
    )
    .await;
}

/// Another writer (a second instance, here a plain session) inserts an active canary for the same model
/// and gate after this server's start has checked, and commits while the start's insert waits on the
/// unique index: the start answers the same conflict, naming that canary, as if it had been there first;
/// no internal error, one active canary. The same for an idempotency key used by the other writer.
#[actix_web::test]
async fn a_start_that_loses_a_race_to_another_writer_answers_as_if_it_had_been_second() {
    if !crate::backend::on_postgres() {
        return; // SQLite has one writer: the checks and the insert cannot be raced.
    }
    use diesel::connection::SimpleConnection;
    let app = crate::helpers::spawn_app().await;
    for (other, key, expected) in [
        (
            "cn_otherwriter1",
            "NULL",
            "Conflict: canary `cn_otherwriter1`",
        ),
        ("cn_otherwriter2", "'race-key'", "cn_otherwriter2"),
    ] {
        let model = format!("m-{other}");
        // The other writer's canary, not yet committed.
        let mut side = another_writer(
            &app,
            &format!(
                "INSERT INTO canaries (id, model_id, from_gate, to_gate, slo_policy, status, \
                 idempotency_key, deadline_at) VALUES ('{other}', '{model}', 'stage', 'production', \
                 '{{}}', 'running', {key}, '2999-01-01 00:00:00')"
            ),
        );
        // With a key, another model: only the key's index can refuse the insert.
        let mine = if key == "NULL" {
            model.clone()
        } else {
            format!("{model}-mine")
        };
        let mut arguments =
            crate::helpers::canary_args(&mine, "production", crate::helpers::kit_policy(json!({})));
        if key != "NULL" {
            arguments["idempotencyKey"] = json!("race-key");
        }
        let client = crate::helpers::TestApp::attach(&app.address, &app.root);
        let start =
            actix_web::rt::spawn(async move { client.call_tool("start_canary", arguments).await });
        someone_waits_for_a_lock(&mut side).await;
        side.batch_execute("COMMIT")
            .expect("the other writer commits");
        let result = start.await.expect("the start answers");
        assert_eq!(result["isError"], true, "{result}");
        let text = result["content"][0]["text"].as_str().expect("text");
        assert!(text.contains(expected), "{text}");
        assert_eq!(
            app.sql_rows(&format!(
                "SELECT id FROM canaries WHERE model_id IN ('{model}', '{mine}') \
                 OR idempotency_key = 'race-key'"
            )),
            [[other]],
            "only the other writer's canary exists"
        );
    }
}

/// A group that cannot take the event counter within `lock_timeout` (another writer holds it) is run
/// again, whole, instead of failing its callers: the note waits, then commits with the next seq, and the
/// retry is counted.
#[actix_web::test]
async fn a_group_blocked_on_the_event_counter_is_run_again_and_commits() {
    if !crate::backend::on_postgres() {
        return; // SQLite has one writer and no counter row.
    }
    use diesel::connection::SimpleConnection;
    let app = crate::helpers::spawn_app().await;
    let before = app
        .tool_ok(
            "publish_note",
            json!({"topic": "ops/retry", "message": "before"}),
        )
        .await;
    let mut side = another_writer(&app, "UPDATE event_seq SET last = last WHERE id = 1");
    let client = crate::helpers::TestApp::attach(&app.address, &app.root);
    let note = actix_web::rt::spawn(async move {
        client
            .tool_ok(
                "publish_note",
                json!({"topic": "ops/retry", "message": "blocked"}),
            )
            .await
    });
    someone_waits_for_a_lock(&mut side).await;
    a_retry_is_counted(&app).await;
    side.batch_execute("COMMIT")
        .expect("the other writer lets go");
    let noted = note.await.expect("the note is answered");
    assert_eq!(
        noted["seq"],
        before["seq"].as_i64().expect("seq") + 1,
        "{noted}"
    );
    assert_eq!(
        app.sql_rows("SELECT count(*) FROM events WHERE topic = 'ops/retry'"),
        [["2"]]
    );
}

/// A change that waits past `lock_timeout` for a row another writer holds fails the group's attempt, not
/// its caller: the group runs again, and once the other writer lets go the abort commits, once.
#[actix_web::test]
async fn a_change_blocked_on_a_row_another_writer_holds_is_run_again_and_commits() {
    if !crate::backend::on_postgres() {
        return; // SQLite has one writer: no other session can hold a row.
    }
    use diesel::connection::SimpleConnection;
    let app = crate::helpers::spawn_app().await;
    let canary = app
        .start_canary(crate::helpers::canary_args(
            "m-row-lock",
            "production",
            crate::helpers::kit_policy(json!({})),
        ))
        .await;
    let mut side = another_writer(
        &app,
        &format!("SELECT id FROM canaries WHERE id = '{canary}' FOR UPDATE"),
    );
    let client = crate::helpers::TestApp::attach(&app.address, &app.root);
    let id = canary.clone();
    let abort = actix_web::rt::spawn(async move {
        client
            .call_tool(
                "abort_canary",
                json!({"canaryId": id, "reason": "row lock test"}),
            )
            .await
    });
    someone_waits_for_a_lock(&mut side).await;
    a_retry_is_counted(&app).await;
    side.batch_execute("COMMIT")
        .expect("the other writer lets go");
    let aborted = abort.await.expect("the abort is answered");
    assert_eq!(aborted["isError"], false, "{aborted}");
    assert_eq!(
        aborted["structuredContent"]["status"], "rolled_back",
        "{aborted}"
    );
    assert_eq!(
        app.sql_rows(&format!(
            "SELECT count(*) FROM events WHERE topic = 'canary/{canary}' AND event = 'rolled_back'"
        )),
        [["1"]]
    );
}
