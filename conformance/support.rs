//! A real `sesame` process for the conformance suites: its own data folder, a free loopback
//! port, a database (SQLite in the folder, or a fresh PostgreSQL schema), a tenant imported with
//! `sesame import`, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;

pub const PASSWORD: &str = "correct horse battery";

/// A database both nodes of a test can share.
pub struct Database {
    pub url: String,
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Database {
    pub fn sqlite() -> Database {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sesame.db").display());
        Database {
            url,
            pg: None,
            _dir: dir,
        }
    }

    /// A fresh schema in `SESAME_TEST_DATABASE_URL`'s database, if it is set.
    pub fn postgres() -> Option<Database> {
        let admin = std::env::var("SESAME_TEST_DATABASE_URL").ok()?;
        let schema = format!("c_{}", sesame::crypto::secret::random_hex(8));
        let mut conn = diesel::PgConnection::establish(&admin).unwrap();
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        Some(Database {
            url: format!("{admin}{sep}options=-csearch_path%3D{schema}"),
            pg: Some((admin, schema)),
            _dir: tempfile::tempdir().unwrap(),
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((admin, schema)) = &self.pg
            && let Ok(mut conn) = diesel::PgConnection::establish(admin)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

pub struct Sesame {
    /// Where this node listens.
    pub base: String,
    /// The public URL its issuers are built on (`base` unless behind a "load balancer").
    pub issuer_base: String,
    _data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    child: Child,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sesame"))
}

impl Sesame {
    /// Starts a node on `db`, after importing `tenant` (a TOML text) into it. Nodes given the
    /// same `master_key` can read each other's keys.
    pub async fn start(db: &Database, master_key: &str, tenant: Option<&str>) -> Sesame {
        Sesame::start_behind(db, master_key, tenant, None).await
    }

    /// As [`Sesame::start`], with `public_url` set as if behind a load balancer at that URL
    /// (several nodes then share one issuer).
    pub async fn start_behind(
        db: &Database,
        master_key: &str,
        tenant: Option<&str>,
        public_url: Option<&str>,
    ) -> Sesame {
        Sesame::start_with(db, master_key, tenant, public_url, &[]).await
    }

    /// As [`Sesame::start_behind`], with more `SESAME_…` settings (email delivery, say).
    pub async fn start_with(
        db: &Database,
        master_key: &str,
        tenant: Option<&str>,
        public_url: Option<&str>,
        settings: &[(&str, String)],
    ) -> Sesame {
        let port = free_port();
        let data_dir = tempfile::tempdir().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let public = public_url.map_or_else(|| base.clone(), str::to_string);
        let env: Vec<(String, String)> = [
            ("SESAME_DATA_DIR", data_dir.path().display().to_string()),
            ("SESAME_DATABASE_URL", db.url.clone()),
            ("SESAME_LISTEN", format!("127.0.0.1:{port}")),
            ("SESAME_PUBLIC_URL", public.clone()),
            ("SESAME_MASTER_KEY", master_key.to_string()),
            ("SESAME_LOG_LEVEL", "warn".to_string()),
            ("SESAME_PASSWORD_HASH_MEMORY_KIB", "1024".to_string()),
            ("SESAME_PASSWORD_HASH_ITERATIONS", "1".to_string()),
        ]
        .into_iter()
        .chain(settings.iter().cloned())
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(text) = tenant {
            let file = data_dir.path().join("tenant.toml");
            std::fs::write(&file, text).unwrap();
            let out = Command::new(binary())
                .arg("import")
                .arg(&file)
                .envs(env.iter().cloned())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "sesame import failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let child = Command::new(binary())
            .arg("serve")
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let node = Sesame {
            issuer_base: public,
            base,
            _data_dir: data_dir,
            env,
            child,
        };
        node.wait_ready().await;
        node
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sesame did not become ready at {}", self.base);
    }

    /// Runs a `sesame` command against this node's configuration.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(binary())
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sesame {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/t/{tenant}", self.issuer_base)
    }
}

impl Drop for Sesame {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser-like HTTP client: cookies kept, redirects not followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Undoes minijinja's HTML escaping of an attribute value.
pub fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    unescape(html[start..].split('"').next().unwrap())
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Follows an authorization URL through Sesame's sign-in page as a person would, on `base`
/// (which may be another node than the one that issued `authorize_url`). Returns the final
/// redirect to the app.
pub async fn sign_in_via(
    client: &reqwest::Client,
    authorize_url: &str,
    base: &str,
    account: &str,
) -> String {
    let r = sign_in_page(client, authorize_url, base, account).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    r.headers()["location"].to_str().unwrap().to_string()
}

/// Opens `start_url` (an app's request that leads to the sign-in page), signs `account` in on
/// `base`, and returns the sign-in form's answer as it is.
pub async fn sign_in_page(
    client: &reqwest::Client,
    start_url: &str,
    base: &str,
    account: &str,
) -> reqwest::Response {
    let r = client.get(start_url).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let login_url = if login.starts_with('/') {
        format!("{base}{login}")
    } else {
        login
    };
    let page = client
        .get(&login_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body = format!(
        "flow={}&csrf={}&region=CN&account={}&password={}&agree=yes",
        enc(&hidden(&page, "flow")),
        enc(&hidden(&page, "csrf")),
        enc(account),
        enc(PASSWORD)
    );
    let login_path = url::Url::parse(&login_url).unwrap();
    client
        .post(format!("{base}{}", login_path.path()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}
