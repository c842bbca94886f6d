//! The administrative subcommands: thin wrappers over the store and the import rules.

use std::collections::HashSet;
use std::io::BufRead;

use anyhow::{Context, anyhow, bail};
use toml::Spanned;

use super::{
    ClientCommand, Command, KeysCommand, OutboxCommand, TenantArg, TenantCommand, UserCommand,
};
use crate::account::{Email, Login, Phone, Username};
use crate::admin::import::{self, ClientEntry};
use crate::app::CACHE_TTL_SECS;
use crate::bootstrap::{self, Opened};
use crate::clock::{SharedClock, UnixTime};
use crate::config::Config;
use crate::crypto::keys::{self, Alg, KeyKind, RotationPolicy};
use crate::crypto::master::MasterKeySource;
use crate::crypto::password::PasswordHasher;
use crate::crypto::secret::{DigestKey, generate_password};
use crate::oidc::discovery::JWKS_MAX_AGE_SECS;
use crate::saml;
use crate::store::apps::Channel;
use crate::store::tenants::{self, TenantSpec};
use crate::store::users::{self, NewUser, User, UserProfile, UserStatus};
use crate::store::{
    Conn, Store, StoreError, apps, audit, clients, departments, keys as key_store, migrate, outbox,
    refresh, sessions, tx,
};
use crate::tenant::{TenantId, normalize_host};

pub async fn run(command: Command, config: Config, clock: SharedClock) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(command, config, clock)).await?
}

fn run_blocking(command: Command, config: Config, clock: SharedClock) -> anyhow::Result<()> {
    let opened = bootstrap::open(&config, &clock)?;
    let hasher = PasswordHasher::new(&config.password_hash)?;
    let now = clock.now();
    let Opened {
        store,
        master,
        master_source,
        migrations_applied,
        ..
    } = opened;
    // The CLI may be the first to open a data directory (a mistyped SESAME_DATA_DIR, say): what
    // it created is said, as `serve` says it.
    if let MasterKeySource::Generated(path) = &master_source {
        eprintln!(
            "warning: generated a new master key at {}: back it up; without it the signing keys cannot be read",
            path.display()
        );
    }
    let client_secrets = master.client_secret_key();
    match command {
        Command::Migrate => {
            let pending = store.run_blocking(migrate::pending)?;
            if !migrations_applied.is_empty() {
                println!(
                    "applied {} migrations: {}",
                    migrations_applied.len(),
                    migrations_applied.join(", ")
                );
            }
            println!(
                "database is up to date{}",
                if pending.is_empty() {
                    ""
                } else {
                    " (pending remain!)"
                }
            );
        }
        Command::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = file.display().to_string();
            let report = store.run_blocking(|c| {
                import::apply(c, &name, &text, &hasher, &client_secrets, &*clock).map_err(|e| {
                    match e {
                        import::ImportError::Store(s) => s,
                        other => StoreError::Invalid(other.to_string()),
                    }
                })
            })?;
            for tenant in &report.new_tenants {
                bootstrap::ensure_keys(&store, &master, tenant, now)?;
            }
            println!(
                "{} created, {} updated, {} unchanged",
                report.created, report.updated, report.unchanged
            );
            for (tenant, client, secret) in &report.generated_secrets {
                println!(
                    "client {client} in {tenant}: secret {}   (shown once; only its hash is stored)",
                    secret.expose()
                );
            }
        }
        Command::Tenant(TenantCommand::Add { id, name, hosts }) => {
            let tid = TenantId::parse(&id)
                .ok_or_else(|| anyhow!("tenant id '{id}' must be 1-63 of a-z 0-9 -"))?;
            let mut spec = TenantSpec::named(name.as_deref().unwrap_or(&id));
            for h in hosts {
                spec.hosts
                    .push(normalize_host(&h).ok_or_else(|| anyhow!("'{h}' is not a host name"))?);
            }
            spec.hosts.sort();
            spec.hosts.dedup();
            store.run_blocking(|c| {
                tx::write(c, |c| {
                    tenants::insert(c, &tid, &spec, now)?;
                    record(c, &tid, "tenant.create", &id, now)
                })
            })?;
            bootstrap::ensure_keys(&store, &master, &tid, now)?;
            println!(
                "created tenant {tid}; issuer {}/t/{tid}",
                config.public_base()
            );
        }
        Command::Tenant(TenantCommand::List) => {
            println!(
                "{:<20} {:<10} {:<28} ISSUER / HOSTS",
                "TENANT", "STATUS", "NAME"
            );
            for t in store.run_blocking(tenants::list)? {
                println!(
                    "{:<20} {:<10} {:<28} {}/t/{}{}",
                    t.id,
                    t.status.as_str(),
                    t.display_name,
                    config.public_base(),
                    t.id,
                    if t.hosts.is_empty() {
                        String::new()
                    } else {
                        format!("  {}", t.hosts.join(" "))
                    }
                );
            }
        }
        Command::User(cmd) => user(cmd, &store, &hasher, now)?,
        Command::Client(cmd) => client(cmd, &store, &client_secrets, now)?,
        Command::Sp(cmd) => super::sp::run(cmd, &store, now)?,
        Command::Keys(KeysCommand::List { tenant }) => {
            let tid = tenant_of(&store, &tenant)?;
            println!(
                "{:<45} {:<6} {:<8} {:<21} PUBLISHED UNTIL",
                "KID", "ALG", "STATE", "CREATED"
            );
            for k in store.run_blocking(|c| key_store::list(c, &tid))? {
                let until = match (k.state, k.publish_until) {
                    (key_store::KeyState::Retired, Some(t)) => t.to_string(),
                    _ => "-".into(),
                };
                println!(
                    "{:<45} {:<6} {:<8} {:<21} {}",
                    k.kid,
                    k.alg,
                    k.state.as_str(),
                    k.created_at.to_string(),
                    until
                );
            }
        }
        Command::Keys(KeysCommand::Rotate { tenant, alg, force }) => {
            let tid = tenant_of(&store, &tenant)?;
            let kinds: Vec<KeyKind> = match alg {
                Some(kind) => vec![kind],
                None => Alg::ALL.into_iter().map(KeyKind::Jws).collect(),
            };
            let longest = store
                .run_blocking(|c| clients::max_token_lifetime(c, &tid))?
                .unwrap_or(0)
                .max(config.tokens.access_token_lifetime)
                .max(config.tokens.id_token_lifetime);
            // Allow for clock skew at the relying parties.
            let grace = longest + 300;
            for kind in kinds {
                // The longest an SP or a node may hold the old key set.
                let cached = match kind {
                    KeyKind::Jws(_) => JWKS_MAX_AGE_SECS,
                    KeyKind::Saml => saml::metadata::CACHE_DURATION_SECS,
                };
                // A SAML assertion may be registered to live up to an hour.
                let lives = match kind {
                    KeyKind::Jws(_) => grace,
                    KeyKind::Saml => grace.max(saml::registry::MAX_ASSERTION_LIFETIME + 300),
                };
                let policy = RotationPolicy {
                    rsa_bits: 2048,
                    retire_grace: lives,
                    min_next_age: if force { 0 } else { cached + CACHE_TTL_SECS },
                };
                let r = store
                    .run_blocking(|c| Ok(keys::rotate(c, &master, &tid, kind, &policy, now)?))?;
                store.run_blocking(|c| record(c, &tid, "keys.rotate", &r.activated, now))?;
                println!(
                    "{}: now signing with {}; published next {}{}",
                    r.kind,
                    r.activated,
                    r.next,
                    match (&r.retired, r.retired_published_until) {
                        (Some(k), Some(t)) => format!("; retired {k} stays published until {t}"),
                        _ => String::new(),
                    }
                );
            }
        }
        Command::Audit { tenant, limit } => {
            let tid = tenant_of(&store, &tenant)?;
            println!(
                "{:<21} {:<8} {:<20} {:<34} OUTCOME",
                "TIME", "ACTOR", "ACTION", "TARGET"
            );
            for e in store.run_blocking(|c| audit::list(c, &tid, limit.clamp(1, 10_000)))? {
                println!(
                    "{:<21} {:<8} {:<20} {:<34} {}",
                    e.at.to_string(),
                    e.actor,
                    e.action,
                    e.target.as_deref().unwrap_or("-"),
                    e.outcome
                );
            }
        }
        Command::Outbox(OutboxCommand::List { tenant, limit }) => {
            let tid = match tenant {
                Some(t) => Some(tenant_of(&store, &TenantArg { tenant: t })?),
                None => None,
            };
            let messages =
                store.run_blocking(|c| outbox::list(c, tid.as_ref(), limit.clamp(1, 1000)))?;
            if messages.is_empty() {
                println!("the outbox is empty");
            }
            for m in messages {
                println!(
                    "--- {} {} to {} ({})",
                    m.created_at, m.channel, m.destination, m.tenant_id
                );
                if !m.subject.is_empty() {
                    println!("Subject: {}", m.subject);
                }
                println!("{}\n", m.body);
            }
        }
        Command::Serve(_)
        | Command::Config(_)
        | Command::Tenant(TenantCommand::Applications | TenantCommand::Approve { .. }) => {
            bail!("not an administrative command of this module")
        }
    }
    Ok(())
}

pub(super) fn record(
    c: &mut Conn,
    tenant: &TenantId,
    action: &str,
    target: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    let event = audit::NewAuditEvent {
        actor: "cli",
        action,
        target: Some(target),
        outcome: "success",
        ip: None,
        details: serde_json::json!({}),
    };
    audit::record(c, tenant, &event, now)
}

pub(super) fn tenant_of(store: &Store, arg: &TenantArg) -> anyhow::Result<TenantId> {
    let tid = TenantId::parse(&arg.tenant)
        .ok_or_else(|| anyhow!("'{}' is not a tenant id", arg.tenant))?;
    if store.run_blocking(|c| tenants::find(c, &tid))?.is_none() {
        bail!("no tenant '{tid}' (see `sesame tenant list`)");
    }
    Ok(tid)
}

fn find_user(store: &Store, tid: &TenantId, who: &str) -> anyhow::Result<User> {
    let found = store.run_blocking(|c| {
        if let Some(login) = Login::parse(who, None)
            && let Some(u) = users::find_by_login(c, tid, &login)?
        {
            return Ok(Some(u));
        }
        users::find(c, tid, who)
    })?;
    found.ok_or_else(|| anyhow!("no user '{who}' in tenant '{tid}'"))
}

/// A password from the first line of stdin, or a generated one to print.
fn new_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        crate::flow::password::base_rules(&pw).map_err(|why| anyhow!(why))?;
        Ok((pw, false))
    } else {
        Ok((generate_password(), true))
    }
}

fn user(
    cmd: UserCommand,
    store: &Store,
    hasher: &PasswordHasher,
    now: UnixTime,
) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            tenant,
            username,
            email,
            phone,
            name,
            department,
            password_stdin,
            permanent_password,
        } => {
            let tid = tenant_of(store, &tenant)?;
            let profile = UserProfile {
                username: username
                    .as_deref()
                    .map(|u| {
                        Username::parse(u).ok_or_else(|| anyhow!("'{u}' is not a valid username"))
                    })
                    .transpose()?,
                email: email
                    .as_deref()
                    .map(|e| {
                        Email::parse(e).ok_or_else(|| anyhow!("'{e}' is not an email address"))
                    })
                    .transpose()?,
                phone: phone
                    .as_deref()
                    .map(|p| {
                        Phone::parse(p, None).ok_or_else(|| {
                            anyhow!("'{p}' is not a mobile number with country code (+86…)")
                        })
                    })
                    .transpose()?,
                display_name: name
                    .or(username.clone())
                    .or(email.clone())
                    .or(phone.clone())
                    .unwrap_or_default(),
                department_id: department,
                ..UserProfile::default()
            };
            if profile.username.is_none() && profile.email.is_none() && profile.phone.is_none() {
                bail!("give a username, --email or --phone");
            }
            if let Some(dept) = &profile.department_id
                && store
                    .run_blocking(|c| departments::find(c, &tid, dept))?
                    .is_none()
            {
                bail!("no department '{dept}' in tenant '{tid}'");
            }
            let (password, generated) = new_password(password_stdin)?;
            let hash = hasher.hash_blocking(&password)?;
            let new = NewUser {
                id: None,
                profile,
                status: UserStatus::Active,
                password_hash: Some(hash),
                must_change_password: !permanent_password,
            };
            let user = store.run_blocking(|c| {
                tx::write(c, |c| {
                    let u = users::insert(c, &tid, &new, now)?;
                    record(c, &tid, "user.create", &u.id, now)?;
                    Ok::<_, StoreError>(u)
                })
            })?;
            println!("created user {} in {tid}", user.id);
            if generated {
                println!("password: {password}   (shown once)");
            }
        }
        UserCommand::List { tenant } => {
            let tid = tenant_of(store, &tenant)?;
            println!(
                "{:<24} {:<16} {:<28} {:<16} {:<9} NAME",
                "ID", "USERNAME", "EMAIL", "PHONE", "STATUS"
            );
            let mut offset = 0;
            loop {
                let page = store.run_blocking(|c| users::list(c, &tid, 500, offset))?;
                for u in &page {
                    let p = &u.profile;
                    println!(
                        "{:<24} {:<16} {:<28} {:<16} {:<9} {}",
                        u.id,
                        p.username.as_ref().map_or("-".into(), |x| x.to_string()),
                        p.email.as_ref().map_or("-".into(), |x| x.to_string()),
                        p.phone.as_ref().map_or("-".into(), |x| x.to_string()),
                        u.status.as_str(),
                        p.display_name
                    );
                }
                if page.len() < 500 {
                    break;
                }
                offset += 500;
            }
        }
        UserCommand::Passwd {
            tenant,
            user,
            password_stdin,
            permanent_password,
        } => {
            let tid = tenant_of(store, &tenant)?;
            let u = find_user(store, &tid, &user)?;
            let (password, generated) = new_password(password_stdin)?;
            let hash = hasher.hash_blocking(&password)?;
            // As after a reset: whoever held the old password is signed out everywhere, and
            // their tokens stop working (the serving nodes read the revocation within seconds).
            store.run_blocking(|c| {
                tx::write(c, |c| {
                    users::set_password(c, &tid, &u.id, &hash, !permanent_password, now)?;
                    refresh::revoke_for_user(c, &tid, &u.id, now)?;
                    sessions::revoke_for_user(c, &tid, &u.id, now)?;
                    record(c, &tid, "user.password_set", &u.id, now)
                })
            })?;
            println!("password changed for {}", u.id);
            if generated {
                println!("password: {password}   (shown once)");
            }
        }
        UserCommand::Disable { tenant, user } => {
            set_status(store, &tenant, &user, UserStatus::Disabled, now)?
        }
        UserCommand::Enable { tenant, user } => {
            set_status(store, &tenant, &user, UserStatus::Active, now)?
        }
        UserCommand::Unlock { tenant, user } => {
            let tid = tenant_of(store, &tenant)?;
            let u = find_user(store, &tid, &user)?;
            // Unlocking cannot let a disabled or pending account in; saying "unlocked" would
            // suggest it did.
            match u.status {
                UserStatus::Disabled => anyhow::bail!(
                    "{} is disabled, not locked: `sesame user enable` lets them sign in again",
                    u.id
                ),
                UserStatus::Pending => anyhow::bail!(
                    "{} is pending, not locked: unlocking does not activate an account",
                    u.id
                ),
                UserStatus::Active | UserStatus::Locked => {}
            }
            store.run_blocking(|c| {
                tx::write(c, |c| {
                    users::unlock(c, &tid, &u.id, now)?;
                    record(c, &tid, "user.unlock", &u.id, now)
                })
            })?;
            println!("unlocked {}", u.id);
        }
    }
    Ok(())
}

fn set_status(
    store: &Store,
    tenant: &TenantArg,
    who: &str,
    status: UserStatus,
    now: UnixTime,
) -> anyhow::Result<()> {
    let tid = tenant_of(store, tenant)?;
    let u = find_user(store, &tid, who)?;
    let action = if status == UserStatus::Disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    store.run_blocking(|c| {
        tx::write(c, |c| {
            users::set_status(c, &tid, &u.id, status, now)?;
            record(c, &tid, action, &u.id, now)
        })
    })?;
    println!("{} is now {}", u.id, status.as_str());
    Ok(())
}

fn client(
    cmd: ClientCommand,
    store: &Store,
    client_secrets: &DigestKey,
    now: UnixTime,
) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Add {
            tenant,
            client_id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            public,
            auth_method,
            app,
            channel,
            first_party,
        } => {
            let tid = tenant_of(store, &tenant)?;
            let channel = match channel.as_deref() {
                None => None,
                Some(c) => Some(
                    Channel::parse(c).ok_or_else(|| anyhow!("--channel must be web or mobile"))?,
                ),
            };
            let auth_method = match (public, auth_method) {
                (true, Some(m)) if m != "none" => {
                    bail!("--public clients authenticate with 'none'")
                }
                (true, _) => Some("none".to_string()),
                (false, m) => m,
            };
            let spanned = |s: String| Spanned::new(0..0, s);
            let entry = ClientEntry {
                client_id: spanned(client_id.clone()),
                name,
                app: app.map(spanned),
                redirect_uris: redirect_uris.into_iter().map(spanned).collect(),
                post_logout_redirect_uris: post_logout_redirect_uris
                    .into_iter()
                    .map(spanned)
                    .collect(),
                grant_types: (!grant_types.is_empty()).then(|| Spanned::new(0..0, grant_types)),
                auth_method: auth_method.map(spanned),
                channel,
                first_party,
                secret: None,
                access_token_lifetime: None,
                id_token_lifetime: None,
                refresh_token_lifetime: None,
                jwks: None,
                jwks_uri: None,
                backchannel_logout_uri: None,
                id_token_signed_response_alg: None,
                access_token_signed_response_alg: None,
                allowed_scopes: vec![],
                allowed_resources: vec![],
            };
            let app_ids: HashSet<String> = store
                .run_blocking(|c| apps::list_ids(c, &tid))?
                .into_iter()
                .collect();
            let (client, secret) =
                import::client_from_entry("arguments", "", &entry, None, &app_ids, client_secrets)
                    .map_err(|e| {
                        anyhow!("{}", e.to_string().trim_start_matches("arguments:1: "))
                    })?;
            store.run_blocking(|c| {
                tx::write(c, |c| {
                    clients::insert(c, &tid, &client, now)?;
                    record(c, &tid, "client.create", &client.client_id, now)
                })
            })?;
            println!(
                "created client {client_id} in {tid} ({})",
                client.auth_method.as_str()
            );
            if let Some(secret) = secret {
                println!(
                    "client_secret: {}   (shown once; only its hash is stored)",
                    secret.expose()
                );
            }
        }
        ClientCommand::List { tenant } => {
            let tid = tenant_of(store, &tenant)?;
            println!(
                "{:<24} {:<20} {:<12} {:<7} REDIRECT URIS",
                "CLIENT", "AUTH", "APP", "CHANNEL"
            );
            for c in store.run_blocking(|c| clients::list(c, &tid))? {
                println!(
                    "{:<24} {:<20} {:<12} {:<7} {}",
                    c.client_id,
                    c.auth_method.as_str(),
                    c.app_id.as_deref().unwrap_or("-"),
                    c.channel.as_str(),
                    c.redirect_uris.join(" ")
                );
            }
        }
        ClientCommand::Remove { tenant, client_id } => {
            let tid = tenant_of(store, &tenant)?;
            let removed = store.run_blocking(|c| {
                tx::write(c, |c| {
                    let removed = clients::remove(c, &tid, &client_id)?;
                    if removed {
                        record(c, &tid, "client.remove", &client_id, now)?;
                    }
                    Ok::<_, StoreError>(removed)
                })
            })?;
            if !removed {
                bail!("no client '{client_id}' in tenant '{tid}'");
            }
            println!("removed client {client_id}");
        }
    }
    Ok(())
}
