//! "Remember me": unticked, the session cookie ends with the browser and the session with its
//! idle timeout; ticked, the cookie and the session last the tenant's `remember_me_days`
//! however idle; a tenant can turn it off.

use reqwest::StatusCode;
use sesame::store::tenants;
use sesame::tenant::TenantId;

use crate::browser::{Browser, PASSWORD, enc, hidden};
use crate::support::both_backends;

const CRM: &str = "https://crm.acme.test/cb";

/// The session cookie a sign-in response sets.
fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("sesame-session-acme="))
        .expect("a session cookie")
}

/// Whether the browser is still signed in: the app gets a code without the sign-in page.
async fn signed_in(b: &Browser) -> bool {
    let r = b.get(&Browser::authorize_path("crm-web", CRM, "")).await;
    let location = r.headers()["location"].to_str().unwrap();
    location.starts_with(CRM)
}

both_backends!(unticked_a_session_ends_with_its_idle_timeout, |db| {
    let b = Browser::new(db).await;
    let login = b.start("crm-web", CRM, "").await;
    let page = b.get(&login).await.text().await.unwrap();
    assert!(page.contains("Remember me for 30 days"), "{page}");
    assert!(
        !page.contains("name=\"remember\" value=\"yes\" id=\"remember\" checked"),
        "unticked by default"
    );
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        !session_cookie(&r).contains("Max-Age"),
        "ends with the browser"
    );
    b.t.clock.advance(b.t.app.config.session.idle_timeout + 1);
    assert!(!signed_in(&b).await);
});

both_backends!(
    ticked_a_session_lasts_the_tenant_s_days_however_idle,
    |db| {
        let b = Browser::new(db).await;
        let login = b.start("crm-web", CRM, "").await;
        let r = b.submit(&login, "alice", PASSWORD, "&remember=yes").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(
            session_cookie(&r).contains("Max-Age=2592000"),
            "{}",
            session_cookie(&r)
        );
        // Idle far past the usual timeouts, and still signed in on this browser.
        b.t.clock.advance(20 * 86_400);
        assert!(signed_in(&b).await);
        assert!(
            !b.other_client()
                .get(b.server.url(&Browser::authorize_path("crm-web", CRM, "")))
                .send()
                .await
                .unwrap()
                .headers()["location"]
                .to_str()
                .unwrap()
                .starts_with(CRM),
            "not on another browser"
        );
        b.t.clock.advance(10 * 86_400);
        assert!(!signed_in(&b).await, "over after 30 days");
    }
);

both_backends!(the_choice_survives_the_first_login_password_change, |db| {
    let b = Browser::new(db).await;
    let login = b.start("crm-web", CRM, "").await;
    let r = b
        .submit(&login, "newbie", "temporary password 1", "&remember=yes")
        .await;
    let page = r.text().await.unwrap();
    let body = format!(
        "flow={}&csrf={}&new_password={p}&confirm_password={p}",
        hidden(&page, "flow"),
        hidden(&page, "csrf"),
        p = enc("my own passphrase")
    );
    let r = b.post_form("/t/acme/login/password", &body).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie(&r).contains("Max-Age=2592000"));
});

both_backends!(a_tenant_can_turn_it_off, |db| {
    let b = Browser::new(db).await;
    let acme = TenantId::parse("acme").unwrap();
    let now = b.t.app.now();
    b.t.app
        .store
        .run_blocking(|c| {
            let mut spec = tenants::find(c, &acme)?.unwrap().spec();
            spec.settings = serde_json::json!({ "remember_me_days": 0 });
            tenants::update(c, &acme, &spec, now)
        })
        .unwrap();
    b.t.app.invalidate_caches();
    let login = b.start("crm-web", CRM, "").await;
    let page = b.get(&login).await.text().await.unwrap();
    assert!(!page.contains("name=\"remember\""), "not offered");
    let r = b.submit(&login, "alice", PASSWORD, "&remember=yes").await;
    assert!(
        !session_cookie(&r).contains("Max-Age"),
        "a forged tick does nothing"
    );
});
