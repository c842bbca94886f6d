//! Group commit (`store::group`) and the set-based writes it runs: a use remembered in a batch is
//! new exactly once, a batch's session reads answer as single reads would, and every caller of a
//! shared transaction gets its own answer, or the error, and never waits for ever.

use sesame::clock::UnixTime;
use sesame::crypto::secret::TokenHash;
use sesame::store::group::Group;
use sesame::store::sessions::{self, NewSession, Touch};
use sesame::store::{Conn, Store, StoreError, jtis, migrate};
use sesame::tenant::TenantId;

use crate::support::{T0, TestDb, both_backends, tenant_with_alice};

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn migrated(db: &TestDb) -> Store {
    let store = db.store();
    store.run_blocking(migrate::run_pending).unwrap();
    for name in ["acme", "globex"] {
        store
            .run_blocking(move |c| tenant_with_alice(c, &tenant(name)))
            .unwrap();
    }
    store
}

fn used(t: &str, client: &str, jti: &str) -> jtis::Use {
    jtis::Use {
        tenant: tenant(t),
        client_id: client.into(),
        jti: jti.into(),
        expires_at: T0.plus(300),
    }
}

both_backends!(a_use_in_a_batch_is_new_once, |db| {
    let store = migrated(&db);
    store
        .run_blocking(|c| jtis::remember(c, &tenant("acme"), "saml:crm", "_old", T0.plus(300)))
        .unwrap();
    let uses = vec![
        used("acme", "saml:crm", "_a"),
        used("acme", "saml:crm", "_b"),
        used("acme", "saml:crm", "_a"),
        used("acme", "saml:crm", "_old"),
        // The same ID from another SP, or in another tenant, is another use.
        used("acme", "saml:marketing", "_a"),
        used("globex", "saml:crm", "_a"),
    ];
    let fresh = store
        .run_blocking(move |c| jtis::remember_many(c, &uses))
        .unwrap();
    assert_eq!(fresh, [true, true, false, false, true, true]);
    let again = store
        .run_blocking(|c| jtis::remember_many(c, &[used("acme", "saml:crm", "_b")]))
        .unwrap();
    assert_eq!(again, [false], "the batch was stored");
    assert_eq!(
        store.run_blocking(|c| jtis::remember_many(c, &[])).unwrap(),
        Vec::<bool>::new()
    );
});

fn session(store: &Store, t: &str, cookie: &str, sid: &str, last_seen: UnixTime) {
    let (t, cookie, sid) = (tenant(t), TokenHash::of(cookie), sid.to_string());
    store
        .run_blocking(move |c| {
            let amr = vec!["pwd".to_string()];
            sessions::create(
                c,
                &t,
                &NewSession {
                    cookie_hash: &cookie,
                    sid: &sid,
                    user_id: "u1",
                    auth_time: last_seen,
                    amr: &amr,
                    acr: None,
                    remember: false,
                    user_agent: None,
                    ip: None,
                    idle_expires_at: last_seen.plus(1800),
                    absolute_expires_at: T0.plus(7200),
                },
                last_seen,
            )
        })
        .unwrap();
}

both_backends!(a_batch_of_session_reads_answers_as_single_reads, |db| {
    let store = migrated(&db);
    let now = T0.plus(1000);
    session(&store, "acme", "fresh", "s-fresh", now.plus(-10));
    session(&store, "acme", "due", "s-due", T0);
    session(&store, "acme", "revoked", "s-revoked", now.plus(-10));
    session(&store, "acme", "idle", "s-idle", T0.plus(-1000));
    session(&store, "globex", "elsewhere", "s-globex", now.plus(-10));
    store
        .run_blocking(|c| sessions::revoke(c, &tenant("acme"), "s-revoked", T0.plus(1)))
        .unwrap();
    let lookup = |cookie: &str| Touch {
        tenant: tenant("acme"),
        cookie_hash: TokenHash::of(cookie),
        idle: 1800,
        now,
    };
    let cookies = [
        "fresh",
        "due",
        "revoked",
        "idle",
        "elsewhere",
        "unknown",
        "fresh",
    ];
    let lookups: Vec<Touch> = cookies.iter().map(|c| lookup(c)).collect();
    let batch = store
        .run_blocking(move |c| sessions::touch_many(c, &lookups))
        .unwrap();
    let sids: Vec<Option<&str>> = batch
        .iter()
        .map(|s| s.as_ref().map(|s| s.sid.as_str()))
        .collect();
    assert_eq!(
        sids,
        [
            Some("s-fresh"),
            Some("s-due"),
            None,
            None,
            None,
            None,
            Some("s-fresh")
        ],
        "revoked, idle, unknown and another tenant's sessions are not found"
    );
    let due = batch[1].as_ref().unwrap();
    assert_eq!(
        due.last_seen_at, now,
        "a session due to be moved was touched"
    );
    assert_eq!(due.idle_expires_at, now.plus(1800));
    let single = store
        .run_blocking(move |c| {
            sessions::touch(c, &tenant("acme"), &TokenHash::of("due"), 1800, now)
        })
        .unwrap();
    assert_eq!(single.as_ref(), Some(due), "the touch was stored");
});

fn remember_all(c: &mut Conn, uses: &[jtis::Use]) -> Result<Vec<bool>, StoreError> {
    jtis::remember_many(c, uses)
}

fn refuse_all(_: &mut Conn, _: &[jtis::Use]) -> Result<Vec<bool>, StoreError> {
    Err(StoreError::Unavailable("the database is down".into()))
}

both_backends!(
    callers_of_a_shared_transaction_each_get_their_answer,
    |db| {
        let store = migrated(&db);
        let group: Group<jtis::Use, bool> = Group::new(remember_all);
        // Forty callers at once, two for each ID: of each pair exactly one is new.
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let (group, store) = (group.clone(), store.clone());
                tokio::spawn(async move {
                    let jti = format!("_{}", i / 2);
                    let fresh = group
                        .submit(&store, used("acme", "saml:crm", &jti))
                        .await
                        .unwrap();
                    (jti, fresh)
                })
            })
            .collect();
        let mut new = std::collections::BTreeMap::new();
        for t in tasks {
            let (jti, fresh) = t.await.unwrap();
            *new.entry(jti).or_insert(0) += u32::from(fresh);
        }
        assert_eq!(new.len(), 20);
        assert!(new.values().all(|n| *n == 1), "{new:?}");
        assert!(
            !group
                .submit(&store, used("acme", "saml:crm", "_7"))
                .await
                .unwrap(),
            "committed before it was answered"
        );

        let failing: Group<jtis::Use, bool> = Group::new(refuse_all);
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let (failing, store) = (failing.clone(), store.clone());
                tokio::spawn(async move {
                    failing
                        .submit(&store, used("acme", "saml:crm", &format!("_f{i}")))
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Err(StoreError::Unavailable(_))));
        }
        // A failed batch leaves the group ready for the next.
        assert!(
            failing
                .submit(&store, used("acme", "saml:crm", "_g"))
                .await
                .is_err()
        );
        assert!(
            group
                .submit(&store, used("acme", "saml:crm", "_g"))
                .await
                .unwrap()
        );
    }
);
