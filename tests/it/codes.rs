//! Sign-in by verification code ("Dynamic Verification Code Login"): the Get button, the code
//! from the outbox, single use, expiry, wrong tries, cooldown, caps and the captcha before them,
//! and answers that never tell whether an account exists.

use reqwest::StatusCode;
use sesame::account::Login;
use sesame::notify::config::Driver;
use sesame::store::{audit, outbox, users};
use sesame::tenant::TenantId;

use sesame::flow::captcha;

use crate::browser::{Browser, PASSWORD, enc, hidden, params};
use crate::support::{TestDb, both_backends};

const CRM: &str = "https://crm.acme.test/cb";

/// A browser against a server whose email and SMS go to the outbox.
pub async fn outbox_browser(db: TestDb) -> Browser {
    Browser::with_config(db, |c| {
        c.email.driver = Driver::Outbox;
        c.sms.driver = Driver::Outbox;
    })
    .await
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// The sign-in page in code mode, for a new flow.
pub async fn code_page(b: &Browser) -> String {
    let login = b.start("crm-web", CRM, "&prompt=login").await;
    let r = b.get(&format!("{login}&method=code")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

/// The page's error or notice sentence.
pub fn said(page: &str) -> String {
    for marker in ["role=\"alert\">", "role=\"status\">"] {
        if let Some(rest) = page.split(marker).nth(1) {
            return rest.split("</p>").next().unwrap_or("").to_string();
        }
    }
    String::new()
}

fn form(page: &str, account: &str, extra: &str) -> String {
    let mut body = format!(
        "flow={}&csrf={}&region=CN&account={}&agree=yes{extra}",
        hidden(page, "flow"),
        hidden(page, "csrf"),
        enc(account)
    );
    if page.contains("name=\"captcha_id\"") && !extra.contains("captcha") {
        body.push_str(&format!("&captcha_id={}", hidden(page, "captcha_id")));
    }
    body
}

/// Presses **Get** on `page` for `account`; a captcha on the page is answered rightly.
pub async fn get_code(b: &Browser, page: &str, account: &str) -> (StatusCode, String) {
    let mut extra = String::new();
    if page.contains("name=\"captcha_id\"") {
        let id = hidden(page, "captcha_id");
        extra = format!(
            "&captcha_id={id}&captcha_answer={}",
            captcha::answer(&b.t.app, &id)
        );
    }
    let r = b
        .post_form("/t/acme/login/code/send", &form(page, account, &extra))
        .await;
    (r.status(), r.text().await.unwrap())
}

/// Signs in with `code` on `page` (a page of the same flow).
pub async fn submit_code(b: &Browser, page: &str, account: &str, code: &str) -> reqwest::Response {
    b.post_form(
        "/t/acme/login/code",
        &form(page, account, &format!("&code={}", enc(code))),
    )
    .await
}

/// The six digits in a message's text.
pub fn code_in(text: &str) -> String {
    let digits: Vec<char> = text.chars().collect();
    for w in digits.windows(6) {
        if w.iter().all(|c| c.is_ascii_digit()) {
            return w.iter().collect();
        }
    }
    panic!("no code in {text}");
}

pub fn outbox_for(b: &Browser, to: &str) -> Vec<outbox::StoredMessage> {
    let acme = acme();
    b.t.app
        .store
        .run_blocking(|c| outbox::list(c, Some(&acme), 1000))
        .unwrap()
        .into_iter()
        .filter(|m| m.destination == to)
        .collect()
}

fn latest_code(b: &Browser, to: &str) -> String {
    let messages = outbox_for(b, to);
    code_in(&messages.first().expect("a message").body)
}

/// Presses **Get** on `page` for `to`, then signs in with the code that arrived.
async fn code_sign_in(b: &Browser, page: &str, to: &str) -> reqwest::Response {
    let (_, sent) = get_code(b, page, to).await;
    submit_code(b, &sent, to, &latest_code(b, to)).await
}

both_backends!(a_code_by_email_or_by_sms_signs_in, |db| {
    let b = outbox_browser(db).await;
    let page = code_page(&b).await;
    assert!(page.contains("id=\"get-code\""), "{page}");
    assert!(page.contains("autocomplete=\"one-time-code\""));
    let (status, sent) = get_code(&b, &page, "Alice@Acme.test").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        said(&sent).contains("verification code is on its way"),
        "{sent}"
    );
    let mail = &outbox_for(&b, "alice@acme.test")[0];
    assert_eq!(mail.channel, "email");
    assert!(mail.subject.contains("Acme & Co"), "{}", mail.subject);
    let code = code_in(&mail.body);
    let r = submit_code(&b, &sent, "alice@acme.test", &format!(" {code} ")).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(CRM), "{location}");
    let (_, tokens) = b.redeem(&params(&location)["code"]).await;
    let claims = b
        .verify(tokens["id_token"].as_str().unwrap(), "crm-web")
        .await;
    assert_eq!(claims["amr"], serde_json::json!(["otp"]));
    assert_eq!(claims["acr"], sesame::flow::session::CLASS_CODE);

    // By SMS, the number typed as people do: spaces and dashes, the region chosen apart.
    let page = code_page(&b).await;
    let (_, sent) = get_code(&b, &page, "138 0013-8000").await;
    assert!(said(&sent).contains("+8613800138000"), "{sent}");
    let sms = &outbox_for(&b, "+8613800138000")[0];
    assert_eq!((sms.channel.as_str(), sms.subject.as_str()), ("sms", ""));
    assert!(sms.body.contains("Acme & Co"), "{}", sms.body);
    let r = submit_code(&b, &sent, "13800138000", &code_in(&sms.body)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let (_, tokens) = b.redeem(&params(&location)["code"]).await;
    let claims = b
        .verify(tokens["id_token"].as_str().unwrap(), "crm-web")
        .await;
    assert_eq!(claims["amr"], serde_json::json!(["otp", "sms"]));
    assert_eq!(
        claims["phone_number_verified"], true,
        "the code proved the number"
    );
});

both_backends!(unknown_destinations_get_the_same_answers, |db| {
    let b = outbox_browser(db).await;
    let mut answers = Vec::new();
    for account in ["alice@acme.test", "ghost@acme.test"] {
        let page = code_page(&b).await;
        let (status, first) = get_code(&b, &page, account).await;
        assert_eq!(status, StatusCode::OK);
        let (_, again) = get_code(&b, &first, account).await;
        answers.push((said(&first).replace(account, "ADDRESS"), said(&again)));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].1.contains("60 seconds"), "{:?}", answers[0]);
    assert_eq!(outbox_for(&b, "alice@acme.test").len(), 1);
    assert!(
        outbox_for(&b, "ghost@acme.test").is_empty(),
        "nothing is sent to no account"
    );
    // A code typed for the unknown address signs nobody in.
    let page = code_page(&b).await;
    let r = submit_code(&b, &page, "ghost@acme.test", "123456").await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));
});

both_backends!(a_code_works_once_for_five_minutes_and_five_tries, |db| {
    let b = outbox_browser(db).await;
    let to = "alice@acme.test";
    // Wrong, then right: one wrong try does not spend the code.
    let page = code_page(&b).await;
    let (_, sent) = get_code(&b, &page, to).await;
    let code = latest_code(&b, to);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = submit_code(&b, &sent, to, wrong).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));
    let r = submit_code(&b, &sent, to, &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Reused, even on a new sign-in: refused.
    let page = code_page(&b).await;
    let r = submit_code(&b, &page, to, &code).await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));

    // Expired after five minutes.
    b.t.clock.advance(120);
    let page = code_page(&b).await;
    let (_, sent) = get_code(&b, &page, to).await;
    let code = latest_code(&b, to);
    b.t.clock.advance(b.t.app.config.codes.lifetime);
    let r = submit_code(&b, &sent, to, &code).await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));

    // Five wrong tries kill it: the right code no longer works.
    b.t.clock.advance(120);
    let page = code_page(&b).await;
    let (_, sent) = get_code(&b, &page, to).await;
    let code = latest_code(&b, to);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..b.t.app.config.codes.max_attempts {
        submit_code(&b, &sent, to, wrong).await;
    }
    let r = submit_code(&b, &sent, to, &code).await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));

    // Malformed and oversized input is a wrong code, never an error page.
    for junk in ["12345", "abcdef", "<script>", &"9".repeat(5000)] {
        let r = submit_code(&b, &sent, to, junk).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));
    }
});

both_backends!(a_code_signs_in_only_its_own_account_and_flow, |db| {
    let b = outbox_browser(db).await;
    b.add_user_by_email("bob@acme.test", "Bob");
    let page = code_page(&b).await;
    let (_, sent) = get_code(&b, &page, "alice@acme.test").await;
    let alices = latest_code(&b, "alice@acme.test");
    // Another account's address with Alice's code.
    let r = submit_code(&b, &sent, "bob@acme.test", &alices).await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));
    // Alice's other destination (her phone) with her email code.
    let r = submit_code(&b, &sent, "13800138000", &alices).await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));
    // Another sign-in flow than the one the code was asked for.
    let other = code_page(&b).await;
    let r = submit_code(&b, &other, "alice@acme.test", &alices).await;
    assert!(said(&r.text().await.unwrap()).contains("wrong or has expired"));
    // Bob, who has no password, signs in by code.
    let r = code_sign_in(&b, &other, "bob@acme.test").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
});

both_backends!(codes_are_capped_with_a_captcha_before_the_cap, |db| {
    let b = outbox_browser(db).await;
    let to = "alice@acme.test";
    let cap = b.t.app.config.codes.per_destination_hourly as usize;
    let mut page = code_page(&b).await;
    let mut asked_captcha = false;
    // Someone pressing Get a hundred times, 15 seconds apart, within one sign-in page's life.
    for _ in 0..100 {
        let (status, html) = get_code(&b, &page, to).await;
        assert_eq!(status, StatusCode::OK);
        if said(&html).contains("Type the characters in the image to get a code") {
            asked_captcha = true;
        }
        page = html;
        b.t.clock.advance(15);
    }
    assert!(asked_captcha, "a captcha came before the cap");
    assert_eq!(outbox_for(&b, to).len(), cap, "no more than the hourly cap");
    assert!(said(&page).contains("Too many codes"), "{page}");
    // A wrong captcha answer sends nothing.
    b.t.clock.advance(3600);
    for _ in 0..cap {
        let (_, html) = get_code(&b, &code_page(&b).await, to).await;
        page = html;
        b.t.clock.advance(61);
        if page.contains("name=\"captcha_id\"") {
            break;
        }
    }
    let sent_before = outbox_for(&b, to).len();
    let id = hidden(&page, "captcha_id");
    let r = b
        .post_form(
            "/t/acme/login/code/send",
            &form(&page, to, &format!("&captcha_id={id}&captcha_answer=wrong")),
        )
        .await;
    let html = r.text().await.unwrap();
    assert!(said(&html).contains("did not match"), "{html}");
    assert_eq!(outbox_for(&b, to).len(), sent_before);
});

both_backends!(the_code_forms_refuse_bad_input, |db| {
    let b = outbox_browser(db).await;
    let page = code_page(&b).await;
    // A username receives no code.
    let (_, html) = get_code(&b, &page, "alice").await;
    assert!(said(&html).contains("registered mobile number"), "{html}");
    // A number invalid for the chosen region, and an oversized field.
    let (_, html) = get_code(&b, &page, "12").await;
    assert!(said(&html).contains("registered mobile number"));
    let (status, _) = get_code(&b, &page, &"a".repeat(10_000)).await;
    assert_eq!(status, StatusCode::OK);
    // No agreement tick: no sign-in.
    let (_, sent) = get_code(&b, &page, "alice@acme.test").await;
    let code = latest_code(&b, "alice@acme.test");
    let body = format!(
        "flow={}&csrf={}&region=CN&account=alice%40acme.test&code={code}",
        hidden(&sent, "flow"),
        hidden(&sent, "csrf")
    );
    let r = b.post_form("/t/acme/login/code", &body).await;
    assert!(said(&r.text().await.unwrap()).contains("agree"));
    // A missing CSRF token, or one of another browser: refused, and no code sent.
    let body = format!(
        "flow={}&region=CN&account=alice%40acme.test&agree=yes",
        hidden(&sent, "flow")
    );
    let r = b.post_form("/t/acme/login/code/send", &body).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b
        .post_form_elsewhere(
            "/t/acme/login/code",
            &form(&sent, "alice@acme.test", &format!("&code={code}")),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(outbox_for(&b, "alice@acme.test").len(), 1);
    // The code still works in the right browser.
    let r = submit_code(&b, &sent, "alice@acme.test", &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let events =
        b.t.app
            .store
            .run_blocking(|c| audit::list(c, &acme(), 50))
            .unwrap();
    assert!(events.iter().any(|e| e.action == "sign_in"));
});

both_backends!(without_a_channel_the_method_is_not_offered, |db| {
    let b = Browser::new(db).await;
    let login = b.start("crm-web", CRM, "").await;
    let page = b.get(&login).await.text().await.unwrap();
    assert!(!page.contains("id=\"code-login\""), "no link to it");
    let page = b
        .get(&format!("{login}&method=code"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"password\""),
        "the password form instead"
    );
    let (_, html) = get_code(&b, &page, "alice@acme.test").await;
    assert!(said(&html).contains("cannot be sent"), "{html}");
    let _ = Login::parse("x", None);
});

both_backends!(
    the_outbox_page_lists_the_tenants_messages_only_in_development,
    |db| {
        let b = outbox_browser(db).await;
        let page = code_page(&b).await;
        get_code(&b, &page, "alice@acme.test").await;
        let r = b.get("/t/acme/dev/outbox").await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        assert!(html.contains(&latest_code(&b, "alice@acme.test")), "{html}");
        let plain = Browser::new(TestDb::sqlite()).await;
        assert_eq!(
            plain.get("/t/acme/dev/outbox").await.status(),
            StatusCode::NOT_FOUND
        );
    }
);

both_backends!(racing_requests_for_one_destination_send_one_code, |db| {
    let b = outbox_browser(db).await;
    let acme = acme();
    let alice =
        b.t.app
            .store
            .run_blocking(|c| users::find_by_login(c, &acme, &Login::parse("alice", None).unwrap()))
            .unwrap()
            .unwrap();
    let to =
        sesame::codes::Destination::of(&Login::parse("alice@acme.test", None).unwrap()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (app, acme, alice, to) = (b.t.app.clone(), acme.clone(), alice.clone(), to.clone());
        tasks.push(tokio::spawn(async move {
            let ip = format!("198.51.100.{i}");
            sesame::codes::issue(
                &app,
                &acme,
                sesame::codes::Request {
                    purpose: sesame::codes::Purpose::SignIn,
                    to: &to,
                    user: Some(&alice),
                    context: "flow",
                    ip: Some(&ip),
                    locale: sesame::i18n::Locale::En,
                    tenant_name: "Acme",
                    captcha_solved: true,
                    link_base: None,
                },
            )
            .await
            .unwrap()
        }));
    }
    let mut sent = 0;
    for t in tasks {
        if t.await.unwrap() == sesame::codes::Issued::Sent {
            sent += 1;
        }
    }
    assert_eq!(sent, 1, "the cooldown holds against parallel requests");
    assert_eq!(outbox_for(&b, "alice@acme.test").len(), 1);
});

/// The CRM's redirect for an authorization request of this browser's session.
async fn answered(b: &Browser, extra: &str) -> std::collections::HashMap<String, String> {
    let r = b.get(&Browser::authorize_path("crm-web", CRM, extra)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(CRM), "{location}");
    params(&location)
}

/// A `claims` request for an `acr` of `class`, essential or not.
fn acr_claim(class: &str, essential: bool) -> String {
    let claims =
        serde_json::json!({"id_token": {"acr": {"essential": essential, "values": [class]}}});
    format!("&claims={}", enc(&claims.to_string()))
}

// OIDC Core §5.5.1.1: an essential `acr` with values is met or the sign-in fails. A session of
// another class sends the user to sign in again; a class that no sign-in here reaches fails at
// once, without a trip to the page.
both_backends!(an_essential_acr_is_met_or_the_sign_in_fails, |db| {
    use sesame::flow::session::{CLASS_CODE, CLASS_PASSWORD};
    let b = outbox_browser(db).await;
    b.sign_in("crm-web", CRM, "alice").await;
    let acr_of = |p: std::collections::HashMap<String, String>| {
        let b = &b;
        async move {
            let (status, tokens) = b.redeem(&p["code"]).await;
            assert_eq!(status, 200, "{tokens}");
            let id = b
                .verify(tokens["id_token"].as_str().unwrap(), "crm-web")
                .await;
            id["acr"].as_str().unwrap().to_string()
        }
    };
    // The password session meets a demand for its own class, and a mere wish for another.
    let p = answered(&b, &acr_claim(CLASS_PASSWORD, true)).await;
    assert_eq!(acr_of(p).await, CLASS_PASSWORD);
    let p = answered(&b, &acr_claim(CLASS_CODE, false)).await;
    assert_eq!(acr_of(p).await, CLASS_PASSWORD, "a voluntary acr is a wish");
    // A class no sign-in here reaches.
    let p = answered(&b, &acr_claim("urn:example:loa:4", true)).await;
    assert_eq!(p["error"], "unmet_authentication_requirements");
    assert_eq!(
        (p["state"].as_str(), p["iss"].as_str()),
        ("st-1", crate::browser::ISSUER)
    );
    // A reachable class the session lacks: the page, or login_required where there may be none.
    let p = answered(&b, &format!("{}&prompt=none", acr_claim(CLASS_CODE, true))).await;
    assert_eq!(p["error"], "login_required");
    let login = b.start("crm-web", CRM, &acr_claim(CLASS_CODE, true)).await;
    // The page offers only the method that can meet the demand.
    let page = b.get(&login).await.text().await.unwrap();
    assert!(page.contains("id=\"get-code\""), "opens on the code method");
    assert!(!page.contains("id=\"tab-password\""), "{page}");
    // A password posted anyway, by a script rather than the page, signs no one in.
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("set-cookie").is_none());
    let refused = r.text().await.unwrap();
    assert!(
        said(&refused).contains("needs a verification code"),
        "{refused}"
    );
    let r = code_sign_in(&b, &page, "alice@acme.test").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let p = params(r.headers()["location"].to_str().unwrap());
    assert_eq!(acr_of(p).await, CLASS_CODE);
    // A demand for the password class: the page offers no code.
    b.t.clock.advance(120);
    let login = b
        .start("crm-web", CRM, &acr_claim(CLASS_PASSWORD, true))
        .await;
    let page = b
        .get(&format!("{login}&method=code"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("id=\"get-code\"") && !page.contains("id=\"code-login\""));
    // A code asked for or typed anyway, by a script rather than the page, is neither sent nor
    // spent.
    let mails = outbox_for(&b, "alice@acme.test").len();
    let (status, refused) = get_code(&b, &page, "alice@acme.test").await;
    assert_eq!(status, StatusCode::OK);
    assert!(said(&refused).contains("needs your password"), "{refused}");
    assert_eq!(
        outbox_for(&b, "alice@acme.test").len(),
        mails,
        "no code sent"
    );
    let r = submit_code(&b, &page, "alice@acme.test", "123456").await;
    assert_eq!(r.status(), StatusCode::OK);
    let refused = r.text().await.unwrap();
    assert!(said(&refused).contains("needs your password"), "{refused}");
    // The password meets it.
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    let p = params(r.headers()["location"].to_str().unwrap());
    assert_eq!(acr_of(p).await, CLASS_PASSWORD);
});
