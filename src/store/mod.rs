//! The only place that names a table. diesel over one [`conn::Conn`] (SQLite or PostgreSQL by URL
//! scheme); every call goes through [`Store::run`] on the blocking pool so async handlers never
//! wait on the database. One module per aggregate, each a set of free functions over `&mut Conn`
//! that take the tenant first, so no query can read across tenants.
//!
//! Lookups by a unique key end in `get_result`, not `first`: `first` appends `LIMIT ?`, and SQLite
//! treats a bound LIMIT as a planner input, so it re-prepares such a statement on every run
//! instead of reusing the cached one.

pub mod access_revocations;
pub mod agreements;
pub mod apps;
pub mod audit;
pub mod clients;
pub mod conn;
pub mod consents;
pub mod departments;
pub mod fixed;
pub mod flows;
pub mod group;
pub mod jtis;
pub mod keys;
pub mod meta;
pub mod migrate;
pub mod origins;
pub mod outbox;
pub mod password_history;
pub mod refresh;
pub mod roles;
pub mod schema;
pub mod service_providers;
pub mod sessions;
pub mod subjects;
pub mod tenants;
pub mod tokens;
pub mod trials;
pub mod tx;
pub mod users;
pub mod verification_codes;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::config::{Config, DatabaseKind, redact_url};
pub use conn::Conn;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached; becomes 503 / `temporarily_unavailable` everywhere.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was broken; the message says which, in words a user can act on.
    #[error("{0}")]
    Conflict(String),
    /// A write named something that does not exist (a department, a role, a tenant ...).
    #[error("{0}")]
    NotFound(String),
    /// Data that the store refuses (bad reference, bad value).
    #[error("{0}")]
    Invalid(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(#[source] DieselError),
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info)
            | DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => {
                StoreError::Unavailable(info.message().to_string())
            }
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Conflict(describe_unique_violation(
                    info.message(),
                    info.constraint_name(),
                ))
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                StoreError::Invalid(format!(
                    "a referenced record does not exist ({})",
                    info.message()
                ))
            }
            e if is_locked(e) => StoreError::Unavailable("database is busy".into()),
            _ => StoreError::Database(e),
        }
    }
}

/// Whether `e` is SQLite's answer when another connection holds the lock it needs.
fn is_locked(e: &DieselError) -> bool {
    matches!(e, DieselError::DatabaseError(_, info)
        if info.message().contains("database is locked"))
}

/// Turns "UNIQUE constraint failed: users.tenant_id, users.email" (SQLite) or the constraint name
/// `users_email_unique` (PostgreSQL) into "email is already in use in this tenant".
fn describe_unique_violation(message: &str, constraint: Option<&str>) -> String {
    let haystack = format!("{} {}", constraint.unwrap_or(""), message);
    for (needle, what) in [
        (
            "users_email",
            "this email is already used by another user in this tenant",
        ),
        (
            "users.email",
            "this email is already used by another user in this tenant",
        ),
        (
            "users_phone",
            "this mobile number is already used by another user in this tenant",
        ),
        (
            "users.phone",
            "this mobile number is already used by another user in this tenant",
        ),
        (
            "users_username",
            "this username is already taken in this tenant",
        ),
        (
            "users.username",
            "this username is already taken in this tenant",
        ),
        ("users_pkey", "a user with this id already exists"),
        ("users.id", "a user with this id already exists"),
        ("tenants", "a tenant with this id already exists"),
        ("tenant_hosts", "this host already routes to a tenant"),
        (
            "oidc_clients",
            "a client with this id already exists in this tenant",
        ),
        (
            "departments",
            "a department with this id already exists in this tenant",
        ),
        ("roles", "a role with this id already exists in this tenant"),
        ("apps", "an app with this id already exists in this tenant"),
        (
            "saml_service_providers_entity",
            "another service provider of this tenant has this entityID",
        ),
        (
            "saml_service_providers.entity_id",
            "another service provider of this tenant has this entityID",
        ),
    ] {
        if haystack.contains(needle) {
            return what.to_string();
        }
    }
    "a record with the same unique value already exists".to_string()
}

/// The shared handle to the database: a pool plus the blocking-pool bridge.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<conn::Manager>,
    kind: DatabaseKind,
    /// On SQLite, this process's turn at the write lock for the calls that must wait for it
    /// ([`Store::run_quick`] off the worker, the checkpoint that restarts the log): they queue
    /// here, asleep until the holder lets go, rather than in SQLite's busy handler, whose sleeps
    /// grow to 25 ms and more, or by polling, which spends the core the holder needs.
    writer: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// How full the pool is, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub connections: u32,
    pub idle: u32,
    pub max: u32,
}

impl Store {
    /// Opens the pool; for SQLite creates the file's folder on first start. Fails with the real
    /// cause when the database cannot be reached.
    pub fn open(url: &str, pool_size: u32, connect_timeout_secs: u64) -> Result<Store, StoreError> {
        let kind = DatabaseKind::of(url).ok_or_else(|| {
            StoreError::Invalid(format!("unsupported database URL '{}'", redact_url(url)))
        })?;
        if kind == DatabaseKind::Sqlite {
            let path = std::path::Path::new(url.trim_start_matches("sqlite://"));
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::data_dir::create_private(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let manager = conn::Manager::new(url, kind, connect_timeout_secs);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            // Connections are made on demand, in the thread that needs one. A minimum idle count
            // would make r2d2 replace every checked-out connection from a background thread, and
            // a short-lived command could then exit while libpq is still negotiating TLS there,
            // which crashes in OpenSSL's exit handlers.
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(connect_timeout_secs.max(1)))
            .error_handler(Box::new(LogPoolErrors))
            .build(manager)
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot connect to {}: {e}", redact_url(url)))
            })?;
        // No connection is made while building (see `min_idle`): make one now, so an unreachable
        // database is reported at start-up with its real cause.
        drop(pool.get().map_err(|e| {
            StoreError::Unavailable(format!("cannot connect to {}: {e}", redact_url(url)))
        })?);
        Ok(Store {
            pool,
            kind,
            writer: Arc::default(),
        })
    }

    pub fn from_config(config: &Config) -> Result<Store, StoreError> {
        Store::open(
            &config.database_url(),
            config.database.pool_size,
            config.database.connect_timeout_secs,
        )
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    pub fn pool_state(&self) -> PoolState {
        let s = self.pool.state();
        PoolState {
            connections: s.connections,
            idle: s.idle_connections,
            max: self.pool.max_size(),
        }
    }

    /// Copies what SQLite's write-ahead log holds into the database file (a passive checkpoint:
    /// it waits for no reader or writer), so that commits on the request path do not. A log past
    /// [`WAL_RESTART_FRAMES`] (readers, or writers ahead of the copy, kept it from starting over)
    /// is then checkpointed again in the mode that makes the next writer start it over, if no
    /// reader or writer is in its way right then. Nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        use diesel::RunQueryDsl;
        use diesel::connection::SimpleConnection;
        if self.kind != DatabaseKind::Sqlite {
            return Ok(());
        }
        let passive: Checkpointed = self
            .run(move |c| {
                Ok(diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(sqlite(c)?)?)
            })
            .await?;
        if passive.log < WAL_RESTART_FRAMES {
            return Ok(());
        }
        // In this process's turn, taken before the connection as every caller does, so quick
        // calls queue behind it asleep; and without waiting: RESTART holds the write lock while it
        // waits, through the busy handler, for readers to leave the log, and every writer waits
        // with it (up to the busy timeout behind one long read). When a reader or another
        // process's writer is in the way, it does what it can now and the next tick tries again.
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = store.turn();
            store.run_blocking(|c| {
                let c = sqlite(c)?;
                c.batch_execute("PRAGMA busy_timeout = 0")?;
                let restarted = diesel::sql_query("PRAGMA wal_checkpoint(RESTART)")
                    .get_result::<Checkpointed>(c);
                c.batch_execute(conn::BUSY_TIMEOUT).map_err(|e| {
                    StoreError::Unavailable(format!("restoring the busy timeout: {e}"))
                })?;
                restarted?;
                Ok(())
            })
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.run_blocking(f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }

    /// [`Store::run`] for the few short statements of a hot request path (a replay record, a
    /// token's rotation, a session read). On SQLite they run on the calling thread: the hop to
    /// the blocking pool and back is two context switches, about 50 µs on a virtual machine, 13 %
    /// of a SAML response (docs/performance.md). A worker must never wait, so they run in a write
    /// transaction taken without waiting (steps that are transactions of their own become
    /// savepoints); when another call holds the lock, or no connection is idle, the call waits
    /// its turn on the blocking pool ([`Store::run_in_turn`]), before `f` has run. PostgreSQL
    /// calls always take the blocking pool: their round trips would stall a worker. Either way `f`
    /// is atomic only as far as it makes itself so (`tx::write`), as with [`Store::run`].
    pub async fn run_quick<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        if self.kind != DatabaseKind::Sqlite {
            return self.run(f).await;
        }
        let f = match self.try_now(f) {
            Ok(done) => return done,
            Err(f) => f,
        };
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.run_in_turn(f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }

    /// Runs `f` on this thread if this process's turn and SQLite's write lock are both free now
    /// and a connection is idle; otherwise hands `f` back, not run.
    fn try_now<T, F>(&self, f: F) -> Result<Result<T, StoreError>, F>
    where
        F: FnOnce(&mut Conn) -> Result<T, StoreError>,
    {
        let _turn = match self.writer.try_lock() {
            Ok(turn) => turn,
            Err(TryLockError::Poisoned(turn)) => turn.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(f),
        };
        let Some(mut pooled) = self.pool.try_get() else {
            return Err(f);
        };
        match begin_without_waiting(&mut pooled) {
            true => Ok(within_begun(&mut pooled, f)),
            false => Err(f),
        }
    }

    /// [`Store::run_quick`] off the worker: waits for this process's turn, then for a connection
    /// (in that order, everywhere, so no one holds a connection while queued), then for SQLite's
    /// write lock (held, if at all, by another process or by a statement that does not queue,
    /// for which the busy timeout waits as it does everywhere).
    fn run_in_turn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Conn) -> Result<T, StoreError>,
    {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        let _turn = self.turn();
        let mut pooled = self
            .pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        match &mut pooled.conn {
            Conn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
            Conn::Postgres(c) => AnsiTransactionManager::begin_transaction(c)?,
        }
        within_begun(&mut pooled, f)
    }

    /// This process's turn at SQLite's write lock, waited for asleep. A panic under an earlier
    /// turn left nothing to undo here (the transaction rolled back with its connection).
    fn turn(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The same as [`Store::run`] for code already off the async workers (CLI, start-up).
    pub fn run_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Conn) -> Result<T, StoreError>,
    {
        let mut pooled = self
            .pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let result = f(&mut pooled.conn);
        if matches!(result, Err(StoreError::Unavailable(_))) {
            pooled.broken = true;
        }
        result
    }

    /// `SELECT 1` through a fresh checkout, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| {
            use diesel::connection::SimpleConnection;
            c.batch_execute("SELECT 1")
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Database(e) => StoreError::Unavailable(e.to_string()),
                    other => other,
                })
        })
        .await
    }
}

/// `BEGIN IMMEDIATE` on a SQLite connection if the write lock is free now; whether it began. The
/// connection's busy timeout is lifted for the attempt only; one that cannot be restored is
/// marked broken, so the pool drops it rather than hand it to a caller that waits.
fn begin_without_waiting(pooled: &mut conn::Pooled) -> bool {
    use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
    let Conn::Sqlite(c) = &mut pooled.conn else {
        return false;
    };
    if c.batch_execute("PRAGMA busy_timeout = 0").is_err() {
        return false;
    }
    let began = AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE").is_ok();
    // Restored whatever happened: the connection goes back to the pool for callers that wait.
    let restored = c.batch_execute(conn::BUSY_TIMEOUT).is_ok();
    if !restored {
        if began {
            let _ = AnsiTransactionManager::rollback_transaction(c);
        }
        pooled.broken = true;
    }
    began && restored
}

fn sqlite(c: &mut Conn) -> Result<&mut diesel::SqliteConnection, StoreError> {
    match c {
        Conn::Sqlite(c) => Ok(c),
        Conn::Postgres(_) => Err(StoreError::Invalid("not a SQLite connection".into())),
    }
}

/// Runs `f` in the transaction [`begin_without_waiting`] began; a connection that failed under it
/// is dropped by the pool.
fn within_begun<T, F>(pooled: &mut conn::Pooled, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut Conn) -> Result<T, StoreError>,
{
    let result = tx::within_begun(&mut pooled.conn, f);
    if matches!(result, Err(StoreError::Unavailable(_))) {
        pooled.broken = true;
    }
    result
}

/// Frames in SQLite's write-ahead log past which [`Store::checkpoint`] restarts it (about 10 MB
/// at 1 KiB pages).
pub const WAL_RESTART_FRAMES: i64 = 10_000;

/// What `PRAGMA wal_checkpoint` reports: frames in the log, and how many it copied.
#[derive(diesel::QueryableByName)]
struct Checkpointed {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    log: i64,
}

#[derive(Debug)]
struct LogPoolErrors;

impl r2d2::HandleError<conn::ConnectError> for LogPoolErrors {
    fn handle_error(&self, error: conn::ConnectError) {
        tracing::warn!(error = %error, "database connection failed");
    }
}

/// A random id for rows that have no natural key (audit events, users created without one):
/// 128 bits as lowercase hex, so it is safe in URLs, claims and command lines alike.
pub fn new_id() -> String {
    crate::crypto::secret::random_hex(16)
}
