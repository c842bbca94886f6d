//! The audit log: append-only security events per tenant.

use diesel::prelude::*;

use super::conn::Conn;
use super::schema::audit_events as a;
use super::{StoreError, new_id};
use crate::clock::UnixTime;
use crate::tenant::TenantId;

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: String,
    pub at: UnixTime,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub outcome: &'a str,
    pub ip: Option<&'a str>,
    pub details: serde_json::Value,
}

pub fn record(
    conn: &mut Conn,
    tenant: &TenantId,
    e: &NewAuditEvent<'_>,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(a::table)
        .values((
            a::id.eq(new_id()),
            a::tenant_id.eq(tenant.as_str()),
            a::at.eq(now.0),
            a::actor.eq(e.actor),
            a::action.eq(e.action),
            a::target.eq(e.target),
            a::outcome.eq(e.outcome),
            a::ip.eq(e.ip),
            a::details.eq(e.details.to_string()),
        ))
        .execute(conn)?;
    Ok(())
}

type Row = (
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
);

/// Newest first.
pub fn list(conn: &mut Conn, tenant: &TenantId, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
    let rows: Vec<Row> = a::table
        .filter(a::tenant_id.eq(tenant.as_str()))
        .order((a::at.desc(), a::id.desc()))
        .limit(limit)
        .select((
            a::id,
            a::at,
            a::actor,
            a::action,
            a::target,
            a::outcome,
            a::ip,
            a::details,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, at, actor, action, target, outcome, ip, details)| AuditEvent {
                id,
                at: UnixTime(at),
                actor,
                action,
                target,
                outcome,
                ip,
                details: serde_json::from_str(&details).unwrap_or_default(),
            },
        )
        .collect())
}
