//! `sesame sp`: registering SAML service providers from their metadata or from fields.

use anyhow::{Context, anyhow, bail};

use super::SpCommand;
use super::admin::{record, tenant_of};
use crate::clock::UnixTime;
use crate::saml::registry;
use crate::store::service_providers::{
    self as sps, AttributeMapping, Encryption, Endpoint, NameIdSource, ServiceProvider, Signed,
};
use crate::store::{Store, apps, tx};

pub fn run(cmd: SpCommand, store: &Store, now: UnixTime) -> anyhow::Result<()> {
    match cmd {
        SpCommand::Add {
            tenant,
            id,
            metadata,
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
        } => {
            let tid = tenant_of(store, &tenant)?;
            let (from_metadata, mut settings) = match &metadata {
                Some(path) => {
                    let xml = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let (entity, settings) = registry::from_metadata(&xml)
                        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
                    (Some(entity), settings)
                }
                None => (None, Default::default()),
            };
            let entity_id = entity_id.or(from_metadata).ok_or_else(|| {
                anyhow!("give the SP's --metadata file, or its --entity-id and --acs")
            })?;
            if !acs.is_empty() {
                settings.acs = acs
                    .into_iter()
                    .enumerate()
                    .map(|(i, url)| Endpoint {
                        url,
                        binding: crate::saml::BINDING_POST.into(),
                        index: u32::try_from(i).ok(),
                        is_default: i == 0,
                    })
                    .collect();
            }
            if let Some(url) = slo {
                settings.slo = Some(Endpoint {
                    url,
                    binding: crate::saml::BINDING_REDIRECT.into(),
                    index: None,
                    is_default: false,
                });
            }
            if let Some(path) = signing_cert {
                settings.signing_certificates = vec![certificate(&path)?];
            }
            if let Some(path) = encryption_cert {
                settings.encryption_certificate = Some(certificate(&path)?);
            }
            if let Some(n) = name_id {
                settings.name_id = NameIdSource::parse(&n).ok_or_else(|| {
                    anyhow!("--name-id must be email, username, persistent or transient")
                })?;
            }
            if !attributes.is_empty() {
                settings.attributes = attributes
                    .iter()
                    .map(|a| attribute(a))
                    .collect::<anyhow::Result<_>>()?;
            }
            settings.want_requests_signed |= require_signed_requests;
            settings.idp_initiated |= idp_initiated;
            if let Some(s) = sign {
                settings.signed = match s.as_str() {
                    "assertion" => Signed::Assertion,
                    "response" => Signed::Response,
                    "both" => Signed::Both,
                    _ => bail!("--sign must be assertion, response or both"),
                };
            }
            if let Some(e) = encryption {
                settings.encryption = match e.as_str() {
                    "aes256-gcm" => Encryption::Aes256Gcm,
                    "aes128-gcm" => Encryption::Aes128Gcm,
                    "aes128-cbc" => Encryption::Aes128Cbc,
                    _ => bail!("--encryption must be aes256-gcm, aes128-gcm or aes128-cbc"),
                };
            }
            let sp = ServiceProvider {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                entity_id,
                app_id: app,
                settings,
            };
            registry::check(&sp).map_err(|e| anyhow!("{e}"))?;
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
                "{:<20} {:<12} {:<10} {:<9} ENTITY ID",
                "ID", "APP", "NAME ID", "SIGNED RQ"
            );
            for sp in store.run_blocking(|c| sps::list(c, &tid))? {
                println!(
                    "{:<20} {:<12} {:<10} {:<9} {}",
                    sp.id,
                    sp.app_id.as_deref().unwrap_or("-"),
                    sp.settings.name_id.as_str(),
                    if sp.settings.want_requests_signed {
                        "required"
                    } else {
                        "-"
                    },
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

/// A certificate file, PEM or DER, as the base64 DER the registration keeps.
fn certificate(path: &std::path::Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    registry::certificate(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn attribute(arg: &str) -> anyhow::Result<AttributeMapping> {
    let (name, source) = arg
        .split_once('=')
        .ok_or_else(|| anyhow!("--attribute '{arg}': write NAME=SOURCE, e.g. mail=email"))?;
    Ok(AttributeMapping {
        name: name.trim().to_string(),
        source: source.trim().to_string(),
        format: None,
    })
}
