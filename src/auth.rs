//! API keys and who is calling. Keys are compared as keyed HMACs in constant time; the same HMAC, shortened,
//! is the caller's fingerprint in the audit table, so neither a key nor a bare hash of one is ever stored.
//! How a request presents its key is the HTTP layer's (`http::auth`).

use std::fmt::Write;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Who is calling, as recorded in `audit` (a keyed fingerprint, never the key).
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: String,
}

impl Caller {
    /// The actor of every call when no keys are configured.
    pub const KEYLESS: &'static str = "keyless";

    pub fn keyless() -> Self {
        Self {
            actor: Self::KEYLESS.into(),
        }
    }

    pub fn is_keyless(&self) -> bool {
        self.actor == Self::KEYLESS
    }
}

type HmacSha256 = Hmac<Sha256>;

pub struct Auth {
    secret: Vec<u8>,
    key_macs: Vec<[u8; 32]>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Wrong,
}

impl Auth {
    pub fn new(api_keys: &[secrecy::SecretString], installation_secret: &str) -> Self {
        let secret = installation_secret.as_bytes().to_vec();
        let key_macs = api_keys
            .iter()
            .map(|k| mac(&secret, secrecy::ExposeSecret::expose_secret(k)))
            .collect();
        Self { secret, key_macs }
    }

    pub fn keyless(&self) -> bool {
        self.key_macs.is_empty()
    }

    /// Keyless mode ignores any presented key (the kit's examples use several placeholder keys).
    pub fn check(&self, presented: Option<&str>) -> Result<Caller, AuthError> {
        if self.keyless() {
            return Ok(Caller::keyless());
        }
        let key = presented.ok_or(AuthError::Missing)?;
        let candidate = mac(&self.secret, key);
        let matched = self
            .key_macs
            .iter()
            .fold(0u8, |any, known| any | known.ct_eq(&candidate).unwrap_u8());
        if matched == 1 {
            let fingerprint = candidate[..8].iter().fold(String::new(), |mut hex, b| {
                let _ = write!(hex, "{b:02x}");
                hex
            });
            Ok(Caller {
                actor: format!("key:{fingerprint}"),
            })
        } else {
            Err(AuthError::Wrong)
        }
    }
}

fn mac(secret: &[u8], key: &str) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(key.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_fingerprinted_without_revealing_them() {
        let auth = Auth::new(&["k1".into(), "k2".into()], "secret");
        let caller = auth.check(Some("k2")).expect("valid key");
        assert!(caller.actor.starts_with("key:") && !caller.actor.contains("k2"));
        assert_eq!(auth.check(Some("k3")).expect_err("wrong"), AuthError::Wrong);
        assert_eq!(auth.check(None).expect_err("missing"), AuthError::Missing);
        let other_install = Auth::new(&["k2".into()], "other");
        assert_ne!(
            other_install.check(Some("k2")).expect("valid").actor,
            caller.actor
        );
    }

    #[test]
    fn keyless_mode_ignores_presented_keys() {
        let auth = Auth::new(&[], "secret");
        assert_eq!(
            auth.check(Some("anything")).expect("keyless").actor,
            "keyless"
        );
    }
}
