//! The sign-in page's password method (`GET`/`POST /t/{tenant}/login`) and the first-login
//! password change. Handlers stay thin: the account rules live in [`check_account`], the flow
//! rules in [`super::state`], and finishing a flow in [`super::finish`].
//!
//! A wrong account and a wrong password get one message and cost the same argon2 time (the
//! dummy hash), so neither the answer nor its timing tells which accounts exist.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;

use super::state::LoginFlow;
use super::{captcha, language, load, session};
use crate::account::{Login, REGIONS};
use crate::app::App;
use crate::clock::UnixTime;
use crate::crypto::secret::SecretString;
use crate::i18n::{Locale, Text};
use crate::oidc::form::OAuthForm;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::users::{self, User, UserStatus};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;
use crate::web::{self, ClientInfo};

/// Longest account identifier accepted (an email address is at most 254 characters).
const MAX_ACCOUNT_LEN: usize = 254;
/// Longest password accepted; argon2 of a megabyte is a cheap denial of service.
const MAX_PASSWORD_LEN: usize = super::password::MAX_LENGTH;

pub const WRONG_CREDENTIALS: Text = Text::new("login.wrong_credentials");
const TOO_MANY: Text = Text::new("login.throttled");
const MUST_AGREE: Text = Text::new("login.must_agree");

/// What the account's status says about signing in, after the password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountCheck {
    Allowed,
    Disabled,
    Pending,
    Locked,
}

impl AccountCheck {
    /// Why the account cannot sign in (nothing for `Allowed`).
    pub fn message(self) -> Text {
        Text::new(match self {
            AccountCheck::Allowed => "",
            AccountCheck::Disabled => "login.disabled",
            AccountCheck::Pending => "login.pending",
            AccountCheck::Locked => "login.locked",
        })
    }
}

/// Whether `user` may sign in at `now`.
pub fn check_account(user: &User, now: UnixTime) -> AccountCheck {
    match user.status {
        UserStatus::Disabled => AccountCheck::Disabled,
        UserStatus::Pending => AccountCheck::Pending,
        UserStatus::Locked => AccountCheck::Locked,
        UserStatus::Active if user.locked_until.is_some_and(|t| t > now) => AccountCheck::Locked,
        UserStatus::Active => AccountCheck::Allowed,
    }
}

/// What the page shows besides the form.
#[derive(Debug, Default)]
pub(super) struct Shown<'a> {
    pub error: Option<&'a Text>,
    /// A sentence that is not an error ("a code is on its way").
    pub notice: Option<&'a Text>,
    pub captcha: Option<captcha::Challenge>,
    pub account: &'a str,
    pub region: Option<&'a str>,
    pub agreed: bool,
    /// "Remember me" was ticked.
    pub remember: bool,
    /// The verification-code method instead of the password.
    pub code_mode: bool,
}

/// `GET /t/{tenant}/login?flow=ID`
pub async fn page(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = OAuthForm::parse(query.unwrap_or_default().as_bytes())
        .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
    let Some(flow) = load(&app, &tenant, params.get("flow")).await? else {
        return super::expired(&app, language::locale(&tenant, &headers, &[]));
    };
    let locale = language::locale(&tenant, &headers, &flow.needs.ui_locales);
    // The browser binding for the CSRF token; set here if this browser has none yet.
    let (browser, set_cookie) = session::browser(&app, &headers);
    let hint = flow.needs.login_hint.clone().unwrap_or_default();
    // An address that failed often is asked for a captcha from the start; the image's "new
    // image" link asks again, for addresses that failed at all.
    let address = address_key(&tenant, &client);
    let address_failures = app.address_failures.failures(&address, app.now());
    let wanted = i64::from(address_failures) >= app.config.sign_in.address_captcha_after
        || (params.get("captcha").is_some() && address_failures > 0);
    let captcha = match wanted {
        true => Some(captcha::issue(&app, tenant.id(), &flow.id, &address).await?),
        false => None,
    };
    // A flow that only a one-time code can satisfy opens on the code method.
    let code_mode = offers_code(&app, &flow)
        && (params.get("method") == Some("code")
            || !session::admits(&flow.needs.classes, session::CLASS_PASSWORD));
    let shown = Shown {
        account: &hint,
        captcha,
        code_mode,
        ..Shown::default()
    };
    let mut response = render(
        &app,
        &tenant,
        &flow,
        &browser,
        locale,
        StatusCode::OK,
        shown,
    )?;
    if let Some(set) = set_cookie {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, set);
    }
    Ok(response)
}

/// `POST /t/{tenant}/login`: the password method.
pub async fn submit(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let super::FlowForm {
        form,
        browser,
        flow,
    } = super::flow_form(&app, &tenant, &headers, &body).await?;
    let Some(flow) = flow else {
        return super::expired(&app, language::locale(&tenant, &headers, &[]));
    };
    let locale = language::locale(&tenant, &headers, &flow.needs.ui_locales);
    let account = form.get("account").unwrap_or_default().trim();
    let region = form.get("region");
    let agreed = form.get("agree") == Some("yes");
    let again = |error: &Text, captcha: Option<captcha::Challenge>| {
        render(
            &app,
            &tenant,
            &flow,
            &browser,
            locale,
            StatusCode::OK,
            Shown {
                error: Some(error),
                captcha,
                account,
                region,
                agreed,
                remember: form.get("remember") == Some("yes"),
                ..Shown::default()
            },
        )
    };
    // The page offers no password to a flow that needs another class; a script that posts one
    // anyway is refused before any account is looked at, rather than signed in to no purpose.
    if !session::admits(&flow.needs.classes, session::CLASS_PASSWORD) {
        return again(&Text::new("login.password_not_accepted"), None);
    }
    if !agreed {
        return again(&MUST_AGREE, None);
    }
    if let Some(refusal) = super::tenant_refusal(&tenant.tenant, app.now()) {
        return again(&refusal, None);
    }
    let password = SecretString::new(form.get("password").unwrap_or_default().to_string());
    let login = (account.len() <= MAX_ACCOUNT_LEN)
        .then(|| Login::parse(account, region))
        .flatten();
    let now = app.now();
    // Guessing is slowed per address, and stopped per account, before any password is checked.
    // A locked account and an unknown one that failed as often get the same answer after the
    // same work (one lookup, no argon2), so the lock tells nothing about which accounts exist
    // or whether the password was right.
    let account_key = format!(
        "{}\u{0}{}",
        tenant.id(),
        login.as_ref().map(login_key).unwrap_or_default()
    );
    let address_key = address_key(&tenant, &client);
    if app
        .address_failures
        .blocked_for(&address_key, now)
        .is_some()
    {
        // Logged, not audited: a throttled attempt costs no argon2, so a row per attempt would let
        // a flood write to the database at will.
        tracing::warn!(tenant = %tenant.id(), ip = ?client.ip, "sign-in attempts throttled");
        return again(&TOO_MANY, None);
    }
    let found = match login {
        Some(login) => {
            let t = tenant.id().clone();
            app.store
                .run(move |c| users::find_for_sign_in(c, &t, &login))
                .await?
        }
        None => None,
    };
    let (user, stored) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, None),
    };
    // After a few failures a captcha must be solved before the password is even checked. They
    // are counted per account as typed, for real and unknown accounts alike: counting a real
    // account's failures under all its names would let "alice" and "alice@acme.test" be shown
    // to be one account by when the captcha appears.
    let limits = &app.config.sign_in;
    let account_failures = i64::from(app.sign_in_failures.failures(&account_key, now));
    let address_failures = i64::from(app.address_failures.failures(&address_key, now));
    let needs_captcha = |extra: i64| {
        account_failures + extra >= limits.captcha_after
            || address_failures + extra >= limits.address_captcha_after
    };
    // Only the temporary lock answers before the password: it is what unknown accounts get too.
    // An administrator's lock (status `locked`), like `disabled`, is told only after a right
    // password, or it would show which accounts exist.
    //
    // The lock is told once the account as typed has failed `lockout_threshold` times on this
    // node, which is all an unknown account can go by. A real account also locks after as many
    // failures under all its names together, on every node; reached under a name that has not
    // failed that often, it answers as an unknown account would (the password is not checked),
    // so the lock cannot show that two names are one account. A name's lock holds for a real
    // account as for an unknown one, even after the account's own lock ran out (the two end at
    // different times), unless an administrator lifted the account's lock or its owner reset
    // the password: those clear `locked_until`, where a lock that ran out leaves it in the past.
    let typed_locked = app
        .sign_in_failures
        .blocked_for(&account_key, now)
        .is_some();
    let account_locked = user
        .as_ref()
        .is_some_and(|user| user.locked_until.is_some_and(|until| until > now));
    let lifted = user.as_ref().is_some_and(|u| u.locked_until.is_none());
    if typed_locked && !lifted {
        tracing::info!(tenant = %tenant.id(), ip = ?client.ip, "sign-in to a locked account refused");
        // With the captcha the next attempt will need, so an account unlocked meanwhile (by an
        // administrator, on any node) signs in at the next try.
        let challenge = match needs_captcha(0) {
            true => Some(captcha::issue(&app, tenant.id(), &flow.id, &address_key).await?),
            false => None,
        };
        return again(&AccountCheck::Locked.message(), challenge);
    }
    let (user, stored) = match account_locked {
        true => (None, None),
        false => (user, stored),
    };
    if needs_captcha(0) {
        let solved = captcha::solve(
            &app,
            tenant.id(),
            &flow.id,
            form.get("captcha_id"),
            form.get("captcha_answer"),
        )
        .await?;
        if !solved {
            let why = match form.get("captcha_answer") {
                Some(a) if !a.trim().is_empty() => Text::new("login.captcha_wrong"),
                _ => Text::new("login.captcha_needed"),
            };
            // A wrong or missing answer counts against the address, so the address limit also
            // bounds how often it can be asked for.
            app.address_failures.record_failure(&address_key, now);
            let challenge = captcha::issue(&app, tenant.id(), &flow.id, &address_key).await?;
            return again(&why, Some(challenge));
        }
    }
    let verified = verify_password(&app, stored, password).await?;
    let user = match user {
        Some(user) if verified => user,
        user => {
            app.address_failures.record_failure(&address_key, now);
            app.sign_in_failures.record_failure(&account_key, now);
            let failed = match &user {
                Some(user) => {
                    let (t, id, sign_in) = (
                        tenant.id().clone(),
                        user.id.clone(),
                        app.config.sign_in.clone(),
                    );
                    let threshold = i32::try_from(sign_in.lockout_threshold).unwrap_or(i32::MAX);
                    app.store
                        .run(move |c| {
                            users::record_failed_password(
                                c,
                                &t,
                                &id,
                                threshold,
                                sign_in.lockout_duration,
                                now,
                            )
                        })
                        .await?
                        .map(|until| (user.id.as_str(), until))
                }
                None => None,
            };
            record(
                &app,
                &tenant,
                &client,
                "anonymous",
                "sign_in.password",
                None,
                "failure",
            )
            .await?;
            if let Some((id, until)) = failed {
                tracing::warn!(tenant = %tenant.id(), user = %id, until = until.0, "account locked after failed sign-ins");
                record(
                    &app,
                    &tenant,
                    &client,
                    "system",
                    "user.locked",
                    Some(id),
                    "success",
                )
                .await?;
            }
            let challenge = match needs_captcha(1) {
                true => Some(captcha::issue(&app, tenant.id(), &flow.id, &address_key).await?),
                false => None,
            };
            return again(&WRONG_CREDENTIALS, challenge);
        }
    };
    app.sign_in_failures.clear(&account_key);
    if user.failed_logins > 0 {
        let (t, id) = (tenant.id().clone(), user.id.clone());
        app.store
            .run(move |c| users::clear_failed_passwords(c, &t, &id))
            .await?;
    }
    let check = check_account(&user, now);
    if check != AccountCheck::Allowed {
        record(
            &app,
            &tenant,
            &client,
            &user.id,
            "sign_in.password",
            Some(&user.id),
            "refused",
        )
        .await?;
        return again(&check.message(), None);
    }
    let signed_in = session::SignedIn {
        user_id: user.id.clone(),
        amr: vec!["pwd".into()],
        auth_time: now,
        user_agent: client.user_agent.clone(),
        ip: client.ip.clone(),
        remember: form.get("remember") == Some("yes"),
    };
    if super::password::must_change(&tenant, &user, now).is_some() {
        return super::password::change::ask(
            &app, &tenant, &flow, &browser, locale, &user, signed_in,
        )
        .await;
    }
    super::finish(&app, &tenant, &headers, &client, flow, signed_in).await
}

/// Verifies `password` against the stored hash, or against the dummy hash when there is no
/// account or no password, so every attempt costs one argon2 verification.
async fn verify_password(
    app: &App,
    stored: Option<String>,
    password: SecretString,
) -> Result<bool, PageError> {
    let dummy = app
        .dummy_hash()
        .await
        .map_err(|e| PageError::Internal(e.to_string()))?;
    if password.expose().is_empty() || password.expose().len() > MAX_PASSWORD_LEN {
        let _ = app.hasher.verify(dummy, password).await;
        return Ok(false);
    }
    let real = stored.is_some();
    let hash = stored.unwrap_or(dummy);
    let ok = app
        .hasher
        .verify(hash, password)
        .await
        .map_err(|e| PageError::Internal(e.to_string()))?;
    Ok(real && ok)
}

/// The key of an address's failures.
pub(super) fn address_key(tenant: &TenantCtx, client: &ClientInfo) -> String {
    format!(
        "{}\u{0}{}",
        tenant.id(),
        client.rate_key().unwrap_or_default()
    )
}

/// The account a login names, in the normalized form the store compares.
fn login_key(login: &Login) -> String {
    match login {
        Login::Username(u) => format!("u:{}", u.as_str()),
        Login::Email(e) => format!("e:{}", e.as_str()),
        Login::Phone(p) => format!("p:{}", p.as_str()),
    }
}

pub(crate) async fn record(
    app: &App,
    tenant: &TenantCtx,
    client: &ClientInfo,
    actor: &str,
    action: &'static str,
    target: Option<&str>,
    outcome: &'static str,
) -> Result<(), PageError> {
    let (t, now) = (tenant.id().clone(), app.now());
    let (actor, target, ip) = (
        actor.to_string(),
        target.map(str::to_string),
        client.ip.clone(),
    );
    app.store
        .run(move |c| {
            audit::record(
                c,
                &t,
                &NewAuditEvent {
                    actor: &actor,
                    action,
                    target: target.as_deref(),
                    outcome,
                    ip: ip.as_deref(),
                    details: serde_json::json!({}),
                },
                now,
            )
        })
        .await?;
    Ok(())
}

/// Whether the page offers a one-time code: the tenant can send one, and the flow accepts the
/// class a code sign-in reaches.
fn offers_code(app: &App, flow: &LoginFlow) -> bool {
    super::code::offered(app) && session::admits(&flow.needs.classes, session::CLASS_CODE)
}

pub(super) fn render(
    app: &App,
    tenant: &TenantCtx,
    flow: &LoginFlow,
    browser: &str,
    locale: Locale,
    status: StatusCode,
    shown: Shown<'_>,
) -> Result<Response, PageError> {
    let t = &tenant.tenant;
    let base = format!("{}/login", tenant_path(tenant));
    let setting = |key: &str| {
        t.settings
            .get(key)
            .or_else(|| t.branding.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let region = shown
        .region
        .map(str::to_string)
        .or_else(|| setting("default_region"))
        .unwrap_or_else(|| "CN".into());
    let regions = regions(app, locale);
    let here = format!("{base}?flow={}", flow.id);
    let code_here = format!("{here}&method=code");
    let html = app.templates.render_in(
        "login.html",
        locale,
        context! {
            switcher => language::switcher(tenant, if shown.code_mode { &code_here } else { &here }),
            tenant_name => &t.display_name,
            logo_url => t.branding.get("logo_url").and_then(|v| v.as_str()).filter(|u| u.starts_with("https://")),
            client_name => &flow.needs.client_name,
            action => base,
            flow => &flow.id,
            csrf => app.csrf.token(browser, &flow.id),
            error => shown.error.map(|e| app.templates.text(e, locale)),
            notice => shown.notice.map(|e| app.templates.text(e, locale)),
            code_mode => shown.code_mode,
            code_action => format!("{base}/code"),
            send_action => format!("{base}/code/send"),
            // Only the methods whose class the flow accepts are offered (an app's essential `acr`,
            // an SP's RequestedAuthnContext).
            password_url => session::admits(&flow.needs.classes, session::CLASS_PASSWORD).then_some(&here),
            code_url => offers_code(app, flow).then_some(&code_here),
            captcha => shown.captcha,
            captcha_refresh => format!("{}&captcha=1", if shown.code_mode { &code_here } else { &here }),
            captcha_max => captcha::MAX_ANSWER,
            account => shown.account,
            region => region,
            regions => regions,
            agreed => shown.agreed,
            remembered => shown.remember,
            remember_days => super::session::remember_secs(tenant).map(|s| s / 86_400),
            trial_url => crate::trial::offered(tenant).map(|_| format!("{}/trial", tenant_path(tenant))),
            forgot_url => format!("{}/forgot-password?flow={}", tenant_path(tenant), flow.id),
            terms_url => setting("terms_url").filter(|u| u.starts_with("https://")).unwrap_or_else(|| format!("{}/legal/terms", tenant_path(tenant))),
            privacy_url => setting("privacy_url").filter(|u| u.starts_with("https://")).unwrap_or_else(|| format!("{}/legal/privacy", tenant_path(tenant))),
        },
    )?;
    Ok(web::page(status, html, Some(&flow.needs.return_to)))
}

/// The country/region codes of the selector beside the account field, named in `locale`.
pub(crate) fn regions(app: &App, locale: Locale) -> Vec<minijinja::Value> {
    REGIONS
        .iter()
        .map(|(code, dial, _)| {
            let key = format!("region.{}", code.to_ascii_lowercase());
            let name = app.templates.catalogs.plain(locale, &key, &[]);
            context! { code => code, dial => dial, name => name }
        })
        .collect()
}

/// The tenant's base path as the browser reached it: `/t/{tenant}` (under any path prefix of
/// `public_url`), or empty at the root of a tenant's own host.
pub fn tenant_path(tenant: &TenantCtx) -> String {
    url::Url::parse(&tenant.issuer)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::UserProfile;
    use crate::tenant::TenantId;

    fn user(status: UserStatus, locked_until: Option<i64>) -> User {
        User {
            tenant_id: TenantId::parse("acme").unwrap(),
            id: "u1".into(),
            profile: UserProfile::default(),
            email_verified: false,
            phone_verified: false,
            status,
            has_password: true,
            must_change_password: false,
            password_changed_at: None,
            failed_logins: 0,
            last_failed_at: None,
            locked_until: locked_until.map(UnixTime),
            created_at: UnixTime(0),
            updated_at: UnixTime(0),
            last_login_at: None,
        }
    }

    #[test]
    fn every_region_has_a_name_in_the_catalogs() {
        let catalogs = crate::i18n::Catalogs::load().unwrap();
        for (code, _, english) in REGIONS {
            let key = format!("region.{}", code.to_ascii_lowercase());
            assert_eq!(catalogs.text(Locale::En, &key), *english);
            assert_ne!(catalogs.text(Locale::ZhCn, &key), key);
        }
    }

    #[test]
    fn only_active_unlocked_accounts_sign_in() {
        let now = UnixTime(100);
        assert_eq!(
            check_account(&user(UserStatus::Active, None), now),
            AccountCheck::Allowed
        );
        assert_eq!(
            check_account(&user(UserStatus::Active, Some(50)), now),
            AccountCheck::Allowed,
            "an expired lock no longer applies"
        );
        assert_eq!(
            check_account(&user(UserStatus::Active, Some(150)), now),
            AccountCheck::Locked
        );
        assert_eq!(
            check_account(&user(UserStatus::Disabled, None), now),
            AccountCheck::Disabled
        );
        assert_eq!(
            check_account(&user(UserStatus::Pending, None), now),
            AccountCheck::Pending
        );
        assert_eq!(
            check_account(&user(UserStatus::Locked, None), now),
            AccountCheck::Locked
        );
    }
}
