//! `jti` values of client assertions already accepted (RFC 7523 §3 item 7): each may be used
//! once until it expires.

use diesel::prelude::*;

use super::StoreError;
use super::conn::Conn;
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
    let inserted = diesel::insert_into(j::table)
        .values((
            j::tenant_id.eq(tenant.as_str()),
            j::client_id.eq(client_id),
            j::jti.eq(jti),
            j::expires_at.eq(expires_at.0),
        ))
        .execute(conn);
    match inserted.map_err(StoreError::from) {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn sweep_expired(conn: &mut Conn, now: UnixTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(j::table.filter(j::expires_at.le(now.0))).execute(conn)?)
}
