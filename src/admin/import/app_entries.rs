//! Importing apps (access scopes, administrators) and their OIDC clients.

use std::collections::{HashMap, HashSet};

use toml::Spanned;

use super::{AppEntry, Change, ClientEntry, ImportError, ImportReport, Log, Source, key};
use crate::account::Login;
use crate::clock::UnixTime;
use crate::crypto::secret::{DigestKey, SecretString, random_token};
use crate::oidc::redirect::check_registrable;
use crate::store::apps::{AccessScope, App, Channel};
use crate::store::clients::{AuthMethod, Client};
use crate::store::departments::{self};
use crate::store::roles::{self};
use crate::store::users::{self};
use crate::store::{Conn, apps, clients};
use crate::tenant::TenantId;

#[expect(
    clippy::too_many_arguments,
    reason = "one step of a single import; the arguments are its context"
)]
pub(super) fn apply_apps(
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
const TOKEN_ALGS: &[&str] = &["RS256", "PS256", "ES256", "EdDSA"];

/// A given client secret must be at least this long (a generated one has 43 characters).
const MIN_SECRET_CHARS: usize = 32;

/// Builds a client from its declaration, keeping `current`'s secret unless a new one is given.
/// Shared with `sesame client add`.
pub fn client_from_entry(
    src_name: &str,
    text: &str,
    e: &ClientEntry,
    current: Option<&Client>,
    app_ids: &HashSet<String>,
    client_secrets: &DigestKey,
) -> Result<(Client, Option<SecretString>), ImportError> {
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
    for uri in e.jwks_uri.iter().chain(&e.backchannel_logout_uri) {
        if let Err(why) = check_registrable(uri.get_ref()).and_then(|_| {
            match url::Url::parse(uri.get_ref()).map(|u| u.scheme().to_string()) {
                Ok(s) if s == "https" || s == "http" => Ok(()),
                _ => Err(format!("'{}' must be an https URL", uri.get_ref())),
            }
        }) {
            return src.err(uri.span(), why);
        }
    }
    if let Some(jwks) = &e.jwks
        && !jwks.get("keys").is_some_and(serde_json::Value::is_array)
    {
        return src.err(
            e.client_id.span(),
            "jwks must be a JWK Set: a table with a `keys` array",
        );
    }
    if auth_method == AuthMethod::PrivateKeyJwt && e.jwks.is_none() && e.jwks_uri.is_none() {
        return src.err(
            e.client_id.span(),
            "a private_key_jwt client needs `jwks` or `jwks_uri`",
        );
    }
    for (key, alg) in [
        (
            "id_token_signed_response_alg",
            &e.id_token_signed_response_alg,
        ),
        (
            "access_token_signed_response_alg",
            &e.access_token_signed_response_alg,
        ),
    ] {
        if let Some(alg) = alg
            && !TOKEN_ALGS.contains(&alg.get_ref().as_str())
        {
            return src.err(
                alg.span(),
                format!("{key} must be one of {}", TOKEN_ALGS.join(", ")),
            );
        }
    }
    if let Some(bad) = e
        .allowed_scopes
        .iter()
        .find(|s| crate::oidc::scope::Scope::parse(s).is_none_or(|p| p.iter().count() != 1))
    {
        return src.err(
            e.client_id.span(),
            format!("allowed_scopes: '{bad}' is not a scope"),
        );
    }
    if let Some(bad) = e
        .allowed_resources
        .iter()
        .find(|r| crate::oidc::token::resource_indicator(r).is_err())
    {
        return src.err(
            e.client_id.span(),
            format!("allowed_resources: '{bad}' is not an absolute URI without a fragment"),
        );
    }
    let mut generated = None;
    let secret_hash = if auth_method.uses_secret() {
        match (&e.secret, current.and_then(|c| c.secret_hash.clone())) {
            // Stored as one fast keyed digest, which is only safe for a high-entropy secret.
            (Some(s), _) if s.expose().chars().count() < MIN_SECRET_CHARS => {
                return src.err(
                    e.client_id.span(),
                    format!(
                        "the secret of client '{}' must have at least {MIN_SECRET_CHARS} random characters; \
                         leave `secret` out to have one generated",
                        e.client_id.get_ref()
                    ),
                );
            }
            (Some(s), _) => Some(client_secrets.digest(s.expose())),
            (None, Some(h)) => Some(h),
            (None, None) => {
                let s = random_token(32);
                let h = client_secrets.digest(&s);
                generated = Some(SecretString::new(s));
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
        jwks: e.jwks.clone(),
        jwks_uri: e.jwks_uri.as_ref().map(|u| u.get_ref().clone()),
        backchannel_logout_uri: e
            .backchannel_logout_uri
            .as_ref()
            .map(|u| u.get_ref().clone()),
        id_token_alg: e
            .id_token_signed_response_alg
            .as_ref()
            .map(|a| a.get_ref().clone()),
        access_token_alg: e
            .access_token_signed_response_alg
            .as_ref()
            .map(|a| a.get_ref().clone()),
        allowed_scopes: e.allowed_scopes.clone(),
        allowed_resources: e.allowed_resources.clone(),
    };
    Ok((client, generated))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one step of a single import; the arguments are its context"
)]
pub(super) fn apply_clients(
    c: &mut Conn,
    src: &Source<'_>,
    tid: &TenantId,
    entries: &[ClientEntry],
    client_secrets: &DigestKey,
    now: UnixTime,
    report: &mut ImportReport,
    log: &mut Log,
) -> Result<(), ImportError> {
    let app_ids: HashSet<String> = apps::list_ids(c, tid)?.into_iter().collect();
    for e in entries {
        let current = clients::find(c, tid, e.client_id.get_ref())?;
        let (want, generated) = client_from_entry(
            src.name,
            src.text,
            e,
            current.as_ref(),
            &app_ids,
            client_secrets,
        )?;
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
