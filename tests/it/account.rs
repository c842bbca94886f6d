//! The account page: signing in to it, the profile and language, the password, binding a new
//! email address or mobile number by a code, and ending sessions.

use reqwest::StatusCode;
use sesame::account::{Email, Login};
use sesame::store::{audit, users};
use sesame::tenant::TenantId;

use crate::browser::{Browser, CRM_SECRET, PASSWORD, basic, enc, hidden, unescape};
use crate::codes::{code_in, outbox_browser, outbox_for, said};
use crate::support::both_backends;

const CRM: &str = "https://crm.acme.test/cb";

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn alice(b: &Browser) -> users::User {
    let acme = acme();
    b.t.app
        .store
        .run_blocking(|c| users::find_by_login(c, &acme, &Login::parse("alice", None).unwrap()))
        .unwrap()
        .unwrap()
}

async fn account(b: &Browser) -> String {
    let r = b.get("/t/acme/account").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

/// Posts a form of the account page `page` to `path`.
async fn post(b: &Browser, page: &str, path: &str, fields: &str) -> reqwest::Response {
    b.post_form(
        path,
        &format!("csrf={}&{fields}", enc(&hidden(page, "csrf"))),
    )
    .await
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

/// Alice signs in from a second browser; returns it.
async fn sign_in_elsewhere(b: &Browser) -> reqwest::Client {
    let other = b.other_client();
    let r = b.sign_in_from(&other, "alice", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    other
}

/// Whether `client` is signed in: the app gets a code without the sign-in page.
async fn still_signed_in(b: &Browser, client: &reqwest::Client) -> bool {
    let r = client
        .get(b.server.url(&Browser::authorize_path("crm-web", CRM, "")))
        .send()
        .await
        .unwrap();
    location(&r).starts_with(CRM)
}

both_backends!(a_signed_out_visitor_signs_in_and_comes_back, |db| {
    let b = Browser::new(db).await;
    let r = b.get("/t/acme/account").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = location(&r);
    assert!(login.starts_with("/t/acme/login?flow="), "{login}");
    let page = b.get(&login).await.text().await.unwrap();
    assert!(
        page.contains("continue to <strong>your account</strong>"),
        "{page}"
    );
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/t/acme/account");
    let page = account(&b).await;
    assert!(
        page.contains("Your account") && page.contains("alice@acme.test"),
        "{page}"
    );
    assert!(
        page.contains("Alice &lt;b&gt;Liddell&lt;&#x2f;b&gt;"),
        "escaped: {page}"
    );
});

both_backends!(the_profile_and_language_are_the_user_s, |db| {
    let b = Browser::new(db).await;
    b.sign_in("crm-web", CRM, "alice").await;
    let page = account(&b).await;
    let r = post(
        &b,
        &page,
        "/t/acme/account/profile",
        "display_name=&locale=",
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("display name"));
    // A right-to-left override would make the name read as another.
    let r = post(
        &b,
        &page,
        "/t/acme/account/profile",
        "display_name=Alice%E2%80%AEnimdA&locale=",
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("display name"));
    let r = post(
        &b,
        &page,
        "/t/acme/account/profile",
        "display_name=A&locale=xx",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(
        &b,
        &page,
        "/t/acme/account/profile",
        "display_name=Alice+%3Cscript%3Ex%3C%2Fscript%3E&locale=zh-TW",
    )
    .await;
    assert_eq!(location(&r), "/t/acme/account?done=profile");
    let page = b.get(&location(&r)).await.text().await.unwrap();
    assert!(page.contains("我的帳號"), "her language now: {page}");
    assert!(page.contains("個人資料已儲存"));
    assert!(!page.contains("<script>x"), "escaped");
    assert_eq!(alice(&b).profile.locale.as_deref(), Some("zh-TW"));
});

both_backends!(changing_the_password_ends_every_other_session, |db| {
    let b = outbox_browser(db).await;
    let signed = b.sign_in("crm-web", CRM, "alice").await;
    let elsewhere = sign_in_elsewhere(&b).await;
    let (_, tokens) = b.redeem(&signed["code"]).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let page = account(&b).await;
    let r = post(
        &b,
        &page,
        "/t/acme/account/password",
        "current_password=wrong&new_password=a+new+passphrase&confirm_password=a+new+passphrase",
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("incorrect"));
    assert_eq!(alice(&b).failed_logins, 1, "counted like a sign-in");
    let r = post(
        &b,
        &page,
        "/t/acme/account/password",
        &format!(
            "current_password={}&new_password=password1&confirm_password=password1",
            enc(PASSWORD)
        ),
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("commonly used"));
    let r = post(
        &b,
        &page,
        "/t/acme/account/password",
        &format!(
            "current_password={}&new_password=a+new+passphrase&confirm_password=a+new+passphrase",
            enc(PASSWORD)
        ),
    )
    .await;
    assert_eq!(location(&r), "/t/acme/account?done=password");
    let (status, _) = b.refresh(&basic("crm-web", CRM_SECRET), &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "refresh tokens revoked");
    assert_eq!(
        b.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "and access tokens"
    );
    assert!(
        !still_signed_in(&b, &elsewhere).await,
        "the other browser is signed out"
    );
    assert!(
        still_signed_in(&b, &b.server.client).await,
        "this one is not"
    );
    assert_eq!(
        account(&b).await.matches("class=\"current\"").count(),
        1,
        "still signed in here"
    );
    b.sign_in_with("crm-web", CRM, "alice", "a new passphrase")
        .await;
    assert!(
        outbox_for(&b, "alice@acme.test")
            .iter()
            .any(|m| m.subject.contains("password was changed"))
    );
});

/// The value of the session cookie that `r` sets, if it sets one.
fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("sesame-session-acme="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// Whether a browser holding only the session cookie `value` gets the account page.
async fn cookie_opens_account(b: &Browser, value: &str) -> bool {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(b.server.url("/t/acme/account"))
        .header("cookie", format!("sesame-session-acme={value}"))
        .send()
        .await
        .unwrap();
    r.status() == StatusCode::OK
}

both_backends!(
    a_password_change_gives_this_browser_a_new_session_cookie,
    |db| {
        let b = Browser::new(db).await;
        let login = b.start("crm-web", CRM, "").await;
        let r = b.submit(&login, "alice", PASSWORD, "").await;
        let before = session_cookie(&r).expect("the sign-in sets the session cookie");
        assert!(cookie_opens_account(&b, &before).await);
        // A wrong current password changes nothing, and the lock it can bring is audited.
        let page = account(&b).await;
        for _ in 0..5 {
            let r = post(
                &b,
                &page,
                "/t/acme/account/password",
                "current_password=wrong&new_password=a+new+passphrase&confirm_password=a+new+passphrase",
            )
            .await;
            assert_eq!(session_cookie(&r), None);
        }
        let acme = acme();
        let events =
            b.t.app
                .store
                .run_blocking(|c| audit::list(c, &acme, 50))
                .unwrap();
        let alice_id = alice(&b).id;
        assert!(
            events.iter().any(
                |e| e.action == "user.locked" && e.target.as_deref() == Some(alice_id.as_str())
            ),
            "{events:?}"
        );
        let acme = acme.clone();
        b.t.app
            .store
            .run_blocking(|c| users::unlock(c, &acme, &alice_id, b.t.app.now()))
            .unwrap();

        let r = post(
            &b,
            &page,
            "/t/acme/account/password",
            &format!(
                "current_password={}&new_password=a+new+passphrase&confirm_password=a+new+passphrase",
                enc(PASSWORD)
            ),
        )
        .await;
        assert_eq!(location(&r), "/t/acme/account?done=password");
        let after = session_cookie(&r).expect("a new session cookie");
        assert_ne!(after, before);
        assert!(
            !cookie_opens_account(&b, &before).await,
            "a copy of the old cookie is worthless"
        );
        assert!(cookie_opens_account(&b, &after).await);
        assert_eq!(
            account(&b).await.matches("class=\"current\"").count(),
            1,
            "the same session goes on in this browser"
        );
    }
);

both_backends!(a_new_email_or_number_is_bound_by_a_code_sent_to_it, |db| {
    let b = outbox_browser(db).await;
    b.sign_in("crm-web", CRM, "alice").await;
    let page = account(&b).await;
    let r = post(
        &b,
        &page,
        "/t/acme/account/contact",
        "kind=email&address=not-an-address",
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("valid email"));
    let r = post(
        &b,
        &page,
        "/t/acme/account/contact",
        "kind=email&address=Alice.New%40Acme.test",
    )
    .await;
    let pending = r.text().await.unwrap();
    assert!(said(&pending).contains("alice.new@acme.test"), "{pending}");
    let code = code_in(&outbox_for(&b, "alice.new@acme.test")[0].body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let confirm =
        |code: &str| format!("kind=email&address=alice.new%40acme.test&region=CN&code={code}");
    let r = post(
        &b,
        &pending,
        "/t/acme/account/contact/confirm",
        &confirm(wrong),
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));
    let r = post(
        &b,
        &pending,
        "/t/acme/account/contact/confirm",
        &confirm(&code),
    )
    .await;
    assert_eq!(location(&r), "/t/acme/account?done=email");
    assert!(
        outbox_for(&b, "alice@acme.test").iter().any(|m| m
            .subject
            .contains("sign-in address of your Acme & Co account changed")),
        "the old address is told"
    );
    let me = alice(&b);
    assert_eq!(me.profile.email, Email::parse("alice.new@acme.test"));
    assert!(me.email_verified);
    // The same code again: spent, and nothing changes.
    let r = post(
        &b,
        &pending,
        "/t/acme/account/contact/confirm",
        &confirm(&code),
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));
    assert_eq!(alice(&b).profile.email, me.profile.email);
    // A mobile number, typed as people do.
    let page = account(&b).await;
    let r = post(
        &b,
        &page,
        "/t/acme/account/contact",
        "kind=phone&region=HK&address=5123+4567",
    )
    .await;
    let pending = r.text().await.unwrap();
    let code = code_in(&outbox_for(&b, "+85251234567")[0].body);
    let r = post(
        &b,
        &pending,
        "/t/acme/account/contact/confirm",
        &format!("kind=phone&address=%2B85251234567&region=HK&code={code}"),
    )
    .await;
    assert_eq!(location(&r), "/t/acme/account?done=phone");
    assert_eq!(alice(&b).profile.phone.unwrap().as_str(), "+85251234567");
    let acme = acme();
    let events =
        b.t.app
            .store
            .run_blocking(|c| audit::list(c, &acme, 1000))
            .unwrap();
    assert!(events.iter().any(|e| e.action == "account.email"));
    assert!(events.iter().any(|e| e.action == "account.phone"));
});

both_backends!(an_address_of_another_account_is_refused_once_proven, |db| {
    let b = outbox_browser(db).await;
    b.add_user_by_email("taken@acme.test", "Taken");
    b.sign_in("crm-web", CRM, "alice").await;
    let page = account(&b).await;
    let r = post(
        &b,
        &page,
        "/t/acme/account/contact",
        "kind=email&address=taken%40acme.test",
    )
    .await;
    let pending = r.text().await.unwrap();
    assert!(
        said(&pending).contains("on its way"),
        "the same answer as for a free address"
    );
    let code = code_in(&outbox_for(&b, "taken@acme.test")[0].body);
    let r = post(
        &b,
        &pending,
        "/t/acme/account/contact/confirm",
        &format!("kind=email&address=taken%40acme.test&region=CN&code={code}"),
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("belongs to another account"));
    assert_eq!(alice(&b).profile.email, Email::parse("alice@acme.test"));
});

both_backends!(sessions_are_listed_and_ended, |db| {
    let b = Browser::new(db).await;
    b.sign_in("crm-web", CRM, "alice").await;
    let other = sign_in_elsewhere(&b).await;
    let page = account(&b).await;
    assert_eq!(page.matches("name=\"sid\"").count(), 2, "{page}");
    assert!(page.contains("this browser"));
    // Forged: no CSRF token, or a session id that is not Alice's.
    let sids: Vec<String> = page
        .split("name=\"sid\" value=\"")
        .skip(1)
        .map(|s| unescape(s.split('"').next().unwrap()))
        .collect();
    let r = b
        .post_form("/t/acme/account/sessions/end", &format!("sid={}", sids[0]))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(
        &b,
        &page,
        "/t/acme/account/sessions/end",
        "sid=somebody-else",
    )
    .await;
    assert_eq!(location(&r), "/t/acme/account?done=session");
    assert_eq!(
        account(&b).await.matches("name=\"sid\"").count(),
        2,
        "nothing ended"
    );
    // Nor does the real session id of another user: Olga, signed in in her own browser.
    let olga = b.other_client();
    b.sign_in_from(&olga, "olga", &[]).await;
    let her_page = olga
        .get(b.server.url("/t/acme/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hers = hidden(&her_page, "sid");
    let r = post(
        &b,
        &page,
        "/t/acme/account/sessions/end",
        &format!("sid={hers}"),
    )
    .await;
    assert_eq!(location(&r), "/t/acme/account?done=session");
    let r = olga
        .get(b.server.url("/t/acme/account"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "Olga is still signed in");
    // Everywhere else: the other browser must sign in again, this one goes on.
    let r = post(&b, &page, "/t/acme/account/sessions/end", "others=yes").await;
    assert_eq!(location(&r), "/t/acme/account?done=sessions");
    let r = other
        .get(b.server.url(&Browser::authorize_path("crm-web", CRM, "")))
        .send()
        .await
        .unwrap();
    assert!(
        location(&r).starts_with("/t/acme/login"),
        "signed out there"
    );
    // Ending this browser's own session signs it out.
    let page = account(&b).await;
    let mine = hidden(&page, "sid");
    let r = post(
        &b,
        &page,
        "/t/acme/account/sessions/end",
        &format!("sid={mine}"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b.get("/t/acme/account").await;
    assert!(
        location(&r).starts_with("/t/acme/login"),
        "asked to sign in"
    );
});

both_backends!(account_forms_need_a_session_and_its_token, |db| {
    let b = Browser::new(db).await;
    let r = b
        .post_form("/t/acme/account/profile", "display_name=X")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("no longer signed in"));
    b.sign_in("crm-web", CRM, "alice").await;
    let r = b
        .post_form("/t/acme/account/profile", "csrf=forged&display_name=X")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b
        .post_form(
            "/t/acme/account/profile",
            &format!("csrf=x&display_name={}", "a".repeat(100_000)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
});

both_backends!(changing_where_codes_go_needs_a_recent_sign_in, |db| {
    let b = outbox_browser(db).await;
    b.sign_in("crm-web", CRM, "alice").await;
    b.t.clock.advance(sesame::selfservice::REAUTH_WINDOW + 1);
    let page = account(&b).await;
    let r = post(
        &b,
        &page,
        "/t/acme/account/contact",
        "kind=email&address=new%40acme.test",
    )
    .await;
    let html = r.text().await.unwrap();
    assert!(said(&html).contains("sign in again"), "{html}");
    assert!(outbox_for(&b, "new@acme.test").is_empty(), "nothing sent");
    // Signing in again (the same user) renews the sign-in time, then it works.
    let r = b.get("/t/acme/account?reauth=1").await;
    let login = location(&r);
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(location(&r), "/t/acme/account");
    let page = account(&b).await;
    let r = post(
        &b,
        &page,
        "/t/acme/account/contact",
        "kind=email&address=new%40acme.test",
    )
    .await;
    assert!(said(&r.text().await.unwrap()).contains("on its way"));
    // A code asked for just inside the window and entered just outside it changes nothing: the
    // change itself needs the recent sign-in, not only the asking.
    b.t.clock.advance(sesame::selfservice::REAUTH_WINDOW - 60);
    let page = account(&b).await;
    let r = post(
        &b,
        &page,
        "/t/acme/account/contact",
        "kind=email&address=later%40acme.test",
    )
    .await;
    let pending = r.text().await.unwrap();
    assert!(said(&pending).contains("on its way"), "{pending}");
    let code = code_in(&outbox_for(&b, "later@acme.test")[0].body);
    b.t.clock.advance(120);
    let r = post(
        &b,
        &pending,
        "/t/acme/account/contact/confirm",
        &format!("kind=email&address=later%40acme.test&region=CN&code={code}"),
    )
    .await;
    let html = r.text().await.unwrap();
    assert!(said(&html).contains("sign in again"), "{html}");
    assert_eq!(alice(&b).profile.email, Email::parse("alice@acme.test"));
});

both_backends!(
    an_account_without_a_password_sets_one_after_a_recent_sign_in,
    |db| {
        let b = outbox_browser(db).await;
        b.add_user_by_email("bob@acme.test", "Bob");
        // Bob signs in by code.
        let page = crate::codes::code_page(&b).await;
        let (_, sent) = crate::codes::get_code(&b, &page, "bob@acme.test").await;
        let code = code_in(&outbox_for(&b, "bob@acme.test")[0].body);
        let r = crate::codes::submit_code(&b, &sent, "bob@acme.test", &code).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let page = account(&b).await;
        assert!(
            !page.contains("current_password"),
            "no current password to ask for"
        );
        let r = post(
            &b,
            &page,
            "/t/acme/account/password",
            "new_password=bob+sets+a+passphrase&confirm_password=bob+sets+a+passphrase",
        )
        .await;
        assert_eq!(location(&r), "/t/acme/account?done=password");
        b.sign_in_with("crm-web", CRM, "bob@acme.test", "bob sets a passphrase")
            .await;
    }
);
