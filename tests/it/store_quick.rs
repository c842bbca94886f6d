//! `Store::run_quick`, the request path's short store calls: they commit, a failed transaction
//! inside one leaves nothing behind, and on SQLite, where they run on the calling thread, they
//! never wait there for another connection's write lock.

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

both_backends!(
    quick_calls_commit_and_a_failed_transaction_leaves_nothing,
    |db| {
        let store = migrated(&db);
        assert!(store.run_quick(remember("j1")).await.unwrap());
        assert!(
            !store.run_quick(remember("j1")).await.unwrap(),
            "committed: the second use is a replay"
        );
        // On SQLite the call is a transaction and this one a savepoint in it; on PostgreSQL a
        // transaction of its own.
        let failed = store
            .run_quick(|c| {
                tx::write(c, |c| {
                    remember("j2")(c)?;
                    Err::<(), _>(StoreError::Invalid("refused after the write".into()))
                })
            })
            .await;
        assert!(failed.is_err());
        assert!(
            store.run_quick(remember("j2")).await.unwrap(),
            "the failed call's write was rolled back"
        );
        // A step that is a transaction of its own commits with the call.
        store
            .run_quick(|c| tx::write(c, |c| remember("j3")(c)))
            .await
            .unwrap();
        assert!(!store.run_quick(remember("j3")).await.unwrap());
    }
);

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

/// Frames in the log after a passive checkpoint (which copies, and never restarts the log).
fn log_frames(store: &Store) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Checkpointed {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        log: i64,
    }
    store
        .run_blocking(|c| {
            let Conn::Sqlite(c) = c else { unreachable!() };
            let row: Checkpointed = diesel::RunQueryDsl::get_result(
                diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)"),
                c,
            )?;
            Ok(row.log)
        })
        .unwrap()
}

// No commit checkpoints SQLite's log, so no quick call pays for one on its worker: the log grows
// past the point where SQLite's automatic checkpoint would have started it over, and the
// server's periodic checkpoint brings it back once no reader is in the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_leave_the_log_to_the_periodic_checkpoint() {
    let db = TestDb::sqlite();
    let store = migrated(&db);
    let wal = std::path::PathBuf::from(format!("{}-wal", db.url.trim_start_matches("sqlite://")));
    let frames = sesame::store::WAL_RESTART_FRAMES as u64;
    let mut written = 0;
    while std::fs::metadata(&wal).unwrap().len() <= (frames + 2_000) * 1_048 {
        let jti: &'static str = Box::leak(format!("j{written}").into_boxed_str());
        store.run_quick(remember(jti)).await.unwrap();
        written += 1;
        assert!(
            written < 20_000,
            "the log stopped growing: a commit checkpointed it"
        );
    }
    // A reader keeps the log from starting over. The checkpoint neither waits for it nor keeps
    // writers waiting: the reader lets go only once both are done (or gives up after 3 s, which
    // a checkpoint waiting out its 5 s busy timeout would make it do).
    let (reading, is_reading) = tokio::sync::oneshot::channel();
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    let reader = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            store.run_blocking(|c| {
                use diesel::connection::SimpleConnection;
                let Conn::Sqlite(c) = c else { unreachable!() };
                c.batch_execute("BEGIN; SELECT count(*) FROM used_jtis;")?;
                reading.send(()).unwrap();
                let in_time = wait_done.recv_timeout(Duration::from_secs(3)).is_ok();
                c.batch_execute("COMMIT")?;
                Ok(in_time)
            })
        })
    };
    is_reading.await.unwrap();
    store.checkpoint().await.unwrap();
    assert!(store.run_quick(remember("during")).await.unwrap());
    done.send(()).unwrap();
    assert!(
        reader.await.unwrap().unwrap(),
        "the checkpoint and the write went ahead"
    );
    assert!(log_frames(&store) > frames as i64, "not started over");
    store.checkpoint().await.unwrap();
    store.run_quick(remember("after")).await.unwrap();
    assert!(log_frames(&store) < 100, "the log started over");
}
