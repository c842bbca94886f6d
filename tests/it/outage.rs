//! The database going away: clear start-up errors, 503 while it is gone, recovery when it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};

use crate::support::{TestApp, TestDb};

/// A TCP forwarder to PostgreSQL that the test can cut (dropping every connection) and restore.
struct Switch {
    port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    /// Connections being forwarded: a cut is complete when none is left.
    live: Arc<AtomicUsize>,
}

/// Counts a forwarded connection for as long as it lives.
struct Forwarding(Arc<AtomicUsize>);

impl Drop for Forwarding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Switch {
    async fn start(target: String) -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(tx);
        let live = Arc::new(AtomicUsize::new(0));
        let (up2, gen2, live2) = (up.clone(), generation.clone(), live.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused from the client's view
                }
                let target = target.clone();
                let mut cut = gen2.subscribe();
                live2.fetch_add(1, Ordering::SeqCst);
                let forwarding = Forwarding(live2.clone());
                tokio::spawn(async move {
                    let _forwarding = forwarding;
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Switch {
            port,
            up,
            generation,
            live,
        }
    }

    /// Refuses new connections and drops the open ones; returns once they are all gone, so the
    /// pool cannot answer from one still being torn down.
    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
        for _ in 0..500 {
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("connections still forwarded after the cut");
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_mid_run_gives_503_then_recovers() {
    let Some(db) = TestDb::postgres() else {
        eprintln!("skipped: SESAME_TEST_DATABASE_URL is not set");
        return;
    };
    let url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let switch = Switch::start(target).await;
    let mut proxied = url.clone();
    proxied.set_port(Some(switch.port)).unwrap();
    let proxied = proxied.to_string();
    let t = TestApp::with_config(db, |c| {
        c.database.url = Some(proxied);
        c.database.connect_timeout_secs = 1;
    })
    .await;
    assert_eq!(t.get("/readyz").await.status, 200);
    assert_eq!(t.get("/t/default/jwks").await.status, 200);

    switch.cut().await;
    t.app.invalidate_caches();
    let r = t.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["database"], "unreachable");
    let r = t.get("/t/default/jwks").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(
        !r.text().to_lowercase().contains("postgres"),
        "no internals in the body: {}",
        r.text()
    );
    // Healthz is about the process, not the database.
    assert_eq!(t.get("/healthz").await.status, 200);

    switch.restore();
    let mut ready = false;
    for _ in 0..20 {
        if t.get("/readyz").await.status == 200 {
            ready = true;
            break;
        }
    }
    assert!(ready, "recovered once the database came back");
    assert_eq!(t.get("/t/default/jwks").await.status, 200);
}

#[test]
fn database_down_at_start_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let mut config = crate::support::test_config(&db, dir.path());
    // Nothing listens on port 9 on loopback.
    config.database.url = Some("postgres://sesame:secret@127.0.0.1:9/sesame".into());
    config.database.connect_timeout_secs = 1;
    let clock: sesame::clock::SharedClock = Arc::new(sesame::clock::SystemClock);
    let err = match sesame::bootstrap::open(&config, &clock) {
        Ok(_) => panic!("opened an unreachable database"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("config key `database.url`"), "{err}");
    assert!(!err.contains("secret"), "password redacted: {err}");
}
