//! End to end in headless Chromium: the example CRM (examples/crm, an `openidconnect` relying
//! party) sends the browser to Sesame, a person types into the real sign-in page, and the CRM
//! shows who signed in; logging out of the CRM ends the Sesame session too. On the way, the
//! page's language switcher is tried in all three languages.

#[path = "../../examples/crm/app.rs"]
#[allow(dead_code)]
mod crm;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

use super::{MASTER_KEY, SECRET, tenant};
use crate::support::{Database, PASSWORD, Sesame, free_port};

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    url: String,
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Option<Driver> {
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    if !Path::new(&path).exists() {
        // `make test` installs Chromium; CI must never skip this quietly.
        assert!(
            std::env::var("CI").is_err(),
            "chromedriver is missing at {path}: scripts/install-deps installs it"
        );
        eprintln!("skipped: no chromedriver at {path} (scripts/install-deps installs it)");
        return None;
    }
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/status")).await.is_ok() {
            return Some(Driver { url, child });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

fn capabilities(profile: &Path) -> serde_json::Map<String, serde_json::Value> {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": binary,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                "--disable-component-update", "--disable-sync", "--window-size=1100,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    caps.as_object().unwrap().clone()
}

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
    let app = crm::router(crm::CrmConfig {
        issuer: sesame.issuer("acme"),
        client_id: "crm-web".into(),
        client_secret: SECRET.into(),
        base_url: crm_base.clone(),
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", crm_port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let profile = tempfile::tempdir().unwrap();
    let c = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities(profile.path()))
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
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
    c.find(Locator::Id("account"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("input[name=agree]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

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
