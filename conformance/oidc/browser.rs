//! End to end in headless Chromium: the example CRM (examples/crm, an `openidconnect` relying
//! party) sends the browser to Sesame, a person types into the real sign-in page, and the CRM
//! shows who signed in; logging out of the CRM ends the Sesame session too. On the way, the
//! page's language switcher is tried in all three languages. Sign-in by a code that arrives at
//! the test's SMTP server, and a captcha then a lock after wrong passwords, are done as a person
//! does them too.

#[path = "../../tests/it/smtp_sink.rs"]
#[allow(dead_code)]
mod smtp_sink;

use std::path::Path;
use std::time::Duration;

use fantoccini::Locator;
use sesame::crypto::master::MasterKey;
use sesame::crypto::secret::DigestKey;
use sesame::flow::captcha;

use super::{MASTER_KEY, tenant};
use crate::chromium::{Driver, chromium, driver, start_crm, type_sign_in};
use crate::support::{Database, PASSWORD, Sesame, enc, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_crm_signs_in_through_the_real_page_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    // fantoccini's TLS stack would otherwise find two rustls providers and refuse to choose.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let crm_port = free_port();
    let crm_base = format!("http://127.0.0.1:{crm_port}");
    let db = Database::sqlite();
    let sesame = Sesame::start(
        &db,
        MASTER_KEY,
        Some(&tenant(&format!("{crm_base}/callback"))),
    )
    .await;
    start_crm(&sesame, crm_port).await;

    let (c, _profile) = chromium(&driver).await;
    c.goto(&crm_base).await.unwrap();
    c.find(Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("account"))
        .await
        .expect("Sesame's sign-in page");
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&sesame.base)
    );
    // The switcher changes the page's language (a cookie), and the choice sticks.
    let shots = std::env::var("SIGN_IN_SCREENSHOTS").ok();
    for (tag, submit) in [("zh-TW", "登入"), ("zh-CN", "登录"), ("en", "Sign In")] {
        c.find(Locator::Id(&format!("lang-{tag}")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let button = c
            .wait()
            .for_element(Locator::Css(&format!("html[lang=\"{tag}\"] #sign-in")))
            .await
            .unwrap_or_else(|_| panic!("the page in {tag}"));
        assert_eq!(button.text().await.unwrap(), submit);
        if let Some(dir) = &shots {
            let png = c.screenshot().await.unwrap();
            std::fs::write(Path::new(dir).join(format!("sign-in-{tag}.png")), png).unwrap();
        }
    }
    c.refresh().await.unwrap();
    c.wait()
        .for_element(Locator::Css("html[lang=\"en\"] #account"))
        .await
        .expect("the last choice is remembered");
    type_sign_in(&c, "alice", PASSWORD).await;

    let welcome = c
        .wait()
        .for_element(Locator::Id("welcome"))
        .await
        .expect("back at the CRM");
    assert!(welcome.text().await.unwrap().contains("Alice Liddell"));
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&crm_base)
    );
    let roles = c
        .find(Locator::Id("claim-roles"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(roles.contains("crm:rep"), "{roles}");

    // A script of the CRM's page (another origin) reads Sesame's token and UserInfo answers, as
    // a browser-based app does; introspection stays closed to it.
    let seen = c
        .execute_async(
            r#"const [issuer, done] = arguments;
            (async () => {
              const info = await fetch(issuer + "/userinfo", {headers: {authorization: "Bearer x"}});
              const token = await fetch(issuer + "/token", {method: "POST",
                headers: {"content-type": "application/x-www-form-urlencoded"},
                body: "grant_type=authorization_code&code=x&client_id=nobody"});
              let introspect = "read";
              try { await fetch(issuer + "/introspect", {method: "POST", body: "token=x"}); }
              catch (e) { introspect = "blocked"; }
              done([info.status, info.headers.get("www-authenticate"), token.status,
                    (await token.json()).error, introspect]);
            })();"#,
            vec![serde_json::json!(sesame.issuer("acme"))],
        )
        .await
        .unwrap();
    assert_eq!(seen[0], 401, "{seen}");
    assert!(
        seen[1].as_str().unwrap().contains("invalid_token"),
        "{seen}"
    );
    assert_eq!(
        (&seen[2], &seen[3]),
        (
            &serde_json::json!(401),
            &serde_json::json!("invalid_client")
        )
    );
    assert_eq!(seen[4], "blocked", "{seen}");

    // Logging out of the CRM signs out of Sesame as well.
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("login"))
        .await
        .expect("back home, signed out");
    c.find(Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("account"))
        .await
        .expect("asked to sign in again");
    c.close().await.unwrap();
}

/// Types into the sign-in page as a person does, answering the captcha when one is shown.
async fn sign_in_attempt(c: &fantoccini::Client, password: &str, captcha_key: &DigestKey) {
    for (id, text) in [("account", "alice"), ("password", password)] {
        let field = c.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }
    if let Ok(hidden) = c.find(Locator::Css("input[name=captcha_id]")).await {
        let id = hidden.attr("value").await.unwrap().unwrap();
        c.find(Locator::Id("captcha_answer"))
            .await
            .unwrap()
            .send_keys(&captcha::answer_with(captcha_key, &id).to_uppercase())
            .await
            .unwrap();
    }
    let agree = c.find(Locator::Css("input[name=agree]")).await.unwrap();
    if !agree.is_selected().await.unwrap() {
        agree.click().await.unwrap();
    }
    // Marks this document, so the next page is known to have replaced it (the form posts to the
    // same address).
    c.execute("window.submitted = true", vec![]).await.unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        let replaced = c
            .execute("return window.submitted === undefined", vec![])
            .await
            .is_ok_and(|v| v == serde_json::json!(true));
        if replaced {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sign-in form did not load a new page");
}

/// Waits until the browser is at `redirect` (the app's callback) and returns the whole URL.
async fn landed_at(c: &fantoccini::Client, redirect: &str) -> url::Url {
    for _ in 0..50 {
        let url = c.current_url().await.unwrap();
        if url.as_str().starts_with(redirect) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = c.current_url().await.unwrap();
    panic!("the browser did not reach {redirect}: it is at {url}");
}

async fn alert(c: &fantoccini::Client) -> String {
    c.wait()
        .for_element(Locator::Css("p.error"))
        .await
        .expect("a message on the page")
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_bring_a_captcha_then_a_lock_that_the_cli_lifts_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let redirect = "http://127.0.0.1:9/cb";
    let db = Database::sqlite();
    let sesame = Sesame::start(&db, MASTER_KEY, Some(&tenant(redirect))).await;
    let key = DigestKey::new(
        MasterKey::from_base64(MASTER_KEY)
            .unwrap()
            .derive("captcha"),
    );
    let (c, _profile) = chromium(&driver).await;
    let authorize = format!(
        "{}/authorize?response_type=code&client_id=crm-web&scope=openid&state=s&redirect_uri={}",
        sesame.issuer("acme"),
        enc(redirect)
    );
    c.goto(&authorize).await.unwrap();
    c.wait().for_element(Locator::Id("account")).await.unwrap();
    assert!(c.find(Locator::Id("captcha-image")).await.is_err());

    for i in 0..3 {
        sign_in_attempt(&c, &format!("wrong {i}"), &key).await;
        assert!(alert(&c).await.contains("incorrect"));
    }
    // After three failures the page shows a captcha image the browser can display.
    let image = c
        .find(Locator::Id("captcha-image"))
        .await
        .expect("a captcha after three failures");
    let width = c
        .execute(
            "return arguments[0].naturalWidth",
            vec![serde_json::to_value(&image).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(width, serde_json::json!(200), "the image decodes");
    if let Ok(dir) = std::env::var("SIGN_IN_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join("sign-in-captcha.png"), png).unwrap();
    }

    // Two more wrong passwords (each with a solved captcha) lock the account: now even the right
    // password gets the lock's message.
    for i in 3..5 {
        sign_in_attempt(&c, &format!("wrong {i}"), &key).await;
        assert!(alert(&c).await.contains("incorrect"));
    }
    sign_in_attempt(&c, PASSWORD, &key).await;
    assert!(alert(&c).await.contains("temporarily locked"));

    // An administrator lifts the lock; the right password then reaches the app.
    let out = sesame.cli(&["user", "unlock", "--tenant", "acme", "alice"]);
    assert!(out.contains("unlocked"), "{out}");
    sign_in_attempt(&c, PASSWORD, &key).await;
    let url = landed_at(&c, redirect).await;
    assert!(url.query().unwrap_or("").contains("code="), "{url}");
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_the_smtp_server_signs_in_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mailed = Mailed::start(&driver).await;
    let (c, sink, redirect, authorize) = (
        mailed.c.clone(),
        &mailed.sink,
        REDIRECT,
        mailed.authorize.clone(),
    );
    c.goto(&authorize).await.unwrap();
    click(&c, "code-login").await;
    c.wait()
        .for_element(Locator::Id("get-code"))
        .await
        .expect("the code form");
    type_into(&c, "account", "alice@acme.test").await;
    click(&c, "get-code").await;
    let notice = notice(&c).await;
    assert!(notice.contains("alice@acme.test"), "{notice}");
    if let Ok(dir) = std::env::var("SIGN_IN_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join("sign-in-code.png"), png).unwrap();
    }
    let mail = sink.wait_for(1).await.remove(0);
    let body = mail.body();
    let code: String = body
        .split(|ch: char| !ch.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("six digits in the email")
        .to_string();
    type_into(&c, "code", &code).await;
    c.find(Locator::Css("input[name=agree]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Enter in the code field signs in (not the Get button before it).
    c.find(Locator::Id("code"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let url = landed_at(&c, redirect).await;
    assert!(url.query().unwrap_or("").contains("code="), "{url}");
    assert_eq!(sink.messages().len(), 1, "one code, one message");
    c.close().await.unwrap();
}

/// Where the tests below send the browser back to (nothing listens there: the address is enough).
const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// Sesame mailing through the test's SMTP server, a Chromium session, and the authorization
/// request that starts a sign-in.
struct Mailed {
    c: fantoccini::Client,
    sink: smtp_sink::SmtpSink,
    authorize: String,
    _sesame: Sesame,
    _db: Database,
    _profile: tempfile::TempDir,
}

impl Mailed {
    async fn start(driver: &Driver) -> Mailed {
        let sink = smtp_sink::SmtpSink::start().await;
        let db = Database::sqlite();
        let settings = [
            ("SESAME_EMAIL_DRIVER", "smtp".to_string()),
            ("SESAME_EMAIL_HOST", "127.0.0.1".to_string()),
            ("SESAME_EMAIL_PORT", sink.port.to_string()),
            ("SESAME_EMAIL_SECURITY", "insecure_plaintext".to_string()),
            ("SESAME_EMAIL_FROM", "Acme <no-reply@acme.test>".to_string()),
        ];
        let sesame =
            Sesame::start_with(&db, MASTER_KEY, Some(&tenant(REDIRECT)), None, &settings).await;
        let (c, profile) = chromium(driver).await;
        let authorize = format!(
            "{}/authorize?response_type=code&client_id=crm-web&scope=openid&state=s&redirect_uri={}",
            sesame.issuer("acme"),
            enc(REDIRECT)
        );
        Mailed {
            c,
            sink,
            authorize,
            _sesame: sesame,
            _db: db,
            _profile: profile,
        }
    }
}

/// Types `text` into the field with id `id`.
async fn type_into(c: &fantoccini::Client, id: &str, text: &str) {
    let field = c.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// The page's notice (`p.notice`), once it shows.
async fn notice(c: &fantoccini::Client) -> String {
    c.wait()
        .for_element(Locator::Css("p.notice"))
        .await
        .expect("a notice on the page")
        .text()
        .await
        .unwrap()
}

async fn click(c: &fantoccini::Client, id: &str) {
    c.wait()
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_by_an_emailed_link_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mailed = Mailed::start(&driver).await;
    let (c, sink, redirect, authorize) = (
        mailed.c.clone(),
        &mailed.sink,
        REDIRECT,
        mailed.authorize.clone(),
    );
    c.goto(&authorize).await.unwrap();
    c.wait()
        .for_element(Locator::LinkText("Forgot password?"))
        .await
        .expect("a Forgot password link")
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("send")).await.unwrap();
    type_into(&c, "account", "alice@acme.test").await;
    click(&c, "send").await;
    let notice = notice(&c).await;
    assert!(notice.contains("alice@acme.test"), "{notice}");
    let mail = sink.wait_for(1).await.remove(0);
    let body = mail.body();
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/reset-password?token="))
        .expect("a link in the email")
        .to_string();
    c.goto(&link).await.unwrap();
    c.wait()
        .for_element(Locator::Id("new_password"))
        .await
        .unwrap();
    // The rules are ticked as one types (password.js), before anything is sent.
    let length_rule = || async {
        c.find(Locator::Css("li[data-rule=length]"))
            .await
            .unwrap()
            .attr("class")
            .await
            .unwrap()
            .unwrap_or_default()
    };
    type_into(&c, "new_password", "short").await;
    assert_eq!(length_rule().await, "broken");
    let new_password = "a brand new passphrase";
    type_into(&c, "new_password", new_password).await;
    assert_eq!(length_rule().await, "met");
    type_into(&c, "confirm_password", new_password).await;
    click(&c, "reset").await;
    c.wait()
        .for_element(Locator::XPath("//h1[text()='Password changed']"))
        .await
        .expect("the page saying the password changed");
    let notice = sink.wait_for(2).await.remove(1);
    assert!(mail_subject(&notice).contains("was changed"), "{notice:?}");

    // Back at the app, the new password signs in.
    c.goto(&authorize).await.unwrap();
    c.wait().for_element(Locator::Id("password")).await.unwrap();
    type_into(&c, "account", "alice").await;
    type_into(&c, "password", new_password).await;
    c.find(Locator::Css("input[name=agree]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(&c, "sign-in").await;
    let url = landed_at(&c, redirect).await;
    assert!(url.query().unwrap_or("").contains("code="), "{url}");
    c.close().await.unwrap();
}

fn mail_subject(mail: &smtp_sink::Received) -> String {
    mail.header("Subject").unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_number_with_its_region_signs_in_and_a_new_hire_sets_a_password_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = Database::sqlite();
    let sesame = Sesame::start(&db, MASTER_KEY, Some(&tenant(REDIRECT))).await;
    let (c, _profile) = chromium(&driver).await;
    let authorize = format!(
        "{}/authorize?response_type=code&client_id=crm-web&scope=openid&state=s&redirect_uri={}&prompt=login",
        sesame.issuer("acme"),
        enc(REDIRECT)
    );
    let agree = || async {
        let agree = c.find(Locator::Css("input[name=agree]")).await.unwrap();
        if !agree.is_selected().await.unwrap() {
            agree.click().await.unwrap();
        }
    };
    // A mobile number typed as people do, with its country/region chosen in the selector.
    c.goto(&authorize).await.unwrap();
    c.wait().for_element(Locator::Id("region")).await.unwrap();
    c.find(Locator::Css("select#region option[value=HK]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("select#region option[value=CN]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    type_into(&c, "account", "138 0013-8000").await;
    type_into(&c, "password", PASSWORD).await;
    agree().await;
    click(&c, "sign-in").await;
    let url = landed_at(&c, REDIRECT).await;
    assert!(url.query().unwrap_or("").contains("code="), "{url}");

    // A new hire's temporary password leads to choosing their own first.
    c.goto(&authorize).await.unwrap();
    c.wait().for_element(Locator::Id("account")).await.unwrap();
    type_into(&c, "account", "newbie").await;
    type_into(&c, "password", "temporary password 1").await;
    agree().await;
    click(&c, "sign-in").await;
    c.wait()
        .for_element(Locator::Id("new_password"))
        .await
        .expect("the change-password step");
    type_into(&c, "new_password", "temporary password 1").await;
    type_into(&c, "confirm_password", "temporary password 1").await;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let refused = c
        .wait()
        .for_element(Locator::Css("p.error"))
        .await
        .expect("the temporary password is refused")
        .text()
        .await
        .unwrap();
    assert!(refused.contains("last 3 passwords"), "{refused}");
    type_into(&c, "new_password", "my very own passphrase").await;
    type_into(&c, "confirm_password", "my very own passphrase").await;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = landed_at(&c, REDIRECT).await;
    assert!(url.query().unwrap_or("").contains("code="), "{url}");
    c.close().await.unwrap();
}
