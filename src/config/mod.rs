//! Typed settings and how they are loaded: built-in defaults (`config/default.toml`, compiled in) →
//! `--config FILE` → environment (the kit's variables and `COCKPIT_*`). Invalid configuration is one
//! [`ConfigError`] naming the key and the problem.

pub mod database;
mod env;
mod layers;
pub mod net;
pub mod policy;
mod sources;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::failpoints::Failpoint;

pub use database::Database;
pub use env::EnvSource;
use net::{HostName, OriginPattern, ProxyNet};
pub use policy::PolicyTable;
pub use sources::{GateOverride, PrometheusSettings, StubSettings, WebhookSettings};
pub use validate::MIN_KEY_CHARS;

/// The built-in defaults, documented key by key.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// A configuration problem, always naming the key (a config path like `jobs.max_running` or an env variable).
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub security: SecuritySettings,
    pub rate_limit: RateLimitSettings,
    pub storage: StorageSettings,
    pub sse: SseSettings,
    pub jobs: JobSettings,
    pub evals: EvalSettings,
    pub retention: RetentionSettings,
    pub slo: SloSettings,
    pub canary: CanarySettings,
    pub webhooks: WebhookSettings,
    /// Canary policy defaults per model and gate: `[policies."<modelId>"."<gate>"]`, `*` for any.
    #[serde(default)]
    pub policies: PolicyTable,
    /// `COCKPIT_LOG_FORMAT`: `text` (default) or `json`. Env only: logging starts before anything else.
    #[serde(skip)]
    pub log_format: LogFormat,
    /// `COCKPIT_FAILPOINT` (builds with the `failpoints` feature only): the test crash point the binary arms
    /// at start (in-process servers never do).
    #[serde(skip)]
    pub failpoint: Option<Failpoint>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    #[serde(deserialize_with = "net::deserialize_bind")]
    pub bind: std::net::SocketAddr,
    pub workers: usize,
    pub body_limit_bytes: usize,
    /// Seconds an admitted request may take to send its whole body.
    #[serde(deserialize_with = "crate::seconds::deserialize")]
    pub body_read_timeout_seconds: std::time::Duration,
    /// Open connections at most, over all workers; 0 = as many as the file-descriptor limit allows.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub api_keys: Vec<secrecy::SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    pub allowed_origins: Vec<OriginPattern>,
    pub allowed_hosts: Vec<HostName>,
    pub trusted_proxies: Vec<ProxyNet>,
    /// `Origin: null` may read `/sse` in keyless mode too (with keys it always may: the key gates it).
    #[serde(default)]
    pub allow_null_origin: bool,
    /// Concurrent event streams (`/sse`, `GET /mcp`) per API key (per address in keyless mode).
    pub max_streams_per_client: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub bucket: u32,
    pub window_ms: u64,
    pub max_clients: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub job_ttl_ms: u64,
    pub canary_ttl_ms: u64,
    #[serde(deserialize_with = "crate::seconds::deserialize")]
    pub sweep_interval_seconds: std::time::Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSettings {
    pub stub: StubSettings,
    pub prometheus: PrometheusSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySettings {
    /// The shortest `interval` a canary may ask for: `"1s"`, `"250ms"` or seconds.
    #[serde(deserialize_with = "policy::required_duration")]
    pub min_interval: std::time::Duration,
    /// Active canaries at most, dry runs included.
    pub max_active: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub db_path: String,
    /// A PostgreSQL URL; when set, all state lives there instead of the SQLite file. Never printed: the
    /// password is hidden wherever the database is named.
    pub database_url: secrecy::SecretString,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseSettings {
    #[serde(deserialize_with = "crate::seconds::deserialize")]
    pub keep_alive_seconds: std::time::Duration,
    pub retry_ms: u64,
    pub subscriber_queue: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub max_running: usize,
    pub max_queued: usize,
    #[serde(deserialize_with = "crate::seconds::deserialize")]
    pub kill_grace_seconds: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct EvalSettings {
    pub repo_root: String,
    pub self_exe: String,
    /// Every other key of `[evals]` is a task.
    pub tasks: BTreeMap<String, EvalTask>,
}

/// By hand rather than `#[serde(flatten)]`: flatten buffers the tasks, and an error inside one would be
/// reported at `evals` instead of at `evals.<task>.<key>`.
impl<'de> Deserialize<'de> for EvalSettings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = EvalSettings;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("repo_root, self_exe and a table per eval task")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut evals = EvalSettings {
                    repo_root: String::new(),
                    self_exe: String::new(),
                    tasks: BTreeMap::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "repo_root" => evals.repo_root = map.next_value()?,
                        "self_exe" => evals.self_exe = map.next_value()?,
                        _ => {
                            let task = map.next_value()?;
                            evals.tasks.insert(key, task);
                        }
                    }
                }
                Ok(evals)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalTask {
    pub command: Vec<String>,
    #[serde(default)]
    pub configs: Option<Vec<String>>,
    #[serde(
        default = "default_task_timeout",
        deserialize_with = "crate::seconds::deserialize"
    )]
    pub timeout_seconds: std::time::Duration,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    /// A run cut short by a crash or restart is queued again instead of being recorded `failed`.
    #[serde(default)]
    pub requeue_on_restart: bool,
}

fn default_task_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(3600)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Settings {
    /// The built-in defaults alone (what tests start from).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::load(None, &EnvSource::empty())
    }

    /// All layers: defaults, then the optional file, then the environment; validated.
    pub fn load(file: Option<&Path>, env: &EnvSource) -> Result<Self, ConfigError> {
        Self::finish(layers::from_toml_layers(file)?, env)
    }

    /// As [`Settings::load`], with the file's text given instead of its path.
    pub fn load_text(text: &str, origin: &str, env: &EnvSource) -> Result<Self, ConfigError> {
        Self::finish(layers::from_toml_text(Some((text, origin)))?, env)
    }

    fn finish(mut settings: Settings, env: &EnvSource) -> Result<Self, ConfigError> {
        env::apply(&mut settings, env)?;
        validate::check(&settings)?;
        Ok(settings)
    }

    /// Checks the settings again after a caller (a test, a subcommand) changed them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::check(self)
    }

    /// Where the state lives: PostgreSQL when a URL is set (`COCKPIT_DATABASE_URL`), else the SQLite file.
    pub fn database(&self) -> Database {
        use secrecy::ExposeSecret;
        if self.storage.database_url.expose_secret().is_empty() {
            Database::Sqlite(self.database_path())
        } else {
            Database::Postgres(self.storage.database_url.clone())
        }
    }

    /// Where the SQLite file lives (SPEC §1: `LUKHAS_MCP_DB`, else under the repo root, else `data/`).
    pub fn database_path(&self) -> PathBuf {
        if !self.storage.db_path.is_empty() {
            PathBuf::from(&self.storage.db_path)
        } else if !self.evals.repo_root.is_empty() {
            Path::new(&self.evals.repo_root).join(".mcp-state.db")
        } else {
            PathBuf::from("data/cockpit.db")
        }
    }

    /// Working directory for eval processes.
    pub fn repo_root(&self) -> PathBuf {
        if self.evals.repo_root.is_empty() {
            PathBuf::from(".")
        } else {
            PathBuf::from(&self.evals.repo_root)
        }
    }

    /// The armed failpoint, if any (always `None` without the `failpoints` feature).
    pub fn failpoint(&self) -> Option<Failpoint> {
        self.failpoint.filter(|_| cfg!(feature = "failpoints"))
    }
}
