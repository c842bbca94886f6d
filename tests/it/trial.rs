//! Free trials: the link on the platform's sign-in page, the application, the approval that
//! creates the tenant and the contact's account, activation by email, and the trial's end.

use reqwest::StatusCode;
use sesame::store::{tenants, trials};
use sesame::tenant::TenantId;

use crate::browser::{Browser, enc, hidden};
use crate::codes::{outbox_browser, said};
use crate::support::both_backends;

async fn apply(b: &Browser, fields: &str) -> (StatusCode, String) {
    let page = b.get("/t/default/trial").await.text().await.unwrap();
    let r = b
        .post_form(
            "/t/default/trial",
            &format!("csrf={}&{fields}", enc(&hidden(&page, "csrf"))),
        )
        .await;
    (r.status(), r.text().await.unwrap())
}

const GOOD: &str = "company=Acme+Trading&contact_name=Ann+Lee&region=CN&phone=139+0013+9000&email=ann%40trading.test";

/// Messages to `to`, of any tenant, newest first.
fn mail_to(b: &Browser, to: &str) -> Vec<sesame::store::outbox::StoredMessage> {
    b.t.app
        .store
        .run_blocking(|c| sesame::store::outbox::list(c, None, 1000))
        .unwrap()
        .into_iter()
        .filter(|m| m.destination == to)
        .collect()
}

fn pending(b: &Browser) -> Vec<trials::Application> {
    b.t.app
        .store
        .run_blocking(|c| trials::pending(c, 100))
        .unwrap()
}

both_backends!(
    the_platform_page_offers_a_trial_and_records_applications,
    |db| {
        let b = outbox_browser(db).await;
        // The platform's own sign-in page (reached through its account page) links to the form.
        let r = b.get("/t/default/account").await;
        let login = r.headers()["location"].to_str().unwrap().to_string();
        let page = b.get(&login).await.text().await.unwrap();
        assert!(page.contains("id=\"free-trial\""), "{page}");
        let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;
        assert!(
            !b.get(&login)
                .await
                .text()
                .await
                .unwrap()
                .contains("free-trial"),
            "not on a tenant's"
        );
        assert_eq!(b.get("/t/acme/trial").await.status(), StatusCode::NOT_FOUND);

        let (_, html) = apply(
            &b,
            "company=&contact_name=Ann&region=CN&phone=13900139000&email=a%40b.c",
        )
        .await;
        assert!(
            said(&html).contains("company and the contact name"),
            "{html}"
        );
        let (_, html) = apply(
            &b,
            "company=X&contact_name=Ann&region=CN&phone=123&email=a%40b.c",
        )
        .await;
        assert!(said(&html).contains("mobile number"), "{html}");
        assert!(pending(&b).is_empty(), "nothing recorded for a bad form");
        let (status, html) = apply(&b, GOOD).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Application received"), "{html}");
        let recorded = pending(&b);
        assert_eq!(recorded.len(), 1);
        assert_eq!(
            (recorded[0].company.as_str(), recorded[0].phone.as_str()),
            ("Acme Trading", "+8613900139000")
        );
        let acks = mail_to(&b, "ann@trading.test");
        assert_eq!(acks.len(), 1);
        assert!(
            acks[0]
                .subject
                .contains("We received your trial application")
        );
        assert!(
            !acks[0].body.contains("Acme Trading"),
            "nothing the applicant typed"
        );
        // One address cannot apply without end.
        for _ in 1..sesame::trial::PER_ADDRESS_HOURLY {
            apply(&b, GOOD).await;
        }
        let (_, html) = apply(&b, GOOD).await;
        assert!(said(&html).contains("Too many applications"), "{html}");
        // Without the form's CSRF token: refused.
        let r = b.post_form("/t/default/trial", GOOD).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
);

/// Ann signs in to her tenant's account page.
async fn sign_in_ann(b: &Browser) -> reqwest::Response {
    let r = b.get("/t/acme-trading/account").await;
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let page = b.get(&login).await.text().await.unwrap();
    let body = format!(
        "flow={}&csrf={}&region=CN&account=ann%40trading.test&password={}&agree=yes",
        hidden(&page, "flow"),
        hidden(&page, "csrf"),
        enc("trading passphrase 1")
    );
    b.post_form("/t/acme-trading/login", &body).await
}

both_backends!(an_approved_trial_activates_and_ends, |db| {
    let b = outbox_browser(db).await;
    apply(&b, GOOD).await;
    let id = pending(&b)[0].id.clone();
    let approved = sesame::trial::approve(&b.t.app, &id, None, 30)
        .await
        .unwrap();
    assert_eq!(approved.tenant.as_str(), "acme-trading");
    assert!(pending(&b).is_empty());
    let err = sesame::trial::approve(&b.t.app, &id, None, 30)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no pending application"), "{err}");
    let tenant = TenantId::parse("acme-trading").unwrap();
    let stored =
        b.t.app
            .store
            .run_blocking(|c| tenants::find(c, &tenant))
            .unwrap()
            .unwrap();
    assert_eq!(stored.status, tenants::TenantStatus::Trial);
    assert_eq!(
        stored.trial_expires_at,
        Some(b.t.app.now().plus(30 * 86_400))
    );

    // The activation email's link sets the first password.
    let mail = mail_to(&b, "ann@trading.test")
        .into_iter()
        .find(|m| m.subject.contains("trial is ready"))
        .expect("an activation email");
    let start = mail
        .body
        .find("/t/acme-trading/reset-password?token=")
        .unwrap();
    let link = mail.body[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let form = b.get(&link).await.text().await.unwrap();
    assert!(form.contains("Set a new password"), "{form}");
    let body = format!(
        "csrf={}&token={}&new_password={p}&confirm_password={p}",
        hidden(&form, "csrf"),
        enc(&hidden(&form, "token")),
        p = enc("trading passphrase 1")
    );
    let done = b
        .post_form("/t/acme-trading/reset-password", &body)
        .await
        .text()
        .await
        .unwrap();
    assert!(done.contains("Password changed"), "{done}");

    // Ann signs in to her tenant (its account page), until the trial ends.
    let r = sign_in_ann(&b).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/t/acme-trading/account");
    b.t.clock.advance(31 * 86_400);
    b.t.app.invalidate_caches();
    let r = sign_in_ann(&b).await;
    let html = r.text().await.unwrap();
    assert!(said(&html).contains("trial"), "says why: {html}");
});

both_backends!(an_approval_never_takes_an_existing_tenant, |db| {
    let b = outbox_browser(db).await;
    apply(&b, GOOD).await;
    let id = pending(&b)[0].id.clone();
    let err = sesame::trial::approve(&b.t.app, &id, Some("acme"), 30)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
    assert_eq!(pending(&b).len(), 1, "still pending");
    let err = sesame::trial::approve(&b.t.app, &id, Some("Not A Slug"), 30)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a tenant id"), "{err}");
});

// The contact hears of the approval only by email: where this process cannot send one, nothing
// is made, rather than a tenant whose owner is never told.
both_backends!(an_approval_without_email_delivery_changes_nothing, |db| {
    let b = Browser::new(db).await;
    apply(&b, GOOD).await;
    let id = pending(&b)[0].id.clone();
    let err = sesame::trial::approve(&b.t.app, &id, None, 30)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("email.driver"), "{err}");
    assert_eq!(pending(&b).len(), 1, "still pending");
    let trading = sesame::tenant::TenantId::parse("acme-trading").unwrap();
    let made =
        b.t.app
            .store
            .run_blocking(|c| sesame::store::tenants::find(c, &trading))
            .unwrap();
    assert!(made.is_none(), "no tenant made");
});
