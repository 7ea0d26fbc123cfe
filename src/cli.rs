//! The command line: `mcp-cockpit` serves; subcommands check the configuration, migrate the database,
//! print the version, or run the built-in demo eval.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{EnvSource, Settings};
use crate::demo_eval::{self, DemoEvalArgs};
use crate::startup::Application;
use crate::{logging, storage};

#[derive(Debug, Parser)]
#[command(
    name = "mcp-cockpit",
    version,
    about = "MCP cockpit: evals and SLO-guarded canaries, live over SSE"
)]
struct Cli {
    /// A TOML file layered over the built-in defaults (environment variables override both).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Copy the database to FILE while the service runs (a consistent online snapshot), then exit.
    Backup {
        /// The new file to write (must not exist).
        file: std::path::PathBuf,
    },
    /// Load and validate the configuration, print the effective values, and exit.
    CheckConfig,
    /// Print the version.
    Version,
    /// The built-in eval used by the `demo` and `probe` tasks.
    DemoEval(DemoEvalArgs),
}

#[allow(clippy::print_stdout, reason = "the command line's own output")]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    match command {
        Command::Version => {
            println!("mcp-cockpit {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::DemoEval(args) => return exit(demo_eval::run(&args).map_err(|e| e.to_string())),
        _ => {}
    }
    let settings = match Settings::load(cli.config.as_deref(), &EnvSource::process()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("mcp-cockpit: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(settings.log_format);
    match command {
        Command::CheckConfig => {
            println!("configuration ok");
            println!("bind: {}", settings.server.bind);
            let database = settings.database();
            println!("database: {} ({})", database, database.backend());
            println!(
                "api keys: {}",
                if settings.auth.api_keys.is_empty() {
                    "none (keyless, loopback only)".to_string()
                } else {
                    settings.auth.api_keys.len().to_string()
                }
            );
            let tasks: Vec<&String> = settings.evals.tasks.keys().collect();
            println!(
                "eval tasks: {}",
                tasks
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ExitCode::SUCCESS
        }
        Command::Migrate => exit(
            storage::open(&settings.database(), 1)
                .map(|_| {
                    println!("database {} is up to date", settings.database());
                })
                .map_err(|e| e.to_string()),
        ),
        Command::Backup { file } => exit(
            storage::open(&settings.database(), 1)
                .and_then(|(pool, _)| storage::backup(&mut *pool.get()?, &file))
                .map(|()| {
                    println!("backed up {} to {}", settings.database(), file.display());
                })
                .map_err(|e| e.to_string()),
        ),
        _ => exit(serve(settings)),
    }
}

/// Every stream holds a socket: lift the soft open-file limit to the hard one, where the system allows.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => log::info!("open-file limit raised from {soft} to {hard}"),
            Err(e) => log::warn!("cannot raise the open-file limit from {soft}: {e}"),
        },
        Ok(_) => {}
        Err(e) => log::warn!("cannot read the open-file limit: {e}"),
    }
}

fn serve(settings: Settings) -> Result<(), String> {
    #[cfg(feature = "failpoints")]
    if let Some(point) = settings.failpoint() {
        crate::failpoints::arm(point);
    }
    raise_open_file_limit();
    log_panics();
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

/// A panic is written once, as one error line of the log (JSON when the log is): where and what. The
/// panic boundaries around request handlers answer -32603 without logging it again.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(std::string::ToString::to_string)
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        log::error!(
            "internal error: panic in thread {} at {place}: {message}",
            thread.name().unwrap_or("unnamed")
        );
    }));
}

fn exit(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-cockpit: {e}");
            ExitCode::FAILURE
        }
    }
}
