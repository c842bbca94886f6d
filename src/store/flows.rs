//! Login flows: one row per sign-in a protocol started. Every change names the `version` it read,
//! so two tabs or two nodes advancing the same flow cannot both win, and completing a flow is
//! single use.

use diesel::prelude::*;

use super::StoreError;
use super::conn::Conn;
use super::schema::login_flows as f;
use crate::clock::UnixTime;
use crate::tenant::TenantId;

#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub id: String,
    pub protocol: String,
    pub request: serde_json::Value,
    pub state: serde_json::Value,
    pub user_id: Option<String>,
    pub version: i32,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = f, check_for_backend(crate::store::conn::MultiBackend))]
struct Row {
    id: String,
    protocol: String,
    request: String,
    state: String,
    user_id: Option<String>,
    version: i32,
    created_at: i64,
    expires_at: i64,
}

impl From<Row> for Flow {
    fn from(r: Row) -> Flow {
        Flow {
            id: r.id,
            protocol: r.protocol,
            request: serde_json::from_str(&r.request).unwrap_or_default(),
            state: serde_json::from_str(&r.state).unwrap_or_default(),
            user_id: r.user_id,
            version: r.version,
            created_at: UnixTime(r.created_at),
            expires_at: UnixTime(r.expires_at),
        }
    }
}

/// `id` must be a high-entropy random value: the browser carries it.
pub fn create(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    protocol: &str,
    request: &serde_json::Value,
    expires_at: UnixTime,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(f::table)
        .values((
            f::id.eq(id),
            f::tenant_id.eq(tenant.as_str()),
            f::protocol.eq(protocol),
            f::request.eq(request.to_string()),
            f::created_at.eq(now.0),
            f::expires_at.eq(expires_at.0),
        ))
        .execute(conn)?;
    Ok(())
}

/// A pending flow: not expired and not completed.
pub fn find(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    now: UnixTime,
) -> Result<Option<Flow>, StoreError> {
    let row: Option<Row> = f::table
        .filter(f::id.eq(id))
        .filter(f::tenant_id.eq(tenant.as_str()))
        .filter(f::completed_at.is_null())
        .filter(f::expires_at.gt(now.0))
        .select(Row::as_select())
        .get_result(conn)
        .optional()?;
    Ok(row.map(Flow::from))
}

/// Stores the flow's new state if nobody changed it since `read_version`; `false` otherwise.
pub fn save(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    read_version: i32,
    state: &serde_json::Value,
    user_id: Option<&str>,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        f::table
            .filter(f::id.eq(id))
            .filter(f::tenant_id.eq(tenant.as_str()))
            .filter(f::version.eq(read_version))
            .filter(f::completed_at.is_null())
            .filter(f::expires_at.gt(now.0)),
    )
    .set((
        f::state.eq(state.to_string()),
        f::user_id.eq(user_id),
        f::version.eq(f::version + 1),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Marks the flow done, once: the protocol answer (code, assertion) is issued only by the caller
/// that gets `true`.
pub fn complete(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
    read_version: i32,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        f::table
            .filter(f::id.eq(id))
            .filter(f::tenant_id.eq(tenant.as_str()))
            .filter(f::version.eq(read_version))
            .filter(f::completed_at.is_null())
            .filter(f::expires_at.gt(now.0)),
    )
    .set((f::completed_at.eq(now.0), f::version.eq(f::version + 1)))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn sweep_expired(conn: &mut Conn, now: UnixTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(f::table.filter(f::expires_at.le(now.0))).execute(conn)?)
}
