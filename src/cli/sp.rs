//! `sesame sp`: registering SAML service providers from their metadata or from fields.

use anyhow::{Context, anyhow, bail};

use super::SpCommand;
use super::admin::{record, tenant_of};
use crate::clock::UnixTime;
use crate::outbound;
use crate::saml::registry;
use crate::store::service_providers as sps;
use crate::store::{Store, apps, tenants, tx};
use crate::tenant::TenantId;

/// Metadata fetched by URL: an SP's metadata is a few KiB; a megabyte is already generous.
const METADATA_MAX_BYTES: usize = 1 << 20;
const METADATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub fn run(cmd: SpCommand, store: &Store, now: UnixTime) -> anyhow::Result<()> {
    match cmd {
        SpCommand::Add {
            tenant,
            id,
            metadata,
            metadata_url,
            entity_id,
            acs,
            slo,
            signing_cert,
            encryption_cert,
            name,
            app,
            name_id,
            attributes,
            require_signed_requests,
            idp_initiated,
            sign,
            encryption,
            assertion_lifetime,
        } => {
            let tid = tenant_of(store, &tenant)?;
            let read = |path: &std::path::Path| {
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
            };
            let metadata = match &metadata {
                Some(path) => Some(
                    String::from_utf8(read(path)?)
                        .map_err(|_| anyhow!("{} is not UTF-8 text", path.display()))?,
                ),
                None => match &metadata_url {
                    Some(url) => Some(fetch_metadata(store, &tid, url)?),
                    None => None,
                },
            };
            let fields = registry::Fields {
                metadata,
                entity_id,
                acs,
                slo,
                signing_certificate: signing_cert.as_deref().map(read).transpose()?,
                encryption_certificate: encryption_cert.as_deref().map(read).transpose()?,
                name_id,
                attributes: attributes
                    .iter()
                    .map(|a| attribute(a))
                    .collect::<anyhow::Result<_>>()?,
                require_signed_requests,
                idp_initiated,
                sign,
                encryption,
                assertion_lifetime,
            };
            let sp = registry::build(&id, name.as_deref(), app.as_deref(), &fields)
                .map_err(|e| anyhow!("{e}"))?;
            if let Some(app) = &sp.app_id
                && !store
                    .run_blocking(|c| apps::list_ids(c, &tid))?
                    .contains(app)
            {
                bail!("no app '{app}' in tenant '{tid}'");
            }
            store.run_blocking(|c| {
                tx::write(c, |c| {
                    sps::save(c, &tid, &sp, now)?;
                    record(c, &tid, "sp.save", &sp.id, now)
                })
            })?;
            println!(
                "registered SP '{}' ({}); it receives Responses at {}",
                sp.id,
                sp.entity_id,
                sp.settings
                    .acs
                    .iter()
                    .map(|e| e.url.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        SpCommand::List { tenant } => {
            let tid = tenant_of(store, &tenant)?;
            println!(
                "{:<20} {:<12} {:<10} {:<9} {:<9} ENTITY ID",
                "ID", "APP", "NAME ID", "SIGNED RQ", "LIFETIME"
            );
            for sp in store.run_blocking(|c| sps::list(c, &tid))? {
                let lifetime = sp
                    .settings
                    .assertion_lifetime
                    .unwrap_or(crate::saml::sso::DEFAULT_ASSERTION_LIFETIME);
                println!(
                    "{:<20} {:<12} {:<10} {:<9} {:<9} {}",
                    sp.id,
                    sp.app_id.as_deref().unwrap_or("-"),
                    sp.settings.name_id.as_str(),
                    if sp.settings.want_requests_signed {
                        "required"
                    } else {
                        "-"
                    },
                    format!("{lifetime}s"),
                    sp.entity_id
                );
            }
        }
        SpCommand::Remove { tenant, id } => {
            let tid = tenant_of(store, &tenant)?;
            let removed = store.run_blocking(|c| {
                tx::write(c, |c| {
                    let removed = sps::remove(c, &tid, &id)?;
                    if removed {
                        record(c, &tid, "sp.remove", &id, now)?;
                    }
                    Ok(removed)
                })
            })?;
            if !removed {
                bail!("no SP '{id}' in tenant '{tid}'");
            }
            println!("removed SP '{id}'");
        }
    }
    Ok(())
}

/// Fetches an SP's metadata once, under the tenant's address policy (see `outbound`). Commands
/// run on the blocking pool, so the fetch is driven to completion here.
fn fetch_metadata(store: &Store, tid: &TenantId, url: &str) -> anyhow::Result<String> {
    let allow_private = store
        .run_blocking(|c| tenants::find(c, tid))?
        .is_some_and(|t| outbound::tenant_allows_private(&t));
    let policy = outbound::Policy {
        max_bytes: METADATA_MAX_BYTES,
        timeout: METADATA_TIMEOUT,
        allow_private,
    };
    let body = tokio::runtime::Handle::current()
        .block_on(outbound::fetch(url, &policy))
        .with_context(|| format!("cannot fetch the metadata at {url}"))?;
    String::from_utf8(body).map_err(|_| anyhow!("the metadata at {url} is not UTF-8 text"))
}

fn attribute(arg: &str) -> anyhow::Result<(String, String)> {
    let (name, source) = arg
        .split_once('=')
        .ok_or_else(|| anyhow!("--attribute '{arg}': write NAME=SOURCE, e.g. mail=email"))?;
    Ok((name.to_string(), source.to_string()))
}
