//! `[[tenants.service_providers]]`: SAML service providers in the import file, checked and built
//! by [`crate::saml::registry`] exactly as `sesame sp add` does.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{Change, ImportError, ImportReport, Log, Source, key};
use crate::clock::UnixTime;
use crate::saml::registry::{self, Fields};
use crate::store::Conn;
use crate::store::service_providers as sps;
use crate::tenant::TenantId;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpEntry {
    pub id: Spanned<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The app whose access scope applies.
    #[serde(default)]
    pub app: Option<String>,
    /// The SP's metadata file, relative to the import file.
    #[serde(default)]
    pub metadata_file: Option<String>,
    #[serde(default)]
    pub entity_id: Option<String>,
    #[serde(default)]
    pub acs: Vec<String>,
    #[serde(default)]
    pub slo: Option<String>,
    /// PEM.
    #[serde(default)]
    pub signing_certificate: Option<String>,
    #[serde(default)]
    pub encryption_certificate: Option<String>,
    #[serde(default)]
    pub name_id: Option<String>,
    /// Attribute name = user field.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub require_signed_requests: bool,
    #[serde(default)]
    pub idp_initiated: bool,
    #[serde(default)]
    pub sign: Option<String>,
    #[serde(default)]
    pub encryption: Option<String>,
    #[serde(default)]
    pub assertion_lifetime: Option<i64>,
}

pub(super) fn apply_service_providers(
    c: &mut Conn,
    src: &Source<'_>,
    tid: &TenantId,
    entries: &[SpEntry],
    now: UnixTime,
    report: &mut ImportReport,
    log: &mut Log,
) -> Result<(), ImportError> {
    for entry in entries {
        let id = key(src, "service provider", &entry.id)?;
        let metadata = match &entry.metadata_file {
            Some(file) => {
                let base = std::path::Path::new(src.name)
                    .parent()
                    .unwrap_or(std::path::Path::new("."));
                let path = base.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(xml) => Some(xml),
                    Err(e) => {
                        return src.err(
                            entry.id.span(),
                            format!("cannot read {}: {e}", path.display()),
                        );
                    }
                }
            }
            None => None,
        };
        let fields = Fields {
            metadata,
            entity_id: entry.entity_id.clone(),
            acs: entry.acs.clone(),
            slo: entry.slo.clone(),
            signing_certificate: entry.signing_certificate.clone().map(String::into_bytes),
            encryption_certificate: entry.encryption_certificate.clone().map(String::into_bytes),
            name_id: entry.name_id.clone(),
            attributes: entry
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            require_signed_requests: entry.require_signed_requests,
            idp_initiated: entry.idp_initiated,
            sign: entry.sign.clone(),
            encryption: entry.encryption.clone(),
            assertion_lifetime: entry.assertion_lifetime,
        };
        let want = match registry::build(id, entry.name.as_deref(), entry.app.as_deref(), &fields) {
            Ok(sp) => sp,
            Err(e) => return src.err(entry.id.span(), e.to_string()),
        };
        let change = match sps::find(c, tid, id)? {
            None => Change::Created,
            Some(have) if have == want => Change::Unchanged,
            Some(_) => Change::Updated,
        };
        if change != Change::Unchanged {
            src.wrap(entry.id.span(), sps::save(c, tid, &want, now))?;
            log.push(("sp", want.id.clone(), change));
        }
        report.count(change);
    }
    Ok(())
}
