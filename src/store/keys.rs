//! Signing keys as stored: public JWK in clear, private key as ciphertext under the master key.

use diesel::prelude::*;

use super::StoreError;
use super::conn::Conn;
use super::schema::signing_keys as k;
use crate::clock::UnixTime;
use crate::tenant::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    fn parse(s: &str) -> KeyState {
        match s {
            "active" => KeyState::Active,
            "next" => KeyState::Next,
            _ => KeyState::Retired,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub public_jwk: String,
    pub private_key: Vec<u8>,
    pub created_at: UnixTime,
    pub activated_at: Option<UnixTime>,
    pub retired_at: Option<UnixTime>,
    pub publish_until: Option<UnixTime>,
}

impl StoredKey {
    /// Next and active keys are always published; retired ones until their tokens have expired.
    pub fn is_published(&self, now: UnixTime) -> bool {
        match self.state {
            KeyState::Next | KeyState::Active => true,
            KeyState::Retired => self.publish_until.is_some_and(|until| until > now),
        }
    }

    #[cfg(test)]
    pub fn from_new(key: NewSigningKey, now: UnixTime) -> StoredKey {
        StoredKey {
            kid: key.kid,
            alg: key.alg,
            state: key.state,
            public_jwk: key.public_jwk,
            private_key: key.private_key,
            created_at: now,
            activated_at: key.activated_at,
            retired_at: None,
            publish_until: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewSigningKey {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub public_jwk: String,
    pub private_key: Vec<u8>,
    pub activated_at: Option<UnixTime>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = k, check_for_backend(crate::store::conn::MultiBackend))]
struct Row {
    kid: String,
    alg: String,
    state: String,
    public_jwk: String,
    private_key: Vec<u8>,
    created_at: i64,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
    publish_until: Option<i64>,
}

impl From<Row> for StoredKey {
    fn from(r: Row) -> StoredKey {
        StoredKey {
            kid: r.kid,
            alg: r.alg,
            state: KeyState::parse(&r.state),
            public_jwk: r.public_jwk,
            private_key: r.private_key,
            created_at: UnixTime(r.created_at),
            activated_at: r.activated_at.map(UnixTime),
            retired_at: r.retired_at.map(UnixTime),
            publish_until: r.publish_until.map(UnixTime),
        }
    }
}

/// Every key of the tenant, oldest first.
pub fn list(conn: &mut Conn, tenant: &TenantId) -> Result<Vec<StoredKey>, StoreError> {
    let rows: Vec<Row> = k::table
        .filter(k::tenant_id.eq(tenant.as_str()))
        .order((k::created_at.asc(), k::kid.asc()))
        .select(Row::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(StoredKey::from).collect())
}

/// Whether any tenant has a key yet, i.e. whether a master key is already in use.
pub fn any_exist(conn: &mut Conn) -> Result<bool, StoreError> {
    Ok(k::table
        .select(k::kid)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

pub fn insert(
    conn: &mut Conn,
    tenant: &TenantId,
    key: &NewSigningKey,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(k::table)
        .values((
            k::tenant_id.eq(tenant.as_str()),
            k::kid.eq(&key.kid),
            k::alg.eq(&key.alg),
            k::state.eq(key.state.as_str()),
            k::public_jwk.eq(&key.public_jwk),
            k::private_key.eq(&key.private_key),
            k::created_at.eq(now.0),
            k::activated_at.eq(key.activated_at.map(|t| t.0)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn retire(
    conn: &mut Conn,
    tenant: &TenantId,
    kid: &str,
    now: UnixTime,
    publish_until: UnixTime,
) -> Result<(), StoreError> {
    diesel::update(
        k::table
            .filter(k::tenant_id.eq(tenant.as_str()))
            .filter(k::kid.eq(kid)),
    )
    .set((
        k::state.eq(KeyState::Retired.as_str()),
        k::retired_at.eq(now.0),
        k::publish_until.eq(publish_until.0),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn activate(
    conn: &mut Conn,
    tenant: &TenantId,
    kid: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::update(
        k::table
            .filter(k::tenant_id.eq(tenant.as_str()))
            .filter(k::kid.eq(kid)),
    )
    .set((
        k::state.eq(KeyState::Active.as_str()),
        k::activated_at.eq(now.0),
    ))
    .execute(conn)?;
    Ok(())
}

/// Drops retired keys no token can still need.
pub fn delete_expired(
    conn: &mut Conn,
    tenant: &TenantId,
    now: UnixTime,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        k::table
            .filter(k::tenant_id.eq(tenant.as_str()))
            .filter(k::state.eq(KeyState::Retired.as_str()))
            .filter(k::publish_until.le(now.0)),
    )
    .execute(conn)?)
}
