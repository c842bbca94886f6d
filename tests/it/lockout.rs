//! Brute-force protection: wrong passwords in a row lock an account for a while, an unknown
//! account that fails as often gets the very same answer, and a lock says nothing about whether
//! the password was right.

use reqwest::StatusCode;
use sesame::account::{Login, Username};
use sesame::store::{audit, users};
use sesame::tenant::TenantId;

use crate::browser::{Browser, PASSWORD};
use crate::support::both_backends;

const CRM: &str = "https://crm.acme.test/cb";

/// The sign-in page's error sentence.
fn error_of(page: &str) -> String {
    page.split("role=\"alert\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or("")
        .to_string()
}

async fn attempt(b: &Browser, account: &str, password: &str) -> (StatusCode, String) {
    let login = b.start("crm-web", CRM, "&prompt=login").await;
    let r = b.submit(&login, account, password, "").await;
    let status = r.status();
    (status, error_of(&r.text().await.unwrap()))
}

fn failed_logins(b: &Browser, username: &str) -> (i32, Option<i64>) {
    let acme = TenantId::parse("acme").unwrap();
    let login = Login::Username(Username::parse(username).unwrap());
    let user =
        b.t.app
            .store
            .run_blocking(|c| users::find_by_login(c, &acme, &login))
            .unwrap()
            .unwrap();
    (user.failed_logins, user.locked_until.map(|t| t.0))
}

both_backends!(
    wrong_passwords_lock_the_account_until_it_unlocks_itself,
    |db| {
        let b = Browser::new(db).await;
        let threshold = b.t.app.config.sign_in.lockout_threshold;
        let duration = b.t.app.config.sign_in.lockout_duration;
        assert_eq!((threshold, duration), (5, 900), "the documented defaults");
        for i in 0..threshold {
            let (status, error) = attempt(&b, "alice", &format!("guess {i}")).await;
            assert_eq!(status, StatusCode::OK);
            assert!(error.contains("incorrect"), "{error}");
        }
        let (count, until) = failed_logins(&b, "alice");
        assert_eq!(count, 0, "the run starts again once it locked");
        assert_eq!(until, Some(b.t.app.now().0 + duration));
        let acme = TenantId::parse("acme").unwrap();
        let events =
            b.t.app
                .store
                .run_blocking(|c| audit::list(c, &acme, 50))
                .unwrap();
        assert!(
            events.iter().any(|e| e.action == "user.locked"),
            "the lock is audited"
        );

        // The right password now gets the lock's answer, which does not say it was right.
        let (status, locked) = attempt(&b, "alice", PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        assert!(locked.contains("temporarily locked"), "{locked}");
        let (_, wrong) = attempt(&b, "alice", "another guess").await;
        assert_eq!(wrong, locked, "right or wrong, the same answer");

        // An account that does not exist locks alike: the answers cannot tell them apart.
        for i in 0..threshold {
            let (_, error) = attempt(&b, "ghost", &format!("guess {i}")).await;
            assert!(error.contains("incorrect"), "{error}");
        }
        let (_, ghost) = attempt(&b, "ghost", PASSWORD).await;
        assert_eq!(ghost, locked);

        // Other accounts are not affected, and the lock ends by itself.
        let (status, _) = attempt(&b, "olga", PASSWORD).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "olga signs in (and is refused the app)"
        );
        b.t.clock.advance(duration);
        let (status, error) = attempt(&b, "alice", PASSWORD).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{error}");
    }
);

both_backends!(a_right_password_ends_the_run_and_unlock_ends_a_lock, |db| {
    let b = Browser::new(db).await;
    for i in 0..4 {
        attempt(&b, "alice", &format!("guess {i}")).await;
    }
    assert_eq!(failed_logins(&b, "alice").0, 4);
    let (status, _) = attempt(&b, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        failed_logins(&b, "alice"),
        (0, None),
        "a success clears the count"
    );

    for i in 0..5 {
        attempt(&b, "alice", &format!("guess {i}")).await;
    }
    let (_, error) = attempt(&b, "alice", PASSWORD).await;
    assert!(error.contains("temporarily locked"), "{error}");
    // What `sesame user unlock` and an administrator's unlock call do.
    let acme = TenantId::parse("acme").unwrap();
    let login = Login::Username(Username::parse("alice").unwrap());
    let store = &b.t.app.store;
    let alice = store
        .run_blocking(|c| users::find_by_login(c, &acme, &login))
        .unwrap()
        .unwrap();
    store
        .run_blocking(|c| users::unlock(c, &acme, &alice.id, b.t.app.now()))
        .unwrap();
    let (status, _) = attempt(&b, "alice", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "unlocked before the lock ran out"
    );
});

both_backends!(concurrent_wrong_passwords_all_count, |db| {
    let b = Browser::new(db).await;
    let acme = TenantId::parse("acme").unwrap();
    let login = Login::Username(Username::parse("alice").unwrap());
    let store = b.t.app.store.clone();
    let alice = store
        .run_blocking(|c| users::find_by_login(c, &acme, &login))
        .unwrap()
        .unwrap();
    let now = b.t.app.now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, acme, id) = (store.clone(), acme.clone(), alice.id.clone());
        tasks.push(tokio::spawn(async move {
            store
                .run(move |c| users::record_failed_password(c, &acme, &id, 5, 900, now))
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), None, "four failures do not lock");
    }
    assert_eq!(failed_logins(&b, "alice").0, 4, "none was lost");
    let locked = store
        .run_blocking(|c| users::record_failed_password(c, &acme, &alice.id, 5, 900, now))
        .unwrap();
    assert_eq!(locked, Some(now.plus(900)), "the fifth locks");
});

both_backends!(
    a_disabled_account_is_told_only_after_a_right_password,
    |db| {
        let b = Browser::new(db).await;
        let (_, wrong) = attempt(&b, "dora", "a guess").await;
        let (_, unknown) = attempt(&b, "nobody-here", "a guess").await;
        assert_eq!(wrong, unknown, "a wrong password reveals nothing");
        let (_, right) = attempt(&b, "dora", PASSWORD).await;
        assert!(right.contains("disabled"), "{right}");
    }
);
