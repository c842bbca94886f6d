//! `sesame import FILE.toml`: tenants, departments, apps, roles, users and clients declared in one
//! file. Applying a file twice changes nothing; a bad file changes nothing (one write transaction)
//! and the error names the line.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use super::valid_key;

mod app_entries;
mod directory;
mod sp_entries;

use crate::account::{Email, Phone, Username};
use crate::clock::{Clock, UnixTime};
use crate::crypto::password::PasswordHasher;
use crate::crypto::secret::{DigestKey, SecretString};
use crate::store::apps::{AccessScope, App, Channel};
use crate::store::tenants::{self, TenantSpec, TenantStatus};
use crate::store::users::UserStatus;
use crate::store::{Conn, StoreError, apps, audit, tx};
use crate::tenant::{TenantId, normalize_host};
pub use app_entries::client_from_entry;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportFile {
    #[serde(default)]
    pub tenants: Vec<TenantEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    pub id: Spanned<String>,
    pub display_name: String,
    #[serde(default)]
    pub status: Option<TenantStatus>,
    #[serde(default)]
    pub trial_expires_at: Option<i64>,
    /// Host names the tenant's pages answer at. Given, they replace the stored ones (`[]`
    /// removes them all); left out, those stay, as `settings` do.
    #[serde(default)]
    pub hosts: Option<Vec<Spanned<String>>>,
    /// The sign-in page's settings (`default_locale`, `default_region`, `terms_url`, ...; see
    /// docs/sign-in.md). Given, they replace the stored ones; left out, those stay.
    #[serde(default)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// The tenant's look (`logo_url`); replaced or kept like `settings`.
    #[serde(default)]
    pub branding: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub departments: Vec<DepartmentEntry>,
    #[serde(default)]
    pub apps: Vec<AppEntry>,
    #[serde(default)]
    pub roles: Vec<RoleEntry>,
    #[serde(default)]
    pub users: Vec<UserEntry>,
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    #[serde(default)]
    pub service_providers: Vec<sp_entries::SpEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentEntry {
    pub id: Spanned<String>,
    pub name: String,
    #[serde(default)]
    pub parent: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppEntry {
    pub id: Spanned<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub web_access: AccessEntry,
    #[serde(default)]
    pub mobile_access: AccessEntry,
    /// Usernames (or emails / mobile numbers) of the app's administrators.
    #[serde(default)]
    pub admins: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEntry {
    #[serde(default)]
    pub everyone: bool,
    #[serde(default)]
    pub departments: Vec<Spanned<String>>,
    #[serde(default)]
    pub users: Vec<Spanned<String>>,
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    pub id: Spanned<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub app: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    #[serde(default)]
    pub email: Option<Spanned<String>>,
    #[serde(default)]
    pub phone: Option<Spanned<String>>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub department: Option<Spanned<String>>,
    #[serde(default)]
    pub employee_no: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    /// Left as it is on an existing user when absent.
    #[serde(default)]
    pub status: Option<UserStatus>,
    /// Left as they are on an existing user when absent.
    #[serde(default)]
    pub roles: Option<Vec<Spanned<String>>>,
    /// Plain text, hashed on import; prefer `password_hash`.
    #[serde(default)]
    pub password: Option<Spanned<SecretString>>,
    /// An argon2 PHC string.
    #[serde(default)]
    pub password_hash: Option<Spanned<String>>,
    #[serde(default)]
    pub must_change_password: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub client_id: Spanned<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub app: Option<Spanned<String>>,
    #[serde(default)]
    pub redirect_uris: Vec<Spanned<String>>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<Spanned<String>>,
    #[serde(default)]
    pub grant_types: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub auth_method: Option<Spanned<String>>,
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub first_party: bool,
    /// Plain text, stored only as a hash. Absent on a new confidential client: one is generated
    /// and reported once.
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    pub access_token_lifetime: Option<i64>,
    #[serde(default)]
    pub id_token_lifetime: Option<i64>,
    #[serde(default)]
    pub refresh_token_lifetime: Option<i64>,
    /// private_key_jwt: the client's JWK Set, by value (a table with `keys`) or by URI.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub jwks_uri: Option<Spanned<String>>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<Spanned<String>>,
    /// RS256 (default), PS256, ES256 or EdDSA.
    #[serde(default)]
    pub id_token_signed_response_alg: Option<Spanned<String>>,
    /// ES256 (default), RS256, PS256 or EdDSA: the access token's algorithm, for resource servers
    /// that verify only one.
    #[serde(default)]
    pub access_token_signed_response_alg: Option<Spanned<String>>,
    /// Scopes beyond openid/profile/email/phone/offline_access the client may obtain.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// RFC 8707 resource URIs the client may ask tokens for.
    #[serde(default)]
    pub allowed_resources: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}:{line}: {message}")]
    At {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        ImportError::Store(e.into())
    }
}

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub new_tenants: Vec<TenantId>,
    /// `(tenant, client_id, secret)` for confidential clients created without a secret; shown once.
    pub generated_secrets: Vec<(TenantId, String, SecretString)>,
}

impl ImportReport {
    pub(super) fn count(&mut self, change: Change) {
        match change {
            Change::Created => self.created += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Created,
    Updated,
    Unchanged,
}

/// The file's text, to turn byte spans into line numbers.
pub(super) struct Source<'a> {
    pub(super) name: &'a str,
    pub(super) text: &'a str,
}

impl Source<'_> {
    pub(super) fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, ImportError> {
        let line = self.text[..span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        Err(ImportError::At {
            file: self.name.to_string(),
            line,
            message: message.into(),
        })
    }

    pub(super) fn wrap<T>(
        &self,
        span: std::ops::Range<usize>,
        r: Result<T, StoreError>,
    ) -> Result<T, ImportError> {
        match r {
            Ok(v) => Ok(v),
            Err(StoreError::Unavailable(e)) => Err(ImportError::Store(StoreError::Unavailable(e))),
            Err(e) => self.err(span, e.to_string()),
        }
    }
}

/// Parses `text` (named `name` in messages) and applies it in one write transaction.
pub fn apply(
    conn: &mut Conn,
    name: &str,
    text: &str,
    hasher: &PasswordHasher,
    client_secrets: &DigestKey,
    clock: &dyn Clock,
) -> Result<ImportReport, ImportError> {
    let src = Source { name, text };
    let file: ImportFile = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            return src.err(span, e.message().to_string());
        }
    };
    check_unique_ids(&src, &file)?;
    // argon2 first, outside the write transaction, so it never holds the database's write lock.
    let mut passwords = Vec::with_capacity(file.tenants.len());
    for tenant in &file.tenants {
        passwords.push(match TenantId::parse(tenant.id.get_ref()) {
            Some(tid) => directory::plan_passwords(conn, &src, &tid, &tenant.users, hasher)?,
            None => Default::default(),
        });
    }
    // The moment is taken after the hashing, which can take minutes: what the import records
    // (a disabled user's revocation, say) must not come out older than when it commits, or the
    // nodes reading revocations since their last look would miss it.
    let now = clock.now();
    tx::write(conn, |c| {
        let mut report = ImportReport::default();
        for (tenant, passwords) in file.tenants.iter().zip(&passwords) {
            apply_tenant(c, &src, tenant, passwords, client_secrets, now, &mut report)?;
        }
        Ok(report)
    })
}

fn check_unique_ids(src: &Source<'_>, file: &ImportFile) -> Result<(), ImportError> {
    /// Compares the normalized form (so `Alice` and `alice`, or two spellings of one mobile
    /// number, count as the same), falling back to the text for values that do not parse.
    fn dupes<'a>(
        src: &Source<'_>,
        what: &str,
        ids: impl Iterator<Item = &'a Spanned<String>>,
        normalize: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ImportError> {
        let mut seen = HashSet::new();
        for id in ids {
            let key = normalize(id.get_ref()).unwrap_or_else(|| id.get_ref().clone());
            if !seen.insert(key) {
                return src.err(
                    id.span(),
                    format!("{what} '{}' is declared twice", id.get_ref()),
                );
            }
        }
        Ok(())
    }
    let same = |s: &str| Some(s.to_string());
    dupes(src, "tenant", file.tenants.iter().map(|t| &t.id), same)?;
    for t in &file.tenants {
        dupes(src, "department", t.departments.iter().map(|d| &d.id), same)?;
        dupes(src, "app", t.apps.iter().map(|a| &a.id), same)?;
        dupes(src, "role", t.roles.iter().map(|r| &r.id), same)?;
        dupes(src, "client", t.clients.iter().map(|c| &c.client_id), same)?;
        dupes(
            src,
            "service provider",
            t.service_providers.iter().map(|s| &s.id),
            same,
        )?;
        let username = |s: &str| Username::parse(s).map(|u| u.to_string());
        dupes(
            src,
            "username",
            t.users.iter().filter_map(|u| u.username.as_ref()),
            username,
        )?;
        let email = |s: &str| Email::parse(s).map(|e| e.to_string());
        dupes(
            src,
            "email",
            t.users.iter().filter_map(|u| u.email.as_ref()),
            email,
        )?;
        let phone = |s: &str| Phone::parse(s, None).map(|p| p.to_string());
        dupes(
            src,
            "mobile number",
            t.users.iter().filter_map(|u| u.phone.as_ref()),
            phone,
        )?;
        let mut ids = HashSet::new();
        for u in &t.users {
            if let Some(id) = &u.id
                && !ids.insert(id.as_str())
            {
                return src.err(0..0, format!("user id '{id}' is declared twice"));
            }
        }
    }
    Ok(())
}

pub(super) fn key<'a>(
    src: &Source<'_>,
    what: &str,
    id: &'a Spanned<String>,
) -> Result<&'a str, ImportError> {
    if valid_key(id.get_ref()) {
        Ok(id.get_ref())
    } else {
        src.err(
            id.span(),
            format!(
                "{what} id '{}' must be 1-64 of a-z 0-9 . _ : - (starting with a letter or digit)",
                id.get_ref()
            ),
        )
    }
}

fn apply_tenant(
    c: &mut Conn,
    src: &Source<'_>,
    entry: &TenantEntry,
    passwords: &HashMap<usize, directory::PasswordPlan>,
    client_secrets: &DigestKey,
    now: UnixTime,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let Some(tid) = TenantId::parse(entry.id.get_ref()) else {
        return src.err(
            entry.id.span(),
            format!(
                "tenant id '{}' must be 1-63 of a-z 0-9 -",
                entry.id.get_ref()
            ),
        );
    };
    let existing = tenants::find(c, &tid)?;
    let hosts = match &entry.hosts {
        Some(given) => {
            let mut hosts = Vec::new();
            for h in given {
                match normalize_host(h.get_ref()) {
                    Some(n) => hosts.push(n),
                    None => {
                        return src.err(h.span(), format!("'{}' is not a host name", h.get_ref()));
                    }
                }
            }
            hosts.sort();
            hosts.dedup();
            hosts
        }
        None => existing
            .as_ref()
            .map(|t| t.hosts.clone())
            .unwrap_or_default(),
    };
    if let Some(given) = &entry.settings
        && let Err(why) = crate::tenant::settings::check_settings(given)
    {
        return src.err(entry.id.span(), format!("tenant '{tid}': {why}"));
    }
    if let Some(given) = &entry.branding
        && let Err(why) = crate::tenant::settings::check_branding(given)
    {
        return src.err(entry.id.span(), format!("tenant '{tid}': {why}"));
    }
    let spec = TenantSpec {
        display_name: entry.display_name.clone(),
        status: entry
            .status
            .unwrap_or(existing.as_ref().map_or(TenantStatus::Active, |t| t.status)),
        trial_expires_at: entry
            .trial_expires_at
            .map(UnixTime)
            .or(existing.as_ref().and_then(|t| t.trial_expires_at)),
        hosts,
        branding: match &entry.branding {
            Some(given) => serde_json::Value::Object(given.clone()),
            None => existing
                .as_ref()
                .map_or(serde_json::json!({}), |t| t.branding.clone()),
        },
        settings: match &entry.settings {
            Some(given) => serde_json::Value::Object(given.clone()),
            None => existing
                .as_ref()
                .map_or(serde_json::json!({}), |t| t.settings.clone()),
        },
    };
    let change = match &existing {
        None => {
            src.wrap(entry.id.span(), tenants::insert(c, &tid, &spec, now))?;
            report.new_tenants.push(tid.clone());
            Change::Created
        }
        Some(t) if t.spec() == spec => Change::Unchanged,
        Some(_) => {
            src.wrap(entry.id.span(), tenants::update(c, &tid, &spec, now))?;
            Change::Updated
        }
    };
    report.count(change);
    let mut log = Vec::new();
    if change != Change::Unchanged {
        log.push(("tenant", tid.to_string(), change));
    }

    directory::apply_departments(c, src, &tid, &entry.departments, now, report, &mut log)?;
    // Apps first without access lists and admins (those name roles and users created below).
    let app_ids: HashSet<String> = apps::list_ids(c, &tid)?.into_iter().collect();
    for app in &entry.apps {
        let id = key(src, "app", &app.id)?;
        if !app_ids.contains(id) {
            let shell = App {
                id: id.to_string(),
                name: app.name.clone(),
                description: app.description.clone(),
                web_access: AccessScope::default(),
                mobile_access: AccessScope::default(),
                admins: vec![],
            };
            src.wrap(app.id.span(), apps::put(c, &tid, &shell, now))?;
        }
    }
    directory::apply_roles(c, src, &tid, &entry.roles, now, report, &mut log)?;
    let user_ids =
        directory::apply_users(c, src, &tid, &entry.users, passwords, now, report, &mut log)?;
    app_entries::apply_apps(
        c,
        src,
        &tid,
        &entry.apps,
        &app_ids,
        &user_ids,
        now,
        report,
        &mut log,
    )?;
    app_entries::apply_clients(
        c,
        src,
        &tid,
        &entry.clients,
        client_secrets,
        now,
        report,
        &mut log,
    )?;
    sp_entries::apply_service_providers(
        c,
        src,
        &tid,
        &entry.service_providers,
        now,
        report,
        &mut log,
    )?;

    for (kind, target, change) in log {
        let action = format!(
            "{kind}.{}",
            if change == Change::Created {
                "create"
            } else {
                "update"
            }
        );
        audit::record(
            c,
            &tid,
            &audit::NewAuditEvent {
                actor: "import",
                action: &action,
                target: Some(&target),
                outcome: "success",
                ip: None,
                details: serde_json::json!({ "file": src.name }),
            },
            now,
        )?;
    }
    Ok(())
}

pub(super) type Log = Vec<(&'static str, String, Change)>;
