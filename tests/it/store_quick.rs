//! `Store::run_quick`, the request path's short store calls: they commit, a failed one leaves
//! nothing behind, and on SQLite, where they run on the calling thread, they never wait there for
//! another connection's write lock.

use std::time::Duration;

use sesame::store::{Conn, Store, StoreError, jtis, migrate, tenants, tx};
use sesame::tenant::TenantId;

use crate::support::{T0, TestDb, both_backends};

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn migrated(db: &TestDb) -> Store {
    let store = db.store();
    store.run_blocking(migrate::run_pending).unwrap();
    store
        .run_blocking(|c| tenants::insert(c, &acme(), &tenants::TenantSpec::named("acme"), T0))
        .unwrap();
    store
}

/// Records `jti` once; whether it was new.
fn remember(jti: &'static str) -> impl FnOnce(&mut Conn) -> Result<bool, StoreError> {
    move |c| jtis::remember(c, &acme(), "svc", jti, T0.plus(60))
}

both_backends!(quick_calls_commit_and_a_failed_one_leaves_nothing, |db| {
    let store = migrated(&db);
    assert!(store.run_quick(remember("j1")).await.unwrap());
    assert!(
        !store.run_quick(remember("j1")).await.unwrap(),
        "committed: the second use is a replay"
    );
    let failed = store
        .run_quick(|c| {
            remember("j2")(c)?;
            Err::<(), _>(StoreError::Invalid("refused after the write".into()))
        })
        .await;
    assert!(failed.is_err());
    assert!(
        store.run_quick(remember("j2")).await.unwrap(),
        "the failed call's write was rolled back"
    );
    // Inside, a step that is a transaction of its own still commits with the call.
    store
        .run_quick(|c| tx::write(c, |c| remember("j3")(c)))
        .await
        .unwrap();
    assert!(!store.run_quick(remember("j3")).await.unwrap());
});

// One thread runs every task here: had the quick call waited for the lock on it, the timer below
// could not fire before the lock's holder let go.
#[test]
fn a_quick_call_never_waits_on_the_calling_thread_for_the_write_lock() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = TestDb::sqlite();
        let store = migrated(&db);
        // Two idle connections, so the quick call finds one and meets the lock itself.
        store
            .run_blocking(|_| store.run_blocking(|_| Ok(())))
            .unwrap();
        let (locked, is_locked) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = store.clone();
        let held = tokio::task::spawn_blocking(move || {
            holder.run_blocking(|c| {
                tx::write(c, |c| {
                    remember("held")(c)?;
                    locked.send(()).unwrap();
                    released.recv().unwrap();
                    Ok(())
                })
            })
        });
        is_locked.await.unwrap();
        let quick = tokio::spawn({
            let store = store.clone();
            async move { store.run_quick(remember("quick")).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!quick.is_finished(), "the quick call waits for the lock");
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        assert!(quick.await.unwrap().unwrap(), "and then records its ID");
    });
}
