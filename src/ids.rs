//! Identifiers: the ids we issue (`job_…`, `canary_…`) and validation of every identifier a client sends
//! (SPEC §2: `^[A-Za-z0-9_.:-]{1,128}$`) before it reaches a command line, a topic, PromQL or SQL.

use std::fmt;

/// Lower-case letters and digits only, so an id never looks like a command-line option or needs quoting.
pub const ID_ALPHABET: [char; 36] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i',
    'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z',
];

/// Declares an id type we issue: a prefix and 12 characters of [`ID_ALPHABET`]. Only `issue` makes one
/// from nothing; `named` takes one back from the database or a client that names it.
macro_rules! issued_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new id, unique with overwhelming likelihood (12 characters of a 36-letter alphabet).
            pub fn issue() -> Self {
                Self(format!(concat!($prefix, "{}"), nanoid::nanoid!(12, &ID_ALPHABET)))
            }

            /// An id read back from storage, a row or a client (already a validated identifier).
            pub fn named(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Reads as the string it is, wherever a `&str` is taken (SQL parameters, topics, log lines).
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

issued_id!(
    /// A job's id, `job_` and 12 characters: the key of its row, its topic and its actor.
    JobId,
    "job_"
);
issued_id!(
    /// A canary's id, `canary_` and 12 characters: the key of its row, its topic and its actor.
    CanaryId,
    "canary_"
);

/// The rule every client identifier must meet, as said in error messages.
pub const IDENT_RULE: &str = "1-128 characters from A-Z a-z 0-9 _ . : -";

/// A validated client identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(String);

impl Ident {
    /// Validates `value`; the error is the rule it broke, ready for a message that names the field.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty() || value.len() > 128 {
            return Err(format!(
                "must be {IDENT_RULE} (got {} characters)",
                value.chars().count()
            ));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
        {
            return Err(format!("must be {IDENT_RULE}; {bad:?} is not allowed"));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_job_ids_have_the_documented_shape() {
        let id = JobId::issue().to_string();
        assert_eq!(id.len(), 16);
        assert!(id.starts_with("job_"));
        assert!(id[4..]
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert!(Ident::parse(&id).is_ok());
    }

    #[test]
    fn identifiers_reject_shell_path_and_promql_characters() {
        for bad in [
            "",
            "a b",
            "a;rm",
            "../x",
            "a/b",
            "x\0",
            "$(id)",
            "a\"b",
            "g{x=\"y\"}",
            &"x".repeat(129),
        ] {
            assert!(Ident::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        for good in ["demo", "lukhas-v2", "stage", "a.b:c_d-1", &"x".repeat(128)] {
            assert!(Ident::parse(good).is_ok(), "{good:?} must be accepted");
        }
    }
}
