//! A user's previous password hashes, for the password policy's "not one of the last N". Only
//! as many are kept as the policy compares with: an old hash is an old password, often still
//! used elsewhere.

use diesel::prelude::*;

use super::conn::Conn;
use super::schema::password_history as h;
use super::schema::users as u;
use super::{StoreError, new_id};
use crate::clock::UnixTime;
use crate::tenant::TenantId;

/// The hashes of the current password and the newest previous ones, `n` at most, newest first.
pub fn recent(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    n: usize,
) -> Result<Vec<String>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let current: Option<Option<String>> = u::table
        .filter(u::tenant_id.eq(tenant.as_str()))
        .filter(u::id.eq(user_id))
        .select(u::password_hash)
        .get_result(conn)
        .optional()?;
    let mut hashes: Vec<String> = current.flatten().into_iter().collect();
    let previous: Vec<String> = h::table
        .filter(h::tenant_id.eq(tenant.as_str()))
        .filter(h::user_id.eq(user_id))
        .order((h::created_at.desc(), h::id.desc()))
        .limit(i64::try_from(n).unwrap_or(i64::MAX))
        .select(h::hash)
        .load(conn)?;
    hashes.extend(previous);
    hashes.truncate(n);
    Ok(hashes)
}

/// Sets a new password hash, keeping the one it replaces among the `keep` previous ones.
pub fn replace(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    hash: &str,
    keep: usize,
    now: UnixTime,
) -> Result<(), StoreError> {
    super::tx::write(conn, |c| {
        let old: Option<Option<String>> = u::table
            .filter(u::tenant_id.eq(tenant.as_str()))
            .filter(u::id.eq(user_id))
            .select(u::password_hash)
            .get_result(c)
            .optional()?;
        if let (Some(old), true) = (old.flatten(), keep > 0) {
            diesel::insert_into(h::table)
                .values((
                    h::id.eq(new_id()),
                    h::tenant_id.eq(tenant.as_str()),
                    h::user_id.eq(user_id),
                    h::hash.eq(old),
                    h::created_at.eq(now.0),
                ))
                .execute(c)?;
        }
        super::users::set_password(c, tenant, user_id, hash, false, now)?;
        // All but the newest `keep` go.
        let kept: Vec<String> = h::table
            .filter(h::tenant_id.eq(tenant.as_str()))
            .filter(h::user_id.eq(user_id))
            .order((h::created_at.desc(), h::id.desc()))
            .limit(i64::try_from(keep).unwrap_or(i64::MAX))
            .select(h::id)
            .load(c)?;
        diesel::delete(
            h::table
                .filter(h::tenant_id.eq(tenant.as_str()))
                .filter(h::user_id.eq(user_id))
                .filter(h::id.ne_all(kept)),
        )
        .execute(c)?;
        Ok(())
    })
}
