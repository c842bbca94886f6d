//! Twin migration folders (`migrations/sqlite`, `migrations/postgres`) with identical names,
//! embedded in the binary and chosen by the connection's backend. diesel applies each migration in
//! its own transaction, so a failing one leaves nothing half-applied.

use diesel::migration::MigrationSource;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::StoreError;
use super::conn::{Conn, MultiBackend};

pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applies every pending migration; returns the versions applied.
pub fn run_pending(conn: &mut Conn) -> Result<Vec<String>, StoreError> {
    match conn {
        Conn::Sqlite(_) => run_pending_from(conn, SQLITE),
        Conn::Postgres(_) => run_pending_from(conn, POSTGRES),
    }
}

pub fn run_pending_from<S: MigrationSource<MultiBackend>>(
    conn: &mut Conn,
    source: S,
) -> Result<Vec<String>, StoreError> {
    conn.run_pending_migrations(source)
        .map(|versions| versions.iter().map(|v| v.to_string()).collect())
        .map_err(|e| StoreError::Migration(e.to_string()))
}

/// Versions not yet applied, for `sesame migrate --status`-style reporting.
pub fn pending(conn: &mut Conn) -> Result<Vec<String>, StoreError> {
    let pending = match conn {
        Conn::Sqlite(_) => conn.pending_migrations(SQLITE),
        Conn::Postgres(_) => conn.pending_migrations(POSTGRES),
    }
    .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(pending.iter().map(|m| m.name().to_string()).collect())
}

/// Migrations the database has that this binary does not: a newer Sesame upgraded it. Serving
/// from an older binary would write rows the newer schema may not expect.
pub fn unknown_applied(conn: &mut Conn) -> Result<Vec<String>, StoreError> {
    let known: Vec<String> = match conn {
        Conn::Sqlite(_) => versions(SQLITE)?,
        Conn::Postgres(_) => versions(POSTGRES)?,
    };
    let applied = conn
        .applied_migrations()
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(applied
        .iter()
        .map(|v| v.to_string())
        .filter(|v| !known.contains(v))
        .collect())
}

fn versions<S: MigrationSource<MultiBackend>>(source: S) -> Result<Vec<String>, StoreError> {
    Ok(source
        .migrations()
        .map_err(|e| StoreError::Migration(e.to_string()))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}
