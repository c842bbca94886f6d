//! A user as the protocols see them: the account, its department path and its roles, read in one
//! trip to the blocking pool for sign-in decisions, tokens and UserInfo.

use diesel::prelude::*;

use super::conn::Conn;
use super::schema::{roles as r, user_roles as ur};
use super::users::{self, User};
use super::{StoreError, departments};
use crate::tenant::TenantId;

/// A department tree deeper than this is treated as ending there (it can only come from a cycle
/// written by hand; imports refuse cycles).
const MAX_DEPARTMENT_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub user: User,
    /// Department ids from the root down to the user's own; empty without a department.
    pub department_path: Vec<String>,
    /// Every role the user holds, with the app it belongs to (`None`: tenant-wide).
    pub roles: Vec<(String, Option<String>)>,
    /// The versions of the tenant's agreement the user accepted.
    pub agreed_versions: Vec<String>,
}

impl Subject {
    /// Role ids of `app`, sorted: what a client of that app receives as `roles`.
    pub fn roles_for_app(&self, app: Option<&str>) -> Vec<String> {
        match app {
            Some(app) => self
                .roles
                .iter()
                .filter(|(_, a)| a.as_deref() == Some(app))
                .map(|(id, _)| id.clone())
                .collect(),
            None => Vec::new(),
        }
    }
}

pub fn find(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Option<Subject>, StoreError> {
    let Some(user) = users::find(conn, tenant, user_id)? else {
        return Ok(None);
    };
    let mut department_path = Vec::new();
    let mut next = user.profile.department_id.clone();
    while let Some(id) = next {
        if department_path.contains(&id) || department_path.len() >= MAX_DEPARTMENT_DEPTH {
            break;
        }
        next = departments::find(conn, tenant, &id)?.and_then(|d| d.parent_id);
        department_path.push(id);
    }
    department_path.reverse();
    // Sorted in Rust, not by the database's collation (see `tenants::hosts_of`).
    let mut roles: Vec<(String, Option<String>)> = ur::table
        .inner_join(r::table.on(r::tenant_id.eq(ur::tenant_id).and(r::id.eq(ur::role_id))))
        .filter(ur::tenant_id.eq(tenant.as_str()))
        .filter(ur::user_id.eq(user_id))
        .select((r::id, r::app_id))
        .load(conn)?;
    roles.sort();
    let agreed_versions = super::agreements::versions(conn, tenant, user_id)?;
    Ok(Some(Subject {
        user,
        department_path,
        roles,
        agreed_versions,
    }))
}
