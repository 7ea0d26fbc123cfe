//! Which database holds the state, as parsed from the settings: a SQLite file, or a PostgreSQL URL whose
//! password is never shown.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

/// Where the state lives.
#[derive(Clone)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user:password@host:port/name`); shown with its password hidden.
    Postgres(SecretString),
}

impl Database {
    /// The backend's name, as `/readyz` and `check-config` report it.
    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// Whether a URL names a PostgreSQL database (what `COCKPIT_DATABASE_URL` must hold).
    pub fn is_postgres_url(url: &str) -> bool {
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }
}

/// The file path, or the URL with any password replaced by `***`: safe to log.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&redact(url.expose_secret())),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`; a `password=` query parameter likewise. A
/// URL that does not parse is not shown at all: it might be mostly password.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(a database URL that does not parse)".into();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let is_password = |key: &str| key.eq_ignore_ascii_case("password");
    if parsed.query_pairs().any(|(key, _)| is_password(&key)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let shown = if is_password(&key) {
                    "***".into()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), shown)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_url_is_shown_without_its_password() {
        for (url, shown) in [
            (
                "postgres://cockpit:s3cr:et@db.internal:5432/cockpit",
                "postgres://cockpit:***@db.internal:5432/cockpit",
            ),
            (
                "postgresql://cockpit@127.0.0.1/cockpit?sslmode=require&password=hunter2",
                "postgresql://cockpit@127.0.0.1/cockpit?sslmode=require&password=***",
            ),
            ("postgres://p%40ss:x@h/db", "postgres://p%40ss:***@h/db"),
            ("postgres:///cockpit", "postgres:///cockpit"),
            (
                "postgres://c@h/db?options=-csearch_path%3Dcockpit",
                "postgres://c@h/db?options=-csearch_path%3Dcockpit",
            ),
            (
                "postgres://c:pw@h:notaport/db",
                "(a database URL that does not parse)",
            ),
        ] {
            assert_eq!(redact(url), shown);
        }
    }
}
