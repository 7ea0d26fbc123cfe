//! Logging: `RUST_LOG` sets the level (default `info`); `COCKPIT_LOG_FORMAT=json` writes one JSON object
//! per line for log aggregation.

use std::io::Write;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let line = serde_json::json!({
                "ts": crate::clock::rfc3339(crate::clock::now()),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    // A second init (tests, subcommands) keeps the first logger.
    let _ = builder.try_init();
}
