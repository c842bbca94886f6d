//! The tenant's password policy where passwords are set: the rules listed and marked, a tenant's
//! own length and classes, the history, and a maximum age that asks for a new password at the
//! next sign-in.

use reqwest::StatusCode;
use sesame::store::{password_history, tenants, users};
use sesame::tenant::TenantId;

use crate::browser::{Browser, PASSWORD, enc, hidden, params};
use crate::codes::outbox_browser;
use crate::support::both_backends;

const CRM: &str = "https://crm.acme.test/cb";

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// Sets the tenant's settings, as an administrator's import does.
async fn settings(b: &Browser, value: serde_json::Value) {
    let acme = acme();
    let now = b.t.app.now();
    b.t.app
        .store
        .run_blocking(|c| {
            let mut spec = tenants::find(c, &acme)?.unwrap().spec();
            spec.settings = value;
            tenants::update(c, &acme, &spec, now)
        })
        .unwrap();
    b.t.app.invalidate_caches();
}

/// A reset link's form for Alice.
async fn reset_form(b: &Browser) -> (String, String) {
    let page = b.get("/t/acme/forgot-password").await.text().await.unwrap();
    let body = format!(
        "csrf={}&region=CN&account=alice%40acme.test",
        hidden(&page, "csrf")
    );
    b.post_form("/t/acme/forgot-password", &body).await;
    let mails = crate::codes::outbox_for(b, "alice@acme.test");
    let mail = mails
        .iter()
        .find(|m| m.body.contains("/reset-password?token="))
        .expect("a reset link");
    let start = mail.body.find("/t/acme/reset-password?token=").unwrap();
    let link = mail.body[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let form = b.get(&link).await.text().await.unwrap();
    (link, form)
}

async fn try_password(b: &Browser, form: &str, password: &str) -> (StatusCode, String) {
    let body = format!(
        "csrf={}&token={}&new_password={p}&confirm_password={p}",
        hidden(form, "csrf"),
        enc(&hidden(form, "token")),
        p = enc(password)
    );
    let r = b.post_form("/t/acme/reset-password", &body).await;
    (r.status(), r.text().await.unwrap())
}

both_backends!(a_tenant_s_policy_is_listed_and_enforced, |db| {
    let b = outbox_browser(db).await;
    settings(
        &b,
        serde_json::json!({ "password_min_length": 12, "password_min_classes": 3 }),
    )
    .await;
    let (_, form) = reset_form(&b).await;
    assert!(form.contains("At least 12 characters"), "{form}");
    assert!(form.contains("At least 3 of"), "{form}");
    assert!(form.contains("Not one of your last 3 passwords"));
    assert!(form.contains("/static/password.js"));
    for (password, rule) in [
        ("Short1!", "length"),
        ("all lower case words", "classes"),
        ("alice.w@acme.test", "classes"),
        ("Alice@Acme.test", "not_account"),
        (PASSWORD, "classes"),
    ] {
        let (status, html) = try_password(&b, &form, password).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains(&format!("data-rule=\"{rule}\" data-value="))
                && html.contains("class=\"broken\""),
            "{password}: {html}"
        );
    }
    let (_, done) = try_password(&b, &form, "Mixed Case 2026 phrase").await;
    assert!(done.contains("Password changed"), "{done}");
});

both_backends!(
    the_history_refuses_recent_passwords_without_spending_the_link,
    |db| {
        let b = outbox_browser(db).await;
        let (link, form) = reset_form(&b).await;
        let (_, html) = try_password(&b, &form, PASSWORD).await;
        assert!(
            html.contains("Not one of your last 3 passwords"),
            "the current one: {html}"
        );
        assert_eq!(
            b.get(&link).await.status(),
            StatusCode::OK,
            "the link still works"
        );
        let (_, done) = try_password(&b, &form, "first new passphrase").await;
        assert!(done.contains("Password changed"));
        // Two more changes (an hour apart, within the hourly caps): the original is then forgotten
        // (three remembered, the current one included).
        for next in ["second new passphrase", "third new passphrase"] {
            b.t.clock.advance(3601);
            let (_, form) = reset_form(&b).await;
            let (_, done) = try_password(&b, &form, next).await;
            assert!(done.contains("Password changed"), "{next}: {done}");
        }
        let acme = acme();
        let alice =
            b.t.app
                .store
                .run_blocking(|c| {
                    users::find_by_login(
                        c,
                        &acme,
                        &sesame::account::Login::parse("alice", None).unwrap(),
                    )
                })
                .unwrap()
                .unwrap();
        let kept =
            b.t.app
                .store
                .run_blocking(|c| password_history::recent(c, &acme, &alice.id, 24))
                .unwrap();
        assert_eq!(kept.len(), 3, "the current password and the two before it");
        b.t.clock.advance(3601);
        let (_, form) = reset_form(&b).await;
        let (_, html) = try_password(&b, &form, "first new passphrase").await;
        assert!(
            html.contains("class=\"broken\""),
            "still remembered: {html}"
        );
        let (_, done) = try_password(&b, &form, PASSWORD).await;
        assert!(
            done.contains("Password changed"),
            "forgotten by now: {done}"
        );
    }
);

both_backends!(an_old_password_is_changed_at_the_next_sign_in, |db| {
    let b = Browser::new(db).await;
    settings(&b, serde_json::json!({ "password_max_age_days": 90 })).await;
    b.t.clock.advance(89 * 86_400);
    b.sign_in("crm-web", CRM, "alice").await;
    b.t.clock.advance(86_400);
    let login = b.start("crm-web", CRM, "&prompt=login").await;
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("older than your organisation allows"),
        "{page}"
    );
    let body = format!(
        "flow={}&csrf={}&new_password={p}&confirm_password={p}",
        hidden(&page, "flow"),
        hidden(&page, "csrf"),
        p = enc("a fresh passphrase")
    );
    let r = b.post_form("/t/acme/login/password", &body).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    b.sign_in_with("crm-web", CRM, "alice", "a fresh passphrase")
        .await;
});
