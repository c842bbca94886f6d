//! The Service Agreement and Privacy Policy: acceptance recorded at sign-in, and a new version
//! asked for again from users who are still signed in, before any app gets a code.

use reqwest::StatusCode;
use sesame::store::{agreements, tenants, users};
use sesame::tenant::TenantId;

use crate::browser::{Browser, hidden, params};
use crate::support::both_backends;

const CRM: &str = "https://crm.acme.test/cb";

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn acceptances(b: &Browser, username: &str) -> Vec<(String, i64, Option<String>)> {
    let acme = acme();
    let login = sesame::account::Login::parse(username, None).unwrap();
    b.t.app
        .store
        .run_blocking(|c| {
            let user = users::find_by_login(c, &acme, &login)?.unwrap();
            agreements::list_for_user(c, &acme, &user.id)
        })
        .unwrap()
        .into_iter()
        .map(|(v, at, ip)| (v, at.0, ip))
        .collect()
}

async fn publish(b: &Browser, version: &str) {
    let acme = acme();
    let now = b.t.app.now();
    b.t.app
        .store
        .run_blocking(|c| {
            let mut spec = tenants::find(c, &acme)?.unwrap().spec();
            spec.settings = serde_json::json!({
                "agreement_version": version,
                "terms_text": "Be nice.",
            });
            tenants::update(c, &acme, &spec, now)
        })
        .unwrap();
    b.t.app.invalidate_caches();
}

both_backends!(
    signing_in_records_the_acceptance_of_the_current_version,
    |db| {
        let b = Browser::new(db).await;
        assert!(acceptances(&b, "alice").is_empty());
        b.sign_in("crm-web", CRM, "alice").await;
        let now = b.t.app.now().0;
        assert_eq!(
            acceptances(&b, "alice"),
            vec![("1".to_string(), now, Some("127.0.0.1".to_string()))]
        );
        b.sign_in("crm-web", CRM, "alice").await;
        assert_eq!(acceptances(&b, "alice").len(), 1, "once per version");
    }
);

both_backends!(
    a_new_version_is_asked_for_before_any_app_gets_a_code,
    |db| {
        let b = Browser::new(db).await;
        b.sign_in("crm-web", CRM, "alice").await;
        publish(&b, "2026-12").await;
        let page = b.get("/t/acme/legal/terms").await.text().await.unwrap();
        assert!(
            page.contains("version 2026-12") && page.contains("Be nice."),
            "{page}"
        );

        // Silent requests cannot show the page.
        let r = b
            .get(&Browser::authorize_path("crm-web", CRM, "&prompt=none"))
            .await;
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(params(&location)["error"], "interaction_required");

        // Declining tells the app.
        let r = b.get(&Browser::authorize_path("crm-web", CRM, "")).await;
        assert_eq!(r.status(), StatusCode::OK);
        let page = r.text().await.unwrap();
        assert!(page.contains("new version (2026-12)"), "{page}");
        let form = |page: &str, decision: &str, agree: bool| {
            format!(
                "flow={}&csrf={}&decision={decision}{}",
                hidden(page, "flow"),
                hidden(page, "csrf"),
                if agree { "&agree=yes" } else { "" }
            )
        };
        let r = b
            .post_form("/t/acme/agreement", &form(&page, "decline", false))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(params(&location)["error"], "access_denied");

        // Agreeing needs the box ticked, then the app gets its code; the acceptance is recorded.
        let page = b
            .get(&Browser::authorize_path("crm-web", CRM, ""))
            .await
            .text()
            .await
            .unwrap();
        let r = b
            .post_form("/t/acme/agreement", &form(&page, "accept", false))
            .await;
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("agree to the Service Agreement")
        );
        let r = b
            .post_form("/t/acme/agreement", &form(&page, "accept", true))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(params(&location).contains_key("code"), "{location}");
        let versions: Vec<String> = acceptances(&b, "alice").into_iter().map(|a| a.0).collect();
        assert_eq!(versions, vec!["2026-12".to_string(), "1".to_string()]);
        // Not asked again.
        let r = b.get(&Browser::authorize_path("crm-web", CRM, "")).await;
        assert!(r.headers()["location"].to_str().unwrap().starts_with(CRM));
        // The same flow cannot be answered twice.
        let r = b
            .post_form("/t/acme/agreement", &form(&page, "accept", true))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
);

both_backends!(the_agreement_form_refuses_forged_posts, |db| {
    let b = Browser::new(db).await;
    b.sign_in("crm-web", CRM, "alice").await;
    publish(&b, "2").await;
    let page = b
        .get(&Browser::authorize_path("crm-web", CRM, ""))
        .await
        .text()
        .await
        .unwrap();
    let flow = hidden(&page, "flow");
    let r = b
        .post_form(
            "/t/acme/agreement",
            &format!("flow={flow}&decision=accept&agree=yes"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    // Another browser, without the session, cannot accept for Alice.
    let r = b
        .post_form_elsewhere(
            "/t/acme/agreement",
            &format!(
                "flow={flow}&csrf={}&decision=accept&agree=yes",
                hidden(&page, "csrf")
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b
        .post_form(
            "/t/acme/agreement",
            &format!("flow={flow}&csrf={}&decision=maybe", hidden(&page, "csrf")),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(acceptances(&b, "alice").len(), 1, "version 2 not accepted");
});
