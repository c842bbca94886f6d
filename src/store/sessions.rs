//! Browser SSO sessions: a server-side record per session so it can be listed and revoked. The
//! cookie value is stored only as a hash; `sid` is the public id for ID tokens and logout.

use diesel::prelude::*;

use super::StoreError;
use super::conn::{Conn, per_backend};
use super::schema::{session_clients as sc, sso_sessions as s};
use crate::clock::UnixTime;
use crate::crypto::secret::TokenHash;
use crate::tenant::TenantId;

#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub cookie_hash: &'a TokenHash,
    pub sid: &'a str,
    pub user_id: &'a str,
    pub auth_time: UnixTime,
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
    pub remember: bool,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub idle_expires_at: UnixTime,
    pub absolute_expires_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub sid: String,
    pub user_id: String,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub remember: bool,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub idle_expires_at: UnixTime,
    pub absolute_expires_at: UnixTime,
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = s, check_for_backend(crate::store::conn::MultiBackend))]
struct Row {
    sid: String,
    user_id: String,
    auth_time: i64,
    amr: String,
    acr: Option<String>,
    remember: bool,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: i64,
    last_seen_at: i64,
    idle_expires_at: i64,
    absolute_expires_at: i64,
}

impl From<Row> for Session {
    fn from(r: Row) -> Session {
        Session {
            sid: r.sid,
            user_id: r.user_id,
            auth_time: UnixTime(r.auth_time),
            amr: serde_json::from_str(&r.amr).unwrap_or_default(),
            acr: r.acr,
            remember: r.remember,
            user_agent: r.user_agent,
            ip: r.ip,
            created_at: UnixTime(r.created_at),
            last_seen_at: UnixTime(r.last_seen_at),
            idle_expires_at: UnixTime(r.idle_expires_at),
            absolute_expires_at: UnixTime(r.absolute_expires_at),
        }
    }
}

/// Session `sid` of `tenant` unless it was ended: what ending it, renewing it and finding it by
/// its public id all start from.
macro_rules! unrevoked {
    ($tenant:expr, $sid:expr) => {
        s::table
            .filter(s::tenant_id.eq($tenant.as_str()))
            .filter(s::sid.eq($sid))
            .filter(s::revoked_at.is_null())
    };
}

pub fn create(
    conn: &mut Conn,
    tenant: &TenantId,
    n: &NewSession<'_>,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(s::table)
        .values((
            s::cookie_hash.eq(n.cookie_hash.as_bytes().to_vec()),
            s::tenant_id.eq(tenant.as_str()),
            s::sid.eq(n.sid),
            s::user_id.eq(n.user_id),
            s::auth_time.eq(n.auth_time.0),
            s::amr.eq(serde_json::Value::from(n.amr.to_vec()).to_string()),
            s::acr.eq(n.acr),
            s::remember.eq(n.remember),
            s::user_agent.eq(n.user_agent),
            s::ip.eq(n.ip),
            s::created_at.eq(now.0),
            s::last_seen_at.eq(now.0),
            s::idle_expires_at.eq(n.idle_expires_at.0.min(n.absolute_expires_at.0)),
            s::absolute_expires_at.eq(n.absolute_expires_at.0),
        ))
        .execute(conn)?;
    Ok(())
}

/// A fresh sign-in by the session's own user (`prompt=login`, `max_age`): the same `sid`, so its
/// apps keep their sessions, with a new cookie value, sign-in time, methods and class, and new
/// expiries.
/// Returns whether the session was live.
#[expect(clippy::too_many_arguments, reason = "one statement's values")]
pub fn renew(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
    cookie_hash: &TokenHash,
    auth_time: UnixTime,
    amr: &[String],
    acr: &str,
    remember: bool,
    idle_expires_at: UnixTime,
    absolute_expires_at: UnixTime,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(unrevoked!(tenant, sid))
        .set((
            s::cookie_hash.eq(cookie_hash.as_bytes().to_vec()),
            s::auth_time.eq(auth_time.0),
            s::amr.eq(serde_json::Value::from(amr.to_vec()).to_string()),
            s::acr.eq(acr),
            s::remember.eq(remember),
            s::last_seen_at.eq(now.0),
            s::idle_expires_at.eq(idle_expires_at.0.min(absolute_expires_at.0)),
            s::absolute_expires_at.eq(absolute_expires_at.0),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Gives live session `sid` a new cookie, so the value a browser held before is worthless;
/// false if the session has ended.
pub fn replace_cookie(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
    cookie_hash: &TokenHash,
) -> Result<bool, StoreError> {
    let n = diesel::update(unrevoked!(tenant, sid))
        .set(s::cookie_hash.eq(cookie_hash.as_bytes().to_vec()))
        .execute(conn)?;
    Ok(n == 1)
}

/// How long a session's `last_seen_at` may lag before a request writes it again. A sign-in
/// through an existing session is then a read, not a write that queues behind every other
/// writer; the idle timeout is honoured to within this much.
pub const TOUCH_INTERVAL: i64 = 60;

/// The session behind a cookie, if it is live at `now`: what a read and its touch both filter by.
macro_rules! live {
    ($tenant:expr, $cookie_hash:expr, $now:expr) => {
        s::table
            .filter(s::cookie_hash.eq($cookie_hash.as_bytes().to_vec()))
            .filter(s::tenant_id.eq($tenant.as_str()))
            .filter(s::revoked_at.is_null())
            .filter(s::idle_expires_at.gt($now.0))
            .filter(s::absolute_expires_at.gt($now.0))
    };
}

/// The live session behind a cookie. Its idle expiry slides to `now + idle` (never past the
/// absolute expiry) when it was last moved more than [`TOUCH_INTERVAL`] ago; a remembered
/// session has no idle timeout (its idle expiry is its absolute one).
pub fn touch(
    conn: &mut Conn,
    tenant: &TenantId,
    cookie_hash: &TokenHash,
    idle: i64,
    now: UnixTime,
) -> Result<Option<Session>, StoreError> {
    let row: Option<Row> = live!(tenant, cookie_hash, now)
        .select(Row::as_select())
        .get_result(conn)
        .optional()?;
    match row {
        Some(row) => touched(conn, tenant, cookie_hash, idle, now, row),
        None => Ok(None),
    }
}

/// A session to find by its cookie, as [`touch`] takes it.
#[derive(Debug, Clone)]
pub struct Touch {
    pub tenant: TenantId,
    pub cookie_hash: TokenHash,
    pub idle: i64,
    pub now: UnixTime,
}

/// [`touch`] for many cookies: one query finds them all, and only a session due to be moved
/// costs a statement of its own. Answers in the order of `lookups`.
pub fn touch_many(conn: &mut Conn, lookups: &[Touch]) -> Result<Vec<Option<Session>>, StoreError> {
    if lookups.is_empty() {
        return Ok(Vec::new());
    }
    let hashes: Vec<Vec<u8>> = lookups
        .iter()
        .map(|l| l.cookie_hash.as_bytes().to_vec())
        .collect();
    let rows: Vec<(Vec<u8>, String, Row)> = s::table
        .filter(s::cookie_hash.eq_any(hashes))
        .filter(s::revoked_at.is_null())
        .select((s::cookie_hash, s::tenant_id, Row::as_select()))
        .load(conn)?;
    let mut sessions = Vec::with_capacity(lookups.len());
    for l in lookups {
        // The filters of `touch`, for this lookup's tenant and moment.
        let row = rows.iter().find(|(hash, tenant, row)| {
            hash.as_slice() == l.cookie_hash.as_bytes()
                && tenant.as_str() == l.tenant.as_str()
                && row.idle_expires_at > l.now.0
                && row.absolute_expires_at > l.now.0
        });
        sessions.push(match row {
            Some((_, _, row)) => {
                touched(conn, &l.tenant, &l.cookie_hash, l.idle, l.now, row.clone())?
            }
            None => None,
        });
    }
    Ok(sessions)
}

/// `row`, a live session just read, moved forward if it is due to be.
fn touched(
    conn: &mut Conn,
    tenant: &TenantId,
    cookie_hash: &TokenHash,
    idle: i64,
    now: UnixTime,
    row: Row,
) -> Result<Option<Session>, StoreError> {
    if now.0 - row.last_seen_at < TOUCH_INTERVAL {
        return Ok(Some(Session::from(row)));
    }
    let idle_expires_at = match row.remember {
        true => row.absolute_expires_at,
        false => now.plus(idle).0.min(row.absolute_expires_at),
    };
    // The filters of the read again: a revocation between the two statements wins.
    let moved = diesel::update(live!(tenant, cookie_hash, now))
        .set((
            s::last_seen_at.eq(now.0),
            s::idle_expires_at.eq(idle_expires_at),
        ))
        .execute(conn)?;
    Ok((moved == 1).then(|| Session {
        last_seen_at: now,
        idle_expires_at: UnixTime(idle_expires_at),
        ..Session::from(row)
    }))
}

/// Live sessions of a user, newest first (the account page's list).
pub fn list_for_user(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    now: UnixTime,
) -> Result<Vec<Session>, StoreError> {
    let rows: Vec<Row> = s::table
        .filter(s::tenant_id.eq(tenant.as_str()))
        .filter(s::user_id.eq(user_id))
        .filter(s::revoked_at.is_null())
        .filter(s::idle_expires_at.gt(now.0))
        .filter(s::absolute_expires_at.gt(now.0))
        .order(s::created_at.desc())
        .select(Row::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Session::from).collect())
}

/// Ends one session by its public id; returns whether it was live.
pub fn revoke(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(unrevoked!(tenant, sid))
        .set(s::revoked_at.eq(now.0))
        .execute(conn)?;
    Ok(n > 0)
}

/// Ends every session of a user (password reset, disabled account).
pub fn revoke_for_user(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    now: UnixTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        s::table
            .filter(s::tenant_id.eq(tenant.as_str()))
            .filter(s::user_id.eq(user_id))
            .filter(s::revoked_at.is_null()),
    )
    .set(s::revoked_at.eq(now.0))
    .execute(conn)?)
}

/// The live session with public id `sid` (logout by `id_token_hint`, when the browser's cookie did
/// not come along on a cross-site request).
pub fn find_by_sid(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
    now: UnixTime,
) -> Result<Option<Session>, StoreError> {
    let row: Option<Row> = unrevoked!(tenant, sid)
        .filter(s::idle_expires_at.gt(now.0))
        .filter(s::absolute_expires_at.gt(now.0))
        .select(Row::as_select())
        .get_result(conn)
        .optional()?;
    Ok(row.map(Session::from))
}

/// Whether session `sid` is live at `now`: what a code's redemption asks, so that a code issued
/// just before its session ended (a logout, a password reset) starts nothing.
pub fn is_live(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(
        unrevoked!(tenant, sid)
            .filter(s::idle_expires_at.gt(now.0))
            .filter(s::absolute_expires_at.gt(now.0)),
    ))
    .get_result(conn)?)
}

/// Notes that `client_id` received tokens through session `sid`, so logout can reach it. One
/// insert; a duplicate (the client signed in through this session before) is no error.
pub fn add_client(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    // `ON CONFLICT DO NOTHING`, not a caught unique violation: another request of the same
    // session may have recorded it first, and on PostgreSQL a violation is an error in the
    // server's log and ends any transaction around it.
    per_backend!(conn, |c| {
        diesel::insert_into(sc::table)
            .values((
                sc::tenant_id.eq(tenant.as_str()),
                sc::sid.eq(sid),
                sc::client_id.eq(client_id),
                sc::created_at.eq(now.0),
            ))
            .on_conflict((sc::tenant_id, sc::sid, sc::client_id))
            .do_nothing()
            .execute(c)
    })?;
    Ok(())
}

/// The clients that received tokens through session `sid`, sorted.
pub fn clients_of(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = sc::table
        .filter(sc::tenant_id.eq(tenant.as_str()))
        .filter(sc::sid.eq(sid))
        .select(sc::client_id)
        .load(conn)?;
    ids.sort();
    Ok(ids)
}

/// Deletes sessions that can no longer be used (expired, or revoked more than a day ago).
pub fn sweep_expired(conn: &mut Conn, now: UnixTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        s::table.filter(
            s::absolute_expires_at
                .le(now.0)
                .or(s::idle_expires_at.le(now.0))
                .or(s::revoked_at.le(now.0 - 86_400)),
        ),
    )
    .execute(conn)?)
}
