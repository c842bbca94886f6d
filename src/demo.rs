//! `sesame serve --demo`: the `demo` tenant from `examples/demo.toml` (embedded, so the flag works
//! from any directory) and a fresh password for its demo user at every start.

use crate::account::{Login, Username};
use crate::admin::import;
use crate::app::App;
use crate::bootstrap;
use crate::crypto::secret::generate_password;
use crate::store::users;
use crate::tenant::TenantId;

pub const DEMO_FILE: &str = include_str!("../examples/demo.toml");
pub const DEMO_TENANT: &str = "demo";
pub const DEMO_USER: &str = "demo";

pub struct Seeded {
    pub tenant: TenantId,
    pub username: String,
    pub password: String,
}

impl Seeded {
    pub fn banner(&self, app: &App) -> String {
        let issuer = app.issuer(&self.tenant);
        format!(
            "\n  Sesame demo is ready.\n\n  tenant     {}\n  issuer     {issuer}\n  discovery  {issuer}/.well-known/openid-configuration\n  user       {}\n  password   {}   (new at every start)\n  codes      sign in by code as demo@example.com; read it at {issuer}/dev/outbox\n",
            self.tenant, self.username, self.password
        )
    }
}

pub async fn seed(app: &App) -> anyhow::Result<Seeded> {
    let now = app.now();
    let (hasher, client_secrets, clock) = (
        app.hasher.clone(),
        app.client_secrets.clone(),
        app.clock.clone(),
    );
    let report = app
        .store
        .run(move |c| {
            import::apply(
                c,
                "examples/demo.toml",
                DEMO_FILE,
                &hasher,
                &client_secrets,
                &*clock,
            )
            .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
        })
        .await?;
    for tenant in &report.new_tenants {
        let (store, master, tenant) = (app.store.clone(), app.master.clone(), tenant.clone());
        tokio::task::spawn_blocking(move || bootstrap::ensure_keys(&store, &master, &tenant, now))
            .await??;
    }
    let tenant =
        TenantId::parse(DEMO_TENANT).ok_or_else(|| anyhow::anyhow!("bad demo tenant id"))?;
    let password = generate_password();
    let hash = app
        .hasher
        .hash(crate::crypto::secret::SecretString::new(password.clone()))
        .await?;
    let t = tenant.clone();
    app.store
        .run(move |c| {
            let login = Login::Username(
                Username::parse(DEMO_USER)
                    .ok_or_else(|| crate::store::StoreError::Invalid("demo user".into()))?,
            );
            let user = users::find_by_login(c, &t, &login)?.ok_or_else(|| {
                crate::store::StoreError::NotFound(
                    "the demo user is missing from examples/demo.toml".into(),
                )
            })?;
            users::set_password(c, &t, &user.id, &hash, false, now)
        })
        .await?;
    app.invalidate_caches();
    Ok(Seeded {
        tenant,
        username: DEMO_USER.into(),
        password,
    })
}
