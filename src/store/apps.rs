//! Apps: what groups an organisation's OIDC clients and SAML SPs, who may use it on the web and
//! on mobile, and who administers it.

use diesel::prelude::*;

use super::StoreError;
use super::conn::Conn;
use super::schema::{app_access as acc, app_admins as adm, apps as a};
use crate::clock::UnixTime;
use crate::tenant::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Web,
    Mobile,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Mobile => "mobile",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "web" => Some(Channel::Web),
            "mobile" => Some(Channel::Mobile),
            _ => None,
        }
    }
}

/// Who may use an app on one channel. A department grants its sub-departments too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessScope {
    pub everyone: bool,
    pub departments: Vec<String>,
    pub users: Vec<String>,
    pub roles: Vec<String>,
}

impl AccessScope {
    fn normalized(mut self) -> AccessScope {
        for v in [&mut self.departments, &mut self.users, &mut self.roles] {
            v.sort();
            v.dedup();
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
    pub description: String,
    pub web_access: AccessScope,
    pub mobile_access: AccessScope,
    /// User ids, sorted.
    pub admins: Vec<String>,
}

pub fn list_ids(conn: &mut Conn, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
    Ok(a::table
        .filter(a::tenant_id.eq(tenant.as_str()))
        .order(a::id.asc())
        .select(a::id)
        .load(conn)?)
}

pub fn list(conn: &mut Conn, tenant: &TenantId) -> Result<Vec<App>, StoreError> {
    let mut out = Vec::new();
    for id in list_ids(conn, tenant)? {
        if let Some(app) = find(conn, tenant, &id)? {
            out.push(app);
        }
    }
    Ok(out)
}

pub fn find(conn: &mut Conn, tenant: &TenantId, id: &str) -> Result<Option<App>, StoreError> {
    let row: Option<(String, String, String)> = a::table
        .filter(a::tenant_id.eq(tenant.as_str()))
        .filter(a::id.eq(id))
        .select((a::id, a::name, a::description))
        .get_result(conn)
        .optional()?;
    let Some((id, name, description)) = row else {
        return Ok(None);
    };
    let grants: Vec<(String, String, String)> = acc::table
        .filter(acc::tenant_id.eq(tenant.as_str()))
        .filter(acc::app_id.eq(&id))
        .select((acc::channel, acc::subject_kind, acc::subject_id))
        .load(conn)?;
    let mut web = AccessScope::default();
    let mut mobile = AccessScope::default();
    for (channel, kind, subject) in grants {
        let scope = if channel == "mobile" {
            &mut mobile
        } else {
            &mut web
        };
        match kind.as_str() {
            "everyone" => scope.everyone = true,
            "department" => scope.departments.push(subject),
            "user" => scope.users.push(subject),
            _ => scope.roles.push(subject),
        }
    }
    // Sorted in Rust, not by the database's collation (see `tenants::hosts_of`).
    let mut admins: Vec<String> = adm::table
        .filter(adm::tenant_id.eq(tenant.as_str()))
        .filter(adm::app_id.eq(&id))
        .select(adm::user_id)
        .load(conn)?;
    admins.sort();
    Ok(Some(App {
        id,
        name,
        description,
        web_access: web.normalized(),
        mobile_access: mobile.normalized(),
        admins,
    }))
}

/// Creates the app, or replaces its fields, access scopes and administrators.
pub fn put(conn: &mut Conn, tenant: &TenantId, app: &App, now: UnixTime) -> Result<(), StoreError> {
    let t = tenant.as_str();
    let exists = a::table
        .filter(a::tenant_id.eq(t))
        .filter(a::id.eq(&app.id))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if exists {
        diesel::update(
            a::table
                .filter(a::tenant_id.eq(t))
                .filter(a::id.eq(&app.id)),
        )
        .set((
            a::name.eq(&app.name),
            a::description.eq(&app.description),
            a::updated_at.eq(now.0),
        ))
        .execute(conn)?;
    } else {
        diesel::insert_into(a::table)
            .values((
                a::tenant_id.eq(t),
                a::id.eq(&app.id),
                a::name.eq(&app.name),
                a::description.eq(&app.description),
                a::created_at.eq(now.0),
                a::updated_at.eq(now.0),
            ))
            .execute(conn)?;
    }
    diesel::delete(
        acc::table
            .filter(acc::tenant_id.eq(t))
            .filter(acc::app_id.eq(&app.id)),
    )
    .execute(conn)?;
    for (channel, scope) in [
        (Channel::Web, &app.web_access),
        (Channel::Mobile, &app.mobile_access),
    ] {
        let mut grants: Vec<(&str, &str)> = Vec::new();
        if scope.everyone {
            grants.push(("everyone", "*"));
        }
        grants.extend(scope.departments.iter().map(|s| ("department", s.as_str())));
        grants.extend(scope.users.iter().map(|s| ("user", s.as_str())));
        grants.extend(scope.roles.iter().map(|s| ("role", s.as_str())));
        for (kind, subject) in grants {
            diesel::insert_into(acc::table)
                .values((
                    acc::tenant_id.eq(t),
                    acc::app_id.eq(&app.id),
                    acc::channel.eq(channel.as_str()),
                    acc::subject_kind.eq(kind),
                    acc::subject_id.eq(subject),
                ))
                .execute(conn)?;
        }
    }
    diesel::delete(
        adm::table
            .filter(adm::tenant_id.eq(t))
            .filter(adm::app_id.eq(&app.id)),
    )
    .execute(conn)?;
    for user in &app.admins {
        diesel::insert_into(adm::table)
            .values((
                adm::tenant_id.eq(t),
                adm::app_id.eq(&app.id),
                adm::user_id.eq(user),
            ))
            .execute(conn)?;
    }
    Ok(())
}
