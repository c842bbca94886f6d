//! Tenants and the hosts that route to them. Listing tenants is the one platform-wide read.

use diesel::prelude::*;

use super::conn::Conn;
use super::schema::{tenant_hosts as h, tenants as t};
use super::{StoreError, tx};
use crate::clock::UnixTime;
use crate::tenant::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Trial,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Trial => "trial",
            TenantStatus::Suspended => "suspended",
        }
    }

    fn parse(s: &str) -> TenantStatus {
        match s {
            "active" => TenantStatus::Active,
            "trial" => TenantStatus::Trial,
            _ => TenantStatus::Suspended,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: String,
    pub status: TenantStatus,
    pub trial_expires_at: Option<UnixTime>,
    pub hosts: Vec<String>,
    pub branding: serde_json::Value,
    pub settings: serde_json::Value,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// What an administrator sets on a tenant; used to create it and to update it.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSpec {
    pub display_name: String,
    pub status: TenantStatus,
    pub trial_expires_at: Option<UnixTime>,
    /// Normalized (see [`crate::tenant::normalize_host`]) and sorted.
    pub hosts: Vec<String>,
    pub branding: serde_json::Value,
    pub settings: serde_json::Value,
}

impl TenantSpec {
    pub fn named(display_name: &str) -> TenantSpec {
        TenantSpec {
            display_name: display_name.to_string(),
            status: TenantStatus::Active,
            trial_expires_at: None,
            hosts: Vec::new(),
            branding: serde_json::json!({}),
            settings: serde_json::json!({}),
        }
    }
}

impl Tenant {
    /// An active tenant with default settings, for unit tests.
    #[cfg(test)]
    pub fn for_tests(id: &str) -> Tenant {
        Tenant {
            id: TenantId::parse(id).unwrap(),
            display_name: id.to_string(),
            status: TenantStatus::Active,
            trial_expires_at: None,
            hosts: Vec::new(),
            branding: serde_json::json!({}),
            settings: serde_json::json!({}),
            created_at: UnixTime(0),
            updated_at: UnixTime(0),
        }
    }

    pub fn spec(&self) -> TenantSpec {
        TenantSpec {
            display_name: self.display_name.clone(),
            status: self.status,
            trial_expires_at: self.trial_expires_at,
            hosts: self.hosts.clone(),
            branding: self.branding.clone(),
            settings: self.settings.clone(),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = t, check_for_backend(crate::store::conn::MultiBackend))]
struct Row {
    id: String,
    display_name: String,
    status: String,
    trial_expires_at: Option<i64>,
    branding: String,
    settings: String,
    created_at: i64,
    updated_at: i64,
}

/// `None` for a row whose id is not a valid slug (only possible by editing the database by hand):
/// such a tenant is unreachable rather than mistaken for another.
fn into_tenant(r: Row, hosts: Vec<String>) -> Option<Tenant> {
    Some(Tenant {
        id: TenantId::parse(&r.id)?,
        display_name: r.display_name,
        status: TenantStatus::parse(&r.status),
        trial_expires_at: r.trial_expires_at.map(UnixTime),
        hosts,
        branding: serde_json::from_str(&r.branding).unwrap_or_default(),
        settings: serde_json::from_str(&r.settings).unwrap_or_default(),
        created_at: UnixTime(r.created_at),
        updated_at: UnixTime(r.updated_at),
    })
}

/// Sorted in Rust: `ORDER BY` follows the database's collation, which differs between SQLite and a
/// PostgreSQL cluster, and callers compare these lists with lists sorted in Rust.
fn hosts_of(conn: &mut Conn, id: &str) -> Result<Vec<String>, StoreError> {
    let mut hosts: Vec<String> = h::table
        .filter(h::tenant_id.eq(id))
        .select(h::host)
        .load(conn)?;
    hosts.sort();
    Ok(hosts)
}

pub fn find(conn: &mut Conn, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
    let row: Option<Row> = t::table
        .find(id.as_str())
        .select(Row::as_select())
        .get_result(conn)
        .optional()?;
    match row {
        Some(r) => {
            let hosts = hosts_of(conn, &r.id)?;
            Ok(into_tenant(r, hosts))
        }
        None => Ok(None),
    }
}

/// Every host that routes to a tenant, as `(host, tenant id)`: small enough to hold in memory, so
/// a request for an unknown host costs no query.
pub fn all_hosts(conn: &mut Conn) -> Result<Vec<(String, String)>, StoreError> {
    Ok(h::table.select((h::host, h::tenant_id)).load(conn)?)
}

pub fn list(conn: &mut Conn) -> Result<Vec<Tenant>, StoreError> {
    let rows: Vec<Row> = t::table
        .order(t::id.asc())
        .select(Row::as_select())
        .load(conn)?;
    let all: Vec<(String, String)> = h::table
        .select((h::tenant_id, h::host))
        .order(h::host.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let hosts = all
                .iter()
                .filter(|(tid, _)| *tid == r.id)
                .map(|(_, host)| host.clone())
                .collect();
            into_tenant(r, hosts)
        })
        .collect())
}

pub fn insert(
    conn: &mut Conn,
    id: &TenantId,
    spec: &TenantSpec,
    now: UnixTime,
) -> Result<Tenant, StoreError> {
    tx::write(conn, |c| {
        diesel::insert_into(t::table)
            .values((
                t::id.eq(id.as_str()),
                t::display_name.eq(&spec.display_name),
                t::status.eq(spec.status.as_str()),
                t::trial_expires_at.eq(spec.trial_expires_at.map(|x| x.0)),
                t::branding.eq(spec.branding.to_string()),
                t::settings.eq(spec.settings.to_string()),
                t::created_at.eq(now.0),
                t::updated_at.eq(now.0),
            ))
            .execute(c)?;
        replace_hosts(c, id, &spec.hosts)?;
        find(c, id)?.ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))
    })
}

pub fn update(
    conn: &mut Conn,
    id: &TenantId,
    spec: &TenantSpec,
    now: UnixTime,
) -> Result<(), StoreError> {
    tx::write(conn, |c| {
        let n = diesel::update(t::table.find(id.as_str()))
            .set((
                t::display_name.eq(&spec.display_name),
                t::status.eq(spec.status.as_str()),
                t::trial_expires_at.eq(spec.trial_expires_at.map(|x| x.0)),
                t::branding.eq(spec.branding.to_string()),
                t::settings.eq(spec.settings.to_string()),
                t::updated_at.eq(now.0),
            ))
            .execute(c)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no tenant '{id}'")));
        }
        replace_hosts(c, id, &spec.hosts)
    })
}

fn replace_hosts(conn: &mut Conn, id: &TenantId, hosts: &[String]) -> Result<(), StoreError> {
    diesel::delete(h::table.filter(h::tenant_id.eq(id.as_str()))).execute(conn)?;
    for host in hosts {
        diesel::insert_into(h::table)
            .values((h::host.eq(host), h::tenant_id.eq(id.as_str())))
            .execute(conn)?;
    }
    Ok(())
}
