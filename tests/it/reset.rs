//! Forgot password: a link by email or a code by SMS, a new password that ends every session and
//! refresh token, a notice, and no way to learn which accounts exist.

use reqwest::StatusCode;
use sesame::store::audit;
use sesame::tenant::TenantId;

use crate::browser::{Browser, CRM_SECRET, PASSWORD, basic, enc, hidden, params, unescape};
use crate::codes::{code_in, outbox_browser, outbox_for, said};
use crate::support::both_backends;

const CRM: &str = "https://crm.acme.test/cb";
const NEW_PASSWORD: &str = "a brand new passphrase";

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// The forgot-password page reached from a sign-in page's link.
async fn forgot_page(b: &Browser) -> String {
    let login = b.start("crm-web", CRM, "&prompt=login").await;
    let page = b.get(&login).await.text().await.unwrap();
    let link = unescape(
        page.split("href=\"")
            .map(|s| s.split('"').next().unwrap())
            .find(|h| h.contains("forgot-password"))
            .expect("a Forgot password link"),
    );
    let r = b.get(&link).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

async fn ask(b: &Browser, page: &str, account: &str) -> String {
    let body = format!(
        "csrf={}&flow={}&region=CN&account={}",
        hidden(page, "csrf"),
        hidden(page, "flow"),
        enc(account)
    );
    let r = b.post_form("/t/acme/forgot-password", &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

/// The path and query of the reset link in the newest email to `to`.
fn link_in_mail(b: &Browser, to: &str) -> String {
    let mail = &outbox_for(b, to)[0];
    let start = mail
        .body
        .find("/t/acme/reset-password?token=")
        .expect("a link");
    mail.body[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

async fn set_new(b: &Browser, path: &str, page: &str, extra: &str) -> reqwest::Response {
    let body = format!(
        "csrf={}&flow={}&new_password={}&confirm_password={}{extra}",
        hidden(page, "csrf"),
        hidden(page, "flow"),
        enc(NEW_PASSWORD),
        enc(NEW_PASSWORD)
    );
    b.post_form(path, &body).await
}

both_backends!(
    a_link_by_email_resets_the_password_and_signs_out_everywhere,
    |db| {
        let b = outbox_browser(db).await;
        let signed_in = b.sign_in("crm-web", CRM, "alice").await;
        let (_, tokens) = b.redeem(&signed_in["code"]).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

        let page = forgot_page(&b).await;
        let sent = ask(&b, &page, "alice@acme.test").await;
        assert!(said(&sent).contains("link to reset its password"), "{sent}");
        let mail = &outbox_for(&b, "alice@acme.test")[0];
        assert!(
            mail.subject.contains("Reset your Acme & Co password"),
            "{}",
            mail.subject
        );
        let link = link_in_mail(&b, "alice@acme.test");

        // Opening the link spends nothing; a mistyped new password keeps it usable.
        let form = b.get(&link).await.text().await.unwrap();
        let form = b.get(&link).await.text().await.unwrap_or(form);
        assert!(form.contains("name=\"new_password\""), "{form}");
        let token = hidden(&form, "token");
        let body = format!(
            "csrf={}&token={}&new_password={}&confirm_password=different",
            hidden(&form, "csrf"),
            enc(&token),
            enc(NEW_PASSWORD)
        );
        let r = b.post_form("/t/acme/reset-password", &body).await;
        assert!(said(&r.text().await.unwrap()).contains("do not match"));
        // Forged or tampered answers set nothing and spend nothing: no CSRF token, a tampered
        // link token, and the whole form from another browser.
        let good = format!(
            "csrf={}&token={}&new_password={}&confirm_password={}",
            hidden(&form, "csrf"),
            enc(&token),
            enc(NEW_PASSWORD),
            enc(NEW_PASSWORD)
        );
        let mut tampered = token.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        for forged in [
            good.replacen(&format!("csrf={}&", hidden(&form, "csrf")), "", 1),
            good.replacen(&enc(&token), &enc(&tampered), 1),
        ] {
            let r = b.post_form("/t/acme/reset-password", &forged).await;
            assert!(r.status().is_client_error(), "{forged}: {}", r.status());
        }
        let r = b.post_form_elsewhere("/t/acme/reset-password", &good).await;
        assert!(r.status().is_client_error(), "{}", r.status());
        let r = set_new(
            &b,
            "/t/acme/reset-password",
            &form,
            &format!("&token={}", enc(&token)),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        let done = r.text().await.unwrap();
        assert!(done.contains("Password changed"), "{done}");

        // The link works once.
        assert_eq!(b.get(&link).await.status(), StatusCode::BAD_REQUEST);
        let r = set_new(
            &b,
            "/t/acme/reset-password",
            &form,
            &format!("&token={}", enc(&token)),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);

        // Every refresh token and session ended; the old password no longer works, the new one does.
        let (status, error) = b.refresh(&basic("crm-web", CRM_SECRET), &refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        let r = b.get(&Browser::authorize_path("crm-web", CRM, "")).await;
        let location = r.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with("/t/acme/login"),
            "asked to sign in again: {location}"
        );
        let login = b.start("crm-web", CRM, "&prompt=login").await;
        let r = b.submit(&login, "alice", PASSWORD, "").await;
        assert_eq!(r.status(), StatusCode::OK, "the old password fails");
        let r = b.submit(&login, "alice", NEW_PASSWORD, "").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));

        // A notice on each of her channels, and the audit log.
        let notices: Vec<_> = outbox_for(&b, "alice@acme.test")
            .into_iter()
            .filter(|m| m.subject.contains("was changed"))
            .collect();
        assert_eq!(notices.len(), 1);
        assert!(
            outbox_for(&b, "+8613800138000")[0]
                .body
                .contains("password was changed")
        );
        let events =
            b.t.app
                .store
                .run_blocking(|c| audit::list(c, &acme(), 1000))
                .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == "password.reset" && e.outcome == "success")
        );
    }
);

both_backends!(a_code_by_sms_works_only_in_the_browser_that_asked, |db| {
    let b = outbox_browser(db).await;
    let page = forgot_page(&b).await;
    let step = ask(&b, &page, "138 0013 8000").await;
    assert!(said(&step).contains("code is on its way"), "{step}");
    assert!(step.contains("name=\"code\""));
    let code = code_in(&outbox_for(&b, "+8613800138000")[0].body);

    // Another browser, with its own page and CSRF cookie, cannot use the code.
    let other = b.other_client();
    let theirs = other
        .get(b.server.url("/t/acme/forgot-password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body = format!(
        "csrf={}&region=CN&account=13800138000&code={code}&new_password={}&confirm_password={}",
        hidden(&theirs, "csrf"),
        enc(NEW_PASSWORD),
        enc(NEW_PASSWORD)
    );
    let r = other
        .post(b.server.url("/t/acme/forgot-password/code"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));

    // A password too short is refused before the code is spent; then the right one works.
    let short = format!(
        "csrf={}&flow={}&region=CN&account=13800138000&code={code}&new_password=short&confirm_password=short",
        hidden(&step, "csrf"),
        hidden(&step, "flow")
    );
    let r = b.post_form("/t/acme/forgot-password/code", &short).await;
    assert!(said(&r.text().await.unwrap()).contains("least 8"));
    let r = set_new(
        &b,
        "/t/acme/forgot-password/code",
        &step,
        &format!("&region=CN&account=13800138000&code={code}"),
    )
    .await;
    let done = r.text().await.unwrap();
    assert!(done.contains("Password changed"), "{done}");
    assert!(
        unescape(&done).contains("/t/acme/login?flow="),
        "a way back to the sign-in page"
    );
    // The code is spent.
    let r = set_new(
        &b,
        "/t/acme/forgot-password/code",
        &step,
        &format!("&region=CN&account=13800138000&code={code}"),
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));
    b.sign_in_with("crm-web", CRM, "13800138000", NEW_PASSWORD)
        .await;
});

both_backends!(unknown_and_disabled_accounts_get_the_same_answer, |db| {
    let b = outbox_browser(db).await;
    let mut answers = Vec::new();
    for account in ["alice@acme.test", "ghost@acme.test"] {
        let page = forgot_page(&b).await;
        let first = ask(&b, &page, account).await;
        let again = ask(&b, &page, account).await;
        answers.push((said(&first).replace(account, "X"), said(&again)));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0].1.contains("seconds"),
        "a cooldown for both: {:?}",
        answers[0]
    );
    assert!(outbox_for(&b, "ghost@acme.test").is_empty());
});

both_backends!(tampered_expired_and_malformed_links_are_refused, |db| {
    let b = outbox_browser(db).await;
    let page = forgot_page(&b).await;
    ask(&b, &page, "alice@acme.test").await;
    let link = link_in_mail(&b, "alice@acme.test");
    let mut tampered = link.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let long = format!("/t/acme/reset-password?token={}", "a.".repeat(5000));
    for bad in [
        tampered.as_str(),
        "/t/acme/reset-password?token=abc",
        "/t/acme/reset-password",
        "/t/acme/reset-password?token=%ZZ",
        long.as_str(),
    ] {
        let r = b.get(bad).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("This link does not work") || html.contains("invalid"),
            "{html}"
        );
    }
    assert_eq!(
        b.get(&link).await.status(),
        StatusCode::OK,
        "the real one still works"
    );
    b.t.clock.advance(b.t.app.config.codes.link_lifetime);
    assert_eq!(
        b.get(&link).await.status(),
        StatusCode::BAD_REQUEST,
        "expired"
    );
});

both_backends!(without_delivery_the_page_says_whom_to_ask, |db| {
    let b = Browser::new(db).await;
    let r = b.get("/t/acme/forgot-password").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Ask your administrator"));
    // A form posted anyway, without the CSRF cookie, is refused.
    let r = b
        .post_form("/t/acme/forgot-password", "account=alice%40acme.test")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
});

both_backends!(
    a_reset_code_form_tells_nothing_before_the_code_is_right,
    |db| {
        let b = outbox_browser(db).await;
        let mut answers = Vec::new();
        // The number as the new password: refused for a real account, but only once the code is
        // right; before that, a registered number and an unknown one get the same answer.
        for number in ["13800138000", "13900139000"] {
            let page = forgot_page(&b).await;
            let step = ask(&b, &page, number).await;
            let p = format!("%2B86{number}");
            let body = format!(
                "csrf={}&flow={}&region=CN&account={number}&code=000000&new_password={p}&confirm_password={p}",
                hidden(&step, "csrf"),
                hidden(&step, "flow")
            );
            let r = b.post_form("/t/acme/forgot-password/code", &body).await;
            answers.push(said(&r.text().await.unwrap()));
        }
        assert_eq!(answers[0], answers[1]);
        assert!(answers[0].contains("wrong or has expired"), "{answers:?}");
    }
);
