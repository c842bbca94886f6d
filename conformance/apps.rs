//! The company's two apps in one browser: the example CRM (examples/crm, OpenID Connect through
//! the `openidconnect` crate) and the example marketing app (examples/marketing, SAML through
//! samael's service-provider side) against one real `sesame serve`, driven in headless
//! Chromium. One password typed into Sesame's page signs the browser in to both.

use fantoccini::{Client, Locator};

use crate::chromium::{chromium, driver, serve, start_crm, type_sign_in};
use crate::marketing;
use crate::oidc::{MASTER_KEY, tenant};
use crate::support::{Database, PASSWORD, Sesame, free_port};

/// The CRM's tenant plus the marketing app, its role, and its SP registration (as
/// `examples/demo.toml` has them).
fn tenant_with_marketing(crm_callback: &str, marketing_base: &str) -> String {
    let crm = tenant(crm_callback).replace(
        "roles = [\"crm:rep\"]\npassword",
        "roles = [\"crm:rep\", \"marketing:viewer\"]\npassword",
    );
    assert!(
        crm.contains("marketing:viewer"),
        "the CRM tenant changed shape"
    );
    format!(
        r#"{crm}
[[tenants.apps]]
id = "marketing"
name = "Marketing"
web_access = {{ departments = ["sales"] }}

[[tenants.roles]]
id = "marketing:viewer"
name = "Campaign viewer"
app = "marketing"

[[tenants.service_providers]]
id = "marketing"
name = "Marketing"
app = "marketing"
entity_id = "{marketing_base}/metadata"
acs = ["{marketing_base}/acs"]
name_id = "email"
attributes = {{ mail = "email", displayName = "display_name", {roles} = "roles" }}
"#,
        roles = marketing::ROLES,
    )
}

async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn text(c: &Client, id: &str) -> String {
    c.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sign_in_serves_the_oidc_crm_and_the_saml_marketing_app() {
    let Some(driver) = driver().await else {
        return;
    };
    // fantoccini's TLS stack would otherwise find two rustls providers and refuse to choose.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (crm_port, marketing_port) = (free_port(), free_port());
    let crm_base = format!("http://127.0.0.1:{crm_port}");
    let marketing_base = format!("http://127.0.0.1:{marketing_port}");
    let db = Database::sqlite();
    let sesame = Sesame::start(
        &db,
        MASTER_KEY,
        Some(&tenant_with_marketing(
            &format!("{crm_base}/callback"),
            &marketing_base,
        )),
    )
    .await;
    start_crm(&sesame, crm_port).await;
    let marketing_app = marketing::router(marketing::MarketingConfig {
        idp_metadata_url: format!("{}/saml/metadata", sesame.issuer("acme")),
        base_url: marketing_base.clone(),
    })
    .await
    .unwrap();
    serve(marketing_app, marketing_port).await;

    let (c, _profile) = chromium(&driver).await;
    // The CRM first: Sesame's page asks for the password once.
    c.goto(&crm_base).await.unwrap();
    click(&c, "login").await;
    c.wait()
        .for_element(Locator::Id("account"))
        .await
        .expect("Sesame's sign-in page");
    type_sign_in(&c, "alice", PASSWORD).await;
    c.wait()
        .for_element(Locator::Id("welcome"))
        .await
        .expect("signed in to the CRM");
    assert!(text(&c, "welcome").await.contains("Alice Liddell"));

    // Then the marketing app, over SAML: the same Sesame session answers. The AuthnRequest goes
    // out by redirect, and the signed Response comes back through Sesame's auto-posting page.
    c.goto(&marketing_base).await.unwrap();
    click(&c, "login").await;
    c.wait()
        .for_element(Locator::Id("name-id"))
        .await
        .expect("signed in to Marketing without a second sign-in page");
    let url = c.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&marketing_base), "{url}");
    assert_eq!(text(&c, "name-id").await, "alice@acme.test");
    let roles = text(&c, "roles").await;
    assert!(roles.contains("marketing:viewer"), "{roles}");
    assert!(
        !roles.contains("crm:rep"),
        "an SP hears only its own app's roles: {roles}"
    );
    let name = c
        .find(Locator::Css("td.attribute[data-name=displayName]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(name, "Alice Liddell");

    // Signed out of Marketing alone, signing in again still asks for no password.
    click(&c, "logout").await;
    c.wait()
        .for_element(Locator::Id("login"))
        .await
        .expect("signed out of Marketing");
    click(&c, "login").await;
    c.wait()
        .for_element(Locator::Id("name-id"))
        .await
        .expect("the Sesame session still answers");

    // The app takes a Response only in answer to a request it made.
    let forged = reqwest::Client::new()
        .post(format!("{marketing_base}/acs"))
        .form(&[
            ("SAMLResponse", "PHNhbWxwOlJlc3BvbnNlLz4="),
            ("RelayState", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    c.close().await.unwrap();
}
