//! Building the application: storage, actors, and an HTTP server on a listener it binds itself (port 0
//! works), so tests start exactly what production starts.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Logger};
use actix_web::{web, App, HttpServer};

use crate::broker::Broker;
use crate::canary::{CanaryRegistry, PrometheusPoller};
use crate::config::{ConfigError, Settings};
use crate::failpoints::Failpoint;
use crate::http::{
    self, AppState, Auth, Guard, RateLimiter, SitePolicy, SseConfig, TrustedProxies,
};
use crate::jobs::{Registry, RetentionSweeper, TaskCatalog};
use crate::mcp::{McpServer, SessionStore, ToolContext};
use crate::recorder::Recorder;
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
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.validate()?;
        let database = settings.database_path();
        let failpoint = settings.failpoint();
        let read_only = failpoint == Some(Failpoint::DbReadonly);
        let (pool, secret) = storage::open(&database, settings.storage.pool_size, read_only)?;
        let keep_alive = Duration::from_secs_f64(settings.sse.keep_alive_seconds);
        if !read_only {
            storage::checkpoint::spawn(pool.clone(), storage::checkpoint::EVERY);
        }

        let broker = Broker::new().start();
        let recorder = Recorder::start(pool.clone(), broker.clone(), failpoint);
        let catalog = Arc::new(TaskCatalog::from_settings(&settings)?);
        let registry = Registry::new(
            settings.jobs.clone(),
            catalog.clone(),
            recorder.clone(),
            failpoint == Some(Failpoint::JobPanic),
        )
        .start();

        let source = slo::from_settings(&settings.slo.stub, &settings.slo.prometheus)?;
        let poller = PrometheusPoller::new(source).start();
        let webhooks =
            Webhooks::new(&settings.webhooks, pool.clone(), recorder.clone()).map(Actor::start);
        let canaries =
            CanaryRegistry::new(recorder.clone(), poller.clone(), webhooks, failpoint).start();

        let retention = &settings.retention;
        if let Some(sweeper) = RetentionSweeper::new(
            Duration::from_millis(retention.job_ttl_ms),
            Duration::from_secs_f64(retention.sweep_interval_seconds),
            recorder.clone(),
        ) {
            sweeper.start();
        }

        let auth = Auth::new(&settings.auth.api_keys, &secret);
        let guard = guard_from(&settings, auth)?;
        if guard.auth.keyless() {
            log::warn!(
                "no API keys configured: keyless mode, allowed because {} is a loopback address",
                settings.server.bind
            );
        }
        let tools = ToolContext {
            pool: pool.clone(),
            registry: registry.clone(),
            canaries,
            poller: poller.clone(),
            policies: Arc::new(settings.policies.clone()),
            broker: broker.clone(),
            recorder,
            catalog,
            kill_grace: Duration::from_secs_f64(settings.jobs.kill_grace_seconds),
            subscriber_queue: settings.sse.subscriber_queue,
        };
        let state = web::Data::new(AppState {
            pool,
            broker: broker.clone(),
            guard,
            slo: poller,
            mcp: McpServer {
                tools,
                sessions: SessionStore::default(),
                in_flight: Default::default(),
            },
            sse: SseConfig {
                keep_alive,
                retry_ms: settings.sse.retry_ms,
                queue: settings.sse.subscriber_queue,
            },
            body_limit: settings.server.body_limit_bytes,
        });

        let address = settings.server.bind.clone();
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
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(http::gate))
                .wrap(request_logger())
                .configure(http::routes)
        });
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
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
            .map_err(|source| StartupError::Bind { address, source })?
            .run();
        log::info!(
            "mcp-cockpit {} listening on port {port}, database {}",
            env!("CARGO_PKG_VERSION"),
            database.display()
        );
        Ok(Self {
            port,
            server,
            broker,
            registry,
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
        log::info!("shut down");
        served
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

fn guard_from(settings: &Settings, auth: Auth) -> Result<Guard, ConfigError> {
    let bind: std::net::SocketAddr = settings
        .server
        .bind
        .parse()
        .map_err(|_| ConfigError::new("server.bind", "not an address"))?;
    let limits = &settings.rate_limit;
    Ok(Guard {
        auth,
        site: SitePolicy::from_settings(&settings.security, bind.ip())?,
        proxies: TrustedProxies::parse(&settings.security.trusted_proxies)?,
        limiter: RateLimiter::new(
            limits.bucket,
            Duration::from_millis(limits.window_ms),
            limits.max_clients,
        ),
    })
}

/// Access log without secrets: the `key` query parameter (EventSource auth on /sse) is redacted.
fn request_logger() -> Logger {
    Logger::new(r#"%a "%{request}xi" %s %b %Dms"#).custom_request_replace("request", |req| {
        let query = req.query_string();
        let redacted = if query.is_empty() {
            String::new()
        } else {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("key", _)) => "key=REDACTED".to_string(),
                    _ => pair.to_string(),
                })
                .collect();
            format!("?{}", pairs.join("&"))
        };
        format!("{} {}{}", req.method(), req.path(), redacted)
    })
}
