//! Importing the people side of a tenant: departments, roles and users.

use std::collections::{HashMap, HashSet};

use super::{
    Change, DepartmentEntry, ImportError, ImportReport, Log, RoleEntry, Source, UserEntry, key,
};
use crate::account::{Email, Login, Phone, Username};
use crate::clock::UnixTime;
use crate::crypto::password::{PasswordHasher, acceptable_phc};
use crate::store::departments::{self, Department};
use crate::store::roles::{self, Role};
use crate::store::users::{self, NewUser, UserProfile, UserStatus};
use crate::store::{Conn, StoreError, apps};
use crate::tenant::TenantId;

pub(super) fn apply_departments(
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

pub(super) fn apply_roles(
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
/// What to do with a user's plain-text `password`, decided before the write transaction so argon2
/// never runs while SQLite's write lock is held.
#[derive(Debug)]
pub(super) enum PasswordPlan {
    /// The stored hash already verifies this password.
    Keep,
    Set(String),
}

/// The identifiers an entry gives, parsed; errors name the line.
struct Identifiers {
    username: Option<Username>,
    email: Option<Email>,
    phone: Option<Phone>,
}

impl Identifiers {
    fn parse(src: &Source<'_>, u: &UserEntry) -> Result<Identifiers, ImportError> {
        let username = match &u.username {
            Some(s) => Some(Username::parse(s.get_ref()).map_or_else(
                || {
                    src.err(
                        s.span(),
                        format!(
                            "'{}' is not a valid username (letters, digits, . _ -; starting with a letter)",
                            s.get_ref()
                        ),
                    )
                },
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
        Ok(Identifiers {
            username,
            email,
            phone,
        })
    }

    /// A user is known by the first identifier the entry gives: username, else email, else mobile
    /// number. The others are fields that may change.
    fn login(&self) -> Option<Login> {
        self.username
            .clone()
            .map(Login::Username)
            .or(self.email.clone().map(Login::Email))
            .or(self.phone.clone().map(Login::Phone))
    }
}

fn find_existing(
    c: &mut Conn,
    tid: &TenantId,
    u: &UserEntry,
    ids: &Identifiers,
) -> Result<Option<users::User>, StoreError> {
    match (&u.id, ids.login()) {
        (Some(id), _) => users::find(c, tid, id),
        (None, Some(login)) => users::find_by_login(c, tid, &login),
        (None, None) => Ok(None),
    }
}

/// Hashes or verifies every plain-text password of the tenant's users, outside any transaction.
/// Entries with errors are skipped here and reported by [`apply_users`].
pub(super) fn plan_passwords(
    c: &mut Conn,
    src: &Source<'_>,
    tid: &TenantId,
    entries: &[UserEntry],
    hasher: &PasswordHasher,
) -> Result<HashMap<usize, PasswordPlan>, ImportError> {
    let mut plans = HashMap::new();
    for (index, u) in entries.iter().enumerate() {
        let (Some(password), None) = (&u.password, &u.password_hash) else {
            continue;
        };
        let Ok(ids) = Identifiers::parse(src, u) else {
            continue;
        };
        let stored = match find_existing(c, tid, u, &ids)? {
            Some(user) => users::password_hash(c, tid, &user.id)?,
            None => None,
        };
        let plan =
            if stored.is_some_and(|h| hasher.verify_blocking(&h, password.get_ref().expose())) {
                PasswordPlan::Keep
            } else {
                // A password already set stays, whatever it is; a new one meets the base rules.
                if let Err(why) = crate::flow::password::base_rules(password.get_ref().expose()) {
                    return src.err(password.span(), why);
                }
                let hash = hasher
                    .hash_blocking(password.get_ref().expose())
                    .map_or_else(|e| src.err(password.span(), e.to_string()), Ok)?;
                PasswordPlan::Set(hash)
            };
        plans.insert(index, plan);
    }
    Ok(plans)
}

/// Applies users; returns every login the file names mapped to its user id. Fields an entry
/// leaves out keep their stored values on an existing user.
#[expect(
    clippy::too_many_arguments,
    reason = "one step of a single import; the arguments are its context"
)]
pub(super) fn apply_users(
    c: &mut Conn,
    src: &Source<'_>,
    tid: &TenantId,
    entries: &[UserEntry],
    passwords: &HashMap<usize, PasswordPlan>,
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
    for (index, u) in entries.iter().enumerate() {
        let anchor = u
            .username
            .as_ref()
            .or(u.email.as_ref())
            .or(u.phone.as_ref())
            .map(|s| s.span());
        let Some(anchor) = anchor else {
            return src.err(0..0, "a user needs at least one of username, email, phone");
        };
        let given = Identifiers::parse(src, u)?;
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
            && let Err(why) = acceptable_phc(h.get_ref())
        {
            return src.err(h.span(), why);
        }
        let password_hash = match (&u.password_hash, passwords.get(&index)) {
            (Some(h), _) => Some(h.get_ref().clone()),
            (None, Some(PasswordPlan::Set(h))) => Some(h.clone()),
            (None, Some(PasswordPlan::Keep) | None) => None,
        };
        let existing = find_existing(c, tid, u, &given)?;
        let mut change = Change::Unchanged;
        let user_id = match existing {
            None => {
                let display_name = u
                    .display_name
                    .clone()
                    .or_else(|| given.username.as_ref().map(|x| x.to_string()))
                    .or_else(|| given.email.as_ref().map(|x| x.to_string()))
                    .or_else(|| given.phone.as_ref().map(|x| x.to_string()))
                    .unwrap_or_default();
                let new = NewUser {
                    id: u.id.clone(),
                    profile: UserProfile {
                        username: given.username,
                        email: given.email,
                        phone: given.phone,
                        display_name,
                        department_id: u.department.as_ref().map(|d| d.get_ref().clone()),
                        employee_no: u.employee_no.clone(),
                        locale: u.locale.clone(),
                    },
                    status: u.status.unwrap_or(UserStatus::Active),
                    must_change_password: u.must_change_password.unwrap_or(false),
                    password_hash,
                };
                change = Change::Created;
                src.wrap(anchor.clone(), users::insert(c, tid, &new, now))?
                    .id
            }
            Some(user) => {
                let old = &user.profile;
                let profile = UserProfile {
                    username: given.username.or(old.username.clone()),
                    email: given.email.or(old.email.clone()),
                    phone: given.phone.or(old.phone.clone()),
                    display_name: u.display_name.clone().unwrap_or(old.display_name.clone()),
                    department_id: u
                        .department
                        .as_ref()
                        .map(|d| d.get_ref().clone())
                        .or(old.department_id.clone()),
                    employee_no: u.employee_no.clone().or(old.employee_no.clone()),
                    locale: u.locale.clone().or(old.locale.clone()),
                };
                if profile != *old {
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
                let must_change = u.must_change_password.unwrap_or(user.must_change_password);
                let stored = users::password_hash(c, tid, &user.id)?;
                match password_hash {
                    Some(hash) if stored.as_deref() != Some(hash.as_str()) => {
                        users::set_password(c, tid, &user.id, &hash, must_change, now)?;
                        change = Change::Updated;
                    }
                    _ if must_change != user.must_change_password => {
                        users::set_must_change_password(c, tid, &user.id, must_change, now)?;
                        change = Change::Updated;
                    }
                    _ => {}
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
