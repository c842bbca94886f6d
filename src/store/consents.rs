//! What users granted third-party clients, so consent is asked once and can be withdrawn.

use diesel::prelude::*;

use super::conn::Conn;
use super::schema::consents as k;
use super::{StoreError, tx};
use crate::clock::UnixTime;
use crate::tenant::TenantId;

/// The scopes `user_id` granted `client_id`, space-separated.
pub fn find(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    client_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(k::table
        .filter(k::tenant_id.eq(tenant.as_str()))
        .filter(k::user_id.eq(user_id))
        .filter(k::client_id.eq(client_id))
        .select(k::scope)
        .get_result(conn)
        .optional()?)
}

/// Records that the user granted `scope` (replacing an earlier grant).
pub fn grant(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    client_id: &str,
    scope: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    tx::write(conn, |c| {
        revoke(c, tenant, user_id, client_id)?;
        diesel::insert_into(k::table)
            .values((
                k::tenant_id.eq(tenant.as_str()),
                k::user_id.eq(user_id),
                k::client_id.eq(client_id),
                k::scope.eq(scope),
                k::granted_at.eq(now.0),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// Every grant of a user: (client id, scope, granted at), by client id.
pub fn list_for_user(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Vec<(String, String, UnixTime)>, StoreError> {
    let mut rows: Vec<(String, String, i64)> = k::table
        .filter(k::tenant_id.eq(tenant.as_str()))
        .filter(k::user_id.eq(user_id))
        .select((k::client_id, k::scope, k::granted_at))
        .load(conn)?;
    rows.sort();
    Ok(rows
        .into_iter()
        .map(|(c, s, at)| (c, s, UnixTime(at)))
        .collect())
}

/// Withdraws a grant; returns whether there was one.
pub fn revoke(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    client_id: &str,
) -> Result<bool, StoreError> {
    let n = diesel::delete(
        k::table
            .filter(k::tenant_id.eq(tenant.as_str()))
            .filter(k::user_id.eq(user_id))
            .filter(k::client_id.eq(client_id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}
