//! The `sesame` binary as an operator uses it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// A data folder of its own, and the `sesame` binary run in it.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sesame"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SESAME_DATA_DIR", self.dir.path())
            .env("SESAME_PASSWORD_HASH_MEMORY_KIB", "1024")
            .env("SESAME_PASSWORD_HASH_ITERATIONS", "1")
            .env("SESAME_LOG_LEVEL", "warn");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "{args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

#[test]
fn every_command_has_help() {
    let e = Env::new();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["config", "check", "--help"],
        vec!["tenant", "add", "--help"],
        vec!["tenant", "list", "--help"],
        vec!["user", "add", "--help"],
        vec!["user", "passwd", "--help"],
        vec!["user", "unlock", "--help"],
        vec!["client", "add", "--help"],
        vec!["client", "remove", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["keys", "list", "--help"],
        vec!["sp", "add", "--help"],
        vec!["sp", "list", "--help"],
        vec!["sp", "remove", "--help"],
        vec!["import", "--help"],
        vec!["audit", "--help"],
    ] {
        assert!(e.ok(&args).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn config_problems_are_one_line_naming_the_key() {
    let e = Env::new();
    let file = e.dir.path().join("sesame.toml");
    std::fs::write(&file, "[database]\nulr = \"sqlite://x.db\"\n").unwrap();
    let err = e.fails(&["--config", file.to_str().unwrap(), "config", "check"]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("config key `database.ulr`"), "{err}");
    let err = e.fails(&["--config", "/nonexistent.toml", "config", "check"]);
    assert!(err.contains("cannot read /nonexistent.toml"), "{err}");
    std::fs::write(&file, "public_url = \"https://id.example.com\"\n").unwrap();
    let out = e.ok(&["--config", file.to_str().unwrap(), "config", "check"]);
    assert!(
        out.contains("configuration is valid") && out.contains("https://id.example.com"),
        "{out}"
    );
    // Files that exist but are no certificate and key: refused here, not only by `serve`.
    let (cert, key) = (e.dir.path().join("c.pem"), e.dir.path().join("k.pem"));
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "not a key").unwrap();
    std::fs::write(
        &file,
        format!("[tls]\ncert = {:?}\nkey = {:?}\n", cert, key),
    )
    .unwrap();
    let err = e.fails(&["--config", file.to_str().unwrap(), "config", "check"]);
    assert!(err.contains("tls.cert"), "{err}");
}

#[test]
fn tenants_users_clients_and_keys_from_the_command_line() {
    let e = Env::new();
    assert!(e.ok(&["migrate"]).contains("up to date"));
    e.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Acme Inc",
        "--host",
        "login.acme.test",
    ]);
    let list = e.ok(&["tenant", "list"]);
    assert!(
        list.contains("default")
            && list.contains("Acme Inc")
            && list.contains("/t/acme")
            && list.contains("login.acme.test"),
        "{list}"
    );
    assert!(
        e.fails(&["tenant", "add", "acme"])
            .contains("already exists")
    );

    let out = e.run_with_stdin(
        &[
            "user",
            "add",
            "-t",
            "acme",
            "alice",
            "--email",
            "alice@acme.test",
            "--password-stdin",
        ],
        "a long passphrase\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("password:"),
        "a given password is not echoed"
    );
    let out = e.ok(&[
        "user",
        "add",
        "-t",
        "acme",
        "bob",
        "--phone",
        "+8613800138000",
    ]);
    assert!(
        out.contains("password: "),
        "generated password shown once: {out}"
    );
    let err = e.fails(&[
        "user",
        "add",
        "-t",
        "acme",
        "carol",
        "--email",
        "ALICE@acme.test",
    ]);
    assert!(err.contains("email is already used"), "{err}");
    let err = e.fails(&["user", "add", "-t", "acme", "dave", "--phone", "12345"]);
    assert!(err.contains("not a mobile number"), "{err}");
    e.ok(&["user", "disable", "-t", "acme", "alice@acme.test"]);
    assert!(
        e.ok(&["user", "list", "-t", "acme"])
            .lines()
            .any(|l| l.contains("alice") && l.contains("disabled"))
    );
    let err = e.fails(&["user", "unlock", "-t", "acme", "alice"]);
    assert!(
        err.contains("disabled, not locked") && err.contains("user enable"),
        "{err}"
    );
    e.ok(&["user", "enable", "-t", "acme", "alice"]);
    e.ok(&["user", "unlock", "-t", "acme", "+8613800138000"]);
    let out = e.ok(&["user", "passwd", "-t", "acme", "bob"]);
    assert!(out.contains("password: "));
    // Whoever held the old password loses their tokens on every serving node.
    let bob = out
        .lines()
        .find_map(|l| l.strip_prefix("password changed for "))
        .unwrap()
        .to_string();
    {
        use sesame::store::access_revocations::{self, Issued};
        let path = e.dir.path().join("sesame.db");
        let store =
            sesame::store::Store::open(&format!("sqlite://{}", path.display()), 1, 5).unwrap();
        let acme = sesame::tenant::TenantId::parse("acme").unwrap();
        let held = store
            .run_blocking(move |c| {
                access_revocations::load(c, &acme, None, sesame::clock::UnixTime(i64::MAX))
            })
            .unwrap();
        let issued_before = Issued {
            jti: Some("g.t"),
            grant: Some("g"),
            user: Some(&bob),
            client: Some("crm"),
            session: None,
            issued_at: 0,
        };
        assert!(held.revokes(&issued_before));
    }
    assert!(
        e.fails(&["user", "disable", "-t", "acme", "nobody"])
            .contains("no user 'nobody'")
    );

    let out = e.ok(&[
        "client",
        "add",
        "-t",
        "acme",
        "crm",
        "--redirect-uri",
        "https://crm.acme.test/cb",
    ]);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(secret.len() >= 43);
    let list = e.ok(&["client", "list", "-t", "acme"]);
    assert!(list.contains("crm") && !list.contains(&secret), "{list}");
    let db = std::fs::read(e.dir.path().join("sesame.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is not stored"
    );
    let err = e.fails(&[
        "client",
        "add",
        "-t",
        "acme",
        "bad",
        "--redirect-uri",
        "http://evil.test/cb",
    ]);
    assert!(err.contains("non-loopback"), "{err}");
    assert!(
        e.ok(&[
            "client",
            "add",
            "-t",
            "acme",
            "mobile",
            "--public",
            "--redirect-uri",
            "com.acme.app:/cb"
        ])
        .contains("(none)")
    );
    e.ok(&["client", "remove", "-t", "acme", "crm"]);
    assert!(
        e.fails(&["client", "remove", "-t", "acme", "crm"])
            .contains("no client")
    );

    let keys = e.ok(&["keys", "list", "-t", "acme"]);
    assert_eq!(
        keys.lines().filter(|l| l.contains(" active ")).count(),
        5,
        "{keys}"
    );
    assert_eq!(
        keys.lines().filter(|l| l.contains(" next ")).count(),
        5,
        "{keys}"
    );
    let err = e.fails(&["keys", "rotate", "-t", "acme", "--alg", "ES256"]);
    assert!(
        err.contains("may not have fetched it yet") && err.contains("force"),
        "{err}"
    );
    let out = e.ok(&["keys", "rotate", "-t", "acme", "--alg", "ES256", "--force"]);
    assert!(
        out.contains("ES256: now signing with") && out.contains("stays published until"),
        "{out}"
    );
    // Without --alg every JWS algorithm; the SAML certificate only when named, with the same guard.
    let all = e.ok(&["keys", "rotate", "-t", "acme", "--force"]);
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(!all.contains("SAML"), "{all}");
    let err = e.fails(&["keys", "rotate", "-t", "acme", "--alg", "saml"]);
    assert!(err.contains("next SAML key"), "{err}");
    // A kind Sesame does not sign with is a usage error, as clap reports one: exit status 2.
    let out = e.run(&["keys", "rotate", "-t", "acme", "--alg", "HS256", "--force"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--alg") && err.contains("RS256, PS256"),
        "{err}"
    );
    let out = e.ok(&["keys", "rotate", "-t", "acme", "--alg", "saml", "--force"]);
    assert!(out.contains("SAML: now signing with"), "{out}");
    let keys = e.ok(&["keys", "list", "-t", "acme"]);
    assert_eq!(
        keys.lines().filter(|l| l.contains(" retired ")).count(),
        6,
        "{keys}"
    );
    assert!(
        e.fails(&["keys", "list", "-t", "nosuch"])
            .contains("no tenant 'nosuch'")
    );
}

#[test]
fn import_twice_changes_nothing_and_a_bad_file_changes_nothing() {
    let e = Env::new();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo.toml");
    let first = e.ok(&["import", demo]);
    assert!(
        first.contains(" created") && !first.starts_with("0 created"),
        "{first}"
    );
    assert!(e.ok(&["import", demo]).starts_with("0 created, 0 updated"));
    let bad = e.dir.path().join("bad.toml");
    std::fs::write(&bad, "[[tenants]]\nid = \"other\"\ndisplay_name = \"Other\"\n\n[[tenants.users]]\nusername = \"x\"\nroles = [\"nope\"]\n").unwrap();
    let err = e.fails(&["import", bad.to_str().unwrap()]);
    assert!(
        err.contains("bad.toml:7: role 'nope' does not exist"),
        "{err}"
    );
    assert!(
        !e.ok(&["tenant", "list"]).contains("other"),
        "nothing applied"
    );
}

#[test]
fn a_wrong_or_missing_master_key_is_a_clear_error_and_damages_nothing() {
    let e = Env::new();
    e.ok(&["tenant", "list"]);
    let key_file = e.dir.path().join("master.key");
    let original = std::fs::read(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let keys_before = e.ok(&["keys", "list"]);
    let wrong = sesame::crypto::master::MasterKey::generate();
    let out = e
        .cmd(&["keys", "list"])
        .env("SESAME_MASTER_KEY", wrong.to_base64().as_str())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("master key does not decrypt"), "{err}");
    std::fs::remove_file(&key_file).unwrap();
    let err = e.fails(&["keys", "list"]);
    assert!(
        err.contains("does not exist, but the database holds keys"),
        "{err}"
    );
    assert!(
        !key_file.exists(),
        "no new key was generated over the old data"
    );
    std::fs::write(&key_file, &original).unwrap();
    assert_eq!(
        e.ok(&["keys", "list"]),
        keys_before,
        "key material untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_publishes_discovery_and_stops_on_sigterm() {
    let e = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://{listen}");
    let child = e
        .cmd(&["serve", "--demo"])
        .env("SESAME_LISTEN", &listen)
        .env("SESAME_PUBLIC_URL", &public)
        .env("SESAME_HTTP_SHUTDOWN_DELAY_SECS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{public}/readyz")).send().await {
            up = r.status() == 200;
            if up {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "server did not become ready");
    let doc: serde_json::Value = client
        .get(format!("{public}/t/demo/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], format!("{public}/t/demo"));
    let jwks: serde_json::Value = client
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks["keys"].as_array().unwrap().len() >= 3);
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Draining: readiness fails at once, while requests are still served.
    let mut draining = false;
    for _ in 0..20 {
        let r = client.get(format!("{public}/readyz")).send().await.unwrap();
        if r.status() == 503 {
            assert_eq!(
                r.json::<serde_json::Value>().await.unwrap()["status"],
                "draining"
            );
            draining = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(draining, "/readyz fails once the node is told to stop");
    let r = client
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "still serving while it drains");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "graceful exit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(password.len(), 20, "{stdout}");
}

#[test]
fn user_add_names_a_missing_department() {
    let e = Env::new();
    let err = e.fails(&["user", "add", "zoe", "--department", "nowhere"]);
    assert!(err.contains("no department 'nowhere'"), "{err}");
}

#[test]
fn outbox_prints_the_kept_messages_newest_first() {
    let env = Env::new();
    assert!(env.ok(&["outbox", "list"]).contains("the outbox is empty"));
    let config = sesame::config::Config {
        data_dir: env.dir.path().to_path_buf(),
        ..Default::default()
    };
    let clock: sesame::clock::SharedClock = std::sync::Arc::new(sesame::clock::FixedClock::new(
        sesame::clock::UnixTime(1_000),
    ));
    let opened = sesame::bootstrap::open(&config, &clock).unwrap();
    let default = sesame::tenant::TenantId::parse("default").unwrap();
    for (i, body) in ["first code 111111", "second code 222222"]
        .iter()
        .enumerate()
    {
        opened
            .store
            .run_blocking(|c| {
                sesame::store::outbox::insert(
                    c,
                    &default,
                    &sesame::store::outbox::NewMessage {
                        channel: "email",
                        destination: "alice@acme.test",
                        subject: "Your code",
                        body,
                    },
                    sesame::clock::UnixTime(1_000 + i as i64),
                )
            })
            .unwrap();
    }
    drop(opened);
    let out = env.ok(&["outbox", "list", "--tenant", "default", "--limit", "1"]);
    assert!(
        out.contains("alice@acme.test") && out.contains("Subject: Your code"),
        "{out}"
    );
    assert!(
        out.contains("222222") && !out.contains("111111"),
        "newest only: {out}"
    );
    assert!(
        env.fails(&["outbox", "list", "--tenant", "nope"])
            .contains("nope")
    );
}

#[test]
fn free_trial_applications_are_listed_and_approved_by_id() {
    let env = Env::new();
    assert!(
        env.ok(&["tenant", "applications"])
            .contains("no pending applications")
    );
    let err = env.fails(&["tenant", "approve", "nope"]);
    assert!(err.contains("no pending application 'nope'"), "{err}");
    let err = env.fails(&["tenant", "approve", "nope", "--days", "0"]);
    assert!(err.contains("--days"), "{err}");
}

#[test]
fn a_new_data_directory_is_announced_and_a_newer_schema_refused() {
    use diesel::{Connection, RunQueryDsl};
    let e = Env::new();
    let out = e.run(&["migrate"]);
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stderr.contains("generated a new master key"), "{stderr}");
    assert!(
        stdout.contains("applied ") && stdout.contains("up to date"),
        "{stdout}"
    );
    let out = e.run(&["migrate"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("generated"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("applied"));
    // A migration of a newer Sesame: this one refuses the database rather than write to it.
    let db = e.dir.path().join("sesame.db");
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    diesel::sql_query(
        "INSERT INTO __diesel_schema_migrations (version, run_on) VALUES ('20991231000099', CURRENT_TIMESTAMP)",
    )
    .execute(&mut conn)
    .unwrap();
    let err = e.fails(&["user", "list", "-t", "default"]);
    assert!(
        err.contains("migrated by a newer Sesame") && err.contains("20991231000099"),
        "{err}"
    );
}
