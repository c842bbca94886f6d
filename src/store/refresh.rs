//! Refresh-token families (RFC 6749 §6, RFC 9700 §4.14). Tokens are stored as hashes; every use
//! rotates the token within its family, and a rotated token presented again revokes the family.

use diesel::prelude::*;
use diesel::sqlite::Sqlite;

use super::access_revocations::{self, Revoke};
use super::conn::Conn;
use super::schema::refresh_tokens as r;
use super::{StoreError, tx};
use crate::clock::UnixTime;
use crate::crypto::secret::TokenHash;
use crate::tenant::TenantId;

#[derive(Debug, Clone)]
pub struct NewRefreshToken<'a> {
    pub hash: &'a TokenHash,
    pub family_id: &'a str,
    pub client_id: &'a str,
    pub user_id: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub scope: &'a str,
    pub auth_time: Option<UnixTime>,
    /// How the user signed in (RFC 8176 methods and the assurance class), for the ID tokens of
    /// later refreshes.
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
    /// The sign-in's `claims` request (OIDC Core §5.5) as JSON, for the tokens of later refreshes.
    pub claims: Option<String>,
    /// Sliding expiry of this token.
    pub expires_at: UnixTime,
    /// Absolute expiry of the family; no rotation extends past it.
    pub family_expires_at: UnixTime,
}

/// What a live refresh token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    pub family_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub sid: Option<String>,
    pub scope: String,
    pub auth_time: Option<UnixTime>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// The sign-in's `claims` request as JSON, if it made one.
    pub claims: Option<String>,
    pub expires_at: UnixTime,
    pub family_expires_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was live; it is now rotated and `next` replaces it.
    Rotated(RefreshGrant),
    /// The presented token had already been rotated: the family is now revoked.
    Reused { family_id: String },
    /// Unknown, expired, revoked, or another client's token.
    Invalid,
}

/// A token's grant as stored; one shape for diesel's queries and the raw PostgreSQL statement.
#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = r, check_for_backend(crate::store::conn::MultiBackend))]
struct GrantRow {
    family_id: String,
    client_id: String,
    user_id: Option<String>,
    sid: Option<String>,
    scope: String,
    auth_time: Option<i64>,
    amr: Option<String>,
    acr: Option<String>,
    claims: Option<String>,
    expires_at: i64,
    family_expires_at: i64,
}

impl From<GrantRow> for RefreshGrant {
    fn from(row: GrantRow) -> Self {
        RefreshGrant {
            family_id: row.family_id,
            client_id: row.client_id,
            user_id: row.user_id,
            sid: row.sid,
            scope: row.scope,
            auth_time: row.auth_time.map(UnixTime),
            amr: row
                .amr
                .and_then(|a| serde_json::from_str(&a).ok())
                .unwrap_or_default(),
            acr: row.acr,
            claims: row.claims,
            expires_at: UnixTime(row.expires_at),
            family_expires_at: UnixTime(row.family_expires_at),
        }
    }
}

/// The stored form of an `amr` list: a JSON array, as in `sessions`.
fn amr_text(amr: &[String]) -> String {
    serde_json::Value::from(amr.to_vec()).to_string()
}

pub fn issue(
    conn: &mut Conn,
    tenant: &TenantId,
    t: &NewRefreshToken<'_>,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(r::table)
        .values((
            r::hash.eq(t.hash.as_bytes().to_vec()),
            r::tenant_id.eq(tenant.as_str()),
            r::family_id.eq(t.family_id),
            r::client_id.eq(t.client_id),
            r::user_id.eq(t.user_id),
            r::sid.eq(t.sid),
            r::scope.eq(t.scope),
            r::auth_time.eq(t.auth_time.map(|x| x.0)),
            r::amr.eq(amr_text(t.amr)),
            r::acr.eq(t.acr),
            r::claims.eq(t.claims.as_deref()),
            r::created_at.eq(now.0),
            r::expires_at.eq(t.expires_at.0.min(t.family_expires_at.0)),
            r::family_expires_at.eq(t.family_expires_at.0),
        ))
        .execute(conn)?;
    Ok(())
}

/// What [`issue_once`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// The ID was new and the token is stored.
    Issued,
    /// The ID was new (it is recorded now), but the session the token would continue has
    /// ended: nothing is stored.
    SessionEnded,
    /// The ID was used before: nothing is stored.
    Used,
}

/// Records `once` (a single-use ID of `t`'s client, kept until `once_until`) and, if it was not
/// recorded before and `t`'s session is still live, issues `t`, as one atomic step: a second use
/// of the ID issues nothing, and whoever sees it used finds the token the first use issued.
pub fn issue_once(
    conn: &mut Conn,
    tenant: &TenantId,
    once: &str,
    once_until: UnixTime,
    t: &NewRefreshToken<'_>,
    now: UnixTime,
) -> Result<Once, StoreError> {
    if let (Conn::Postgres(pg), Some(sid)) = (&mut *conn, t.sid) {
        return issue_once_in_one_statement(pg, tenant, once, once_until, sid, t, now);
    }
    // SQLite's write transaction holds the database's one write lock: a logout cannot end the
    // session between the check and the insert.
    tx::write(conn, |c| {
        if !super::jtis::remember(c, tenant, t.client_id, once, once_until)? {
            return Ok(Once::Used);
        }
        if let Some(sid) = t.sid
            && !super::sessions::is_live(c, tenant, sid, now)?
        {
            return Ok(Once::SessionEnded);
        }
        issue(c, tenant, t, now)?;
        Ok(Once::Issued)
    })
}

/// The start of the statements that spend a single-use ID on PostgreSQL: `used` records ID `$3`
/// of client `$2` in tenant `$1` until `$4` (a row only if it is new), and `live` reads session
/// `$5` if it is live at `$6`, `FOR SHARE`, so a logout ending it waits for this commit.
macro_rules! spend_once_ctes {
    () => {
        "WITH live AS ( \
            SELECT 1 FROM sso_sessions WHERE tenant_id = $1 AND sid = $5 \
            AND revoked_at IS NULL AND idle_expires_at > $6 AND absolute_expires_at > $6 \
            FOR SHARE \
        ), used AS ( \
            INSERT INTO used_jtis (tenant_id, client_id, jti, expires_at) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (tenant_id, client_id, jti) DO NOTHING RETURNING 1 \
        )"
    };
}

/// [`issue_once`] with no token to issue: records `once` (a single-use ID of `client_id`, kept
/// until `once_until`) and tells whether session `sid` is still live, as one atomic step. On
/// PostgreSQL one statement that reads the session `FOR SHARE`, as [`issue_once`] does, so a
/// logout either ends the session first or waits for this commit and then revokes what it grants.
pub fn spend_once(
    conn: &mut Conn,
    tenant: &TenantId,
    client_id: &str,
    (once, once_until): (&str, UnixTime),
    sid: &str,
    now: UnixTime,
) -> Result<Once, StoreError> {
    if let Conn::Postgres(pg) = conn {
        use diesel::sql_types::{BigInt, Text};
        const SPEND_ONCE: &str = concat!(
            spend_once_ctes!(),
            " SELECT (SELECT count(*) FROM used) AS used, (SELECT count(*) FROM live) AS live"
        );
        let counts: Counts = super::fixed::statement(SPEND_ONCE)
            .bind::<Text, _>(tenant.as_str())
            .bind::<Text, _>(client_id)
            .bind::<Text, _>(once)
            .bind::<BigInt, _>(once_until.0)
            .bind::<Text, _>(sid)
            .bind::<BigInt, _>(now.0)
            .get_result(pg)?;
        return Ok(counts.once());
    }
    tx::write(conn, |c| {
        if !super::jtis::remember(c, tenant, client_id, once, once_until)? {
            return Ok(Once::Used);
        }
        Ok(match super::sessions::is_live(c, tenant, sid, now)? {
            true => Once::Issued,
            false => Once::SessionEnded,
        })
    })
}

/// What the single-statement spends found: rows inserted into `used_jtis`, sessions live.
#[derive(QueryableByName)]
struct Counts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    used: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    live: i64,
}

impl Counts {
    fn once(&self) -> Once {
        match (self.used, self.live) {
            (0, _) => Once::Used,
            (_, 0) => Once::SessionEnded,
            _ => Once::Issued,
        }
    }
}

/// [`issue_once`] in one PostgreSQL statement, for a token of session `sid`: one round trip
/// instead of five. A concurrent use of the same ID waits for the first one's row to commit and
/// then finds the ID taken. The session's row is read `FOR SHARE`: a logout ending it waits for
/// this statement's commit (and then revokes the token it stored), or this statement waits for
/// the logout's and finds the session ended.
fn issue_once_in_one_statement(
    pg: &mut diesel::PgConnection,
    tenant: &TenantId,
    once: &str,
    once_until: UnixTime,
    sid: &str,
    t: &NewRefreshToken<'_>,
    now: UnixTime,
) -> Result<Once, StoreError> {
    use diesel::sql_types::{BigInt, Binary, Nullable, Text};
    const ISSUE_ONCE: &str = concat!(
        spend_once_ctes!(),
        ", issued AS ( \
            INSERT INTO refresh_tokens (hash, tenant_id, family_id, client_id, user_id, sid, scope, \
                                        auth_time, amr, acr, claims, created_at, expires_at, \
                                        family_expires_at) \
            SELECT $7, $1, $8, $2, $9, $5, $10, $11, $12, $13, $16, $6, $14, $15 FROM used, live \
        ) \
        SELECT (SELECT count(*) FROM used) AS used, (SELECT count(*) FROM live) AS live"
    );
    let counts: Counts = super::fixed::statement(ISSUE_ONCE)
        .bind::<Text, _>(tenant.as_str())
        .bind::<Text, _>(t.client_id)
        .bind::<Text, _>(once)
        .bind::<BigInt, _>(once_until.0)
        .bind::<Text, _>(sid)
        .bind::<BigInt, _>(now.0)
        .bind::<Binary, _>(t.hash.as_bytes().to_vec())
        .bind::<Text, _>(t.family_id)
        .bind::<Nullable<Text>, _>(t.user_id)
        .bind::<Text, _>(t.scope)
        .bind::<Nullable<BigInt>, _>(t.auth_time.map(|x| x.0))
        .bind::<Text, _>(amr_text(t.amr))
        .bind::<Nullable<Text>, _>(t.acr)
        .bind::<BigInt, _>(t.expires_at.0.min(t.family_expires_at.0))
        .bind::<BigInt, _>(t.family_expires_at.0)
        .bind::<Nullable<Text>, _>(t.claims.as_deref())
        .get_result(pg)?;
    Ok(counts.once())
}

/// Rotates `presented` (a token of `client_id`) to `next`, whose sliding expiry is `now + sliding`
/// capped by the family's absolute expiry. The consume is one `UPDATE … RETURNING`, so of two
/// racing uses exactly one rotates; the other is treated as reuse.
pub fn rotate(
    conn: &mut Conn,
    tenant: &TenantId,
    client_id: &str,
    presented: &TokenHash,
    next: &TokenHash,
    sliding: i64,
    now: UnixTime,
) -> Result<Rotation, StoreError> {
    if let Conn::Postgres(pg) = conn {
        let rotated =
            rotate_in_one_statement(pg, tenant, client_id, presented, next, sliding, now)?;
        return match rotated {
            Some(old) => Ok(Rotation::Rotated(RefreshGrant {
                expires_at: now.plus(sliding).min(old.family_expires_at),
                ..old
            })),
            None => tx::write(conn, |c| not_rotated(c, tenant, client_id, presented, now)),
        };
    }
    tx::write(conn, |c| {
        let row: Option<GrantRow> = diesel::update(r::table)
            .filter(r::hash.eq(presented.as_bytes().to_vec()))
            .filter(r::tenant_id.eq(tenant.as_str()))
            .filter(r::client_id.eq(client_id))
            .filter(r::rotated_at.is_null())
            .filter(r::revoked_at.is_null())
            .filter(r::expires_at.gt(now.0))
            .filter(r::family_expires_at.gt(now.0))
            .set(r::rotated_at.eq(now.0))
            // The selection itself: `as_returning` has no form for the multi-backend connection.
            .returning(<GrantRow as Selectable<Sqlite>>::construct_selection())
            .get_result(c)
            .optional()?;
        let Some(row) = row else {
            return not_rotated(c, tenant, client_id, presented, now);
        };
        let old = RefreshGrant::from(row);
        let expires_at = now.plus(sliding).min(old.family_expires_at);
        issue(
            c,
            tenant,
            &NewRefreshToken {
                hash: next,
                family_id: &old.family_id,
                client_id,
                user_id: old.user_id.as_deref(),
                sid: old.sid.as_deref(),
                scope: &old.scope,
                auth_time: old.auth_time,
                amr: &old.amr,
                acr: old.acr.as_deref(),
                claims: old.claims.clone(),
                expires_at,
                family_expires_at: old.family_expires_at,
            },
            now,
        )?;
        Ok(Rotation::Rotated(RefreshGrant { expires_at, ..old }))
    })
}

/// Undoes a rotation of `presented` into `next` made at `now` whose answer was never sent (the
/// request was refused after the consume): `presented` is live again and `next` is gone. A family
/// revoked meanwhile stays revoked.
pub fn restore(
    conn: &mut Conn,
    tenant: &TenantId,
    presented: &TokenHash,
    next: &TokenHash,
    now: UnixTime,
) -> Result<(), StoreError> {
    tx::write(conn, |c| {
        diesel::delete(
            r::table
                .filter(r::hash.eq(next.as_bytes().to_vec()))
                .filter(r::tenant_id.eq(tenant.as_str())),
        )
        .execute(c)?;
        diesel::update(
            r::table
                .filter(r::hash.eq(presented.as_bytes().to_vec()))
                .filter(r::tenant_id.eq(tenant.as_str()))
                .filter(r::rotated_at.eq(now.0))
                .filter(r::revoked_at.is_null()),
        )
        .set(r::rotated_at.eq(None::<i64>))
        .execute(c)?;
        Ok(())
    })
}

/// Why `presented` did not rotate: a token rotated before is reuse, and its family is revoked;
/// anything else is invalid.
fn not_rotated(
    c: &mut Conn,
    tenant: &TenantId,
    client_id: &str,
    presented: &TokenHash,
    now: UnixTime,
) -> Result<Rotation, StoreError> {
    let reused: Option<String> = r::table
        .filter(r::hash.eq(presented.as_bytes().to_vec()))
        .filter(r::tenant_id.eq(tenant.as_str()))
        .filter(r::client_id.eq(client_id))
        .filter(r::rotated_at.is_not_null())
        .select(r::family_id)
        .get_result(c)
        .optional()?;
    match reused {
        Some(family_id) => {
            revoke_family(c, tenant, &family_id, now)?;
            Ok(Rotation::Reused { family_id })
        }
        None => Ok(Rotation::Invalid),
    }
}

/// The consume and the insert of a rotation in one PostgreSQL statement (data-modifying CTEs
/// share one snapshot and commit together), so a refresh costs one round trip instead of four
/// (`BEGIN`, `UPDATE`, `INSERT`, `COMMIT`). The `UPDATE`'s row lock still lets exactly one of two
/// racing uses through.
fn rotate_in_one_statement(
    pg: &mut diesel::PgConnection,
    tenant: &TenantId,
    client_id: &str,
    presented: &TokenHash,
    next: &TokenHash,
    sliding: i64,
    now: UnixTime,
) -> Result<Option<RefreshGrant>, StoreError> {
    use diesel::sql_types::{BigInt, Binary, Text};
    const ROTATE: &str = "\
        WITH old AS ( \
            UPDATE refresh_tokens SET rotated_at = $1 \
            WHERE hash = $2 AND tenant_id = $3 AND client_id = $4 \
              AND rotated_at IS NULL AND revoked_at IS NULL \
              AND expires_at > $1 AND family_expires_at > $1 \
            RETURNING tenant_id, family_id, client_id, user_id, sid, scope, auth_time, amr, acr, \
                      claims, expires_at, family_expires_at \
        ), issued AS ( \
            INSERT INTO refresh_tokens (hash, tenant_id, family_id, client_id, user_id, sid, scope, \
                                        auth_time, amr, acr, claims, created_at, expires_at, \
                                        family_expires_at) \
            SELECT $5, tenant_id, family_id, client_id, user_id, sid, scope, auth_time, amr, acr, \
                   claims, $1, LEAST($6, family_expires_at), family_expires_at FROM old \
        ) \
        SELECT family_id, client_id, user_id, sid, scope, auth_time, amr, acr, claims, \
               expires_at, family_expires_at \
        FROM old";
    let row: Option<GrantRow> = super::fixed::statement(ROTATE)
        .bind::<BigInt, _>(now.0)
        .bind::<Binary, _>(presented.as_bytes().to_vec())
        .bind::<Text, _>(tenant.as_str())
        .bind::<Text, _>(client_id)
        .bind::<Binary, _>(next.as_bytes().to_vec())
        .bind::<BigInt, _>(now.plus(sliding).0)
        .get_result(pg)
        .optional()?;
    Ok(row.map(RefreshGrant::from))
}

/// The grant of a live (unrotated, unrevoked, unexpired) token, for introspection.
pub fn find_active(
    conn: &mut Conn,
    tenant: &TenantId,
    hash: &TokenHash,
    now: UnixTime,
) -> Result<Option<RefreshGrant>, StoreError> {
    let row: Option<GrantRow> = r::table
        .filter(r::hash.eq(hash.as_bytes().to_vec()))
        .filter(r::tenant_id.eq(tenant.as_str()))
        .filter(r::rotated_at.is_null())
        .filter(r::revoked_at.is_null())
        .filter(r::expires_at.gt(now.0))
        .filter(r::family_expires_at.gt(now.0))
        .select(GrantRow::as_select())
        .get_result(conn)
        .optional()?;
    Ok(row.map(RefreshGrant::from))
}

/// The family of a token issued to `client_id`, rotated or not (revocation accepts any token of
/// the family, RFC 7009 §2.1).
pub fn family_of(
    conn: &mut Conn,
    tenant: &TenantId,
    client_id: &str,
    hash: &TokenHash,
) -> Result<Option<String>, StoreError> {
    Ok(r::table
        .filter(r::hash.eq(hash.as_bytes().to_vec()))
        .filter(r::tenant_id.eq(tenant.as_str()))
        .filter(r::client_id.eq(client_id))
        .select(r::family_id)
        .get_result(conn)
        .optional()?)
}

/// Revokes every token of the family, and the access tokens of its grant; returns how many
/// refresh tokens were still unrevoked.
pub fn revoke_family(
    conn: &mut Conn,
    tenant: &TenantId,
    family_id: &str,
    now: UnixTime,
) -> Result<usize, StoreError> {
    tx::write(conn, |c| {
        access_revocations::record(c, tenant, Revoke::Grant(family_id), now)?;
        Ok(diesel::update(
            r::table
                .filter(r::tenant_id.eq(tenant.as_str()))
                .filter(r::family_id.eq(family_id))
                .filter(r::revoked_at.is_null()),
        )
        .set(r::revoked_at.eq(now.0))
        .execute(c)?)
    })
}

/// Revokes every refresh and access token of a user (password reset, disabled account).
pub fn revoke_for_user(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    now: UnixTime,
) -> Result<usize, StoreError> {
    tx::write(conn, |c| {
        access_revocations::record(c, tenant, Revoke::User(user_id), now)?;
        Ok(diesel::update(
            r::table
                .filter(r::tenant_id.eq(tenant.as_str()))
                .filter(r::user_id.eq(user_id))
                .filter(r::revoked_at.is_null()),
        )
        .set(r::revoked_at.eq(now.0))
        .execute(c)?)
    })
}

/// At logout: revokes the access tokens issued in the session, and its refresh tokens except
/// `offline_access` ones, which exist to outlive the session (OIDC Core §11) and go on issuing
/// access tokens.
pub fn revoke_for_session(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
    now: UnixTime,
) -> Result<usize, StoreError> {
    tx::write(conn, |c| {
        access_revocations::record(c, tenant, Revoke::Session(sid), now)?;
        Ok(diesel::update(
            r::table
                .filter(r::tenant_id.eq(tenant.as_str()))
                .filter(r::sid.eq(sid))
                .filter(r::revoked_at.is_null())
                .filter(r::scope.not_like("%offline_access%")),
        )
        .set(r::revoked_at.eq(now.0))
        .execute(c)?)
    })
}

/// Deletes families past their absolute expiry. Rotated tokens of a live family are kept: they
/// are what recognizes a reuse (RFC 9700 §4.14.2).
pub fn sweep_expired(conn: &mut Conn, now: UnixTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(r::table.filter(r::family_expires_at.le(now.0))).execute(conn)?)
}

/// Revokes a user's refresh and access tokens for one client (consent withdrawn).
pub fn revoke_for_user_client(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<usize, StoreError> {
    tx::write(conn, |c| {
        access_revocations::record(
            c,
            tenant,
            Revoke::UserClient {
                user: user_id,
                client: client_id,
            },
            now,
        )?;
        Ok(diesel::update(
            r::table
                .filter(r::tenant_id.eq(tenant.as_str()))
                .filter(r::user_id.eq(user_id))
                .filter(r::client_id.eq(client_id))
                .filter(r::revoked_at.is_null()),
        )
        .set(r::revoked_at.eq(now.0))
        .execute(c)?)
    })
}
