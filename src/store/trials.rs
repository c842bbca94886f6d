//! Applications for a free trial: made on the platform's default tenant, approved by a platform
//! administrator. Not scoped to a tenant: the tenant is what an approval creates.

use diesel::prelude::*;

use super::schema::trial_applications as a;
use super::{Conn, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: String,
    pub company: String,
    pub contact_name: String,
    /// E.164.
    pub phone: String,
    pub email: String,
    pub locale: String,
    pub approved: bool,
    pub tenant_id: Option<String>,
    pub ip: Option<String>,
    pub created_at: UnixTime,
}

#[derive(Debug, Clone)]
pub struct NewApplication<'a> {
    pub id: &'a str,
    pub company: &'a str,
    pub contact_name: &'a str,
    pub phone: &'a str,
    pub email: &'a str,
    pub locale: &'a str,
    pub ip: Option<&'a str>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

fn from_row(r: Row) -> Application {
    Application {
        id: r.0,
        company: r.1,
        contact_name: r.2,
        phone: r.3,
        email: r.4,
        locale: r.5,
        approved: r.6 == "approved",
        tenant_id: r.7,
        ip: r.8,
        created_at: UnixTime(r.9),
    }
}

macro_rules! columns {
    () => {
        (
            a::id,
            a::company,
            a::contact_name,
            a::phone,
            a::email,
            a::locale,
            a::status,
            a::tenant_id,
            a::ip,
            a::created_at,
        )
    };
}

pub fn insert(conn: &mut Conn, n: &NewApplication<'_>, now: UnixTime) -> Result<(), StoreError> {
    diesel::insert_into(a::table)
        .values((
            a::id.eq(n.id),
            a::company.eq(n.company),
            a::contact_name.eq(n.contact_name),
            a::phone.eq(n.phone),
            a::email.eq(n.email),
            a::locale.eq(n.locale),
            a::status.eq("pending"),
            a::ip.eq(n.ip),
            a::created_at.eq(now.0),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut Conn, id: &str) -> Result<Option<Application>, StoreError> {
    let row: Option<Row> = a::table
        .filter(a::id.eq(id))
        .select(columns!())
        .get_result(conn)
        .optional()?;
    Ok(row.map(from_row))
}

/// Applications made with `email` since `since`.
pub fn count_for_email(conn: &mut Conn, email: &str, since: UnixTime) -> Result<i64, StoreError> {
    Ok(a::table
        .filter(a::email.eq(email))
        .filter(a::created_at.gt(since.0))
        .count()
        .get_result(conn)?)
}

/// Pending applications, oldest first.
pub fn pending(conn: &mut Conn, limit: i64) -> Result<Vec<Application>, StoreError> {
    let rows: Vec<Row> = a::table
        .filter(a::status.eq("pending"))
        .order((a::created_at.asc(), a::id.asc()))
        .limit(limit)
        .select(columns!())
        .load(conn)?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Marks a pending application approved for `tenant_id`; `false` if it was not pending.
pub fn approve(
    conn: &mut Conn,
    id: &str,
    tenant_id: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        a::table
            .filter(a::id.eq(id))
            .filter(a::status.eq("pending")),
    )
    .set((
        a::status.eq("approved"),
        a::tenant_id.eq(tenant_id),
        a::decided_at.eq(now.0),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
