//! Users of a tenant. The password hash never leaves this module inside a `User`; it is read only
//! by [`password_hash`] for the one place that verifies it.

use diesel::prelude::*;

use super::conn::Conn;
use super::schema::users as u;
use super::{StoreError, new_id};
use crate::account::{Email, Login, Phone, Username};
use crate::clock::UnixTime;
use crate::tenant::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
    Locked,
    Pending,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
            UserStatus::Locked => "locked",
            UserStatus::Pending => "pending",
        }
    }

    fn parse(s: &str) -> UserStatus {
        match s {
            "active" => UserStatus::Active,
            "locked" => UserStatus::Locked,
            "pending" => UserStatus::Pending,
            _ => UserStatus::Disabled,
        }
    }
}

/// The fields an administrator manages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserProfile {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub display_name: String,
    pub department_id: Option<String>,
    pub employee_no: Option<String>,
    pub locale: Option<String>,
}

impl UserProfile {
    /// What a page calls the user: the display name, else the first account name there is.
    pub fn shown_name(&self) -> Option<&str> {
        Some(self.display_name.trim())
            .filter(|n| !n.is_empty())
            .or(self.username.as_ref().map(Username::as_str))
            .or(self.email.as_ref().map(Email::as_str))
            .or(self.phone.as_ref().map(Phone::as_str))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub tenant_id: TenantId,
    pub id: String,
    pub profile: UserProfile,
    pub email_verified: bool,
    pub phone_verified: bool,
    pub status: UserStatus,
    pub has_password: bool,
    pub must_change_password: bool,
    pub password_changed_at: Option<UnixTime>,
    /// Wrong passwords in the current run, which a failure `sign_in.lockout_duration` after
    /// the last one starts again (see [`record_failed_password`]).
    pub failed_logins: i32,
    pub last_failed_at: Option<UnixTime>,
    pub locked_until: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub last_login_at: Option<UnixTime>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    /// Generated when `None`.
    pub id: Option<String>,
    pub profile: UserProfile,
    pub status: UserStatus,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = u, check_for_backend(crate::store::conn::MultiBackend))]
struct Row {
    tenant_id: String,
    id: String,
    username: Option<String>,
    email: Option<String>,
    email_verified: bool,
    phone: Option<String>,
    phone_verified: bool,
    display_name: String,
    department_id: Option<String>,
    employee_no: Option<String>,
    status: String,
    password_hash: Option<String>,
    must_change_password: bool,
    password_changed_at: Option<i64>,
    failed_logins: i32,
    locked_until: Option<i64>,
    locale: Option<String>,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
    last_failed_at: Option<i64>,
}

impl Row {
    fn into_user(self, tenant: &TenantId) -> User {
        debug_assert_eq!(self.tenant_id, tenant.as_str());
        User {
            tenant_id: tenant.clone(),
            id: self.id,
            profile: UserProfile {
                // Values were normalized on the way in; parse again rather than trust the column.
                username: self.username.as_deref().and_then(Username::parse),
                email: self.email.as_deref().and_then(Email::parse),
                phone: self.phone.as_deref().and_then(|p| Phone::parse(p, None)),
                display_name: self.display_name,
                department_id: self.department_id,
                employee_no: self.employee_no,
                locale: self.locale,
            },
            email_verified: self.email_verified,
            phone_verified: self.phone_verified,
            status: UserStatus::parse(&self.status),
            has_password: self.password_hash.is_some(),
            must_change_password: self.must_change_password,
            password_changed_at: self.password_changed_at.map(UnixTime),
            failed_logins: self.failed_logins,
            last_failed_at: self.last_failed_at.map(UnixTime),
            locked_until: self.locked_until.map(UnixTime),
            created_at: UnixTime(self.created_at),
            updated_at: UnixTime(self.updated_at),
            last_login_at: self.last_login_at.map(UnixTime),
        }
    }
}

/// The single row `(tenant, id)`, as an update target.
macro_rules! user_row {
    ($tenant:expr, $id:expr) => {
        u::table
            .filter(u::tenant_id.eq($tenant.as_str()))
            .filter(u::id.eq($id))
    };
}

/// The administrator-managed columns, shared by insert and update.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = u, treat_none_as_null = true)]
struct ProfileColumns<'a> {
    username: Option<&'a str>,
    email: Option<&'a str>,
    phone: Option<&'a str>,
    display_name: &'a str,
    department_id: Option<&'a str>,
    employee_no: Option<&'a str>,
    locale: Option<&'a str>,
}

impl<'a> From<&'a UserProfile> for ProfileColumns<'a> {
    fn from(p: &'a UserProfile) -> Self {
        ProfileColumns {
            username: p.username.as_ref().map(Username::as_str),
            email: p.email.as_ref().map(Email::as_str),
            phone: p.phone.as_ref().map(Phone::as_str),
            display_name: &p.display_name,
            department_id: p.department_id.as_deref(),
            employee_no: p.employee_no.as_deref(),
            locale: p.locale.as_deref(),
        }
    }
}

fn scoped(tenant: &TenantId) -> u::BoxedQuery<'_, crate::store::conn::MultiBackend> {
    u::table
        .filter(u::tenant_id.eq(tenant.as_str()))
        .into_boxed()
}

pub fn insert(
    conn: &mut Conn,
    tenant: &TenantId,
    new: &NewUser,
    now: UnixTime,
) -> Result<User, StoreError> {
    let id = new.id.clone().unwrap_or_else(new_id);
    diesel::insert_into(u::table)
        .values((
            u::tenant_id.eq(tenant.as_str()),
            u::id.eq(&id),
            ProfileColumns::from(&new.profile),
            u::status.eq(new.status.as_str()),
            u::password_hash.eq(&new.password_hash),
            u::must_change_password.eq(new.must_change_password),
            u::password_changed_at.eq(new.password_hash.as_ref().map(|_| now.0)),
            u::created_at.eq(now.0),
            u::updated_at.eq(now.0),
        ))
        .execute(conn)?;
    find(conn, tenant, &id)?.ok_or_else(|| StoreError::NotFound(format!("user {id}")))
}

pub fn find(conn: &mut Conn, tenant: &TenantId, id: &str) -> Result<Option<User>, StoreError> {
    let row: Option<Row> = scoped(tenant)
        .filter(u::id.eq(id))
        .select(Row::as_select())
        .get_result(conn)
        .optional()?;
    Ok(row.map(|r| r.into_user(tenant)))
}

/// The user an account field names: by username, email or E.164 mobile number.
pub fn find_by_login(
    conn: &mut Conn,
    tenant: &TenantId,
    login: &Login,
) -> Result<Option<User>, StoreError> {
    let query = match login {
        Login::Username(x) => scoped(tenant).filter(u::username.eq(x.as_str())),
        Login::Email(x) => scoped(tenant).filter(u::email.eq(x.as_str())),
        Login::Phone(x) => scoped(tenant).filter(u::phone.eq(x.as_str())),
    };
    let row: Option<Row> = query.select(Row::as_select()).get_result(conn).optional()?;
    Ok(row.map(|r| r.into_user(tenant)))
}

/// As [`find_by_login`], with the password hash, for the one place that verifies it: the same
/// single query whether or not the account exists, so its timing tells nothing.
pub fn find_for_sign_in(
    conn: &mut Conn,
    tenant: &TenantId,
    login: &Login,
) -> Result<Option<(User, Option<String>)>, StoreError> {
    let query = match login {
        Login::Username(x) => scoped(tenant).filter(u::username.eq(x.as_str())),
        Login::Email(x) => scoped(tenant).filter(u::email.eq(x.as_str())),
        Login::Phone(x) => scoped(tenant).filter(u::phone.eq(x.as_str())),
    };
    let row: Option<Row> = query.select(Row::as_select()).get_result(conn).optional()?;
    Ok(row.map(|r| {
        let hash = r.password_hash.clone();
        (r.into_user(tenant), hash)
    }))
}

pub fn list(
    conn: &mut Conn,
    tenant: &TenantId,
    limit: i64,
    offset: i64,
) -> Result<Vec<User>, StoreError> {
    let rows: Vec<Row> = scoped(tenant)
        .order((u::username.asc(), u::id.asc()))
        .limit(limit)
        .offset(offset)
        .select(Row::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(|r| r.into_user(tenant)).collect())
}

pub fn password_hash(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(scoped(tenant)
        .filter(u::id.eq(id))
        .select(u::password_hash)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

fn not_found(tenant: &TenantId, id: &str) -> StoreError {
    StoreError::NotFound(format!("no user '{id}' in tenant '{tenant}'"))
}

fn expect_one(n: usize, tenant: &TenantId, id: &str) -> Result<(), StoreError> {
    if n == 0 {
        Err(not_found(tenant, id))
    } else {
        Ok(())
    }
}

pub fn set_password(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    hash: &str,
    must_change: bool,
    now: UnixTime,
) -> Result<(), StoreError> {
    let n = diesel::update(user_row!(tenant, id))
        .set((
            u::password_hash.eq(hash),
            u::must_change_password.eq(must_change),
            u::password_changed_at.eq(now.0),
            u::updated_at.eq(now.0),
        ))
        .execute(conn)?;
    expect_one(n, tenant, id)
}

/// Sets the account's status. Disabling it also revokes the user's refresh and access tokens:
/// enabling the account again does not bring them back.
pub fn set_status(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    status: UserStatus,
    now: UnixTime,
) -> Result<(), StoreError> {
    super::tx::write(conn, |c| {
        let n = diesel::update(user_row!(tenant, id))
            .set((u::status.eq(status.as_str()), u::updated_at.eq(now.0)))
            .execute(c)?;
        expect_one(n, tenant, id)?;
        if status == UserStatus::Disabled {
            super::refresh::revoke_for_user(c, tenant, id, now)?;
        }
        Ok(())
    })
}

pub fn set_must_change_password(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    must_change: bool,
    now: UnixTime,
) -> Result<(), StoreError> {
    let n = diesel::update(user_row!(tenant, id))
        .set((
            u::must_change_password.eq(must_change),
            u::updated_at.eq(now.0),
        ))
        .execute(conn)?;
    expect_one(n, tenant, id)
}

/// Clears a lock: failure counter to zero, `locked` back to `active` (other statuses are kept).
pub fn unlock(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    let n = diesel::update(user_row!(tenant, id))
        .set((
            u::failed_logins.eq(0),
            u::locked_until.eq(None::<i64>),
            u::updated_at.eq(now.0),
        ))
        .execute(conn)?;
    expect_one(n, tenant, id)?;
    diesel::update(user_row!(tenant, id).filter(u::status.eq(UserStatus::Locked.as_str())))
        .set(u::status.eq(UserStatus::Active.as_str()))
        .execute(conn)?;
    Ok(())
}

pub fn update_profile(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    p: &UserProfile,
    now: UnixTime,
) -> Result<(), StoreError> {
    let n = diesel::update(user_row!(tenant, id))
        .set((ProfileColumns::from(p), u::updated_at.eq(now.0)))
        .execute(conn)?;
    expect_one(n, tenant, id)
}

/// Counts a wrong password against an account. The `threshold`-th failure in a row locks it
/// until `now + window` and starts the count again; a run whose last failure is `window` seconds
/// old starts again too. One statement, so concurrent failures
/// all count. Returns the lock's end when this failure set it.
pub fn record_failed_password(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    threshold: i32,
    window: i64,
    now: UnixTime,
) -> Result<Option<UnixTime>, StoreError> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Integer, Nullable};
    let until = now.plus(window).0;
    let stale = now.0 - window;
    // "The run so far" is the stored count while its last failure is recent, else nothing; the
    // fragment appears in both CASEs because the statement must read the row's old values.
    const RUN: &str = " THEN failed_logins ELSE 0 END + 1 >= ";
    let row: Option<(i32, Option<i64>)> = diesel::update(user_row!(tenant, id))
        .set((
            u::failed_logins.eq(sql::<Integer>("CASE WHEN CASE WHEN last_failed_at > ")
                .bind::<BigInt, _>(stale)
                .sql(RUN)
                .bind::<Integer, _>(threshold)
                .sql(" THEN 0 ELSE CASE WHEN last_failed_at > ")
                .bind::<BigInt, _>(stale)
                .sql(" THEN failed_logins ELSE 0 END + 1 END")),
            u::locked_until.eq(
                sql::<Nullable<BigInt>>("CASE WHEN CASE WHEN last_failed_at > ")
                    .bind::<BigInt, _>(stale)
                    .sql(RUN)
                    .bind::<Integer, _>(threshold)
                    .sql(" THEN ")
                    .bind::<BigInt, _>(until)
                    .sql(" ELSE locked_until END"),
            ),
            u::last_failed_at.eq(now.0),
        ))
        .returning((u::failed_logins, u::locked_until))
        .get_result(conn)
        .optional()?;
    Ok(match row {
        Some((0, Some(locked))) if locked == until => Some(UnixTime(locked)),
        _ => None,
    })
}

/// A right password ends the run of wrong ones.
pub fn clear_failed_passwords(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
) -> Result<(), StoreError> {
    diesel::update(user_row!(tenant, id).filter(u::failed_logins.ne(0)))
        .set(u::failed_logins.eq(0))
        .execute(conn)?;
    Ok(())
}

/// Ends a temporary lock (not an administrator's `locked` status): the owner proved themselves
/// by resetting the password.
pub fn end_lock(conn: &mut Conn, tenant: &TenantId, id: &str) -> Result<(), StoreError> {
    diesel::update(user_row!(tenant, id).filter(u::locked_until.is_not_null()))
        .set(u::locked_until.eq(None::<i64>))
        .execute(conn)?;
    Ok(())
}

/// Notes a completed sign-in.
pub fn record_login(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::update(user_row!(tenant, id))
        .set(u::last_login_at.eq(now.0))
        .execute(conn)?;
    Ok(())
}

/// Marks the email address or the mobile number verified: a code sent to it came back.
pub fn mark_verified(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    channel: crate::notify::Channel,
    now: UnixTime,
) -> Result<(), StoreError> {
    let target = user_row!(tenant, id);
    match channel {
        crate::notify::Channel::Email => diesel::update(target.filter(u::email_verified.eq(false)))
            .set((u::email_verified.eq(true), u::updated_at.eq(now.0)))
            .execute(conn)?,
        crate::notify::Channel::Sms => diesel::update(target.filter(u::phone_verified.eq(false)))
            .set((u::phone_verified.eq(true), u::updated_at.eq(now.0)))
            .execute(conn)?,
    };
    Ok(())
}
