//! Headless Chromium for the suites: chromedriver on a free port and a browser with a fresh
//! profile, started with the flags the guide asks for and stopped when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

use crate::crm;
use crate::oidc::SECRET;
use crate::support::{Sesame, free_port};

/// chromedriver on a free port, stopped when dropped.
pub struct Driver {
    url: String,
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn driver() -> Option<Driver> {
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

/// A Chromium session with a fresh profile (kept until the returned folder is dropped).
pub async fn chromium(driver: &Driver) -> (fantoccini::Client, tempfile::TempDir) {
    let profile = tempfile::tempdir().unwrap();
    let c = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities(profile.path()))
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    (c, profile)
}

/// Signs in on Sesame's page (already shown) as a person does: account, password, the agreement
/// box, the button.
pub async fn type_sign_in(c: &fantoccini::Client, account: &str, password: &str) {
    for (id, typed) in [("account", account), ("password", password)] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(typed)
            .await
            .unwrap();
    }
    for button in [Locator::Css("input[name=agree]"), Locator::Id("sign-in")] {
        c.find(button).await.unwrap().click().await.unwrap();
    }
}

/// Serves `router` on `port` of the loopback interface for the rest of the test.
pub async fn serve(router: axum::Router, port: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
}

/// The example CRM (client `crm-web` of tenant `acme`) on `port`, signing in through `sesame`.
pub async fn start_crm(sesame: &Sesame, port: u16) {
    let app = crm::router(crm::CrmConfig {
        issuer: sesame.issuer("acme"),
        client_id: "crm-web".into(),
        client_secret: SECRET.into(),
        base_url: format!("http://127.0.0.1:{port}"),
    })
    .await
    .unwrap();
    serve(app, port).await;
}
