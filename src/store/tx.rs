//! Write transactions that take the write lock up front.
//!
//! A deferred SQLite transaction that reads then writes fails with "database is locked" as soon as
//! another writer holds the lock (busy_timeout does not apply to the upgrade), so multi-statement
//! writes begin with `BEGIN IMMEDIATE` there. PostgreSQL's plain `BEGIN` is already right for the
//! statements we run inside (no read-modify-write without a row-level condition).

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::Error as DieselError;

use super::conn::{Conn, per_backend};

pub fn write<T, E, F>(conn: &mut Conn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut Conn) -> Result<T, E>,
    E: From<DieselError>,
{
    let depth = per_backend!(conn, |c| {
        AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()
    })?;
    if depth.is_some() {
        // Already inside a write transaction: a savepoint keeps this step atomic within it.
        return diesel::Connection::transaction(conn, f);
    }
    match conn {
        Conn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        Conn::Postgres(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    within_begun(conn, f)
}

/// Runs `f` in the transaction just begun on `conn`, then commits it, or rolls it back if `f`
/// fails.
pub(super) fn within_begun<T, E, F>(conn: &mut Conn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut Conn) -> Result<T, E>,
    E: From<DieselError>,
{
    match f(conn) {
        Ok(value) => {
            per_backend!(conn, |c| AnsiTransactionManager::commit_transaction(c))?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) =
                per_backend!(conn, |c| AnsiTransactionManager::rollback_transaction(c))
            {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}
