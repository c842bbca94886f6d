//! Sign-in state storage on both backends: refresh-token families, SSO sessions, login flows.

use sesame::clock::UnixTime;
use sesame::crypto::secret::TokenHash;
use sesame::flow::session::{CLASS_CODE, CLASS_PASSWORD};
use sesame::store::refresh::{self, NewRefreshToken, Once, Rotation};
use sesame::store::sessions::{self, NewSession};
use sesame::store::{Store, flows, migrate};
use sesame::tenant::TenantId;

use crate::support::{T0, TestDb, both_backends, tenant_with_alice};

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// A migrated store with tenant `acme` and user `u1`.
fn prepared(db: &TestDb) -> Store {
    let store = db.store();
    store.run_blocking(migrate::run_pending).unwrap();
    store
        .run_blocking(|c| tenant_with_alice(c, &acme()))
        .unwrap();
    for id in ["crm", "other"] {
        let client = sesame::store::clients::Client {
            client_id: id.into(),
            app_id: None,
            name: id.into(),
            secret_hash: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            auth_method: sesame::store::clients::AuthMethod::None,
            channel: sesame::store::apps::Channel::Web,
            first_party: true,
            access_token_lifetime: None,
            id_token_lifetime: None,
            refresh_token_lifetime: None,
            jwks: None,
            jwks_uri: None,
            backchannel_logout_uri: None,
            id_token_alg: None,
            access_token_alg: None,
            allowed_scopes: vec![],
            allowed_resources: vec![],
        };
        store
            .run_blocking(|c| sesame::store::clients::insert(c, &acme(), &client, T0))
            .unwrap();
    }
    store
}

/// Session `sid-1` of `u1` behind `cookie`, signed in at T0 as `amr` says: idle for 30 minutes
/// at most, two hours in all.
fn a_session<'a>(cookie: &'a TokenHash, amr: &'a [String]) -> NewSession<'a> {
    NewSession {
        cookie_hash: cookie,
        sid: "sid-1",
        user_id: "u1",
        auth_time: T0,
        amr,
        acr: None,
        remember: false,
        user_agent: Some("test"),
        ip: Some("127.0.0.1"),
        idle_expires_at: T0.plus(1800),
        absolute_expires_at: T0.plus(7200),
    }
}

fn issue(store: &Store, secret: &str, client: &str) {
    let hash = TokenHash::of(secret);
    let t = NewRefreshToken {
        hash: &hash,
        family_id: &format!("fam-{secret}"),
        client_id: client,
        user_id: Some("u1"),
        sid: Some("sid-1"),
        scope: "openid offline_access",
        auth_time: Some(T0),
        amr: &["pwd".to_string()],
        acr: Some(CLASS_PASSWORD),
        claims: None,
        expires_at: T0.plus(3600),
        family_expires_at: T0.plus(86_400),
    };
    store
        .run_blocking(|c| refresh::issue(c, &acme(), &t, T0))
        .unwrap();
}

/// How the user behind a refresh grant signed in.
fn signed_in(g: &refresh::RefreshGrant) -> (&[String], Option<&str>) {
    (&g.amr, g.acr.as_deref())
}

fn rotate(store: &Store, client: &str, presented: &str, next: &str, at: i64) -> Rotation {
    let (p, n) = (TokenHash::of(presented), TokenHash::of(next));
    store
        .run_blocking(|c| refresh::rotate(c, &acme(), client, &p, &n, 3600, T0.plus(at)))
        .unwrap()
}

both_backends!(refresh_rotation_and_reuse_revokes_the_family, |db| {
    let store = prepared(&db);
    issue(&store, "r1", "crm");
    let Rotation::Rotated(g) = rotate(&store, "crm", "r1", "r2", 10) else {
        panic!("first use rotates")
    };
    assert_eq!(g.scope, "openid offline_access");
    assert_eq!(g.expires_at, T0.plus(3610), "sliding expiry");
    assert_eq!(
        signed_in(&g),
        (&["pwd".to_string()][..], Some(CLASS_PASSWORD))
    );
    // Another client cannot use it, and that attempt does not consume it.
    assert_eq!(
        rotate(&store, "marketing", "r2", "x", 20),
        Rotation::Invalid
    );
    // The next token carries the sign-in forward, for the ID token of the refresh after it.
    let next = store
        .run_blocking(|c| refresh::find_active(c, &acme(), &TokenHash::of("r2"), T0.plus(21)))
        .unwrap()
        .expect("r2 is live");
    assert_eq!(signed_in(&next), signed_in(&g));
    // The rotated token again: reuse, and the whole family dies, including r2.
    assert_eq!(
        rotate(&store, "crm", "r1", "r3", 30),
        Rotation::Reused {
            family_id: "fam-r1".into()
        }
    );
    assert_eq!(
        rotate(&store, "crm", "r2", "r4", 40),
        Rotation::Invalid,
        "r2 was revoked with its family"
    );
    assert!(
        store
            .run_blocking(|c| refresh::find_active(c, &acme(), &TokenHash::of("r2"), T0.plus(41)))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        rotate(&store, "crm", "unknown", "r5", 50),
        Rotation::Invalid
    );
});

// A sealed code's redemption: its id recorded and its family's first token stored in one step.
// A second use of the id stores nothing, and the first use's token is there to be revoked. A
// code whose session has ended stores nothing either, though its id is spent.
both_backends!(issue_once_stores_a_token_on_the_first_use_only, |db| {
    let store = prepared(&db);
    let (cookie, pwd) = (TokenHash::of("cookie-1"), ["pwd".to_string()]);
    store
        .run_blocking(|c| sessions::create(c, &acme(), &a_session(&cookie, &pwd), T0))
        .unwrap();
    let (first, second) = (TokenHash::of("f1"), TokenHash::of("f2"));
    let amr = ["pwd".to_string()];
    let token = |hash| NewRefreshToken {
        hash,
        family_id: "fam-code",
        client_id: "crm",
        user_id: Some("u1"),
        sid: Some("sid-1"),
        scope: "openid offline_access",
        auth_time: Some(T0),
        amr: &amr,
        acr: Some(CLASS_PASSWORD),
        claims: None,
        expires_at: T0.plus(3600),
        family_expires_at: T0.plus(86_400),
    };
    let issue = |hash| {
        store
            .run_blocking(|c| {
                refresh::issue_once(c, &acme(), "code:1", T0.plus(60), &token(hash), T0)
            })
            .unwrap()
    };
    assert_eq!(issue(&first), Once::Issued, "the first use");
    assert_eq!(issue(&second), Once::Used, "the second use");
    let live = |hash: &TokenHash| {
        store
            .run_blocking(|c| refresh::find_active(c, &acme(), hash, T0.plus(1)))
            .unwrap()
    };
    let granted = live(&first).expect("the first use's token is stored");
    assert_eq!(
        (
            granted.family_id.as_str(),
            granted.user_id.as_deref(),
            granted.sid.as_deref()
        ),
        ("fam-code", Some("u1"), Some("sid-1"))
    );
    assert_eq!(granted.auth_time, Some(T0));
    assert_eq!(
        signed_in(&granted),
        (&["pwd".to_string()][..], Some(CLASS_PASSWORD))
    );
    assert_eq!(granted.expires_at, T0.plus(3600));
    assert!(live(&second).is_none(), "the second use stored nothing");
    // The id is the client's: another client's identical id is its own first use.
    let other = NewRefreshToken {
        client_id: "other",
        ..token(&second)
    };
    assert_eq!(
        store
            .run_blocking(|c| refresh::issue_once(c, &acme(), "code:1", T0.plus(60), &other, T0))
            .unwrap(),
        Once::Issued
    );
    // The session ends (a logout): the next code of it is spent and starts nothing.
    store
        .run_blocking(|c| sessions::revoke(c, &acme(), "sid-1", T0.plus(1)))
        .unwrap();
    let third = TokenHash::of("f3");
    let after = store
        .run_blocking(|c| {
            refresh::issue_once(
                c,
                &acme(),
                "code:2",
                T0.plus(60),
                &token(&third),
                T0.plus(2),
            )
        })
        .unwrap();
    assert_eq!(after, Once::SessionEnded);
    assert!(live(&third).is_none(), "nothing stored");
    let again = store
        .run_blocking(|c| {
            refresh::issue_once(
                c,
                &acme(),
                "code:2",
                T0.plus(60),
                &token(&third),
                T0.plus(3),
            )
        })
        .unwrap();
    assert_eq!(again, Once::Used, "the id was spent all the same");
});

// A code redeemed without a refresh token: its id spent and its session checked in one step.
both_backends!(spend_once_spends_an_id_once_and_sees_a_session_end, |db| {
    let store = prepared(&db);
    let (cookie, pwd) = (TokenHash::of("cookie-1"), ["pwd".to_string()]);
    store
        .run_blocking(|c| sessions::create(c, &acme(), &a_session(&cookie, &pwd), T0))
        .unwrap();
    let spend = |client: &'static str, id: &'static str, now: UnixTime| {
        store
            .run_blocking(move |c| {
                refresh::spend_once(c, &acme(), client, (id, T0.plus(60)), "sid-1", now)
            })
            .unwrap()
    };
    assert_eq!(spend("crm", "code:1", T0), Once::Issued, "the first use");
    assert_eq!(spend("crm", "code:1", T0), Once::Used, "the second use");
    assert_eq!(
        spend("other", "code:1", T0),
        Once::Issued,
        "another client's id"
    );
    // Past its idle expiry (half an hour) a session is as ended as a revoked one.
    assert_eq!(spend("crm", "code:3", T0.plus(1800)), Once::SessionEnded);
    store
        .run_blocking(|c| sessions::revoke(c, &acme(), "sid-1", T0.plus(1)))
        .unwrap();
    assert_eq!(spend("crm", "code:2", T0.plus(2)), Once::SessionEnded);
    assert_eq!(
        spend("crm", "code:2", T0.plus(3)),
        Once::Used,
        "the id was spent all the same"
    );
});

// A rotation whose request is refused after the consume is undone: the presented token is live
// again and the unsent one never works. A family revoked in between stays revoked.
both_backends!(an_undone_rotation_leaves_the_presented_token_live, |db| {
    let store = prepared(&db);
    issue(&store, "r1", "crm");
    assert!(matches!(
        rotate(&store, "crm", "r1", "r2", 10),
        Rotation::Rotated(_)
    ));
    let (p, n) = (TokenHash::of("r1"), TokenHash::of("r2"));
    store
        .run_blocking(|c| refresh::restore(c, &acme(), &p, &n, T0.plus(10)))
        .unwrap();
    assert!(
        store
            .run_blocking(|c| refresh::find_active(c, &acme(), &n, T0.plus(11)))
            .unwrap()
            .is_none(),
        "the unsent token is gone"
    );
    assert!(matches!(
        rotate(&store, "crm", "r1", "r3", 12),
        Rotation::Rotated(_)
    ));
    // A rotation of another instant (a rotation that was answered) is not undone.
    let (p, n) = (TokenHash::of("r1"), TokenHash::of("r3"));
    store
        .run_blocking(|c| refresh::restore(c, &acme(), &p, &TokenHash::of("r9"), T0.plus(13)))
        .unwrap();
    assert!(matches!(
        rotate(&store, "crm", "r1", "r4", 14),
        Rotation::Reused { .. }
    ));
    // The family is revoked now: undoing the rotation into r3 leaves r1 spent (still seen as
    // reused) and r3 revoked.
    store
        .run_blocking(|c| refresh::restore(c, &acme(), &p, &n, T0.plus(12)))
        .unwrap();
    assert!(matches!(
        rotate(&store, "crm", "r1", "r5", 15),
        Rotation::Reused { .. }
    ));
    assert_eq!(rotate(&store, "crm", "r3", "r6", 16), Rotation::Invalid);
});

// Refresh tokens carry no foreign key to their client (a check would lock the client's row on
// every refresh): removing the client removes them, so a client registered again under the same
// ID starts with none.
both_backends!(removing_a_client_removes_its_refresh_tokens, |db| {
    use sesame::store::clients;
    let store = prepared(&db);
    issue(&store, "r1", "crm");
    issue(&store, "o1", "other");
    let crm = store
        .run_blocking(|c| clients::find(c, &acme(), "crm"))
        .unwrap()
        .expect("the client exists");
    assert!(
        store
            .run_blocking(|c| clients::remove(c, &acme(), "crm"))
            .unwrap()
    );
    store
        .run_blocking(|c| clients::insert(c, &acme(), &crm, T0))
        .unwrap();
    assert_eq!(rotate(&store, "crm", "r1", "r2", 10), Rotation::Invalid);
    assert!(
        store
            .run_blocking(|c| refresh::find_active(c, &acme(), &TokenHash::of("r1"), T0.plus(10)))
            .unwrap()
            .is_none()
    );
    // Another client's tokens stay.
    assert!(matches!(
        rotate(&store, "other", "o1", "o2", 10),
        Rotation::Rotated(_)
    ));
    assert!(
        !store
            .run_blocking(|c| clients::remove(c, &acme(), "crm-gone"))
            .unwrap()
    );
});

both_backends!(refresh_expiry_is_sliding_and_absolute, |db| {
    let store = prepared(&db);
    issue(&store, "a1", "crm");
    assert_eq!(
        rotate(&store, "crm", "a1", "a2", 3600),
        Rotation::Invalid,
        "sliding expiry passed"
    );
    issue(&store, "b1", "crm");
    let mut current = "b1".to_string();
    let mut at = 0;
    // Rotating every 3000 s keeps it alive, but never past the family's absolute expiry.
    loop {
        at += 3000;
        let next = format!("b-{at}");
        match rotate(&store, "crm", &current, &next, at) {
            Rotation::Rotated(g) => {
                assert!(g.expires_at <= T0.plus(86_400));
                current = next;
            }
            Rotation::Invalid => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(
        (86_400..86_400 + 3000).contains(&at),
        "ended at the absolute expiry: {at}"
    );
    let last = TokenHash::of(&current);
    assert!(
        store
            .run_blocking(|c| refresh::find_active(c, &acme(), &last, T0.plus(86_400)))
            .unwrap()
            .is_none()
    );
    // Revoking a user's tokens ends a live family at once.
    issue(&store, "c1", "crm");
    assert!(
        store
            .run_blocking(|c| refresh::revoke_for_user(c, &acme(), "u1", T0))
            .unwrap()
            >= 1
    );
    assert_eq!(rotate(&store, "crm", "c1", "c2", 1), Rotation::Invalid);
});

both_backends!(racing_refreshes_rotate_once, |db| {
    let store = prepared(&db);
    issue(&store, "race", "crm");
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (p, n) = (TokenHash::of("race"), TokenHash::of(&format!("next-{i}")));
            store
                .run(move |c| refresh::rotate(c, &acme(), "crm", &p, &n, 3600, T0.plus(1)))
                .await
                .unwrap()
        }));
    }
    let mut rotated = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Rotation::Rotated(_)) {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1);
});

both_backends!(sso_sessions_slide_expire_and_revoke, |db| {
    let store = prepared(&db);
    let cookie = TokenHash::of("cookie-1");
    let amr = vec!["pwd".to_string()];
    let new = a_session(&cookie, &amr);
    store
        .run_blocking(|c| sessions::create(c, &acme(), &new, T0))
        .unwrap();
    let touch = |at: i64| {
        store
            .run_blocking(|c| sessions::touch(c, &acme(), &cookie, 1800, T0.plus(at)))
            .unwrap()
    };
    let s = touch(1000).expect("live");
    assert_eq!((s.user_id.as_str(), s.amr.clone()), ("u1", amr.clone()));
    assert_eq!(s.idle_expires_at, T0.plus(2800), "idle expiry slides");
    // Within the touch interval a request reads the session and writes nothing.
    let s = touch(1000 + sessions::TOUCH_INTERVAL - 1).expect("live");
    assert_eq!(s.last_seen_at, T0.plus(1000), "not written again so soon");
    assert_eq!(s.idle_expires_at, T0.plus(2800));
    let s = touch(1000 + sessions::TOUCH_INTERVAL).expect("live");
    assert_eq!(s.last_seen_at, T0.plus(1000 + sessions::TOUCH_INTERVAL));
    assert_eq!(
        s.idle_expires_at,
        T0.plus(2800 + sessions::TOUCH_INTERVAL),
        "slid once the interval passed"
    );
    assert!(touch(2000).is_some(), "still inside the slid idle window");
    assert!(touch(7200).is_none(), "absolute expiry wins");
    // Another tenant's cookie lookup finds nothing; revocation by sid ends it.
    let cookie2 = TokenHash::of("cookie-2");
    let new2 = NewSession {
        cookie_hash: &cookie2,
        sid: "sid-2",
        ..new
    };
    store
        .run_blocking(|c| sessions::create(c, &acme(), &new2, T0))
        .unwrap();
    assert!(
        store
            .run_blocking(|c| sessions::touch(c, &TenantId::default_tenant(), &cookie2, 1800, T0))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .run_blocking(|c| sessions::list_for_user(c, &acme(), "u1", T0.plus(1)))
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .run_blocking(|c| sessions::revoke(c, &acme(), "sid-2", T0.plus(1)))
            .unwrap()
    );
    assert!(
        store
            .run_blocking(|c| sessions::touch(c, &acme(), &cookie2, 1800, T0.plus(2)))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .run_blocking(|c| sessions::revoke_for_user(c, &acme(), "u1", T0.plus(3)))
            .unwrap(),
        1
    );
});

both_backends!(
    a_renewed_session_takes_the_new_sign_in_s_methods_and_class,
    |db| {
        let store = prepared(&db);
        let (cookie, amr) = (TokenHash::of("cookie-1"), vec!["pwd".to_string()]);
        let new = NewSession {
            cookie_hash: &cookie,
            sid: "sid-1",
            user_id: "u1",
            auth_time: T0,
            amr: &amr,
            acr: Some(CLASS_PASSWORD),
            remember: false,
            user_agent: None,
            ip: None,
            idle_expires_at: T0.plus(1800),
            absolute_expires_at: T0.plus(7200),
        };
        store
            .run_blocking(|c| sessions::create(c, &acme(), &new, T0))
            .unwrap();
        let (renewed, by_code) = (TokenHash::of("cookie-2"), vec!["email".to_string()]);
        let live = store
            .run_blocking(|c| {
                sessions::renew(
                    c,
                    &acme(),
                    "sid-1",
                    &renewed,
                    T0.plus(60),
                    &by_code,
                    CLASS_CODE,
                    false,
                    T0.plus(1860),
                    T0.plus(7260),
                    T0.plus(60),
                )
            })
            .unwrap();
        assert!(live);
        let touch = |cookie: &TokenHash| {
            store
                .run_blocking(|c| sessions::touch(c, &acme(), cookie, 1800, T0.plus(61)))
                .unwrap()
        };
        assert!(touch(&cookie).is_none(), "the old cookie is spent");
        let s = touch(&renewed).expect("live");
        assert_eq!(s.sid, "sid-1");
        assert_eq!((s.amr, s.acr.as_deref()), (by_code, Some(CLASS_CODE)));
        assert_eq!(s.auth_time, T0.plus(60));
    }
);

both_backends!(
    login_flows_detect_concurrent_steps_and_complete_once,
    |db| {
        let store = prepared(&db);
        let request = serde_json::json!({"client_id": "crm", "scope": "openid"});
        store
            .run_blocking(|c| {
                flows::create(c, &acme(), "flow-1", "oidc", &request, T0.plus(600), T0)
            })
            .unwrap();
        let flow = store
            .run_blocking(|c| flows::find(c, &acme(), "flow-1", T0))
            .unwrap()
            .unwrap();
        assert_eq!((flow.request.clone(), flow.version), (request, 0));
        let state = serde_json::json!({"password": true});
        assert!(
            store
                .run_blocking(|c| flows::save(c, &acme(), "flow-1", 0, &state, Some("u1"), T0))
                .unwrap()
        );
        // A second writer that read version 0 loses.
        assert!(
            !store
                .run_blocking(|c| flows::save(c, &acme(), "flow-1", 0, &state, Some("u2"), T0))
                .unwrap()
        );
        let flow = store
            .run_blocking(|c| flows::find(c, &acme(), "flow-1", T0))
            .unwrap()
            .unwrap();
        assert_eq!((flow.user_id.as_deref(), flow.version), (Some("u1"), 1));
        assert!(
            store
                .run_blocking(|c| flows::complete(c, &acme(), "flow-1", 1, T0))
                .unwrap()
        );
        assert!(
            !store
                .run_blocking(|c| flows::complete(c, &acme(), "flow-1", 2, T0))
                .unwrap(),
            "completes once"
        );
        assert!(
            store
                .run_blocking(|c| flows::find(c, &acme(), "flow-1", T0))
                .unwrap()
                .is_none()
        );
        // Expired flows are gone for good.
        store
            .run_blocking(|c| {
                flows::create(
                    c,
                    &acme(),
                    "flow-2",
                    "oidc",
                    &serde_json::json!({}),
                    T0.plus(600),
                    T0,
                )
            })
            .unwrap();
        assert!(
            store
                .run_blocking(|c| flows::find(c, &acme(), "flow-2", T0.plus(600)))
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .run_blocking(|c| flows::find(c, &TenantId::default_tenant(), "flow-2", T0))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store
                .run_blocking(|c| flows::sweep_expired(c, T0.plus(600)))
                .unwrap(),
            2
        );
    }
);

both_backends!(
    a_client_noted_twice_in_one_transaction_leaves_it_usable,
    |db| {
        let store = prepared(&db);
        let (cookie, amr) = (TokenHash::of("cookie-1"), vec!["pwd".to_string()]);
        let new = a_session(&cookie, &amr);
        store
            .run_blocking(|c| sessions::create(c, &acme(), &new, T0))
            .unwrap();
        // Two requests of one session may both note the client; the second note is a no-op, and on
        // PostgreSQL it must not have aborted the transaction it ran in.
        let clients = store
            .run_blocking(|c| {
                sesame::store::tx::write(c, |c| {
                    sessions::add_client(c, &acme(), "sid-1", "crm", T0)?;
                    sessions::add_client(c, &acme(), "sid-1", "crm", T0.plus(1))?;
                    sessions::add_client(c, &acme(), "sid-1", "other", T0.plus(1))?;
                    sessions::clients_of(c, &acme(), "sid-1")
                })
            })
            .unwrap();
        assert_eq!(clients, ["crm", "other"]);
    }
);
