//! `sesame import FILE.toml`: tenants, departments, apps, roles, users and clients declared in one
//! file. Applying a file twice changes nothing; a bad file changes nothing (one write transaction)
//! and the error names the line.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use super::valid_key;
use crate::account::{Email, Login, Phone, Username};
use crate::clock::UnixTime;
use crate::crypto::password::{PasswordHasher, is_argon2_phc};
use crate::crypto::secret::{TokenHash, random_token};
use crate::oidc::redirect::check_registrable;
use crate::store::apps::{AccessScope, App, Channel};
use crate::store::clients::{AuthMethod, Client};
use crate::store::departments::{self, Department};
use crate::store::roles::{self, Role};
use crate::store::tenants::{self, TenantSpec, TenantStatus};
use crate::store::users::{self, NewUser, UserProfile, UserStatus};
use crate::store::{Conn, StoreError, apps, audit, clients, tx};
use crate::tenant::{TenantId, normalize_host};

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
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
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
    pub password: Option<Spanned<String>>,
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
    pub secret: Option<String>,
    #[serde(default)]
    pub access_token_lifetime: Option<i64>,
    #[serde(default)]
    pub id_token_lifetime: Option<i64>,
    #[serde(default)]
    pub refresh_token_lifetime: Option<i64>,
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
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub new_tenants: Vec<TenantId>,
    /// `(tenant, client_id, secret)` for confidential clients created without a secret; shown once.
    pub generated_secrets: Vec<(TenantId, String, String)>,
}

impl ImportReport {
    fn count(&mut self, change: Change) {
        match change {
            Change::Created => self.created += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

/// The file's text, to turn byte spans into line numbers.
struct Source<'a> {
    name: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn err<T>(
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

    fn wrap<T>(
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
    now: UnixTime,
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
    tx::write(conn, |c| {
        let mut report = ImportReport::default();
        for tenant in &file.tenants {
            apply_tenant(c, &src, tenant, hasher, now, &mut report)?;
        }
        Ok(report)
    })
}

fn check_unique_ids(src: &Source<'_>, file: &ImportFile) -> Result<(), ImportError> {
    fn dupes<'a>(
        src: &Source<'_>,
        what: &str,
        ids: impl Iterator<Item = &'a Spanned<String>>,
    ) -> Result<(), ImportError> {
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(id.get_ref().as_str()) {
                return src.err(
                    id.span(),
                    format!("{what} '{}' is declared twice", id.get_ref()),
                );
            }
        }
        Ok(())
    }
    dupes(src, "tenant", file.tenants.iter().map(|t| &t.id))?;
    for t in &file.tenants {
        dupes(src, "department", t.departments.iter().map(|d| &d.id))?;
        dupes(src, "app", t.apps.iter().map(|a| &a.id))?;
        dupes(src, "role", t.roles.iter().map(|r| &r.id))?;
        dupes(src, "client", t.clients.iter().map(|c| &c.client_id))?;
        dupes(
            src,
            "username",
            t.users.iter().filter_map(|u| u.username.as_ref()),
        )?;
        dupes(
            src,
            "email",
            t.users.iter().filter_map(|u| u.email.as_ref()),
        )?;
        dupes(
            src,
            "mobile number",
            t.users.iter().filter_map(|u| u.phone.as_ref()),
        )?;
    }
    Ok(())
}

fn key<'a>(src: &Source<'_>, what: &str, id: &'a Spanned<String>) -> Result<&'a str, ImportError> {
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
    hasher: &PasswordHasher,
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
    let mut hosts = Vec::new();
    for h in &entry.hosts {
        match normalize_host(h.get_ref()) {
            Some(n) => hosts.push(n),
            None => return src.err(h.span(), format!("'{}' is not a host name", h.get_ref())),
        }
    }
    hosts.sort();
    hosts.dedup();
    let existing = tenants::find(c, &tid)?;
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
        branding: existing
            .as_ref()
            .map_or(serde_json::json!({}), |t| t.branding.clone()),
        settings: existing
            .as_ref()
            .map_or(serde_json::json!({}), |t| t.settings.clone()),
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

    apply_departments(c, src, &tid, &entry.departments, now, report, &mut log)?;
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
    apply_roles(c, src, &tid, &entry.roles, now, report, &mut log)?;
    let user_ids = apply_users(c, src, &tid, &entry.users, hasher, now, report, &mut log)?;
    apply_apps(
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
    apply_clients(c, src, &tid, &entry.clients, now, report, &mut log)?;

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

type Log = Vec<(&'static str, String, Change)>;

fn apply_departments(
    c: &mut Conn,
    src: &Source<'_>,
    tid: &TenantId,
    entries: &[DepartmentEntry],
    now: UnixTime,
    report: &mut ImportReport,
    log: &mut Log,
) -> Result<(), ImportError> {
    let existing = departments::list(c, tid)?;
    let known: HashSet<&str> = existing
        .iter()
        .map(|d| d.id.as_str())
        .chain(entries.iter().map(|d| d.id.get_ref().as_str()))
        .collect();
    for d in entries {
        key(src, "department", &d.id)?;
        if let Some(p) = &d.parent
            && !known.contains(p.get_ref().as_str())
        {
            return src.err(
                p.span(),
                format!("parent department '{}' does not exist", p.get_ref()),
            );
        }
    }
    // The tree the file asks for must have no cycle.
    let mut planned: Vec<Department> = existing.clone();
    for d in entries {
        planned.retain(|x| x.id != *d.id.get_ref());
        planned.push(Department {
            id: d.id.get_ref().clone(),
            parent_id: d.parent.as_ref().map(|p| p.get_ref().clone()),
            name: d.name.clone(),
        });
    }
    for d in entries {
        let path = departments::path(&planned, d.id.get_ref());
        if path
            .first()
            .and_then(|root| planned.iter().find(|x| &x.id == root))
            .is_some_and(|r| r.parent_id.is_some())
        {
            return src.err(
                d.id.span(),
                format!("department '{}' is part of a parent cycle", d.id.get_ref()),
            );
        }
    }
    // Insert parents before children: repeat until everything is placed.
    let mut pending: Vec<&DepartmentEntry> = entries.iter().collect();
    let mut present: HashSet<String> = existing.iter().map(|d| d.id.clone()).collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for d in pending {
            let parent_ready = d
                .parent
                .as_ref()
                .is_none_or(|p| present.contains(p.get_ref()));
            if !parent_ready {
                rest.push(d);
                continue;
            }
            let want = Department {
                id: d.id.get_ref().clone(),
                parent_id: d.parent.as_ref().map(|p| p.get_ref().clone()),
                name: d.name.clone(),
            };
            let change = match existing.iter().find(|x| x.id == want.id) {
                None => {
                    src.wrap(d.id.span(), departments::insert(c, tid, &want, now))?;
                    Change::Created
                }
                Some(x) if *x == want => Change::Unchanged,
                Some(_) => {
                    src.wrap(d.id.span(), departments::update(c, tid, &want, now))?;
                    Change::Updated
                }
            };
            report.count(change);
            if change != Change::Unchanged {
                log.push(("department", want.id.clone(), change));
            }
            present.insert(want.id);
        }
        if rest.len() == before {
            return src.err(rest[0].id.span(), "department parents form a cycle");
        }
        pending = rest;
    }
    Ok(())
}

fn apply_roles(
    c: &mut Conn,
    src: &Source<'_>,
    tid: &TenantId,
    entries: &[RoleEntry],
    now: UnixTime,
    report: &mut ImportReport,
    log: &mut Log,
) -> Result<(), ImportError> {
    let app_ids: HashSet<String> = apps::list_ids(c, tid)?.into_iter().collect();
    for r in entries {
        let id = key(src, "role", &r.id)?;
        if let Some(app) = &r.app
            && !app_ids.contains(app.get_ref())
        {
            return src.err(
                app.span(),
                format!("app '{}' does not exist", app.get_ref()),
            );
        }
        let want = Role {
            id: id.to_string(),
            app_id: r.app.as_ref().map(|a| a.get_ref().clone()),
            name: r.name.clone(),
            description: r.description.clone(),
        };
        let change = match roles::find(c, tid, id)? {
            None => {
                src.wrap(r.id.span(), roles::insert(c, tid, &want, now))?;
                Change::Created
            }
            Some(x) if x == want => Change::Unchanged,
            Some(_) => {
                src.wrap(r.id.span(), roles::update(c, tid, &want))?;
                Change::Updated
            }
        };
        report.count(change);
        if change != Change::Unchanged {
            log.push(("role", want.id, change));
        }
    }
    Ok(())
}

/// Applies users; returns every login the file names mapped to its user id.
#[expect(
    clippy::too_many_arguments,
    reason = "one step of a single import; the arguments are its context"
)]
fn apply_users(
    c: &mut Conn,
    src: &Source<'_>,
    tid: &TenantId,
    entries: &[UserEntry],
    hasher: &PasswordHasher,
    now: UnixTime,
    report: &mut ImportReport,
    log: &mut Log,
) -> Result<HashMap<String, String>, ImportError> {
    let mut ids = HashMap::new();
    let dept_ids: HashSet<String> = departments::list(c, tid)?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let role_ids: HashSet<String> = roles::list(c, tid)?.into_iter().map(|r| r.id).collect();
    for u in entries {
        let anchor = u
            .username
            .as_ref()
            .or(u.email.as_ref())
            .or(u.phone.as_ref())
            .map(|s| s.span());
        let Some(anchor) = anchor else {
            return src.err(0..0, "a user needs at least one of username, email, phone");
        };
        let username = match &u.username {
            Some(s) => Some(Username::parse(s.get_ref()).map_or_else(
                || src.err(s.span(), format!("'{}' is not a valid username (letters, digits, . _ -; starting with a letter)", s.get_ref())),
                Ok,
            )?),
            None => None,
        };
        let email = match &u.email {
            Some(s) => Some(Email::parse(s.get_ref()).map_or_else(
                || {
                    src.err(
                        s.span(),
                        format!("'{}' is not an email address", s.get_ref()),
                    )
                },
                Ok,
            )?),
            None => None,
        };
        let phone = match &u.phone {
            Some(s) => Some(Phone::parse(s.get_ref(), None).map_or_else(
                || {
                    src.err(
                        s.span(),
                        format!(
                            "'{}' is not a valid mobile number with country code (+86…)",
                            s.get_ref()
                        ),
                    )
                },
                Ok,
            )?),
            None => None,
        };
        if let Some(d) = &u.department
            && !dept_ids.contains(d.get_ref())
        {
            return src.err(
                d.span(),
                format!("department '{}' does not exist", d.get_ref()),
            );
        }
        if let Some(roles) = &u.roles {
            for r in roles {
                if !role_ids.contains(r.get_ref()) {
                    return src.err(r.span(), format!("role '{}' does not exist", r.get_ref()));
                }
            }
        }
        if let Some(h) = &u.password_hash
            && !is_argon2_phc(h.get_ref())
        {
            return src.err(
                h.span(),
                "password_hash must be an argon2 PHC string ($argon2id$…)",
            );
        }
        let display_name = u
            .display_name
            .clone()
            .or_else(|| username.as_ref().map(|x| x.to_string()))
            .or_else(|| email.as_ref().map(|x| x.to_string()))
            .or_else(|| phone.as_ref().map(|x| x.to_string()))
            .unwrap_or_default();
        let profile = UserProfile {
            username: username.clone(),
            email: email.clone(),
            phone: phone.clone(),
            display_name,
            department_id: u.department.as_ref().map(|d| d.get_ref().clone()),
            employee_no: u.employee_no.clone(),
            locale: u.locale.clone(),
        };
        let existing = match &u.id {
            Some(id) => users::find(c, tid, id)?,
            None => {
                // A user is known by the first identifier the entry gives: username, else email,
                // else mobile number. The others are fields that may change.
                let login = username
                    .map(Login::Username)
                    .or(email.map(Login::Email))
                    .or(phone.map(Login::Phone));
                match login {
                    Some(login) => users::find_by_login(c, tid, &login)?,
                    None => None,
                }
            }
        };
        let mut change = Change::Unchanged;
        let user_id = match existing {
            None => {
                let password_hash = match (&u.password_hash, &u.password) {
                    (Some(h), _) => Some(h.get_ref().clone()),
                    (None, Some(p)) => Some(
                        hasher
                            .hash_blocking(p.get_ref())
                            .map_or_else(|e| src.err(p.span(), e.to_string()), Ok)?,
                    ),
                    (None, None) => None,
                };
                let new = NewUser {
                    id: u.id.clone(),
                    profile,
                    status: u.status.unwrap_or(UserStatus::Active),
                    must_change_password: u.must_change_password.unwrap_or(false),
                    password_hash,
                };
                change = Change::Created;
                src.wrap(anchor.clone(), users::insert(c, tid, &new, now))?
                    .id
            }
            Some(user) => {
                if user.profile != profile {
                    src.wrap(
                        anchor.clone(),
                        users::update_profile(c, tid, &user.id, &profile, now),
                    )?;
                    change = Change::Updated;
                }
                if let Some(status) = u.status.filter(|s| *s != user.status) {
                    users::set_status(c, tid, &user.id, status, now)?;
                    change = Change::Updated;
                }
                let stored = users::password_hash(c, tid, &user.id)?;
                let must_change = u.must_change_password.unwrap_or(user.must_change_password);
                let new_hash = match (&u.password_hash, &u.password) {
                    (Some(h), _) if stored.as_deref() != Some(h.get_ref().as_str()) => {
                        Some(h.get_ref().clone())
                    }
                    (None, Some(p))
                        if !stored
                            .as_deref()
                            .is_some_and(|s| hasher.verify_blocking(s, p.get_ref())) =>
                    {
                        Some(
                            hasher
                                .hash_blocking(p.get_ref())
                                .map_or_else(|e| src.err(p.span(), e.to_string()), Ok)?,
                        )
                    }
                    _ => None,
                };
                if let Some(hash) = new_hash {
                    users::set_password(c, tid, &user.id, &hash, must_change, now)?;
                    change = Change::Updated;
                } else if must_change != user.must_change_password
                    && let Some(hash) = stored
                {
                    users::set_password(c, tid, &user.id, &hash, must_change, now)?;
                    change = Change::Updated;
                }
                user.id
            }
        };
        if let Some(roles) = &u.roles {
            let mut want: Vec<String> = roles.iter().map(|r| r.get_ref().clone()).collect();
            want.sort();
            want.dedup();
            if roles::of_user(c, tid, &user_id)? != want {
                roles::set_for_user(c, tid, &user_id, &want)?;
                if change == Change::Unchanged {
                    change = Change::Updated;
                }
            }
        }
        report.count(change);
        if change != Change::Unchanged {
            log.push(("user", user_id.clone(), change));
        }
        for name in [&u.username, &u.email, &u.phone].into_iter().flatten() {
            ids.insert(name.get_ref().to_lowercase(), user_id.clone());
        }
    }
    Ok(ids)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one step of a single import; the arguments are its context"
)]
fn apply_apps(
    c: &mut Conn,
    src: &Source<'_>,
    tid: &TenantId,
    entries: &[AppEntry],
    existed_before: &HashSet<String>,
    file_users: &HashMap<String, String>,
    now: UnixTime,
    report: &mut ImportReport,
    log: &mut Log,
) -> Result<(), ImportError> {
    let dept_ids: HashSet<String> = departments::list(c, tid)?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let role_ids: HashSet<String> = roles::list(c, tid)?.into_iter().map(|r| r.id).collect();
    let resolve_user = |c: &mut Conn, s: &Spanned<String>| -> Result<String, ImportError> {
        if let Some(id) = file_users.get(&s.get_ref().to_lowercase()) {
            return Ok(id.clone());
        }
        let found = match Login::parse(s.get_ref(), None) {
            Some(login) => users::find_by_login(c, tid, &login)?,
            None => None,
        };
        match found.or(users::find(c, tid, s.get_ref())?) {
            Some(u) => Ok(u.id),
            None => src.err(s.span(), format!("user '{}' does not exist", s.get_ref())),
        }
    };
    for a in entries {
        let mut scopes = Vec::new();
        for entry in [&a.web_access, &a.mobile_access] {
            let mut scope = AccessScope {
                everyone: entry.everyone,
                ..AccessScope::default()
            };
            for d in &entry.departments {
                if !dept_ids.contains(d.get_ref()) {
                    return src.err(
                        d.span(),
                        format!("department '{}' does not exist", d.get_ref()),
                    );
                }
                scope.departments.push(d.get_ref().clone());
            }
            for r in &entry.roles {
                if !role_ids.contains(r.get_ref()) {
                    return src.err(r.span(), format!("role '{}' does not exist", r.get_ref()));
                }
                scope.roles.push(r.get_ref().clone());
            }
            for u in &entry.users {
                scope.users.push(resolve_user(c, u)?);
            }
            for v in [&mut scope.departments, &mut scope.roles, &mut scope.users] {
                v.sort();
                v.dedup();
            }
            scopes.push(scope);
        }
        let mut admins = Vec::new();
        for u in &a.admins {
            admins.push(resolve_user(c, u)?);
        }
        admins.sort();
        admins.dedup();
        let mobile_access = scopes.pop().unwrap_or_default();
        let web_access = scopes.pop().unwrap_or_default();
        let want = App {
            id: a.id.get_ref().clone(),
            name: a.name.clone(),
            description: a.description.clone(),
            web_access,
            mobile_access,
            admins,
        };
        let current = apps::find(c, tid, &want.id)?;
        let change = if current.as_ref() == Some(&want) {
            Change::Unchanged
        } else {
            src.wrap(a.id.span(), apps::put(c, tid, &want, now))?;
            if existed_before.contains(&want.id) {
                Change::Updated
            } else {
                Change::Created
            }
        };
        report.count(change);
        if change != Change::Unchanged {
            log.push(("app", want.id, change));
        }
    }
    Ok(())
}

const KNOWN_GRANTS: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];

/// Builds a client from its declaration, keeping `current`'s secret unless a new one is given.
/// Shared with `sesame client add`.
pub fn client_from_entry(
    src_name: &str,
    text: &str,
    e: &ClientEntry,
    current: Option<&Client>,
    app_ids: &HashSet<String>,
) -> Result<(Client, Option<String>), ImportError> {
    let src = Source {
        name: src_name,
        text,
    };
    let id = key(&src, "client", &e.client_id)?;
    if let Some(app) = &e.app
        && !app_ids.contains(app.get_ref())
    {
        return src.err(
            app.span(),
            format!("app '{}' does not exist", app.get_ref()),
        );
    }
    for uri in e.redirect_uris.iter().chain(&e.post_logout_redirect_uris) {
        if let Err(why) = check_registrable(uri.get_ref()) {
            return src.err(uri.span(), why);
        }
    }
    let auth_method = match &e.auth_method {
        Some(m) => match AuthMethod::parse(m.get_ref()) {
            Some(m) => m,
            None => {
                return src.err(m.span(), format!(
                    "auth_method '{}' is not one of client_secret_basic, client_secret_post, private_key_jwt, none",
                    m.get_ref()
                ));
            }
        },
        None => AuthMethod::ClientSecretBasic,
    };
    let grant_types = match &e.grant_types {
        Some(g) => {
            for grant in g.get_ref() {
                if !KNOWN_GRANTS.contains(&grant.as_str()) {
                    return src.err(
                        g.span(),
                        format!(
                            "grant type '{grant}' is not one of {}",
                            KNOWN_GRANTS.join(", ")
                        ),
                    );
                }
            }
            g.get_ref().clone()
        }
        None => vec!["authorization_code".into(), "refresh_token".into()],
    };
    if grant_types.iter().any(|g| g == "authorization_code") && e.redirect_uris.is_empty() {
        return src.err(
            e.client_id.span(),
            "a client using authorization_code needs at least one redirect_uris entry",
        );
    }
    if auth_method == AuthMethod::None && grant_types.iter().any(|g| g == "client_credentials") {
        return src.err(
            e.client_id.span(),
            "a public client (auth_method = \"none\") cannot use client_credentials",
        );
    }
    for (name, v) in [
        ("access_token_lifetime", e.access_token_lifetime),
        ("id_token_lifetime", e.id_token_lifetime),
        ("refresh_token_lifetime", e.refresh_token_lifetime),
    ] {
        if v.is_some_and(|v| v <= 0) {
            return src.err(
                e.client_id.span(),
                format!("{name} must be a positive number of seconds"),
            );
        }
    }
    let mut generated = None;
    let secret_hash = if auth_method.uses_secret() {
        match (&e.secret, current.and_then(|c| c.secret_hash.clone())) {
            (Some(s), _) => Some(TokenHash::of(s)),
            (None, Some(h)) => Some(h),
            (None, None) => {
                let s = random_token(32);
                let h = TokenHash::of(&s);
                generated = Some(s);
                Some(h)
            }
        }
    } else {
        None
    };
    let client = Client {
        client_id: id.to_string(),
        app_id: e.app.as_ref().map(|a| a.get_ref().clone()),
        name: e.name.clone().unwrap_or_else(|| id.to_string()),
        secret_hash,
        redirect_uris: e
            .redirect_uris
            .iter()
            .map(|u| u.get_ref().clone())
            .collect(),
        post_logout_redirect_uris: e
            .post_logout_redirect_uris
            .iter()
            .map(|u| u.get_ref().clone())
            .collect(),
        grant_types,
        auth_method,
        channel: e.channel.unwrap_or(Channel::Web),
        first_party: e.first_party,
        access_token_lifetime: e.access_token_lifetime,
        id_token_lifetime: e.id_token_lifetime,
        refresh_token_lifetime: e.refresh_token_lifetime,
    };
    Ok((client, generated))
}

fn apply_clients(
    c: &mut Conn,
    src: &Source<'_>,
    tid: &TenantId,
    entries: &[ClientEntry],
    now: UnixTime,
    report: &mut ImportReport,
    log: &mut Log,
) -> Result<(), ImportError> {
    let app_ids: HashSet<String> = apps::list_ids(c, tid)?.into_iter().collect();
    for e in entries {
        let current = clients::find(c, tid, e.client_id.get_ref())?;
        let (want, generated) =
            client_from_entry(src.name, src.text, e, current.as_ref(), &app_ids)?;
        let change = match &current {
            None => {
                src.wrap(e.client_id.span(), clients::insert(c, tid, &want, now))?;
                Change::Created
            }
            Some(x) if *x == want => Change::Unchanged,
            Some(_) => {
                src.wrap(e.client_id.span(), clients::update(c, tid, &want, now))?;
                Change::Updated
            }
        };
        if let Some(secret) = generated {
            report
                .generated_secrets
                .push((tid.clone(), want.client_id.clone(), secret));
        }
        report.count(change);
        if change != Change::Unchanged {
            log.push(("client", want.client_id, change));
        }
    }
    Ok(())
}
