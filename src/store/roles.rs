//! Roles (per app, or tenant-wide) and which users hold them.

use diesel::prelude::*;

use super::StoreError;
use super::conn::Conn;
use super::schema::{roles as r, user_roles as ur};
use crate::clock::UnixTime;
use crate::tenant::TenantId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    pub app_id: Option<String>,
    pub name: String,
    pub description: String,
}

type RoleRow = (String, Option<String>, String, String);

fn into_role((id, app_id, name, description): RoleRow) -> Role {
    Role {
        id,
        app_id,
        name,
        description,
    }
}

pub fn list(conn: &mut Conn, tenant: &TenantId) -> Result<Vec<Role>, StoreError> {
    let rows: Vec<RoleRow> = r::table
        .filter(r::tenant_id.eq(tenant.as_str()))
        .order(r::id.asc())
        .select((r::id, r::app_id, r::name, r::description))
        .load(conn)?;
    Ok(rows.into_iter().map(into_role).collect())
}

pub fn find(conn: &mut Conn, tenant: &TenantId, id: &str) -> Result<Option<Role>, StoreError> {
    let row: Option<RoleRow> = r::table
        .filter(r::tenant_id.eq(tenant.as_str()))
        .filter(r::id.eq(id))
        .select((r::id, r::app_id, r::name, r::description))
        .get_result(conn)
        .optional()?;
    Ok(row.map(into_role))
}

pub fn insert(
    conn: &mut Conn,
    tenant: &TenantId,
    role: &Role,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(r::table)
        .values((
            r::tenant_id.eq(tenant.as_str()),
            r::id.eq(&role.id),
            r::app_id.eq(&role.app_id),
            r::name.eq(&role.name),
            r::description.eq(&role.description),
            r::created_at.eq(now.0),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn update(conn: &mut Conn, tenant: &TenantId, role: &Role) -> Result<(), StoreError> {
    diesel::update(
        r::table
            .filter(r::tenant_id.eq(tenant.as_str()))
            .filter(r::id.eq(&role.id)),
    )
    .set((
        r::app_id.eq(&role.app_id),
        r::name.eq(&role.name),
        r::description.eq(&role.description),
    ))
    .execute(conn)?;
    Ok(())
}

/// Role ids the user holds, sorted byte-wise.
pub fn of_user(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    // Sorted in Rust, not by the database's collation (see `tenants::hosts_of`).
    let mut ids: Vec<String> = ur::table
        .filter(ur::tenant_id.eq(tenant.as_str()))
        .filter(ur::user_id.eq(user_id))
        .select(ur::role_id)
        .load(conn)?;
    ids.sort();
    Ok(ids)
}

/// Makes the user hold exactly `role_ids`.
pub fn set_for_user(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    role_ids: &[String],
) -> Result<(), StoreError> {
    diesel::delete(
        ur::table
            .filter(ur::tenant_id.eq(tenant.as_str()))
            .filter(ur::user_id.eq(user_id)),
    )
    .execute(conn)?;
    for role in role_ids {
        diesel::insert_into(ur::table)
            .values((
                ur::tenant_id.eq(tenant.as_str()),
                ur::user_id.eq(user_id),
                ur::role_id.eq(role),
            ))
            .execute(conn)?;
    }
    Ok(())
}
