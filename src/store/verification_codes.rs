//! Verification codes sent by email or SMS. A code is stored as a keyed digest only, counts its
//! wrong guesses in the same statement that reads it, and is spent in one statement, so two
//! racing submissions get one winner and parallel guesses all count.

use diesel::prelude::*;

use super::StoreError;
use super::conn::Conn;
use super::schema::verification_codes as v;
use crate::clock::UnixTime;
use crate::crypto::secret::TokenHash;
use crate::tenant::TenantId;

#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    /// Random; a link carries it beside the secret.
    pub id: &'a str,
    pub purpose: &'a str,
    /// The normalized destination (`e:` email or `p:` E.164 number).
    pub destination: &'a str,
    /// `None` when the destination belongs to no account: the row still counts for cooldowns
    /// and caps, so they answer alike, but it can never be redeemed.
    pub user_id: Option<&'a str>,
    /// What the code is bound to (the login flow it was asked for).
    pub context: &'a str,
    pub code_hash: &'a TokenHash,
    pub ip: Option<&'a str>,
    pub expires_at: UnixTime,
}

/// How many codes were asked for lately, and when the last one was, for cooldowns and caps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentCodes {
    pub last_sent_at: Option<UnixTime>,
    pub for_destination: i64,
    pub for_user: i64,
    pub from_address: i64,
}

/// A live code read for checking.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub destination: String,
    pub user_id: Option<String>,
    pub context: String,
    pub code_hash: TokenHash,
}

type CandidateRow = (String, String, Option<String>, String, Vec<u8>);

fn candidate((id, destination, user_id, context, hash): CandidateRow) -> Option<Candidate> {
    Some(Candidate {
        id,
        destination,
        user_id,
        context,
        code_hash: TokenHash::from_bytes(&hash)?,
    })
}

/// The live code `id` of `purpose`, read without counting an attempt (to show a reset link's
/// form before anything is spent).
pub fn find_live(
    conn: &mut Conn,
    tenant: &TenantId,
    purpose: &str,
    id: &str,
    max_attempts: i32,
    now: UnixTime,
) -> Result<Option<Candidate>, StoreError> {
    let row: Option<CandidateRow> = v::table
        .filter(v::tenant_id.eq(tenant.as_str()))
        .filter(v::purpose.eq(purpose))
        .filter(v::id.eq(id))
        .filter(v::consumed_at.is_null())
        .filter(v::expires_at.gt(now.0))
        .filter(v::attempts.lt(max_attempts))
        .select((v::id, v::destination, v::user_id, v::context, v::code_hash))
        .get_result(conn)
        .optional()?;
    Ok(row.and_then(candidate))
}

/// As [`attempt`], for the one code `id` (a link names its row).
pub fn attempt_by_id(
    conn: &mut Conn,
    tenant: &TenantId,
    purpose: &str,
    id: &str,
    max_attempts: i32,
    now: UnixTime,
) -> Result<Option<Candidate>, StoreError> {
    let row: Option<CandidateRow> = diesel::update(
        v::table
            .filter(v::tenant_id.eq(tenant.as_str()))
            .filter(v::purpose.eq(purpose))
            .filter(v::id.eq(id))
            .filter(v::consumed_at.is_null())
            .filter(v::expires_at.gt(now.0))
            .filter(v::attempts.lt(max_attempts)),
    )
    .set(v::attempts.eq(v::attempts + 1))
    .returning((v::id, v::destination, v::user_id, v::context, v::code_hash))
    .get_result(conn)
    .optional()?;
    Ok(row.and_then(candidate))
}

/// Counts the codes of `tenant` created after `since` for the destination, the user and the
/// address, and the newest one's time for the destination.
pub fn recent(
    conn: &mut Conn,
    tenant: &TenantId,
    destination: &str,
    user_id: Option<&str>,
    ip: Option<&str>,
    since: UnixTime,
) -> Result<RecentCodes, StoreError> {
    let scoped = || {
        v::table
            .filter(v::tenant_id.eq(tenant.as_str()))
            .filter(v::created_at.gt(since.0))
            .into_boxed()
    };
    let last: Option<i64> = scoped()
        .filter(v::destination.eq(destination))
        .select(diesel::dsl::max(v::created_at))
        .get_result(conn)?;
    let for_destination: i64 = scoped()
        .filter(v::destination.eq(destination))
        .count()
        .get_result(conn)?;
    let for_user: i64 = match user_id {
        Some(id) => scoped()
            .filter(v::user_id.eq(id))
            .count()
            .get_result(conn)?,
        None => 0,
    };
    let from_address: i64 = match ip {
        Some(ip) => scoped().filter(v::ip.eq(ip)).count().get_result(conn)?,
        None => 0,
    };
    Ok(RecentCodes {
        last_sent_at: last.map(UnixTime),
        for_destination,
        for_user,
        from_address,
    })
}

/// What [`store_if`] keeps of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Nothing,
    Code,
    /// A row that counts for cooldowns and caps but can never be redeemed, as for an address of
    /// no account.
    Unredeemable,
}

/// Stores `code` when `decide`, given the codes of the last hour (since `since`), says so; the
/// counting and the storing are one write transaction that holds the destination, so requests
/// racing for one destination are decided one after the other and a cooldown or a cap cannot be
/// slipped past in parallel (SQLite's write lock does it; on PostgreSQL an advisory lock on the
/// destination). Returns what `decide` said.
pub fn store_if<D>(
    conn: &mut Conn,
    tenant: &TenantId,
    code: &NewCode<'_>,
    since: UnixTime,
    decide: impl FnOnce(&RecentCodes) -> (D, Keep),
    now: UnixTime,
) -> Result<D, StoreError> {
    super::tx::write(conn, |c| {
        if let Conn::Postgres(pg) = c {
            super::fixed::statement("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind::<diesel::sql_types::Text, _>(format!("{tenant} {}", code.destination))
                .execute(pg)?;
        }
        let counts = recent(c, tenant, code.destination, code.user_id, code.ip, since)?;
        let (decision, keep) = decide(&counts);
        match keep {
            Keep::Nothing => {}
            Keep::Code => replace(c, tenant, code, now)?,
            Keep::Unredeemable => replace(
                c,
                tenant,
                &NewCode {
                    user_id: None,
                    ..code.clone()
                },
                now,
            )?,
        }
        Ok(decision)
    })
}

/// Stores a new code for the destination and retires the earlier live ones for the same
/// purpose: only the newest code a person received works.
pub fn replace(
    conn: &mut Conn,
    tenant: &TenantId,
    code: &NewCode<'_>,
    now: UnixTime,
) -> Result<(), StoreError> {
    super::tx::write(conn, |c| {
        diesel::update(
            v::table
                .filter(v::tenant_id.eq(tenant.as_str()))
                .filter(v::purpose.eq(code.purpose))
                .filter(v::destination.eq(code.destination))
                .filter(v::consumed_at.is_null()),
        )
        .set(v::consumed_at.eq(now.0))
        .execute(c)?;
        diesel::insert_into(v::table)
            .values((
                v::id.eq(code.id),
                v::tenant_id.eq(tenant.as_str()),
                v::purpose.eq(code.purpose),
                v::destination.eq(code.destination),
                v::user_id.eq(code.user_id),
                v::context.eq(code.context),
                v::code_hash.eq(code.code_hash.as_bytes().to_vec()),
                v::ip.eq(code.ip),
                v::created_at.eq(now.0),
                v::expires_at.eq(code.expires_at.0),
            ))
            .execute(c)?;
        Ok::<_, StoreError>(())
    })
}

/// Counts one attempt against the live code(s) of the destination that still have attempts
/// left (`attempts < max_attempts`) and returns them for comparison. One statement, so
/// concurrent guesses cannot share an attempt.
pub fn attempt(
    conn: &mut Conn,
    tenant: &TenantId,
    purpose: &str,
    destination: &str,
    max_attempts: i32,
    now: UnixTime,
) -> Result<Vec<Candidate>, StoreError> {
    let rows: Vec<CandidateRow> = diesel::update(
        v::table
            .filter(v::tenant_id.eq(tenant.as_str()))
            .filter(v::purpose.eq(purpose))
            .filter(v::destination.eq(destination))
            .filter(v::consumed_at.is_null())
            .filter(v::expires_at.gt(now.0))
            .filter(v::attempts.lt(max_attempts)),
    )
    .set(v::attempts.eq(v::attempts + 1))
    .returning((v::id, v::destination, v::user_id, v::context, v::code_hash))
    .get_results(conn)?;
    Ok(rows.into_iter().filter_map(candidate).collect())
}

/// Spends the code `id`; `false` when another request spent it first.
pub fn consume(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        v::table
            .filter(v::tenant_id.eq(tenant.as_str()))
            .filter(v::id.eq(id))
            .filter(v::consumed_at.is_null())
            .filter(v::expires_at.gt(now.0)),
    )
    .set(v::consumed_at.eq(now.0))
    .execute(conn)?;
    Ok(n == 1)
}

/// Retires a code whose message could not be handed over, so it cannot be guessed at.
pub fn retire(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    consume(conn, tenant, id, now).map(|_| ())
}

/// Retires every live code and link of a user (their address changed: what was sent to the old
/// one must not work any more).
pub fn retire_for_user(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::update(
        v::table
            .filter(v::tenant_id.eq(tenant.as_str()))
            .filter(v::user_id.eq(user_id))
            .filter(v::consumed_at.is_null()),
    )
    .set(v::consumed_at.eq(now.0))
    .execute(conn)?;
    Ok(())
}

/// Deletes codes older than a day: past their lifetime, and past every hourly cap.
pub fn sweep_expired(conn: &mut Conn, now: UnixTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(v::table.filter(v::created_at.le(now.0 - 24 * 3600))).execute(conn)?)
}
