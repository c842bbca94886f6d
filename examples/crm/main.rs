//! The example CRM: `cargo run --example crm` while `sesame serve --demo` runs. Settings come
//! from the environment, with defaults that match the demo tenant:
//!
//! | variable | default |
//! | --- | --- |
//! | `CRM_ISSUER` | `http://127.0.0.1:8080/t/demo` |
//! | `CRM_CLIENT_ID` | `crm-web` |
//! | `CRM_CLIENT_SECRET` | the demo secret from `examples/demo.toml` |
//! | `CRM_LISTEN` | `127.0.0.1:3000` |
//! | `CRM_BASE_URL` | `http://127.0.0.1:3000` |

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = app::CrmConfig {
        issuer: var("CRM_ISSUER", "http://127.0.0.1:8080/t/demo"),
        client_id: var("CRM_CLIENT_ID", "crm-web"),
        client_secret: var(
            "CRM_CLIENT_SECRET",
            "demo-crm-secret-for-local-testing-only",
        ),
        base_url: var("CRM_BASE_URL", "http://127.0.0.1:3000"),
    };
    let listen = var("CRM_LISTEN", "127.0.0.1:3000");
    let router = app::router(config.clone()).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "CRM on {} (signing in through {})",
        config.base_url, config.issuer
    );
    axum::serve(listener, router).await?;
    Ok(())
}
