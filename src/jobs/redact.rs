//! What an eval prints may hold a configured secret (a traceback, `set -x`, `env`): every text taken from
//! its output — progress messages, its result, log lines, the stderr tail — is redacted before it is
//! recorded, published or logged. Evals never get the secrets in their environment (see `process`); this
//! catches a secret that reached them some other way, e.g. a key that is also in a file they read.

use serde_json::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not redacted: replacing every `a` in an output would destroy it and hide
/// nothing (configured keys are at least 16 characters on any bind that the network reaches).
const MIN_SECRET_CHARS: usize = 6;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(str::trim)
            .filter(|s| s.chars().count() >= MIN_SECRET_CHARS)
            .map(String::from)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    /// Every string in a JSON value, object keys included.
    pub fn value(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.text(&k), self.value(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_in_text_and_in_every_json_string() {
        let redactor = Redactor::new(["sekrit-key-0123456789", "prom-token-abc", "x"]);
        assert_eq!(
            redactor.text("KEYS=sekrit-key-0123456789,other TOKEN=prom-token-abc"),
            "KEYS=[REDACTED],other TOKEN=[REDACTED]"
        );
        assert_eq!(
            redactor.value(json!({"env": ["prom-token-abc"], "prom-token-abc": 1, "n": 2})),
            json!({"env": ["[REDACTED]"], "[REDACTED]": 1, "n": 2})
        );
        assert_eq!(redactor.text("x marks"), "x marks", "too short to redact");
    }

    #[test]
    fn a_secret_that_contains_another_is_replaced_whole() {
        let redactor = Redactor::new(["abcdef", "abcdefghij"]);
        assert_eq!(redactor.text("abcdefghij"), "[REDACTED]");
    }
}
