//! Server-wide key/value facts (for example the master-key check value).

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::StoreError;
use super::conn::{Conn, per_backend};
use super::schema::meta;

pub fn get(conn: &mut Conn, key: &str) -> Result<Option<String>, StoreError> {
    Ok(meta::table
        .filter(meta::key.eq(key))
        .select(meta::value)
        .get_result(conn)
        .optional()?)
}

/// Inserts unless the key exists; returns the stored value either way (the first writer wins,
/// so two nodes starting together agree).
pub fn insert_if_absent(conn: &mut Conn, key: &str, value: &str) -> Result<String, StoreError> {
    per_backend!(conn, |c| {
        diesel::insert_into(meta::table)
            .values((meta::key.eq(key), meta::value.eq(value)))
            .on_conflict(meta::key)
            .do_nothing()
            .execute(c)
    })?;
    get(conn, key)?.ok_or_else(|| StoreError::NotFound(format!("meta key {key}")))
}

/// Insert or replace; an upsert is not expressible through the multi-backend enum, so it is
/// expanded once per backend.
pub fn set(conn: &mut Conn, key: &str, value: &str) -> Result<(), StoreError> {
    per_backend!(conn, |c| {
        diesel::insert_into(meta::table)
            .values((meta::key.eq(key), meta::value.eq(value)))
            .on_conflict(meta::key)
            .do_update()
            .set(meta::value.eq(excluded(meta::value)))
            .execute(c)
    })?;
    Ok(())
}
