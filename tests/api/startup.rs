//! Start-up with the real binary: a refusal is one clear line naming what is wrong (no panic text), a
//! second server on one database is refused while the first keeps serving, and the tools that may run
//! beside a server (`migrate`, `check-config`, `backup`) still do.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::Binary;

/// Runs the binary to its end (bounded: a server that unexpectedly starts is killed and fails the test).
fn run(root: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-cockpit"));
    command
        .args(args)
        .env("LUKHAS_REPO_ROOT", root)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = crate::backend::database_url_for(root) {
        command.env("COCKPIT_DATABASE_URL", url);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} did not exit by itself");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// The refusal: non-zero, the expected words, and nothing of a panic.
fn refused(output: &Output, words: &[&str]) -> String {
    let text = stderr(output);
    assert!(!output.status.success(), "must refuse: {text}");
    for word in words {
        assert!(text.contains(word), "`{word}` missing from: {text}");
    }
    assert!(
        !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
        "no panic text: {text}"
    );
    text
}

#[test]
fn a_second_server_on_one_database_is_refused_while_the_first_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = Binary::start(dir.path(), "", &[]);
    let database = crate::backend::database_for(dir.path());
    std::fs::write(dir.path().join("cockpit.toml"), "").expect("config");
    let second = run(dir.path(), &["serve"], &[]);
    let holder = match database {
        mcp_cockpit::config::Database::Sqlite(_) => format!("process {}", first.child.id()),
        mcp_cockpit::config::Database::Postgres(_) => "PostgreSQL backend pid".into(),
    };
    let text = refused(&second, &[&database.to_string(), &holder]);
    assert_eq!(text.lines().count(), 1, "one line: {text}");

    // Beside the running server: migrate, check-config and an online backup.
    for args in [&["migrate"][..], &["check-config"][..]] {
        let output = run(dir.path(), args, &[]);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    let copy = dir.path().join("copy.db");
    let backup = run(dir.path(), &["backup", copy.to_str().expect("utf-8")], &[]);
    assert_eq!(
        backup.status.success(),
        !crate::backend::on_postgres(),
        "backup (PostgreSQL: refused, pointing at pg_dump): {}",
        stderr(&backup)
    );

    // The first server still answers.
    let health = ureq_get(&format!("{}/healthz", first.address));
    assert!(health.contains("ok"), "{health}");
    assert!(first.child.try_wait().expect("wait").is_none());

    // Once it has stopped, the database is free again.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    first.exit_log();
    let again = Binary::start(dir.path(), "", &[]);
    assert!(ureq_get(&format!("{}/healthz", again.address)).contains("ok"));
}

/// A plain blocking GET (these tests have no async runtime).
fn ureq_get(url: &str) -> String {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "10", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn a_port_in_use_is_one_clear_error_without_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let output = run(dir.path(), &["serve"], &[("PORT", &port)]);
    refused(
        &output,
        &[&format!("cannot listen on 127.0.0.1:{port}"), "in use"],
    );
}

#[test]
fn a_missing_repo_root_is_a_configuration_error_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-repo");
    for args in [&["serve"][..], &["check-config"][..]] {
        let output = run(
            dir.path(),
            args,
            &[("LUKHAS_REPO_ROOT", missing.to_str().expect("utf-8"))],
        );
        refused(&output, &["evals.repo_root", "not a directory"]);
        assert_eq!(output.status.code(), Some(2));
    }
    assert!(!missing.exists(), "no directory or database was made");
}

#[test]
fn every_duration_and_size_setting_out_of_range_is_named_without_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    let prometheus = "[slo.prometheus]\nurl = \"http://127.0.0.1:9\"\n";
    let webhooks = "[webhooks]\nurl = \"http://127.0.0.1:9\"\n";
    let cases: Vec<(String, String)> = [
        ("jobs", "kill_grace_seconds"),
        ("sse", "keep_alive_seconds"),
        ("retention", "sweep_interval_seconds"),
        ("server", "body_read_timeout_seconds"),
    ]
    .iter()
    .flat_map(|(table, key)| {
        ["1e20", "1e300", "-1", "nan", "inf"].map(|v| {
            (
                format!("[{table}]\n{key} = {v}\n"),
                format!("{table}.{key}"),
            )
        })
    })
    .chain(["1e20", "-1", "nan"].iter().flat_map(|v| {
        [
            (
                format!("{prometheus}timeout_seconds = {v}\n"),
                "slo.prometheus.timeout_seconds".to_string(),
            ),
            (
                format!("{webhooks}timeout_seconds = {v}\n"),
                "webhooks.timeout_seconds".to_string(),
            ),
            (
                format!("[evals.t]\ncommand = [\"true\"]\ntimeout_seconds = {v}\n"),
                "evals.t.timeout_seconds".to_string(),
            ),
        ]
    }))
    .chain(
        [
            (
                "[sse]\nkeep_alive_seconds = 1e-12\n",
                "sse.keep_alive_seconds",
            ),
            ("[storage]\npool_size = 100000\n", "storage.pool_size"),
            ("[sse]\nsubscriber_queue = 0\n", "sse.subscriber_queue"),
            (
                "[rate_limit]\nwindow_ms = 86400001\n",
                "rate_limit.window_ms",
            ),
            ("[policies.m.g]\ndeadline = 1e20\n", "policies.m.g.deadline"),
            (
                "[policies.m.g]\ninterval = \"1e300\"\n",
                "policies.m.g.interval",
            ),
            ("[canary]\nmin_interval = 1e20\n", "canary.min_interval"),
        ]
        .map(|(text, key)| (text.to_string(), key.to_string())),
    )
    .collect();
    for (text, key) in cases {
        std::fs::write(&config, &text).expect("write");
        let output = run(
            dir.path(),
            &["--config", config.to_str().expect("utf-8"), "serve"],
            &[],
        );
        let said = refused(&output, &[&key]);
        assert_eq!(output.status.code(), Some(2), "{text}: {said}");
    }
    assert!(
        !dir.path().join(".mcp-state.db").exists(),
        "no refused start made a database"
    );
}

#[test]
fn an_unknown_rust_log_directive_is_reported_and_logging_stays_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Binary::start(dir.path(), "", &[("RUST_LOG", "verbose")]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let log = server.exit_log();
    assert!(log.contains("RUST_LOG: `verbose`"), "{log}");
    assert!(log.contains("INFO"), "info lines still written: {log}");
}

#[test]
fn the_start_line_says_which_address_to_open_and_the_page_has_an_icon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Binary::start(dir.path(), "", &[]);
    let log = server.log.lock().expect("log").clone();
    assert!(
        log.contains(&format!("open {}/ for the cockpit", server.address)),
        "{log}"
    );
    let icon = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{content_type}",
        ])
        .arg(format!("{}/favicon.ico", server.address))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&icon.stdout), "200 image/svg+xml");
}

/// A PostgreSQL URL is shown with its password hidden wherever the database is named: `check-config`, the
/// refusal of a server that cannot reach it, and the refusal of a URL that is not PostgreSQL's.
#[test]
fn a_database_url_is_named_without_its_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "hunter2-3f9a";
    // Port 9 (discard) has no PostgreSQL behind it on a test machine.
    let url = format!("postgres://cockpit:{secret}@127.0.0.1:9/cockpit");
    let shown = "postgres://cockpit:***@127.0.0.1:9/cockpit";
    let env = [("COCKPIT_DATABASE_URL", url.as_str())];
    let checked = run(dir.path(), &["check-config"], &env);
    let printed = String::from_utf8_lossy(&checked.stdout).to_string();
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert!(
        printed.contains(&format!("database: {shown} (postgres)")),
        "{printed}"
    );
    assert!(!printed.contains(secret), "{printed}");

    let served = run(dir.path(), &["serve"], &env);
    let text = refused(&served, &[shown]);
    assert!(!text.contains(secret), "{text}");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");

    let other = format!("mysql://cockpit:{secret}@127.0.0.1/cockpit");
    let wrong = run(
        dir.path(),
        &["check-config"],
        &[("COCKPIT_DATABASE_URL", &other)],
    );
    let text = refused(
        &wrong,
        &[
            "storage.database_url",
            "not a PostgreSQL URL",
            "mysql://cockpit:***@",
        ],
    );
    assert!(!text.contains(secret), "{text}");
    assert_eq!(wrong.status.code(), Some(2));
}
