//! Building the application: storage, actors, and an HTTP server on a listener it binds itself (port 0
//! works), so tests start exactly what production starts.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Logger};
use actix_web::{web, App, HttpServer};

use crate::auth::Auth;
use crate::broker::Broker;
use crate::canary::{CanaryRegistry, PrometheusPoller};
use crate::config::{ConfigError, Settings};
use crate::failpoints::{self, Failpoint};
use crate::http::{
    self, AppState, Guard, RateLimiter, SitePolicy, SseConfig, StreamLimits, TrustedProxies,
};
use crate::jobs::{Registry, TaskCatalog};
use crate::mcp::{McpServer, SessionStore, ToolContext};
use crate::recorder::Recorder;
use crate::retention::{RetentionSweeper, Ttls};
use crate::slo;
use crate::storage::{self, StoreError};
use crate::webhooks::Webhooks;

/// How long in-flight requests may take to finish at shutdown.
const SHUTDOWN_GRACE_SECONDS: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    broker: Addr<Broker>,
    registry: Addr<Registry>,
    store: storage::Store,
    poller_thread: actix::Arbiter,
    canary_thread: actix::Arbiter,
    /// Released when the server has stopped: one server per database.
    lock: storage::ServerLock,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.validate()?;
        let database = settings.database();
        let read_only = failpoints::armed(Failpoint::DbReadonly);
        // Everything that can refuse the start does so before the first actor or thread exists, so a
        // refusal is its one error line and nothing is left half-started.
        let lock = storage::ServerLock::acquire(&database)?;
        let address = settings.server.bind.to_string();
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .port();
        let (pool, secret) = storage::open(&database, settings.storage.pool_size)?;
        let catalog = Arc::new(TaskCatalog::from_settings(&settings)?);
        let source = slo::from_settings(&settings.slo.stub, &settings.slo.prometheus)?;
        let auth = Auth::new(&settings.auth.api_keys, &secret);
        let guard = guard_from(&settings, auth);
        let keep_alive = settings.sse.keep_alive_seconds;
        crate::canary::records::prime_metrics();
        crate::jobs::records::prime_metrics();
        slo::prime_metrics();
        if let (false, storage::Database::Sqlite(file)) = (read_only, &database) {
            storage::checkpoint::spawn(pool.clone(), storage::checkpoint::EVERY, file);
        }

        // Eval processes that detach from their job are re-parented to us, so we can end and reap them.
        crate::jobs::become_subreaper();
        let store = storage::Store::new(pool.clone(), database.backend());
        let logged = store.latest_seq().await?;
        let broker = Broker::new(logged).start();
        let recorder = Recorder::start(pool.clone(), broker.clone());
        let registry =
            Registry::new(settings.jobs.clone(), catalog.clone(), recorder.clone()).start();

        // Checking runs on a thread of its own, never beside SSE fan-out or the HTTP workers.
        let poller_thread = actix::Arbiter::new();
        let poller = PrometheusPoller::start_in_arbiter(&poller_thread.handle(), move |_| {
            PrometheusPoller::new(source.build())
        });
        let webhooks =
            Webhooks::new(&settings.webhooks, store.clone(), recorder.clone()).map(Actor::start);
        // The canary registry and every canary actor run on a thread of their own too: thousands of checks a
        // second are judged there, not beside the event broker.
        let canary_thread = actix::Arbiter::new();
        let canaries = {
            let (recorder, poller, webhooks) = (recorder.clone(), poller.clone(), webhooks.clone());
            CanaryRegistry::start_in_arbiter(&canary_thread.handle(), move |_| {
                CanaryRegistry::new(recorder, poller, webhooks)
            })
        };
        // Serve only once every canary left active has resumed (or, unreadable, has been ended).
        if canaries.send(crate::canary::Recovered).await.is_err() {
            log::error!("the canary registry stopped during recovery");
        }

        let retention = &settings.retention;
        let ttls = Ttls {
            jobs: Duration::from_millis(retention.job_ttl_ms),
            canaries: Duration::from_millis(retention.canary_ttl_ms),
        };
        if let Some(sweeper) =
            RetentionSweeper::new(ttls, retention.sweep_interval_seconds, recorder.clone())
        {
            sweeper.start();
        }

        let short_keys = settings
            .auth
            .api_keys
            .iter()
            .filter(|k| {
                secrecy::ExposeSecret::expose_secret(*k).len() < crate::config::MIN_KEY_CHARS
            })
            .count();
        if short_keys > 0 {
            log::warn!(
                "{short_keys} API key(s) shorter than {} characters: accepted on a loopback bind only; \
                 generate one with `openssl rand -hex 24`",
                crate::config::MIN_KEY_CHARS
            );
        }
        if guard.auth.keyless() {
            log::warn!(
                "no API keys configured: keyless mode, allowed because {} is a loopback address",
                settings.server.bind
            );
        }
        let tools = ToolContext {
            store: store.clone(),
            registry: registry.clone(),
            canaries,
            webhooks,
            poller: poller.clone(),
            policies: Arc::new(settings.policies.clone()),
            limits: crate::canary::policy::Limits {
                min_interval: settings.canary.min_interval,
            },
            start_rules: crate::canary::StartRules {
                max_active: settings.canary.max_active,
                queries_name_model: slo::queries_name_model(&settings.slo.prometheus),
            },
            canary_warnings: Arc::new(slo::canary_warnings(&settings.slo.prometheus)),
            broker: broker.clone(),
            recorder,
            catalog,
            kill_grace: settings.jobs.kill_grace_seconds,
            subscriber_queue: settings.sse.subscriber_queue,
        };
        let state = web::Data::new(AppState {
            store: store.clone(),
            broker: broker.clone(),
            guard,
            slo: poller,
            mcp: McpServer {
                tools,
                sessions: SessionStore::default(),
                in_flight: crate::mcp::InFlight::default(),
                streams: crate::mcp::call_streams::CallStreams::default(),
                keep_alive,
            },
            sse: SseConfig {
                keep_alive,
                retry_ms: settings.sse.retry_ms,
                queue: settings.sse.subscriber_queue,
            },
            body_limit: settings.server.body_limit_bytes,
            body_read_timeout: settings.server.body_read_timeout_seconds,
        });

        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(http::gate))
                .wrap(request_logger())
                .configure(http::routes)
        });
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        };
        server = server.workers(workers);
        // actix counts connections per worker: the global cap split evenly. At the cap a worker stops
        // accepting (connections wait in the listen backlog) instead of accept() failing with EMFILE.
        let connections = connection_cap(settings.server.max_connections);
        server = server.max_connections((connections / workers).max(1));
        // Blocking work is SQLite reads, and no more of them run at once than the pool has connections: more
        // threads would only wait on the pool, each with its own stack and malloc arena (1,000 streams
        // opening at once grew ~100 of them, about 10 MB).
        let pool_size = usize::try_from(settings.storage.pool_size)
            .unwrap_or(1)
            .max(1);
        server = server.worker_max_blocking_threads(pool_size);
        // Signals are ours (run_until_stopped), so streams and jobs end before the server waits for requests.
        server = server
            .disable_signals()
            .shutdown_timeout(SHUTDOWN_GRACE_SECONDS);
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .run();
        // At warn too, so the address is printed even when RUST_LOG=warn silences info.
        log::warn!(
            "mcp-cockpit {} listening on port {port}, database {}, at most {connections} connections; \
             open http://{} for the cockpit",
            env!("CARGO_PKG_VERSION"),
            database,
            listener_address(&address, port),
        );
        Ok(Self {
            port,
            server,
            broker,
            registry,
            store,
            poller_thread,
            canary_thread,
            lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: stop accepting, end every SSE stream with a
    /// `retry:` hint, stop running jobs (recorded `failed`, "interrupted by shutdown"; queued ones stay
    /// queued), let in-flight requests finish (bounded by the server's shutdown timeout), and return.
    /// Canaries need nothing: every step is already committed, and they resume at the next start.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application {
            server,
            broker,
            registry,
            store,
            poller_thread,
            canary_thread,
            lock,
            ..
        } = self;
        let handle = server.handle();
        let mut server = std::pin::pin!(server);
        tokio::select! {
            served = &mut server => return served,
            signal = shutdown_signal() => log::info!("{signal} received: shutting down gracefully"),
        }
        // The stop command is sent now; the server future, polled below, carries it out.
        drop(handle.stop(true));
        broker.do_send(crate::broker::Shutdown);
        let jobs = async {
            if registry.send(crate::jobs::Shutdown).await.is_err() {
                log::warn!("the job registry was already gone at shutdown");
            }
        };
        let ((), served) = futures_util::future::join(jobs, server).await;
        // Everything is committed: leave no WAL behind (a TRUNCATE checkpoint empties it).
        if let Err(e) = store.truncate_wal().await {
            log::warn!("final WAL checkpoint failed: {e}");
        }
        poller_thread.stop();
        canary_thread.stop();
        drop(lock);
        log::info!("shut down");
        served
    }
}

/// The URL host of the bind address with the port actually bound (port 0 picks one).
fn listener_address(bind: &str, port: u16) -> String {
    let host = bind.rsplit_once(':').map_or(bind, |(host, _)| host);
    format!("{host}:{port}/")
}

/// File descriptors kept out of the connection budget: the database, eval pipes, outgoing HTTP, logs.
const FD_RESERVE: u64 = 512;

/// The open-connection cap: the configured one (0 = no wish), never above the open-file limit less
/// [`FD_RESERVE`]. The soft limit is first raised to the hard one, as servers do.
fn connection_cap(configured: usize) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let limit = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    };
    let budget = usize::try_from(limit.saturating_sub(FD_RESERVE).max(64)).unwrap_or(usize::MAX);
    match configured {
        0 => budget,
        wanted => wanted.min(budget),
    }
}

/// SIGTERM or SIGINT, whichever comes first.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot listen for SIGTERM/SIGINT; the service stops only when killed");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

fn guard_from(settings: &Settings, auth: Auth) -> Guard {
    let bind = settings.server.bind;
    let limits = &settings.rate_limit;
    let security = &settings.security;
    Guard {
        null_origin_reads: security.allow_null_origin || !auth.keyless(),
        streams: StreamLimits::new(security.max_streams_per_client),
        auth,
        site: SitePolicy::from_settings(&settings.security, bind.ip()),
        proxies: TrustedProxies::new(&settings.security.trusted_proxies),
        limiter: RateLimiter::new(
            limits.bucket,
            Duration::from_millis(limits.window_ms),
            limits.max_clients,
        ),
    }
}

/// Access log without secrets: the `key` query parameter (EventSource auth on /sse) is redacted.
fn request_logger() -> Logger {
    Logger::new(r#"%a "%{request}xi" %s %b %Dms"#).custom_request_replace("request", |req| {
        format!(
            "{} {}{}",
            req.method(),
            req.path(),
            redact_query(req.query_string())
        )
    })
}

/// The query with every parameter whose *decoded* name is `key` redacted (`?%6Bey=` authenticates too).
fn redact_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let decoded = form_urlencoded::parse(name.as_bytes())
                .next()
                .map(|(decoded, _)| decoded.into_owned());
            match decoded.as_deref() {
                Some("key") => "key=REDACTED".to_string(),
                _ => pair.to_string(),
            }
        })
        .collect();
    format!("?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_query;

    #[test]
    fn keys_are_redacted_by_their_decoded_name() {
        assert_eq!(
            redact_query("topic=job/*&key=k1&%6Bey=k2&k%65y&keys=x"),
            "?topic=job/*&key=REDACTED&key=REDACTED&key=REDACTED&keys=x"
        );
        assert_eq!(redact_query(""), "");
    }
}
