//! `meta(key, value)`: installation facts, such as the secret that keys actor fingerprints.

use std::fmt::Write;

use diesel::prelude::*;

use super::schema::meta;
use super::{per_backend, Conn, StoreError};

const SECRET_KEY: &str = "installation_secret";
const READY_KEY: &str = "ready_probe";

/// The per-installation secret, created on first use and never shown anywhere. Servers that start together
/// on one database agree on it: the first insert wins and every one reads that.
pub fn installation_secret(conn: &mut Conn) -> Result<String, StoreError> {
    if let Some(value) = get(conn, SECRET_KEY)? {
        return Ok(value);
    }
    let bytes: [u8; 32] = rand::random();
    let value = bytes.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    per_backend!(conn, c => diesel::insert_into(meta::table)
        .values((meta::key.eq(SECRET_KEY), meta::value.eq(&value)))
        .on_conflict_do_nothing()
        .execute(c))?;
    get(conn, SECRET_KEY)?
        .ok_or_else(|| StoreError::Corrupt("the installation secret vanished".into()))
}

pub fn get(conn: &mut Conn, key: &str) -> Result<Option<String>, StoreError> {
    Ok(meta::table
        .find(key)
        .select(meta::value)
        .first(conn)
        .optional()?)
}

/// A real write (for readiness): fails when the file or its directory is read-only or full.
pub fn touch(conn: &mut Conn) -> Result<(), StoreError> {
    let now = crate::clock::sql(crate::clock::now());
    per_backend!(conn, c => diesel::insert_into(meta::table)
        .values((meta::key.eq(READY_KEY), meta::value.eq(&now)))
        .on_conflict(meta::key)
        .do_update()
        .set(meta::value.eq(&now))
        .execute(c))?;
    Ok(())
}
