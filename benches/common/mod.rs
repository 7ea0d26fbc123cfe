//! What every benchmark needs: the real binary started on a free port with the rate limiter off, a
//! process's CPU time and resident memory from /proc, and percentiles. Benchmarks cannot use the test
//! helpers, so this is their own small copy of "start it and read the port from the log".

#![allow(dead_code)] // Each bench target uses its own part of this module.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A database a bench runs the cockpit on: the SQLite file in the run's directory, or a schema of its own
/// in the PostgreSQL database `--database-url` names (made with `psql`), so runs never share rows.
pub struct Backend {
    pub name: &'static str,
    /// The schema's URL, on PostgreSQL.
    url: Option<String>,
}

/// SQLite, then PostgreSQL when a URL is given: the backends a bench compares in one run.
pub fn backends(database_url: Option<&str>) -> Vec<Backend> {
    let mut all = vec![Backend {
        name: "sqlite",
        url: None,
    }];
    if let Some(url) = database_url {
        let schema = format!("bench_{}", now_us());
        let made = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c"])
            .arg(format!("CREATE SCHEMA {schema}"))
            .status()
            .expect("psql runs");
        assert!(made.success(), "cannot make a schema in {url}");
        let separator = if url.contains('?') { '&' } else { '?' };
        all.push(Backend {
            name: "postgres",
            url: Some(format!("{url}{separator}options=-csearch_path%3D{schema}")),
        });
    }
    all
}

impl Backend {
    /// The database a server started in `root` uses.
    pub fn database(&self, root: &Path) -> mcp_cockpit::config::Database {
        match &self.url {
            None => mcp_cockpit::config::Database::Sqlite(root.join(".mcp-state.db")),
            Some(url) => mcp_cockpit::config::Database::Postgres(url.clone().into()),
        }
    }

    /// The server's environment for this backend, with `extra` after it.
    pub fn with<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        self.url
            .iter()
            .map(|url| ("COCKPIT_DATABASE_URL", url.as_str()))
            .chain(extra.iter().copied())
            .collect()
    }

    /// `SELECT count(*) FROM <table>` through the service's own storage layer (-1 if it cannot be read).
    pub fn count(&self, root: &Path, table: &str) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        mcp_cockpit::storage::Manager::new(self.database(root))
            .establish()
            .ok()
            .and_then(|mut conn| {
                diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
                    .get_result::<Count>(&mut conn)
                    .ok()
            })
            .map_or(-1, |c| c.n)
    }
}

/// A server process under test.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stats(&self) -> ProcStats {
        ProcStats::of(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts mcp-cockpit on `root` (its SQLite file lives there) with the rate limiter off and the per-client
/// stream cap raised (every bench subscriber is one keyless client, 127.0.0.1), plus `env`; returns once it
/// listens. The log (warnings and the start line) is drained in the background.
pub fn cockpit(root: &Path, env: &[(&str, &str)]) -> Server {
    cockpit_with_config(root, "", env)
}

/// [`cockpit`] with a config file (`--config`) holding `config`.
pub fn cockpit_with_config(root: &Path, config: &str, env: &[(&str, &str)]) -> Server {
    let file = root.join("bench.toml");
    std::fs::write(&file, config).expect("config file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-cockpit"));
    command
        .arg("--config")
        .arg(&file)
        .env("PORT", "0")
        .env("LUKHAS_REPO_ROOT", root)
        .env("MCP_RL_BUCKET", "0")
        .env("COCKPIT_MAX_STREAMS_PER_CLIENT", "100000")
        .env("RUST_LOG", "warn,mcp_cockpit::startup=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("mcp-cockpit starts");
    let port = read_port(child.stderr.take().expect("stderr"), "listening on port ");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Reads lines until one says `<marker><port>`; keeps draining the rest so the child never blocks on a pipe.
pub fn read_port(output: impl std::io::Read + Send + 'static, marker: &str) -> u16 {
    let mut lines = BufReader::new(output).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("the server printed its port before exiting")
            .expect("readable output");
        if let Some((_, rest)) = line.split_once(marker) {
            break rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a port number");
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    port
}

/// CPU time (user + system) and resident memory of a process, from /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    /// The most the process has held resident since it started.
    pub peak_rss_kib: u64,
}

impl ProcStats {
    pub fn of(pid: u32) -> ProcStats {
        Self::read(&format!("/proc/{pid}"))
    }

    pub fn own() -> ProcStats {
        Self::read("/proc/self")
    }

    pub fn read(dir: &str) -> ProcStats {
        let stat = std::fs::read_to_string(format!("{dir}/stat")).unwrap_or_default();
        // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
        let ticks: u64 = stat.rsplit_once(") ").map_or(0, |(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum()
        });
        let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        ProcStats {
            // USER_HZ, the unit of /proc times, is 100 on every Linux ABI.
            cpu_seconds: ticks as f64 / 100.0,
            rss_kib: kib("VmRSS:"),
            peak_rss_kib: kib("VmHWM:"),
        }
    }
}

/// CPU seconds of the process's threads whose name starts with `prefix` (from /proc/<pid>/task).
pub fn thread_cpu_seconds(pid: u32, prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .map(|task| ProcStats::read(&task.path().display().to_string()).cpu_seconds)
        .sum()
}

/// The `q` quantile (0..=1) of sorted microseconds, in milliseconds.
pub fn quantile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let index = ((sorted_us.len() - 1) as f64 * q).round() as usize;
    sorted_us[index.min(sorted_us.len() - 1)] as f64 / 1000.0
}

/// Raises this process's open-file limit to its hard limit (a subscriber is a socket on each side).
pub fn raise_open_files() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
            hard
        }
        Err(_) => 0,
    }
}
