//! Acceptances of a tenant's Service Agreement and Privacy Policy: user, version, time, address.

use diesel::prelude::*;

use super::StoreError;
use super::conn::Conn;
use super::schema::agreement_acceptances as a;
use crate::clock::UnixTime;
use crate::tenant::TenantId;

/// Records that `user_id` accepted `version`. Accepting a version again keeps the first record.
pub fn accept(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    version: &str,
    ip: Option<&str>,
    now: UnixTime,
) -> Result<(), StoreError> {
    let inserted = diesel::insert_into(a::table)
        .values((
            a::tenant_id.eq(tenant.as_str()),
            a::user_id.eq(user_id),
            a::version.eq(version),
            a::accepted_at.eq(now.0),
            a::ip.eq(ip),
        ))
        .execute(conn);
    match inserted {
        Ok(_)
        | Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The versions the user accepted.
pub fn versions(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(a::table
        .filter(a::tenant_id.eq(tenant.as_str()))
        .filter(a::user_id.eq(user_id))
        .select(a::version)
        .load(conn)?)
}

/// Every acceptance of a user, newest first: (version, time, address).
pub fn list_for_user(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Vec<(String, UnixTime, Option<String>)>, StoreError> {
    let rows: Vec<(String, i64, Option<String>)> = a::table
        .filter(a::tenant_id.eq(tenant.as_str()))
        .filter(a::user_id.eq(user_id))
        .order((a::accepted_at.desc(), a::version.desc()))
        .select((a::version, a::accepted_at, a::ip))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(v, at, ip)| (v, UnixTime(at), ip))
        .collect())
}
