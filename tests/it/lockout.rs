//! Brute-force protection: wrong passwords in a row lock an account for a while, an unknown
//! account that fails as often gets the very same answer, and a lock says nothing about whether
//! the password was right.

use reqwest::StatusCode;
use sesame::account::{Login, Username};
use sesame::store::{audit, users};
use sesame::tenant::TenantId;

use sesame::flow::captcha;

use crate::browser::{Browser, PASSWORD, enc, hidden, unescape};
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

/// Posts the sign-in form of `page`, answering its captcha, if it shows one, with `captcha`
/// (`None`: the right answer).
async fn post(
    b: &Browser,
    page: &str,
    account: &str,
    password: &str,
    captcha: Option<&str>,
) -> (StatusCode, String) {
    let mut body = format!(
        "flow={}&csrf={}&region=CN&account={}&password={}&agree=yes",
        hidden(page, "flow"),
        hidden(page, "csrf"),
        enc(account),
        enc(password)
    );
    if page.contains("name=\"captcha_id\"") {
        let id = hidden(page, "captcha_id");
        let answer = captcha
            .map(str::to_string)
            .unwrap_or_else(|| captcha::answer(&b.t.app, &id).to_uppercase());
        body.push_str(&format!("&captcha_id={id}&captcha_answer={}", enc(&answer)));
    }
    let r = b.post_form("/t/acme/login", &body).await;
    (r.status(), r.text().await.unwrap())
}

/// One sign-in attempt as a person makes it: asked for a captcha, they solve it and try again.
async fn attempt(b: &Browser, account: &str, password: &str) -> (StatusCode, String) {
    let login = b.start("crm-web", CRM, "&prompt=login").await;
    let page = b.get(&login).await.text().await.unwrap();
    let (status, html) = post(b, &page, account, password, None).await;
    if error_of(&html).contains("Type the characters") {
        let (status, html) = post(b, &html, account, password, None).await;
        return (status, error_of(&html));
    }
    (status, error_of(&html))
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

both_backends!(
    a_captcha_is_asked_after_failures_and_each_image_is_one_guess,
    |db| {
        let b = Browser::new(db).await;
        let after = b.t.app.config.sign_in.captcha_after;
        assert_eq!(after, 3, "the documented default");
        let login = b.start("crm-web", CRM, "").await;
        let mut page = b.get(&login).await.text().await.unwrap();
        assert!(
            !page.contains("captcha_id"),
            "no captcha before any failure"
        );
        for i in 0..after {
            let (_, html) = post(&b, &page, "alice", &format!("guess {i}"), None).await;
            assert!(error_of(&html).contains("incorrect"));
            page = html;
        }
        // The page after the third failure already shows one, as an embedded image.
        assert!(page.contains("name=\"captcha_id\""), "{page}");
        assert!(unescape(&page).contains("src=\"data:image/png;base64,"));
        let first = hidden(&page, "captcha_id");

        // A wrong answer spends the image, checks no password and counts nothing.
        let (status, html) = post(&b, &page, "alice", PASSWORD, Some("wrong")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(error_of(&html).contains("did not match"), "{html}");
        let second = hidden(&html, "captcha_id");
        assert_ne!(first, second, "a new image");
        assert_eq!(failed_logins(&b, "alice").0, after as i32);
        // The first image cannot be answered again, even rightly.
        let right_for_first = captcha::answer(&b.t.app, &first);
        let (_, html) = post(&b, &page, "alice", PASSWORD, Some(&right_for_first)).await;
        assert!(error_of(&html).contains("did not match"), "single use");
        // No answer at all is asked for again.
        let body = format!(
            "flow={}&csrf={}&region=CN&account=alice&password={}&agree=yes",
            hidden(&html, "flow"),
            hidden(&html, "csrf"),
            enc(PASSWORD)
        );
        let r = b.post_form("/t/acme/login", &body).await;
        let html = r.text().await.unwrap();
        assert!(error_of(&html).contains("Type the characters"), "{html}");
        // The right answer, in any case, with the right password signs in.
        let (status, _) = post(&b, &html, "alice", PASSWORD, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
);

both_backends!(unknown_accounts_and_busy_addresses_get_captchas_too, |db| {
    let b = Browser::new(db).await;
    let login = b.start("crm-web", CRM, "").await;
    let mut page = b.get(&login).await.text().await.unwrap();
    for i in 0..3 {
        let (_, html) = post(&b, &page, "ghost", &format!("guess {i}"), None).await;
        page = html;
    }
    assert!(
        page.contains("name=\"captcha_id\""),
        "as for a real account"
    );
    // An address that failed often gets one on every sign-in page, whatever the account.
    let after = b.t.app.config.sign_in.address_captcha_after;
    for i in 0..after {
        attempt(&b, &format!("ghost{i}"), "guess").await;
    }
    let login = b.start("crm-web", CRM, "").await;
    let page = b.get(&login).await.text().await.unwrap();
    assert!(page.contains("name=\"captcha_id\""));
    // The image's link draws another.
    let refresh = format!("{login}&captcha=1");
    let again = b.get(&refresh).await.text().await.unwrap();
    assert_ne!(hidden(&again, "captcha_id"), hidden(&page, "captcha_id"));
});

both_backends!(an_address_cannot_draw_captchas_without_end, |db| {
    let b = Browser::new(db).await;
    attempt(&b, "ghost", "a guess").await;
    let login = b.start("crm-web", CRM, "").await;
    let refresh = format!("{login}&captcha=1");
    for _ in 0..captcha::MAX_PER_ADDRESS {
        let page = b.get(&refresh).await.text().await.unwrap();
        assert!(page.contains("name=\"captcha_id\""));
    }
    let r = b.get(&refresh).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = r.text().await.unwrap();
    assert!(html.contains("Too many failed sign-in attempts"), "{html}");
});

/// Whether a wrong password for `account` on a fresh page is first asked for a captcha.
async fn probe(b: &Browser, account: &str) -> String {
    let login = b.start("crm-web", CRM, "&prompt=login").await;
    let page = b.get(&login).await.text().await.unwrap();
    let (_, html) = post(b, &page, account, "a wrong guess", None).await;
    error_of(&html)
}

both_backends!(
    a_run_of_failures_is_forgotten_alike_for_real_and_unknown_accounts,
    |db| {
        let b = Browser::new(db).await;
        let window = b.t.app.config.sign_in.lockout_duration;
        let mut seen = Vec::new();
        for account in ["alice", "ghost"] {
            attempt(&b, account, "guess 1").await;
            attempt(&b, account, "guess 2").await;
            b.t.clock.advance(window * 2 / 3);
            attempt(&b, account, "guess 3").await;
            // The run counts from its latest failure, not its first.
            b.t.clock.advance(window - 50);
            let within = probe(&b, account).await;
            assert!(
                within.contains("Type the characters"),
                "{account}: {within}"
            );
            b.t.clock.advance(100);
            let after = probe(&b, account).await;
            assert!(after.contains("incorrect"), "{account}: {after}");
            seen.push((within, after));
            b.t.clock.advance(window * 2);
        }
        assert_eq!(
            seen[0], seen[1],
            "a real and an unknown account answer alike"
        );
        assert_eq!(failed_logins(&b, "alice").0, 1, "the old run is gone");
    }
);

both_backends!(
    failures_under_two_names_do_not_show_they_are_one_account,
    |db| {
        let b = Browser::new(db).await;
        // Alice fails twice as "alice" and once as her email; a ghost does the same under two
        // names that are no account. Neither third failure brings a captcha: it is counted per
        // name as typed.
        let mut third = Vec::new();
        for (name, other) in [("alice", "alice@acme.test"), ("ghost", "ghost@acme.test")] {
            attempt(&b, name, "guess 1").await;
            attempt(&b, name, "guess 2").await;
            third.push(probe(&b, other).await);
        }
        assert!(third[0].contains("incorrect"), "{}", third[0]);
        assert_eq!(third[0], third[1]);

        // Two more as "alice" lock the account (five in all); the ghost's names fail as often.
        attempt(&b, "alice", "guess 3").await;
        attempt(&b, "alice", "guess 4").await;
        attempt(&b, "ghost", "guess 3").await;
        attempt(&b, "ghost", "guess 4").await;
        assert!(failed_logins(&b, "alice").1.is_some(), "alice is locked");
        // Under her email, which failed once, the lock is not told, not even to the right
        // password, and the password is not let in: she gets what the ghost's email gets.
        let (status, email) = attempt(&b, "alice@acme.test", PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let (_, ghost_email) = attempt(&b, "ghost@acme.test", PASSWORD).await;
        assert_eq!(email, ghost_email);
        assert!(email.contains("incorrect"), "{email}");
        // Under "alice", which failed four times, the same: a fifth failure, as for the ghost.
        let (_, a) = attempt(&b, "alice", PASSWORD).await;
        let (_, g) = attempt(&b, "ghost", PASSWORD).await;
        assert_eq!(a, g);
        assert!(a.contains("incorrect"), "{a}");
        // After five failures of the name the lock is told, as for the ghost.
        let (_, locked) = attempt(&b, "alice", PASSWORD).await;
        assert!(locked.contains("temporarily locked"), "{locked}");
        let (_, ghost) = attempt(&b, "ghost", PASSWORD).await;
        assert_eq!(ghost, locked);
        // Her email's failures go on counting like the ghost's, to the same lock.
        for i in 0..3 {
            let (_, a) = attempt(&b, "alice@acme.test", &format!("again {i}")).await;
            let (_, g) = attempt(&b, "ghost@acme.test", &format!("again {i}")).await;
            assert_eq!(a, g, "failure {i}");
        }
        let (_, a) = attempt(&b, "alice@acme.test", PASSWORD).await;
        let (_, g) = attempt(&b, "ghost@acme.test", PASSWORD).await;
        assert_eq!(a, g);
        assert!(a.contains("temporarily locked"), "{a}");
    }
);

// The account's own lock and the lock of a name as typed end at different times: a real name
// must go on answering as an unknown one would once the account's lock has run out.
both_backends!(
    a_name_stays_locked_after_its_account_s_lock_runs_out,
    |db| {
        let b = Browser::new(db).await;
        let mut answers = Vec::new();
        for (name, other) in [("alice", "alice@acme.test"), ("ghost", "ghost@acme.test")] {
            let start = b.t.app.now();
            attempt(&b, other, "guess 1").await;
            attempt(&b, other, "guess 2").await;
            // Three more under the name lock a real account (five in all)...
            for i in 0..3 {
                attempt(&b, name, &format!("guess {i}")).await;
            }
            // ...and two more, later, lock the name itself, until later still.
            b.t.clock.advance(300);
            attempt(&b, name, "guess 3").await;
            attempt(&b, name, "guess 4").await;
            // The account's lock has run out; the name's has not.
            b.t.clock.advance(700);
            let (_, answer) = attempt(&b, name, PASSWORD).await;
            answers.push(answer);
            // Back to where this began, for the other name.
            let elapsed = b.t.app.now().0 - start.0;
            b.t.clock.advance(3600 - elapsed);
        }
        assert!(answers[0].contains("temporarily locked"), "{}", answers[0]);
        assert_eq!(answers[0], answers[1]);
    }
);
