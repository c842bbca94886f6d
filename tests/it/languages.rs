//! The sign-in pages in Simplified Chinese, English and Traditional Chinese: negotiated from
//! `ui_locales`, the switcher's cookie, `Accept-Language` and the tenant default, in that order.

use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD, enc, hidden, unescape};
use crate::support::both_backends;

const CRM: &str = "https://crm.acme.test/cb";

async fn page(b: &Browser, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut req = b
        .server
        .client
        .get(b.server.url(path))
        .header("accept", "text/html");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

both_backends!(the_sign_in_page_speaks_the_browsers_language, |db| {
    let b = Browser::new(db).await;
    let login = b.start("crm-web", CRM, "").await;
    let (_, english) = page(&b, &login, &[]).await;
    assert!(english.contains("<html lang=\"en\">"));
    assert!(english.contains("Account Login") && english.contains("Sign In"));

    let (_, traditional) = page(
        &b,
        &login,
        &[("accept-language", "zh-TW,zh;q=0.9,en;q=0.8")],
    )
    .await;
    assert!(traditional.contains("<html lang=\"zh-TW\">"));
    assert!(traditional.contains("帳號登入") && traditional.contains("忘記密碼?"));
    assert!(!traditional.contains("Account Login"));
    let (_, simplified) = page(&b, &login, &[("accept-language", "zh-CN")]).await;
    assert!(simplified.contains("账号登录") && simplified.contains("《服务协议》"));

    // A wrong password is told in the page's language.
    let body = format!(
        "flow={}&csrf={}&region=CN&account=alice&password=wrong&agree=yes",
        hidden(&simplified, "flow"),
        hidden(&simplified, "csrf"),
    );
    let r = b
        .server
        .client
        .post(b.server.url("/t/acme/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-language", "zh-CN")
        .body(body)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("账号或密码错误。"), "{text}");
});

both_backends!(ui_locales_wins_then_the_switcher_then_the_browser, |db| {
    let b = Browser::new(db).await;
    // The app's ui_locales beat the browser's preference.
    let login = b.start("crm-web", CRM, "&ui_locales=fr%20zh-TW").await;
    let (_, html) = page(&b, &login, &[("accept-language", "en")]).await;
    assert!(html.contains("<html lang=\"zh-TW\">"), "{html}");

    // The switcher remembers a choice and goes back to the page; the choice beats the browser.
    let login = b.start("crm-web", CRM, "").await;
    let (_, html) = page(&b, &login, &[]).await;
    let switch = format!("/t/acme/language/zh-CN?return={}", enc(&login));
    assert!(
        unescape(&html).contains(&switch),
        "the page links to the switcher: {html}"
    );
    let r = b.get(&switch).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"].to_str().unwrap(), login);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("sesame-lang=zh-CN;") && cookie.contains("SameSite=Lax"));
    let (_, html) = page(&b, &login, &[("accept-language", "en")]).await;
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("账号登录"));

    // Signing in still works in another language.
    let body = format!(
        "flow={}&csrf={}&region=CN&account=alice&password={}&agree=yes",
        hidden(&html, "flow"),
        hidden(&html, "csrf"),
        enc(PASSWORD)
    );
    let r = b.post_form("/t/acme/login", &body).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"].to_str().unwrap().starts_with(CRM));
});

both_backends!(the_switcher_refuses_other_places_and_languages, |db| {
    let b = Browser::new(db).await;
    for target in [
        "https://evil.example/t/acme/login",
        "//evil.example/t/acme/login",
        "/t/other/login",
        "/t/acme/../other",
    ] {
        let r = b
            .get(&format!("/t/acme/language/zh-TW?return={}", enc(target)))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{target} is not followed");
        assert!(r.headers().get("location").is_none());
        let html = r.text().await.unwrap();
        assert!(
            html.contains("語言已切換"),
            "confirmed in the new language: {html}"
        );
    }
    for tag in ["fr", "zh", "ZH-TW", "en-US", "%3Cscript%3E"] {
        let r = b
            .get(&format!("/t/acme/language/{tag}?return=/t/acme/login"))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{tag}");
        assert!(r.headers().get("set-cookie").is_none());
    }
});

both_backends!(error_pages_and_the_tenant_default_follow_too, |db| {
    let b = Browser::new(db).await;
    let (status, html) = page(&b, "/t/nobody/login", &[("accept-language", "zh-TW")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        html.contains("未知的組織") && html.contains("nobody"),
        "{html}"
    );
    let (_, html) = page(
        &b,
        "/t/acme/login?flow=nope-nope-nope-nope",
        &[("accept-language", "zh-CN")],
    )
    .await;
    assert!(html.contains("登录页面已过期"), "{html}");

    // With nothing from the app or the browser, the tenant's default applies.
    b.t.import(
        r#"
[[tenants]]
id = "acme"
display_name = "Acme & Co"
settings = { default_locale = "zh-TW" }
"#,
    )
    .await;
    b.t.app.invalidate_caches();
    let login = b.start("crm-web", CRM, "").await;
    let (_, html) = page(&b, &login, &[]).await;
    assert!(html.contains("<html lang=\"zh-TW\">"), "{html}");
    let (_, html) = page(&b, &login, &[("accept-language", "en-GB")]).await;
    assert!(
        html.contains("<html lang=\"en\">"),
        "the browser beats the tenant default"
    );
});

both_backends!(a_bad_request_page_speaks_the_reader_s_language, |db| {
    let b = crate::browser::Browser::new(db).await;
    let r = b
        .server
        .client
        .get(b.server.url(
            "/t/acme/authorize?response_type=code&client_id=crm-web&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        ))
        .header("accept", "text/html")
        .header("accept-language", "zh-TW")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(html.contains("應用程式傳送的請求無法處理"), "{html}");
    assert!(
        html.contains("has not registered"),
        "the detail for developers stays: {html}"
    );
    // A form that cannot be read gets a sentence from the catalogs too.
    let r = b
        .server
        .client
        .post(b.server.url("/t/acme/consent"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .header("accept-language", "zh-CN")
        .body("flow=a&flow=b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("表单的格式无法识别"));
});

both_backends!(the_form_post_page_speaks_the_reader_s_language, |db| {
    let b = Browser::new(db).await;
    b.sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let r = b
        .server
        .client
        .get(b.server.url(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "&response_mode=form_post",
        )))
        .header("accept-language", "zh-TW")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<html lang=\"zh-TW\">"), "{html}");
    assert!(html.contains("name=\"code\""), "{html}");
});
