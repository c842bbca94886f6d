//! Identifiers of single-use messages already accepted, each until it expires: `jti`s of client
//! assertions (RFC 7523 §3 item 7), SAML request IDs, and sealed authorization codes.

use std::collections::HashSet;

use diesel::prelude::*;

use super::StoreError;
use super::conn::{Conn, per_backend};
use super::schema::used_jtis as j;
use crate::clock::UnixTime;
use crate::tenant::TenantId;

/// Records `jti` for `client_id`; `false` if it was already used (a replay). The insert itself is
/// the check, so two racing uses cannot both pass.
pub fn remember(
    conn: &mut Conn,
    tenant: &TenantId,
    client_id: &str,
    jti: &str,
    expires_at: UnixTime,
) -> Result<bool, StoreError> {
    // `ON CONFLICT DO NOTHING` rather than a caught unique violation: on PostgreSQL a violation
    // aborts the enclosing transaction, and a replay must still be able to revoke in it.
    let inserted = per_backend!(conn, |c| {
        diesel::insert_into(j::table)
            .values((
                j::tenant_id.eq(tenant.as_str()),
                j::client_id.eq(client_id),
                j::jti.eq(jti),
                j::expires_at.eq(expires_at.0),
            ))
            .on_conflict((j::tenant_id, j::client_id, j::jti))
            .do_nothing()
            .execute(c)
    })?;
    Ok(inserted == 1)
}

/// A use to record with [`remember_many`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Use {
    pub tenant: TenantId,
    pub client_id: String,
    pub jti: String,
    pub expires_at: UnixTime,
}

/// [`remember`] for many uses in one statement: for each, whether it was new. A use repeated
/// within `uses` is new at most once, the first time.
pub fn remember_many(conn: &mut Conn, uses: &[Use]) -> Result<Vec<bool>, StoreError> {
    let key = |u: &Use| {
        (
            u.tenant.as_str().to_string(),
            u.client_id.clone(),
            u.jti.clone(),
        )
    };
    let mut seen = HashSet::new();
    let first: Vec<bool> = uses.iter().map(|u| seen.insert(key(u))).collect();
    let rows: Vec<_> = uses
        .iter()
        .zip(&first)
        .filter(|(_, first)| **first)
        .map(|(u, _)| {
            (
                j::tenant_id.eq(u.tenant.as_str()),
                j::client_id.eq(u.client_id.as_str()),
                j::jti.eq(u.jti.as_str()),
                j::expires_at.eq(u.expires_at.0),
            )
        })
        .collect();
    if rows.is_empty() {
        return Ok(first);
    }
    let inserted: Vec<(String, String, String)> = per_backend!(conn, |c| {
        diesel::insert_into(j::table)
            .values(&rows)
            .on_conflict((j::tenant_id, j::client_id, j::jti))
            .do_nothing()
            .returning((j::tenant_id, j::client_id, j::jti))
            .get_results(c)
    })?;
    let inserted: HashSet<_> = inserted.into_iter().collect();
    Ok(uses
        .iter()
        .zip(first)
        .map(|(u, first)| first && inserted.contains(&key(u)))
        .collect())
}

pub fn sweep_expired(conn: &mut Conn, now: UnixTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(j::table.filter(j::expires_at.le(now.0))).execute(conn)?)
}
