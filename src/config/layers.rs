//! The file layers: the compiled-in defaults, deep-merged with an optional `--config` file, then typed.

use std::path::Path;

use toml::{Table, Value};

use super::{ConfigError, Settings, DEFAULT_TOML};

pub(super) fn from_toml_layers(file: Option<&Path>) -> Result<Settings, ConfigError> {
    let text = match file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
        })?),
        None => None,
    };
    let origin = file.map(|path| path.display().to_string());
    from_toml_text(text.as_deref().zip(origin.as_deref()))
}

/// The defaults with a file's text (and the name it is reported by) layered over them.
pub(super) fn from_toml_text(file: Option<(&str, &str)>) -> Result<Settings, ConfigError> {
    let mut merged = parse(DEFAULT_TOML, "config/default.toml")?;
    if let Some((text, origin)) = file {
        merge(&mut merged, parse(text, origin)?);
    }
    let deserializer = Value::Table(merged);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::new(
            if key == "." { "config".into() } else { key },
            // The message alone: the key is already named, and toml's Display would add it a second time.
            e.into_inner().message().to_string(),
        )
    })
}

fn parse(text: &str, origin: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>()
        .map_err(|e| ConfigError::new(origin, e.message().to_string()))
}

/// Tables merge key by key; any other value replaces the one below it.
fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(below)), Value::Table(above)) => merge(below, above),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_overrides_single_keys_and_keeps_the_rest() {
        let mut base = parse("[jobs]\nmax_running = 4\nmax_queued = 9\n", "a").expect("valid");
        merge(
            &mut base,
            parse("[jobs]\nmax_running = 1\n", "b").expect("valid"),
        );
        assert_eq!(base["jobs"]["max_running"].as_integer(), Some(1));
        assert_eq!(base["jobs"]["max_queued"].as_integer(), Some(9));
    }
}
