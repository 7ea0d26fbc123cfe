//! Logging: `RUST_LOG` sets the level (default `info`); `COCKPIT_LOG_FORMAT=json` writes one JSON object
//! per line for log aggregation.

use std::io::Write;

use crate::config::LogFormat;

/// The log targets this binary has: its own modules and the libraries that log. A `RUST_LOG` directive
/// naming anything else (`RUST_LOG=verbose`) would match nothing and silence every line.
const TARGETS: [&str; 12] = [
    "mcp_cockpit",
    "actix",
    "actix_web",
    "actix_server",
    "actix_http",
    "actix_rt",
    "awc",
    "diesel",
    "diesel_migrations",
    "r2d2",
    "rustls",
    "h2",
];

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

pub fn init(format: LogFormat) {
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let (filters, unknown) = checked_filters(&spec);
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(if filters.is_empty() { "info" } else { &filters });
    if let Ok(style) = std::env::var("RUST_LOG_STYLE") {
        builder.parse_write_style(&style);
    }
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
    if builder.try_init().is_ok() {
        for directive in unknown {
            log::warn!(
                "RUST_LOG: `{directive}` names no level and no module of mcp-cockpit, so it is ignored; \
                 use a level ({}) or `module=level`, e.g. RUST_LOG=debug or RUST_LOG=mcp_cockpit::canary=debug",
                LEVELS.join(", ")
            );
        }
    }
}

/// `RUST_LOG` without the directives whose target is unknown, and those directives.
fn checked_filters(spec: &str) -> (String, Vec<String>) {
    let (directives, regex) = match spec.split_once('/') {
        Some((directives, regex)) => (directives, Some(regex)),
        None => (spec, None),
    };
    let mut kept = Vec::new();
    let mut unknown = Vec::new();
    for directive in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let target = match directive.split_once('=') {
            Some((target, _)) => target,
            None if is_level(directive) => "",
            None => directive,
        };
        let crate_name = target.split("::").next().unwrap_or_default();
        if target.is_empty() || TARGETS.contains(&crate_name) {
            kept.push(directive);
        } else {
            unknown.push(directive.to_string());
        }
    }
    let mut filters = kept.join(",");
    if let Some(regex) = regex.filter(|_| !kept.is_empty()) {
        filters = format!("{filters}/{regex}");
    }
    (filters, unknown)
}

fn is_level(word: &str) -> bool {
    LEVELS.iter().any(|level| level.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_naming_no_module_of_ours_are_reported_not_obeyed() {
        let checked = |spec: &str| checked_filters(spec);
        assert_eq!(checked("debug"), ("debug".into(), vec![]));
        assert_eq!(
            checked("warn,mcp_cockpit::canary=debug,actix_web=info"),
            (
                "warn,mcp_cockpit::canary=debug,actix_web=info".into(),
                vec![]
            )
        );
        assert_eq!(checked("verbose"), (String::new(), vec!["verbose".into()]));
        assert_eq!(
            checked("info,cockpit=debug"),
            ("info".into(), vec!["cockpit=debug".into()])
        );
        assert_eq!(checked("DEBUG/canary"), ("DEBUG/canary".into(), vec![]));
    }
}
