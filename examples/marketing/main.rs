//! The example marketing app: `cargo run --example marketing` while `sesame serve --demo` runs.
//! Settings come from the environment, with defaults that match the demo tenant:
//!
//! | variable | default |
//! | --- | --- |
//! | `MARKETING_IDP_METADATA` | `http://127.0.0.1:8080/t/demo/saml/metadata` |
//! | `MARKETING_LISTEN` | `127.0.0.1:3001` |
//! | `MARKETING_BASE_URL` | `http://127.0.0.1:3001` |

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = app::MarketingConfig {
        idp_metadata_url: var(
            "MARKETING_IDP_METADATA",
            "http://127.0.0.1:8080/t/demo/saml/metadata",
        ),
        base_url: var("MARKETING_BASE_URL", "http://127.0.0.1:3001"),
    };
    let listen = var("MARKETING_LISTEN", "127.0.0.1:3001");
    let router = app::router(config.clone()).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "Marketing on {} (signing in through {})",
        config.base_url, config.idp_metadata_url
    );
    axum::serve(listener, router).await?;
    Ok(())
}
