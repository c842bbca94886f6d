//! The development outbox: messages the `outbox` driver keeps instead of sending, newest first.

use diesel::prelude::*;

use super::conn::Conn;
use super::schema::outbox as o;
use super::{StoreError, new_id};
use crate::clock::UnixTime;
use crate::tenant::TenantId;

#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub channel: &'a str,
    pub destination: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredMessage {
    pub tenant_id: String,
    pub channel: String,
    pub destination: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

/// Messages kept at most: the outbox is for reading the last few, not an archive.
const KEEP: i64 = 1000;

pub fn insert(
    conn: &mut Conn,
    tenant: &TenantId,
    m: &NewMessage<'_>,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(o::table)
        .values((
            o::id.eq(new_id()),
            o::tenant_id.eq(tenant.as_str()),
            o::channel.eq(m.channel),
            o::destination.eq(m.destination),
            o::subject.eq(m.subject),
            o::body.eq(m.body),
            o::created_at.eq(now.0),
        ))
        .execute(conn)?;
    Ok(())
}

/// The newest `limit` messages, of one tenant or of all.
pub fn list(
    conn: &mut Conn,
    tenant: Option<&TenantId>,
    limit: i64,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut query = o::table.into_boxed();
    if let Some(t) = tenant {
        query = query.filter(o::tenant_id.eq(t.as_str()));
    }
    let rows: Vec<(String, String, String, String, String, i64)> = query
        .order((o::created_at.desc(), o::id.desc()))
        .limit(limit)
        .select((
            o::tenant_id,
            o::channel,
            o::destination,
            o::subject,
            o::body,
            o::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(tenant_id, channel, destination, subject, body, created_at)| StoredMessage {
                tenant_id,
                channel,
                destination,
                subject,
                body,
                created_at,
            },
        )
        .collect())
}

/// Deletes all but the newest [`KEEP`] messages older than a day.
pub fn sweep(conn: &mut Conn, now: UnixTime) -> Result<usize, StoreError> {
    let cutoff: Option<i64> = o::table
        .order(o::created_at.desc())
        .offset(KEEP)
        .select(o::created_at)
        .first(conn)
        .optional()?;
    let before = cutoff.unwrap_or(i64::MIN).min(now.0 - 24 * 3600);
    Ok(diesel::delete(o::table.filter(o::created_at.lt(before))).execute(conn)?)
}
