//! Every hashed, expiring, single-use artifact: one-time codes, reset links, QR tokens. Only
//! hashes are stored, and consuming is one statement so two racing requests get one winner.

use diesel::prelude::*;

use super::StoreError;
use super::conn::Conn;
use super::schema::one_time_tokens as t;
use crate::clock::UnixTime;
use crate::crypto::secret::TokenHash;
use crate::tenant::TenantId;

#[derive(Debug, Clone)]
pub struct NewOneTimeToken<'a> {
    pub hash: &'a TokenHash,
    pub kind: &'a str,
    pub subject: &'a str,
    pub payload: serde_json::Value,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumedToken {
    pub subject: String,
    pub payload: serde_json::Value,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

pub fn insert(
    conn: &mut Conn,
    tenant: &TenantId,
    token: NewOneTimeToken<'_>,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(t::table)
        .values((
            t::hash.eq(token.hash.as_bytes().to_vec()),
            t::tenant_id.eq(tenant.as_str()),
            t::kind.eq(token.kind),
            t::subject.eq(token.subject),
            t::payload.eq(token.payload.to_string()),
            t::created_at.eq(now.0),
            t::expires_at.eq(token.expires_at.0),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks the token used and returns it, or `None` when it is unknown, of another kind or tenant,
/// expired, or already used. `UPDATE … WHERE consumed_at IS NULL AND expires_at > now RETURNING`.
pub fn consume(
    conn: &mut Conn,
    tenant: &TenantId,
    kind: &str,
    hash: &TokenHash,
    now: UnixTime,
) -> Result<Option<ConsumedToken>, StoreError> {
    let row: Option<(String, String, i64, i64)> = diesel::update(t::table)
        .filter(t::hash.eq(hash.as_bytes().to_vec()))
        .filter(t::tenant_id.eq(tenant.as_str()))
        .filter(t::kind.eq(kind))
        .filter(t::consumed_at.is_null())
        .filter(t::expires_at.gt(now.0))
        .set(t::consumed_at.eq(now.0))
        .returning((t::subject, t::payload, t::created_at, t::expires_at))
        .get_result(conn)
        .optional()?;
    Ok(
        row.map(|(subject, payload, created_at, expires_at)| ConsumedToken {
            subject,
            payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
            created_at: UnixTime(created_at),
            expires_at: UnixTime(expires_at),
        }),
    )
}

/// The payload of a live token, without spending it: for a check that must pass before the
/// token is consumed, so a forged request cannot burn the rightful one's token.
pub fn peek(
    conn: &mut Conn,
    tenant: &TenantId,
    kind: &str,
    hash: &TokenHash,
    now: UnixTime,
) -> Result<Option<serde_json::Value>, StoreError> {
    let payload: Option<String> = t::table
        .filter(t::hash.eq(hash.as_bytes().to_vec()))
        .filter(t::tenant_id.eq(tenant.as_str()))
        .filter(t::kind.eq(kind))
        .filter(t::consumed_at.is_null())
        .filter(t::expires_at.gt(now.0))
        .select(t::payload)
        .get_result(conn)
        .optional()?;
    Ok(payload.map(|p| serde_json::from_str(&p).unwrap_or(serde_json::Value::Null)))
}

/// The payload of a token that was already consumed (a replay), whether or not it has expired
/// since, until the sweeper deletes it.
pub fn find_consumed(
    conn: &mut Conn,
    tenant: &TenantId,
    kind: &str,
    hash: &TokenHash,
) -> Result<Option<serde_json::Value>, StoreError> {
    let payload: Option<String> = t::table
        .filter(t::hash.eq(hash.as_bytes().to_vec()))
        .filter(t::tenant_id.eq(tenant.as_str()))
        .filter(t::kind.eq(kind))
        .filter(t::consumed_at.is_not_null())
        .select(t::payload)
        .get_result(conn)
        .optional()?;
    Ok(payload.map(|p| serde_json::from_str(&p).unwrap_or(serde_json::Value::Null)))
}

/// Deletes tokens that expired more than an hour ago. Used or not, they can no longer do
/// anything; the hour keeps a used one around so a late replay is still recognized as one
/// (and revokes what its first use issued).
pub fn sweep_expired(conn: &mut Conn, now: UnixTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(t::table.filter(t::expires_at.le(now.0 - REPLAY_MEMORY))).execute(conn)?)
}

/// Seconds a consumed token is remembered past its expiry.
pub const REPLAY_MEMORY: i64 = 3600;
