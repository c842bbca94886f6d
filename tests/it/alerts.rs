//! Login alerts: a sign-in from a browser or network the user has not used before sends a
//! notice; the first sign-in and the usual browser send none.

use reqwest::StatusCode;
use sesame::crypto::secret::TokenHash;
use sesame::store::origins;
use sesame::tenant::TenantId;

use crate::browser::Browser;
use crate::codes::{outbox_browser, outbox_for};
use crate::support::both_backends;

const CRM: &str = "https://crm.acme.test/cb";

/// Signs Alice in through `client` (a browser with its own cookies).
async fn sign_in_with(b: &Browser, client: &reqwest::Client) {
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36";
    let r = b
        .sign_in_from(client, "alice", &[("user-agent", chrome)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

fn alerts(b: &Browser) -> Vec<sesame::store::outbox::StoredMessage> {
    outbox_for(b, "alice@acme.test")
        .into_iter()
        .filter(|m| m.subject.starts_with("New sign-in"))
        .collect()
}

both_backends!(a_sign_in_from_a_new_browser_sends_an_alert, |db| {
    let b = outbox_browser(db).await;
    b.sign_in("crm-web", CRM, "alice").await;
    assert!(
        alerts(&b).is_empty(),
        "the first sign-in ever alerts nobody"
    );
    b.sign_in("crm-web", CRM, "alice").await;
    assert!(alerts(&b).is_empty(), "the usual browser");
    let elsewhere = b.other_client();
    sign_in_with(&b, &elsewhere).await;
    let sent = alerts(&b);
    assert_eq!(sent.len(), 1);
    let body = &sent[0].body;
    assert!(body.contains("Chrome on Windows"), "{body}");
    assert!(body.contains("127.0.0.1"), "{body}");
    assert!(
        body.contains("http://127.0.0.1:8080/t/acme/account"),
        "{body}"
    );
    sign_in_with(&b, &elsewhere).await;
    assert_eq!(alerts(&b).len(), 1, "known by now");
    // A User-Agent that names no browser is not quoted: the mail is the organization's words.
    let words = "Your account is at risk: call +1 555 0100";
    let r = b
        .sign_in_from(&b.other_client(), "alice", &[("user-agent", words)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let sent = alerts(&b);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().any(|m| m.body.contains("Unknown browser")));
    assert!(!sent.iter().any(|m| m.body.contains("555 0100")));
});

both_backends!(a_new_network_counts_as_new, |db| {
    let b = Browser::new(db).await;
    let acme = TenantId::parse("acme").unwrap();
    let user =
        b.t.app
            .store
            .run_blocking(|c| {
                sesame::store::users::find_by_login(
                    c,
                    &acme,
                    &sesame::account::Login::parse("alice", None).unwrap(),
                )
            })
            .unwrap()
            .unwrap();
    let now = b.t.app.now();
    let browser = TokenHash::of("browser one");
    let home = TokenHash::of("198.51.100.0/24");
    let cafe = TokenHash::of("203.0.113.0/24");
    let seen = |network: &TokenHash| {
        b.t.app
            .store
            .run_blocking(|c| {
                origins::sign_in(c, &acme, &user.id, Some(&browser), Some(network), now)
            })
            .unwrap()
    };
    let first = seen(&home);
    assert!(!first.any_before && first.new_browser && first.new_network);
    let again = seen(&home);
    assert!(again.any_before && !again.new_browser && !again.new_network);
    let travelling = seen(&cafe);
    assert!(travelling.any_before && !travelling.new_browser && travelling.new_network);
});

/// Signs Alice in with `X-Forwarded-For: forwarded`; returns the address the audit log noted.
async fn audited_address(b: &Browser, forwarded: &str) -> Option<String> {
    let r = b
        .sign_in_from(
            &b.other_client(),
            "alice",
            &[("x-forwarded-for", forwarded)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let acme = TenantId::parse("acme").unwrap();
    let events =
        b.t.app
            .store
            .run_blocking(|c| sesame::store::audit::list(c, &acme, 1000))
            .unwrap();
    events
        .into_iter()
        .find(|e| e.action == "sign_in")
        .and_then(|e| e.ip)
}

both_backends!(
    a_trusted_balancer_names_the_client_and_nobody_else_can,
    |db| {
        let direct = Browser::new(db).await;
        assert_eq!(
            audited_address(&direct, "198.51.100.7").await.as_deref(),
            Some("127.0.0.1"),
            "a forwarded address from anyone is not believed"
        );
        let behind = Browser::with_config(crate::support::TestDb::sqlite(), |c| {
            c.http.trusted_proxies = vec!["127.0.0.0/8".into()];
        })
        .await;
        assert_eq!(
            audited_address(&behind, "203.0.113.1, 198.51.100.7")
                .await
                .as_deref(),
            Some("198.51.100.7"),
            "the rightmost address the balancer did not add"
        );
    }
);
