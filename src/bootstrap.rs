//! Start-up: open the database, apply migrations, find the master key and prove it is the right
//! one, and make sure the `default` tenant and every tenant's signing keys exist. Shared by
//! `serve` and every CLI command, so they all see the same, fully prepared database.

use anyhow::Context;

use crate::clock::{SharedClock, UnixTime};
use crate::config::{Config, redact_url};
use crate::crypto::CryptoError;
use crate::crypto::keys;
use crate::crypto::master::{self, MasterKey, MasterKeySource};
use crate::store::tenants::{self, TenantSpec};
use crate::store::{Store, keys as key_store, meta, migrate};
use crate::tenant::TenantId;

const MASTER_KEY_CHECK: &str = "master_key_check";

pub struct Opened {
    pub store: Store,
    pub master: MasterKey,
    pub master_source: MasterKeySource,
    pub migrations_applied: Vec<String>,
    pub keys_generated: usize,
}

/// Everything `serve` and the CLI need before they touch data.
pub fn open(config: &Config, clock: &SharedClock) -> anyhow::Result<Opened> {
    let url = config.database_url();
    let store = Store::from_config(config).with_context(|| {
        format!(
            "config key `database.url`: cannot open {} — check the URL and that the database is running",
            redact_url(&url)
        )
    })?;
    // A database upgraded by a newer Sesame (a rollback, a node left behind in a rolling
    // upgrade) is not served by this older one.
    let unknown = store
        .run_blocking(migrate::unknown_applied)
        .context("reading the database's migrations")?;
    if !unknown.is_empty() {
        anyhow::bail!(
            "the database was migrated by a newer Sesame (migrations {} are unknown to this \
             version): run that version, or restore the database from before the upgrade",
            unknown.join(", ")
        );
    }
    let migrations_applied = store
        .run_blocking(migrate::run_pending)
        .context("applying database migrations")?;
    let (master, master_source) = unlock(&store, config)?;
    let keys_generated = prepare_tenants(&store, &master, clock.now())?;
    Ok(Opened {
        store,
        master,
        master_source,
        migrations_applied,
        keys_generated,
    })
}

/// Loads the master key and checks it against the database before anything is written with it.
fn unlock(store: &Store, config: &Config) -> anyhow::Result<(MasterKey, MasterKeySource)> {
    let has_keys = store.run_blocking(key_store::any_exist)?;
    let check = store.run_blocking(|c| meta::get(c, MASTER_KEY_CHECK))?;
    let (master, source) = master::load(config, has_keys || check.is_some())?;
    let stored = match check {
        Some(stored) => stored,
        // First start: record this key, unless another node recorded its own first.
        None => {
            let value = master.check_value()?;
            store.run_blocking(|c| meta::insert_if_absent(c, MASTER_KEY_CHECK, &value))?
        }
    };
    master.verify_check_value(&stored).map_err(|e| match e {
        CryptoError::WrongMasterKey => anyhow::anyhow!(
            "config key `master_key`/`master_key_file`: {e} (source: {})",
            describe(&source)
        ),
        other => other.into(),
    })?;
    Ok((master, source))
}

fn describe(source: &MasterKeySource) -> String {
    match source {
        MasterKeySource::Config => "master_key".into(),
        MasterKeySource::File(p) | MasterKeySource::Generated(p) => p.display().to_string(),
    }
}

/// The `default` tenant, and an active plus a next key per algorithm for every tenant.
fn prepare_tenants(store: &Store, master: &MasterKey, now: UnixTime) -> anyhow::Result<usize> {
    let default = TenantId::default_tenant();
    if store
        .run_blocking(|c| tenants::find(c, &default))?
        .is_none()
    {
        store
            .run_blocking(|c| {
                tenants::insert(c, &default, &TenantSpec::named("Default"), now).map(|_| ())
            })
            .or_else(|e| match e {
                // Another node created it first.
                crate::store::StoreError::Conflict(_) => Ok(()),
                other => Err(other),
            })?;
    }
    let mut generated = 0;
    for tenant in store.run_blocking(tenants::list)? {
        generated += ensure_keys(store, master, &tenant.id, now)?;
    }
    Ok(generated)
}

/// Gives one tenant its signing keys; used at start-up and when a tenant is created.
pub fn ensure_keys(
    store: &Store,
    master: &MasterKey,
    tenant: &TenantId,
    now: UnixTime,
) -> anyhow::Result<usize> {
    let existing = store.run_blocking(|c| key_store::list(c, tenant))?;
    keys::verify_decryptable(&existing, master, tenant)?;
    // Another node starting at the same moment may insert first; its keys are as good as ours.
    for _ in 0..3 {
        match store.run_blocking(|c| Ok(keys::ensure(c, master, tenant, 2048, now)?)) {
            Err(crate::store::StoreError::Conflict(_)) => continue,
            other => return Ok(other?),
        }
    }
    anyhow::bail!(
        "could not create signing keys for tenant {tenant}: other nodes kept creating them at the same time"
    )
}
