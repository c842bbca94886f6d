//! A tenant's department tree.

use diesel::prelude::*;

use super::StoreError;
use super::conn::Conn;
use super::schema::departments as d;
use crate::clock::UnixTime;
use crate::tenant::TenantId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
}

pub fn list(conn: &mut Conn, tenant: &TenantId) -> Result<Vec<Department>, StoreError> {
    let rows: Vec<(String, Option<String>, String)> = d::table
        .filter(d::tenant_id.eq(tenant.as_str()))
        .order(d::id.asc())
        .select((d::id, d::parent_id, d::name))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, parent_id, name)| Department {
            id,
            parent_id,
            name,
        })
        .collect())
}

pub fn find(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Department>, StoreError> {
    let row: Option<(String, Option<String>, String)> = d::table
        .filter(d::tenant_id.eq(tenant.as_str()))
        .filter(d::id.eq(id))
        .select((d::id, d::parent_id, d::name))
        .get_result(conn)
        .optional()?;
    Ok(row.map(|(id, parent_id, name)| Department {
        id,
        parent_id,
        name,
    }))
}

pub fn insert(
    conn: &mut Conn,
    tenant: &TenantId,
    dept: &Department,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(d::table)
        .values((
            d::tenant_id.eq(tenant.as_str()),
            d::id.eq(&dept.id),
            d::parent_id.eq(&dept.parent_id),
            d::name.eq(&dept.name),
            d::created_at.eq(now.0),
            d::updated_at.eq(now.0),
        ))
        .execute(conn)?;
    Ok(())
}

/// Renames or moves a department. Callers check the resulting tree for cycles first (with
/// [`path`]); a row-by-row check would reject valid moves that a batch makes in several steps.
pub fn update(
    conn: &mut Conn,
    tenant: &TenantId,
    dept: &Department,
    now: UnixTime,
) -> Result<(), StoreError> {
    let n = diesel::update(
        d::table
            .filter(d::tenant_id.eq(tenant.as_str()))
            .filter(d::id.eq(&dept.id)),
    )
    .set((
        d::parent_id.eq(&dept.parent_id),
        d::name.eq(&dept.name),
        d::updated_at.eq(now.0),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "no department '{}' in tenant '{tenant}'",
            dept.id
        )));
    }
    Ok(())
}

/// Ids from the root down to `id` (inclusive); stops at a cycle or a missing parent.
pub fn path(all: &[Department], id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = Some(id.to_string());
    while let Some(c) = cur {
        if out.contains(&c) {
            break;
        }
        cur = all
            .iter()
            .find(|d| d.id == c)
            .and_then(|d| d.parent_id.clone());
        out.push(c);
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_walks_to_the_root_and_survives_cycles() {
        let d = |id: &str, p: Option<&str>| Department {
            id: id.into(),
            parent_id: p.map(Into::into),
            name: id.into(),
        };
        let all = vec![
            d("hq", None),
            d("sales", Some("hq")),
            d("east", Some("sales")),
            d("a", Some("b")),
            d("b", Some("a")),
        ];
        assert_eq!(path(&all, "east"), vec!["hq", "sales", "east"]);
        assert_eq!(path(&all, "a").len(), 2);
    }
}
