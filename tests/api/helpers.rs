//! `spawn_app()` and a client with one method per endpoint.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use awc::http::StatusCode;
use futures_util::StreamExt;
use mcp_cockpit::config::{EvalTask, Settings};
use mcp_cockpit::startup::Application;
use serde_json::{json, Value};

/// Longest wait for any single SSE read, and for a whole stream (keep-alive comments would otherwise keep a
/// stream that never ends alive forever); tests never depend on either being reached.
const READ_LIMIT: Duration = Duration::from_secs(30);
const STREAM_LIMIT: Duration = Duration::from_secs(180);

/// How often [`eventually`] looks again.
const POLL: Duration = Duration::from_millis(20);

/// Polls (bounded) until `ready` gives a value: the test fails naming `what` if `limit` passes first. For
/// states no event announces (a process gone, a port listening, fds released); everything else is awaited.
pub fn eventually<T>(what: &str, limit: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// [`eventually`] for checks that await (a query to another server), polling every `every`.
pub async fn eventually_async<T, F>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut ready: impl FnMut() -> F,
) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = ready().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        actix_web::rt::time::sleep(every).await;
    }
}

/// `start_canary` arguments moving `model` from `stage` into `gate` under `policy`.
pub fn canary_args(model: &str, gate: &str, policy: Value) -> Value {
    json!({"modelId": model, "fromGate": "stage", "toGate": gate, "sloPolicy": policy})
}

/// The kit's policy (p95 800 ms, 1% errors) with `extra`'s fields over it.
pub fn kit_policy(extra: Value) -> Value {
    let mut policy = json!({"latency_p95_ms": 800, "error_rate": 0.01});
    if let (Some(p), Some(e)) = (policy.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    policy
}

pub struct TestApp {
    pub address: String,
    pub root: PathBuf,
    /// The app's database: its SQLite file, or its schema on the test cluster (`backend.rs`).
    pub database: mcp_cockpit::config::Database,
    client: awc::Client,
    /// Sent as `X-API-Key` by the JSON-RPC helpers ([`TestApp::rpc`] and the tool calls built on it).
    key: Option<String>,
    /// The app's own pool on its database, opened by the first [`TestApp::sql_rows`].
    db: std::sync::OnceLock<mcp_cockpit::storage::DbPool>,
    _dir: Option<tempfile::TempDir>,
}

/// Starts an in-process HTTP server (a fake Prometheus, an exporter, a webhook receiver) on a free loopback
/// port, with the routes and data `configure` registers; returns the port.
pub fn serve(
    configure: impl Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
) -> u16 {
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
            .workers(1)
            .bind("127.0.0.1:0")
            .expect("bind a loopback port");
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    port
}

/// A task that runs `sh -c <script>` (the job id is `$1`), for tests that need a specific process.
pub fn shell_task(script: &str) -> EvalTask {
    EvalTask {
        command: vec![
            "sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            "{jobId}".into(),
        ],
        configs: None,
        timeout_seconds: std::time::Duration::from_secs_f64(60.0),
        env: std::collections::BTreeMap::default(),
        description: String::new(),
        requeue_on_restart: false,
    }
}

/// A task whose process waits until the file `gate` exists in the repo root (see [`TestApp::open_gate`]).
pub fn gated_task(gate: &str) -> EvalTask {
    shell_task(&format!("while [ ! -e {gate} ]; do sleep 0.02; done"))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::defaults().expect("defaults");
    settings.server.bind = "127.0.0.1:0".parse().expect("an address");
    settings.server.workers = 2;
    let database = crate::backend::database_for(dir.path());
    match &database {
        mcp_cockpit::config::Database::Sqlite(file) => {
            settings.storage.db_path = file.display().to_string();
        }
        mcp_cockpit::config::Database::Postgres(url) => settings.storage.database_url = url.clone(),
    }
    settings.evals.repo_root = dir.path().display().to_string();
    settings.evals.self_exe = env!("CARGO_BIN_EXE_mcp-cockpit").into();
    settings.jobs.kill_grace_seconds = std::time::Duration::from_secs_f64(0.5);
    // Canary tests check every few hundred milliseconds.
    settings.canary.min_interval = std::time::Duration::from_millis(10);
    // Tests that are about the rate limit turn it on; the others poll freely.
    settings.rate_limit.bucket = 0;
    customize(&mut settings);
    let database = settings.database();
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        root: dir.path().to_path_buf(),
        database,
        client: client(),
        key: None,
        db: std::sync::OnceLock::new(),
        _dir: Some(dir),
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
}

impl TestApp {
    /// A client for a server started some other way (the real binary, on the database of `root`).
    pub fn attach(address: &str, root: &std::path::Path) -> TestApp {
        TestApp::attach_to(address, root, crate::backend::database_for(root))
    }

    /// A client for a server started some other way, whose checks read `database`.
    pub fn attach_to(
        address: &str,
        root: &std::path::Path,
        database: mcp_cockpit::config::Database,
    ) -> TestApp {
        TestApp {
            address: address.into(),
            root: root.into(),
            database,
            client: client(),
            key: None,
            db: std::sync::OnceLock::new(),
            _dir: None,
        }
    }

    /// The JSON-RPC helpers send this key from now on.
    pub fn with_key(mut self, key: &str) -> TestApp {
        self.key = Some(key.to_string());
        self
    }

    /// Lets the processes of a [`gated_task`] finish.
    pub fn open_gate(&self, gate: &str) {
        std::fs::write(self.root.join(gate), "").expect("open the gate");
    }

    /// POST /mcp with a raw body and extra headers.
    pub async fn post_mcp_raw(&self, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.client.post(format!("{}/mcp", self.address));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request
            .send_body(body.to_string())
            .await
            .expect("POST /mcp");
        let bytes = response.body().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body,
        }
    }

    /// POST /mcp answered as `text/event-stream` (asserted): a streamed call, or `subscriptions/listen`.
    pub async fn post_stream(&self, body: &Value, headers: &[(&str, String)]) -> SseReader {
        let mut request = self
            .client
            .post(format!("{}/mcp", self.address))
            .insert_header(("Accept", "application/json, text/event-stream"));
        for (name, value) in headers {
            request = request.insert_header((*name, value.as_str()));
        }
        let response = request
            .send_body(body.to_string())
            .await
            .expect("POST /mcp");
        assert_event_stream(&response);
        SseReader::new(response)
    }

    /// POST /mcp with the key only in the URL (which must not count).
    pub async fn client_post_with_query_key(&self, body: &str, key: &str) -> StatusCode {
        let url = format!("{}/mcp?key={key}", self.address);
        self.client
            .post(url)
            .send_body(body.to_string())
            .await
            .expect("POST")
            .status()
    }

    pub async fn rpc(&self, message: Value) -> Reply {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(key) = &self.key {
            headers.push(("X-API-Key", key.as_str()));
        }
        self.post_mcp_raw(&message.to_string(), &headers).await
    }

    /// `tools/call`, returning the tool result (`content`, `structuredContent`, `isError`).
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Value {
        let reply = self.rpc(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name,"arguments":arguments}})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["result"].clone()
    }

    /// A successful tool call's object, read the kit's way: `content[0].text` parsed as JSON.
    pub async fn tool_ok(&self, name: &str, arguments: Value) -> Value {
        let result = self.call_tool(name, arguments).await;
        assert_eq!(result["isError"], false, "{result}");
        let text: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().expect("text"))
                .expect("JSON text");
        assert_eq!(text, result["structuredContent"]);
        text
    }

    /// A refused tool call's message.
    pub async fn tool_error(&self, name: &str, arguments: Value) -> String {
        let result = self.call_tool(name, arguments).await;
        assert_eq!(result["isError"], true, "{result}");
        result["content"][0]["text"]
            .as_str()
            .expect("text")
            .to_string()
    }

    /// Starts a canary; its id.
    pub async fn start_canary(&self, arguments: Value) -> String {
        let started = self.tool_ok("start_canary", arguments).await;
        started["canaryId"].as_str().expect("canaryId").to_string()
    }

    pub async fn run_eval(&self, task_id: &str) -> String {
        let job = self
            .tool_ok(
                "run_eval",
                json!({"taskId": task_id, "configId": "default"}),
            )
            .await;
        job["jobId"].as_str().expect("jobId").to_string()
    }

    /// `run_eval` with `wait: true`: the job once it has ended.
    pub async fn run_eval_and_wait(&self, task_id: &str, config_id: &str) -> Value {
        self.tool_ok(
            "run_eval",
            json!({"taskId": task_id, "configId": config_id, "wait": true}),
        )
        .await
    }

    pub async fn job(&self, job_id: &str) -> Value {
        self.tool_ok("job_status", json!({"jobId": job_id})).await
    }

    pub async fn get(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> awc::ClientResponse<
        impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>>,
    > {
        let mut request = self.client.get(format!("{}{path_and_query}", self.address));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        request.send().await.expect("GET")
    }

    /// Opens `/sse`; asserts 200.
    pub async fn sse(&self, query: &str, headers: &[(&str, &str)]) -> SseReader {
        let response = self.get(&format!("/sse?{query}"), headers).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_event_stream(&response);
        SseReader::new(response)
    }

    /// Every event of one job, from its first to its terminal one (the stream ends by itself).
    pub async fn job_events(&self, job_id: &str) -> Vec<SseEvent> {
        self.sse(&format!("topic=job/{job_id}"), &[])
            .await
            .until_end()
            .await
    }

    /// Every event of one canary, from `started` to its terminal one (the stream ends by itself).
    pub async fn canary_events(&self, canary_id: &str) -> Vec<SseEvent> {
        self.sse(&format!("topic=canary/{canary_id}"), &[])
            .await
            .until_end()
            .await
    }

    /// Runs a test's own check through the app's own pool (`storage::open`: its session settings);
    /// rows as the `sqlite3` CLI prints them: text as is, numbers in their shortest form, booleans as 1 and
    /// 0, NULL as "". A statement other than a SELECT (several, `;`-separated, may be given) runs and
    /// returns no rows.
    pub fn sql_rows(&self, query: &str) -> Vec<Vec<String>> {
        use diesel::RunQueryDsl;
        let pool = self.db.get_or_init(|| {
            mcp_cockpit::storage::open(&self.database, 1)
                .expect("the app's database opens")
                .0
        });
        let mut conn = pool.get().expect("a pooled connection");
        let statement = query.trim().trim_end_matches(';');
        if !statement.to_ascii_uppercase().starts_with("SELECT") {
            diesel::connection::SimpleConnection::batch_execute(&mut *conn, statement)
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
            return Vec::new();
        }
        // Each row comes back as one JSON array of its columns, in their order.
        let as_json = match self.database {
            mcp_cockpit::config::Database::Sqlite(_) => {
                let run = |conn: &mut _, sql: &str| {
                    diesel::sql_query(sql)
                        .execute(conn)
                        .unwrap_or_else(|e| panic!("{sql}: {e}"))
                };
                // A temporary view names the query's columns.
                run(&mut conn, &format!("CREATE TEMP VIEW checked AS {statement}"));
                let names: Vec<Cell> = diesel::sql_query(
                    "SELECT name AS cell FROM pragma_table_info('checked') ORDER BY cid",
                )
                .load(&mut conn)
                .expect("the view's columns");
                run(&mut conn, "DROP VIEW checked");
                let columns: Vec<String> = names
                    .iter()
                    .map(|n| format!("\"{}\"", n.cell.replace('"', "\"\"")))
                    .collect();
                format!(
                    "SELECT json_array({}) AS cell FROM ({statement})",
                    columns.join(", ")
                )
            }
            // `json_each` keeps a row's columns in order (on `json`, not `jsonb`).
            mcp_cockpit::config::Database::Postgres(_) => format!(
                "SELECT (SELECT json_agg(value) FROM json_each(row_to_json(checked)))::text AS cell \
                 FROM ({statement}) AS checked"
            ),
        };
        let rows: Vec<Cell> = diesel::sql_query(as_json)
            .load(&mut conn)
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        rows.iter()
            .map(|row| {
                let values: Vec<Value> = serde_json::from_str(&row.cell).expect("a JSON row");
                values
                    .into_iter()
                    .map(|v| match v {
                        Value::String(text) => text,
                        Value::Null => String::new(),
                        Value::Bool(b) => u8::from(b).to_string(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect()
    }

    /// The database is whole after a crash: SQLite's integrity check passes, and the event log has no gap
    /// (on PostgreSQL its counter row stands at the newest event).
    pub fn assert_intact(&self) {
        if let mcp_cockpit::config::Database::Sqlite(_) = self.database {
            assert_eq!(
                self.sql_rows("SELECT * FROM pragma_integrity_check"),
                [["ok"]]
            );
        } else {
            assert_eq!(
                self.sql_rows(
                    "SELECT last = (SELECT COALESCE(max(seq), 0) FROM events) FROM event_seq"
                ),
                [["1"]],
                "the counter row stands at the newest event"
            );
        }
        assert_eq!(
            self.sql_rows("SELECT COALESCE(max(seq) - min(seq) + 1, 0) = count(*) FROM events"),
            [["1"]],
            "no seq is missing from the log"
        );
    }

    /// Runs one of the kit's own queries verbatim, as the kit does: with the `sqlite3` CLI, or `psql` on
    /// PostgreSQL; rows as they print them, columns split on `|`.
    pub fn kit_sql(&self, query: &str) -> Vec<Vec<String>> {
        let printed = if let mcp_cockpit::config::Database::Sqlite(file) = &self.database {
            let mut sqlite3 = std::process::Command::new("sqlite3");
            sqlite3.args(["-cmd", ".timeout 5000"]).arg(file).arg(query);
            String::from_utf8_lossy(&crate::backend::printed(&mut sqlite3, "sqlite3")).into_owned()
        } else {
            let url = crate::backend::database_url_for(&self.root).expect("a PostgreSQL run");
            crate::backend::psql(&url, query)
        };
        printed
            .lines()
            .map(|l| l.split('|').map(String::from).collect())
            .collect()
    }
}

/// Asserts that a response is an event stream.
fn assert_event_stream<T>(response: &awc::ClientResponse<T>) {
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
}

/// One text column of a query run by [`TestApp::sql_rows`].
#[derive(diesel::QueryableByName)]
struct Cell {
    #[diesel(sql_type = diesel::sql_types::Text)]
    cell: String,
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: i64,
    pub event: String,
    pub data: Value,
}

pub struct SseReader {
    body: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>>>,
    >,
    /// Bytes, not text: a chunk may end inside a multi-byte character.
    buffer: Vec<u8>,
    pub ended: bool,
    deadline: std::time::Instant,
}

impl SseReader {
    /// Reads any `text/event-stream` body: `/sse`, `GET /mcp`, or a `tools/call` answered as a stream.
    pub fn new(
        body: impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + 'static,
    ) -> SseReader {
        SseReader {
            body: Box::pin(body),
            buffer: Vec::new(),
            ended: false,
            deadline: std::time::Instant::now() + STREAM_LIMIT,
        }
    }

    /// The next `count` messages with JSON data, each with its raw `id:` (MCP streams number them
    /// `<seq>-<n>`); blocks without JSON data (comments, `retry:`, the priming event) are skipped.
    pub async fn messages(&mut self, count: usize) -> Vec<(Option<String>, Value)> {
        let mut messages = Vec::new();
        while messages.len() < count {
            let block = self
                .read_block(false)
                .await
                .expect("the stream goes on until the awaited messages");
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .map(String::from);
            let data = block.lines().find_map(|l| l.strip_prefix("data: "));
            if let Some(value) = data.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
                messages.push((id, value));
            }
        }
        messages
    }

    /// The next event (comments and `retry:` skipped); `None` when the server ended the stream.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        self.read_event(false).await
    }

    /// Like `next_event`, but a connection cut (the server crashed) also counts as the end.
    pub async fn next_event_or_gone(&mut self) -> Option<SseEvent> {
        self.read_event(true).await
    }

    /// Events until (and including) the first one `wanted` accepts.
    pub async fn until_event_where(&mut self, wanted: impl Fn(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            let done = wanted(&event);
            events.push(event);
            if done {
                return events;
            }
        }
        panic!("stream ended before the awaited event: {events:?}");
    }

    async fn read_event(&mut self, cut_is_end: bool) -> Option<SseEvent> {
        loop {
            let block = self.read_block(cut_is_end).await?;
            let mut event = SseEvent {
                id: -1,
                event: String::new(),
                data: Value::Null,
            };
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    event.id = v.parse().expect("numeric id");
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event.event = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    event.data = serde_json::from_str(v).expect("one-line JSON data");
                }
            }
            if !event.event.is_empty() {
                return Some(event);
            }
        }
    }

    /// The next whole block, up to its blank line; `None` when the stream ended.
    async fn read_block(&mut self, cut_is_end: bool) -> Option<String> {
        loop {
            // Bytes, then text: a chunk may end inside a multi-byte character.
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let bytes: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return Some(String::from_utf8(bytes).expect("an SSE block is utf-8"));
            }
            let left = self
                .deadline
                .checked_duration_since(std::time::Instant::now())
                .expect("the SSE stream did not reach the awaited event in time");
            match tokio::time::timeout(READ_LIMIT.min(left), self.body.next())
                .await
                .expect("SSE read timed out")
            {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(_)) if cut_is_end => {
                    self.ended = true;
                    return None;
                }
                Some(Err(e)) => panic!("SSE read failed: {e}"),
                None => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }

    /// Every event until the server closes the stream.
    pub async fn until_end(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            events.push(event);
        }
        events
    }

    /// Events until (and including) the first one named `name`.
    pub async fn until_event(&mut self, name: &str) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            let done = event.event == name;
            events.push(event);
            if done {
                return events;
            }
        }
        panic!("stream ended before a `{name}` event: {events:?}");
    }
}

pub fn names(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

/// Whether a process is alive (a zombie counts as gone).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The real binary, started on port 0 with a config file and extra environment; its log is kept.
pub struct Binary {
    pub child: std::process::Child,
    pub address: String,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Binary {
    /// Fails the test, with the log, if the binary has not said it listens within 60 s.
    pub fn start(root: &std::path::Path, config: &str, env: &[(&str, &str)]) -> Binary {
        use std::io::{BufRead, BufReader};
        let config_file = root.join("cockpit.toml");
        std::fs::write(&config_file, config).expect("config");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-cockpit"));
        command
            .arg("--config")
            .arg(&config_file)
            .env("PORT", "0")
            .env("LUKHAS_REPO_ROOT", root)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        if let Some(url) = crate::backend::database_url_for(root) {
            command.env("COCKPIT_DATABASE_URL", url);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("binary starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        // One thread reads the whole log (so the server never blocks on a full pipe) and hands over the port.
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        let drain = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(kept.lock().expect("log"), "{line}");
                if let Some((_, rest)) = line.split_once("listening on port ") {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = port_tx.send(port);
                }
            }
        });
        let Ok(port) = port_rx.recv_timeout(std::time::Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            let _ = drain.join();
            panic!(
                "the binary did not say it listens within 60 s:\n{}",
                log.lock().expect("log")
            );
        };
        Binary {
            child,
            address: format!("http://127.0.0.1:{port}"),
            log,
            drain: Some(drain),
        }
    }

    /// Starts the binary on the database of `root` and attaches a client to it.
    pub fn start_app(
        root: &std::path::Path,
        config: &str,
        env: &[(&str, &str)],
    ) -> (Binary, TestApp) {
        let server = Binary::start(root, config, env);
        let app = TestApp::attach(&server.address, root);
        (server, app)
    }

    /// Waits for the process to exit (kill or signal it first) and returns its whole log, the last lines
    /// included: the drain thread has read the pipe to its end.
    pub fn exit_log(&mut self) -> String {
        self.child.wait().expect("the binary is reaped");
        if let Some(drain) = self.drain.take() {
            drain.join().expect("the log drain ends with the pipe");
        }
        self.log.lock().expect("log").clone()
    }
}

/// A test that fails half-way still leaves no server behind.
impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
