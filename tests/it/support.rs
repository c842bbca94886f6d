//! Test harness: databases (a temp-file SQLite always, a fresh PostgreSQL schema per test when
//! `SESAME_TEST_DATABASE_URL` is set), an in-process `TestApp` driven with `oneshot`, and a
//! `TestServer` on 127.0.0.1:0 with a cookie-jar client that does not follow redirects.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response};
use diesel::Connection;
use diesel::connection::SimpleConnection;
use http_body_util::BodyExt;
use sesame::app::App;
use sesame::clock::{FixedClock, SharedClock, UnixTime};
use sesame::config::{Config, PasswordHashConfig};
use sesame::store::Store;
use tower::ServiceExt;

/// A fixed instant so tests never depend on the wall clock.
pub const T0: UnixTime = UnixTime(1_800_000_000);

/// Tenant `tenant` (named after its id) with one active user, `u1`, username `alice`: where the
/// storage tests start from.
pub fn tenant_with_alice(
    c: &mut sesame::store::Conn,
    tenant: &sesame::tenant::TenantId,
) -> Result<(), sesame::store::StoreError> {
    use sesame::store::users::{self, NewUser, UserProfile, UserStatus};
    let spec = sesame::store::tenants::TenantSpec::named(tenant.as_str());
    sesame::store::tenants::insert(c, tenant, &spec, T0)?;
    let user = NewUser {
        id: Some("u1".into()),
        profile: UserProfile {
            username: sesame::account::Username::parse("alice"),
            display_name: "Alice".into(),
            ..UserProfile::default()
        },
        status: UserStatus::Active,
        password_hash: None,
        must_change_password: false,
    };
    users::insert(c, tenant, &user, T0).map(|_| ())
}

/// Declares one test per backend: `name::sqlite` always, `name::postgres` when configured.
macro_rules! both_backends {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $db = crate::support::TestDb::sqlite();
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($db) = crate::support::TestDb::postgres() else {
                    eprintln!("skipped: SESAME_TEST_DATABASE_URL is not set");
                    return;
                };
                $body
            }
        }
    };
}
pub(crate) use both_backends;

pub struct TestDb {
    pub url: String,
    pub is_postgres: bool,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sesame.db").display());
        TestDb {
            url,
            is_postgres: false,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A new schema in the configured PostgreSQL database, dropped when the test ends.
    pub fn postgres() -> Option<TestDb> {
        let admin = std::env::var("SESAME_TEST_DATABASE_URL").ok()?;
        let schema = format!(
            "t_{}",
            sesame::crypto::secret::random_token(9)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        let mut conn =
            diesel::PgConnection::establish(&admin).expect("connect to SESAME_TEST_DATABASE_URL");
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-csearch_path%3D{schema}&application_name={schema}");
        Some(TestDb {
            url,
            is_postgres: true,
            _dir: None,
            pg: Some((admin, schema)),
        })
    }

    pub fn store(&self) -> Store {
        Store::open(&self.url, 4, 5).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, schema)) = &self.pg
            && let Ok(mut conn) = diesel::PgConnection::establish(admin)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// Cheap argon2 so tests stay fast; production parameters are tested in the crypto unit tests.
pub fn test_config(db: &TestDb, data_dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.database.url = Some(db.url.clone());
    config.database.pool_size = 4;
    config.database.connect_timeout_secs = 2;
    config.data_dir = data_dir.to_path_buf();
    config.password_hash = PasswordHashConfig {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    config
}

pub struct TestApp {
    pub app: App,
    pub router: sesame::router::Http,
    pub clock: Arc<FixedClock>,
    pub _db: TestDb,
    pub _data_dir: tempfile::TempDir,
}

pub struct TestResponse {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn new(db: TestDb) -> TestApp {
        Self::with_config(db, |_| {}).await
    }

    pub async fn with_config(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&db, data_dir.path());
        tweak(&mut config);
        let clock = Arc::new(FixedClock::new(T0));
        let shared: SharedClock = clock.clone();
        let opened = {
            let (config, shared) = (config.clone(), shared.clone());
            tokio::task::spawn_blocking(move || sesame::bootstrap::open(&config, &shared))
                .await
                .unwrap()
                .unwrap()
        };
        let app = App::new(config, opened.store, shared, opened.master).unwrap();
        let router = sesame::router::build(app.clone());
        TestApp {
            app,
            router,
            clock,
            _db: db,
            _data_dir: data_dir,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        let res: Response<Body> = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        TestResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    /// Rotates the default tenant's `kind` key at once, behind the node's caches, as another node
    /// (or the CLI with `--force`) would.
    pub async fn rotate_now(
        &self,
        kind: sesame::crypto::keys::KeyKind,
    ) -> sesame::crypto::keys::Rotation {
        let (master, now) = (self.app.master.clone(), self.app.now());
        self.app
            .store
            .run(move |c| {
                let forced = sesame::crypto::keys::RotationPolicy {
                    rsa_bits: 2048,
                    retire_grace: 600,
                    min_next_age: 0,
                };
                Ok(sesame::crypto::keys::rotate(
                    c,
                    &master,
                    &sesame::tenant::TenantId::default_tenant(),
                    kind,
                    &forced,
                    now,
                )?)
            })
            .await
            .unwrap()
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    /// Imports a declarative file the way `sesame import` does; the error as the CLI prints it.
    pub async fn try_import(
        &self,
        name: &str,
        text: &str,
    ) -> Result<sesame::admin::import::ImportReport, String> {
        let (hasher, keys, now, clock) = (
            self.app.hasher.clone(),
            self.app.client_secrets.clone(),
            self.app.now(),
            self.app.clock.clone(),
        );
        let (name, text) = (name.to_string(), text.to_string());
        let report = self
            .app
            .store
            .run(move |c| {
                Ok(sesame::admin::import::apply(
                    c, &name, &text, &hasher, &keys, &*clock,
                ))
            })
            .await
            .unwrap()
            .map_err(|e| e.to_string())?;
        for t in &report.new_tenants {
            sesame::bootstrap::ensure_keys(&self.app.store, &self.app.master, t, now).unwrap();
        }
        self.app.invalidate_caches();
        Ok(report)
    }

    pub async fn import(&self, text: &str) -> sesame::admin::import::ImportReport {
        self.try_import("test.toml", text).await.unwrap()
    }
}

/// A real listener on 127.0.0.1:0 serving the router until dropped.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub fn start<S>(router: S, grace: std::time::Duration) -> TestServer
    where
        S: tower::Service<
                axum::extract::Request<hyper::body::Incoming>,
                Response = axum::response::Response,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sesame::server::run(
            listener,
            router,
            None,
            async {
                let _ = rx.await;
            },
            grace,
        ));
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestServer {
            base,
            client,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Begins a graceful shutdown.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
