//! Identifiers of single-use messages already accepted, each until it expires: `jti`s of client
//! assertions (RFC 7523 §3 item 7), SAML request IDs, and sealed authorization codes.

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

pub fn sweep_expired(conn: &mut Conn, now: UnixTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(j::table.filter(j::expires_at.le(now.0))).execute(conn)?)
}
