//! One connection type for both backends, and the r2d2 manager that opens it.
//!
//! The derive generates `MultiBackend` here, so row structs use
//! `#[diesel(check_for_backend(crate::store::conn::MultiBackend))]`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::config::DatabaseKind;

#[derive(diesel::MultiConnection)]
pub enum Conn {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs the same body once per backend where a statement cannot go through the enum
/// (upserts, batch inserts, `BEGIN IMMEDIATE`): `per_backend!(conn, |c| body)`.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::conn::Conn::Postgres($c) => $body,
            $crate::store::conn::Conn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use per_backend;

/// A pooled connection plus whether it saw its server go away, so r2d2 drops it instead of
/// handing a dead connection to the next request.
pub struct Pooled {
    pub conn: Conn,
    pub broken: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

/// Picks the backend from the URL scheme. diesel's own manager tries PostgreSQL then SQLite, which
/// turns "connection refused" into "invalid URL"; this one reports the real cause.
pub struct Manager {
    url: String,
    kind: DatabaseKind,
    connect_timeout_secs: u64,
}

/// Never prints the URL: it may carry a password.
impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// How long a SQLite statement waits for another connection's write lock. The request path's
/// quick calls (`Store::run_quick`) wait not at all and take the blocking pool instead.
pub(super) const BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 5000";

impl Manager {
    pub fn new(url: &str, kind: DatabaseKind, connect_timeout_secs: u64) -> Manager {
        Manager {
            url: url.to_string(),
            kind,
            connect_timeout_secs,
        }
    }
}

/// Every PostgreSQL connection's settings: UTC, and how it plans prepared statements.
///
/// diesel prepares a statement once per connection, and after five runs PostgreSQL may keep a
/// generic plan, made without the values, until the table is analysed again or the connection
/// closes. Made while a hot table is nearly empty, such a plan can settle on the wrong index: on
/// a new `refresh_tokens`, a rotation read every token of the tenant to find one by hash
/// (refreshes fell from 3,800/s to 1,300/s, and stayed there until an `ANALYZE` replaced the
/// plan; autovacuum's comes a minute or more later). Once `refresh_tokens` and `sso_sessions`,
/// the tables every sign-in and refresh writes, have statistics of some size, their unique keys
/// are the clear choice with or without values, and cached plans save a third of the database's
/// CPU per request. Until then every statement is planned with its values. The other tables are
/// small or grow with these; a plan made while one of them was young lasts until its next
/// `ANALYZE`. r2d2 closes a connection older than 30 minutes when it finds it idle, so a pool
/// opened on a young database moves over as its connections are replaced.
const PG_SESSION: &str = "\
    SET TIME ZONE 'UTC'; \
    SELECT set_config('plan_cache_mode', \
        CASE WHEN (SELECT min(reltuples) FROM pg_class \
                   WHERE oid IN (to_regclass('refresh_tokens'), to_regclass('sso_sessions'))) \
                  >= 1000 \
             THEN 'auto' ELSE 'force_custom_plan' END, \
        false)";

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = ConnectError;

    fn connect(&self) -> Result<Pooled, ConnectError> {
        let conn = match self.kind {
            DatabaseKind::Postgres => {
                let url = with_connect_timeout(&self.url, self.connect_timeout_secs);
                let mut c = diesel::PgConnection::establish(&url)
                    .map_err(|e| ConnectError(e.to_string()))?;
                c.batch_execute(PG_SESSION)
                    .map_err(|e| ConnectError(e.to_string()))?;
                Conn::Postgres(c)
            }
            DatabaseKind::Sqlite => {
                let mut c = diesel::SqliteConnection::establish(&self.url)
                    .map_err(|e| ConnectError(e.to_string()))?;
                // busy_timeout first: the others may have to wait for a writer.
                for pragma in [
                    BUSY_TIMEOUT,
                    // Before WAL, which writes the first page: a new database gets 1 KiB pages.
                    // Every commit writes each page it changed to the log, whole; a refresh
                    // changes seven or so (its rows and the leaves of four indexes), so 1 KiB
                    // pages halve what a refresh writes (31 → 14 KiB) at no cost in throughput.
                    // An existing database keeps its page size.
                    "PRAGMA page_size = 1024",
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                    "PRAGMA foreign_keys = ON",
                    // No commit checkpoints: `sesame serve` does it five times a second off the
                    // request path (`Store::checkpoint`, which also restarts a log grown long).
                    // A commit that crossed the automatic threshold would pay a checkpoint's
                    // writes and fsyncs itself, on an async worker when it is a quick call
                    // (`Store::run_quick`), holding up every request on that worker: paced at
                    // 1,500 refreshes/s, p99 went from 2.6-6.6 ms to 11-16 ms with it
                    // (docs/performance.md). Other commands checkpoint when their last
                    // connection closes.
                    "PRAGMA wal_autocheckpoint = 0",
                    // Under a steady stream of writes the log can grow far before it
                    // starts over (hundreds of MB in a minute of load), and the file keeps its
                    // largest size: cut it back to 64 MiB whenever it starts over.
                    "PRAGMA journal_size_limit = 67108864",
                ] {
                    c.batch_execute(pragma)
                        .map_err(|e| ConnectError(format!("{pragma}: {e}")))?;
                }
                Conn::Sqlite(c)
            }
        };
        Ok(Pooled {
            conn,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), ConnectError> {
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(|e| ConnectError(e.to_string()))
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        use diesel::r2d2::R2D2Connection;
        conn.broken || std::thread::panicking() || conn.conn.is_broken()
    }
}

/// libpq waits forever for an unreachable host unless told otherwise.
fn with_connect_timeout(url: &str, secs: u64) -> String {
    if url.contains("connect_timeout=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={}", secs.max(1))
}
