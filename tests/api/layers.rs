//! The layers only point down (docs/architecture.md): every top-level module of `src/` has a rank, and a
//! `crate::<module>` path in a module's code (tests excluded) may only name a module of a lower rank. A new
//! top-level module must be given its rank here, which is the moment to decide where it belongs.

use std::collections::BTreeMap;
use std::path::Path;

/// Lowest first. Modules of one rank never use each other.
const LAYERS: &[&[&str]] = &[
    // Leaves: vocabulary and plumbing with no dependency inside the crate.
    &[
        "ids",
        "clock",
        "seconds",
        "failpoints",
        "metrics",
        "auth",
        "demo_eval",
    ],
    // Typed settings, and the event vocabulary.
    &["config", "events"],
    // Storage knows tables and queries; logging knows settings.
    &["storage", "logging"],
    // The broker fans committed events out; the recorder is the one writer that commits and publishes.
    &["broker"],
    &["recorder"],
    // The domains: SLO sources, eval jobs, webhooks, the retention sweep…
    &["slo", "jobs", "webhooks", "retention", "notes"],
    // …and canaries, which judge what the SLO sources report and announce decisions by webhook.
    &["canary"],
    // The protocol, then the transport that serves it.
    &["mcp"],
    &["http"],
    // Wiring and entry points.
    &["startup", "fuzzing"],
    &["cli"],
];

fn rank_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The code of a file without its `#[cfg(test)]` module (tests may reach anywhere).
fn production_code(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

/// Every `crate::<name>` in the text.
fn crate_paths(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .filter(|(at, _)| {
            // Not `$crate::` or part of a longer name (`mcp_cockpit::`).
            !text[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$')
        })
        .map(|(at, found)| {
            text[at + found.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .filter(|name: &String| !name.is_empty())
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_top_level_module_only_uses_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let top = relative
            .components()
            .next()
            .expect("a component")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(rank) = rank_of(&top) else {
            problems.insert(
                format!("{top}: has no rank in tests/api/layers.rs"),
                String::new(),
            );
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("readable");
        for used in crate_paths(production_code(&text)) {
            if used == top {
                continue;
            }
            match rank_of(&used) {
                Some(below) if below < rank => {}
                _ => {
                    problems.insert(format!("{top} -> {used}"), relative.display().to_string());
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "modules using a module at or above their own layer (one file each):\n{}",
        problems
            .iter()
            .map(|(edge, file)| format!("  {edge}  ({file})"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_check_sees_a_path_that_points_up() {
    let code = "use crate::http::Guard;\nfn f() { crate::clock::now(); }\n#[cfg(test)]\nmod tests { use crate::cli; }";
    assert_eq!(crate_paths(production_code(code)), ["http", "clock"]);
    assert!(rank_of("http") > rank_of("storage"));
}
