//! Free trials. The platform's `default` tenant shows a "Free Trial" link on its sign-in page,
//! leading to `/t/default/trial`: an application (company, contact name, mobile number, email)
//! is recorded as pending and the contact gets an acknowledgement. A platform administrator
//! approves it with `sesame tenant approve ID` ([`approve`]), which creates the tenant (status
//! `trial`, expiring after the trial), its keys and the contact's account, and emails the
//! contact a link to set a password. A tenant past its trial cannot sign anyone in and says so.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use minijinja::context;

use crate::account::{Email, Phone};
use crate::app::App;
use crate::clock::UnixTime;
use crate::codes::{self, Destination};
use crate::flow::{cookies, language, login, session};
use crate::i18n::{Locale, Text};
use crate::limits::FailureLimiter;
use crate::notify::{self, Channel, Message};
use crate::oidc::form::OAuthForm;
use crate::store::tenants::{self, TenantSpec, TenantStatus};
use crate::store::users::{self, NewUser, UserProfile, UserStatus};
use crate::store::{StoreError, new_id, trials};
use crate::tenant::TenantId;
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;
use crate::web::{self, ClientInfo};

/// The tenant whose sign-in page offers trials.
pub const PLATFORM_TENANT: &str = "default";
/// Days a trial lasts unless the platform tenant's `free_trial_days` says otherwise (0: none).
pub const DEFAULT_DAYS: i64 = 30;
/// How long the link to set the first password works.
pub const ACTIVATION_LIFETIME: i64 = 7 * 86_400;
/// Applications one address may make per hour.
pub const PER_ADDRESS_HOURLY: u32 = 5;
const CSRF_PURPOSE: &str = "free-trial";

/// Applications per address, per node.
pub fn limiter() -> FailureLimiter {
    FailureLimiter::new(PER_ADDRESS_HOURLY, 3600)
}

/// The trial length `tenant` offers on its sign-in page, if it is the platform's and offers one.
pub fn offered(tenant: &TenantCtx) -> Option<i64> {
    if tenant.id().as_str() != PLATFORM_TENANT {
        return None;
    }
    let days = tenant
        .tenant
        .settings
        .get("free_trial_days")
        .and_then(serde_json::Value::as_i64)
        .filter(|d| (0..=365).contains(d))
        .unwrap_or(DEFAULT_DAYS);
    (days > 0).then_some(days)
}

pub fn routes() -> Router<App> {
    Router::new().route("/trial", get(form).post(apply))
}

/// What the application form holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub company: String,
    pub contact_name: String,
    pub phone: Phone,
    pub email: Email,
}

/// The rules of the form: names of 1 to 100 characters without control or invisible
/// characters (`account::is_shown_name`), a mobile number valid for its region, an email
/// address. The first problem, if any.
pub fn parse(form: &OAuthForm) -> Result<Applied, Text> {
    let text = |name: &str| form.get(name).unwrap_or_default().trim().to_string();
    let fits = |s: &str| crate::account::is_shown_name(s, 100);
    let (company, contact_name) = (text("company"), text("contact_name"));
    if !fits(&company) || !fits(&contact_name) {
        return Err(Text::new("trial.bad_name"));
    }
    let phone =
        Phone::parse(&text("phone"), form.get("region")).ok_or(Text::new("trial.bad_phone"))?;
    let email = Email::parse(&text("email")).ok_or(Text::new("trial.bad_email"))?;
    Ok(Applied {
        company,
        contact_name,
        phone,
        email,
    })
}

fn render(
    app: &App,
    tenant: &TenantCtx,
    locale: Locale,
    browser: &str,
    form: &OAuthForm,
    error: Option<&Text>,
) -> Result<Response, PageError> {
    let t = &app.templates;
    let region = form.get("region").unwrap_or("CN");
    let html = t.render_in(
        "trial.html",
        locale,
        context! {
            tenant_name => &tenant.tenant.display_name,
            action => format!("{}/trial", login::tenant_path(tenant)),
            csrf => app.csrf.token(browser, CSRF_PURPOSE),
            company => form.get("company").unwrap_or_default(),
            contact_name => form.get("contact_name").unwrap_or_default(),
            phone => form.get("phone").unwrap_or_default(),
            email => form.get("email").unwrap_or_default(),
            region => region,
            regions => login::regions(app, locale),
            days => offered(tenant),
            error => error.map(|e| t.text(e, locale)),
        },
    )?;
    Ok(web::page(StatusCode::OK, html, None))
}

/// `GET /t/default/trial`
async fn form(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if offered(&tenant).is_none() {
        return Err(PageError::NotFound);
    }
    let locale = language::locale(&tenant, &headers, &[]);
    let (browser, set_cookie) = session::browser(&app, &headers);
    let mut response = render(&app, &tenant, locale, &browser, &OAuthForm::default(), None)?;
    if let Some(set) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    Ok(response)
}

/// `POST /t/default/trial`: records the application and acknowledges it to the contact.
async fn apply(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    if offered(&tenant).is_none() {
        return Err(PageError::NotFound);
    }
    let form = OAuthForm::parse(&body)
        .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
    let browser = cookies::read(&headers, &session::jar(&app).browser_name())
        .filter(|b| app.csrf.verify(Some(b), CSRF_PURPOSE, form.get("csrf")))
        .ok_or(PageError::Refused(Text::new("login.form_expired")))?;
    let locale = language::locale(&tenant, &headers, &[]);
    let applied = match parse(&form) {
        Ok(applied) => applied,
        Err(problem) => return render(&app, &tenant, locale, &browser, &form, Some(&problem)),
    };
    let now = app.now();
    let address = client.ip.clone().unwrap_or_default();
    if app.trial_applications.blocked_for(&address, now).is_some() {
        let problem = Text::new("trial.throttled");
        return render(&app, &tenant, locale, &browser, &form, Some(&problem));
    }
    app.trial_applications.record_failure(&address, now);
    let (id, ip, record) = (new_id(), client.ip.clone(), applied.clone());
    let stored_id = id.clone();
    // One application (and one acknowledgement) per address a day: the form cannot be used to
    // mail someone over and over. A repeat gets the same page and changes nothing.
    let fresh = app
        .store
        .run(move |c| {
            if trials::count_for_email(c, record.email.as_str(), now.plus(-86_400))? > 0 {
                return Ok(false);
            }
            trials::insert(
                c,
                &trials::NewApplication {
                    id: &stored_id,
                    company: &record.company,
                    contact_name: &record.contact_name,
                    phone: record.phone.as_str(),
                    email: record.email.as_str(),
                    locale: locale.tag(),
                    ip: ip.as_deref(),
                },
                now,
            )?;
            Ok(true)
        })
        .await?;
    if fresh {
        tracing::info!(application = %id, "free trial application received");
        acknowledge(&app, &tenant, locale, &applied).await;
    }
    crate::flow::message(
        &app,
        locale,
        StatusCode::OK,
        &Text::new("trial.received_title"),
        &Text::new("trial.received_text").with("email", applied.email.as_str()),
        None,
    )
}

/// Tells the contact the application arrived; with none of the text the applicant typed, so the
/// form cannot carry a stranger's message to someone's mailbox.
async fn acknowledge(app: &App, tenant: &TenantCtx, locale: Locale, applied: &Applied) {
    let (subject, body) = notify::compose(
        &app.templates.catalogs,
        locale,
        Channel::Email,
        "trial_received",
        &[],
    );
    let message = Message {
        tenant: tenant.id().clone(),
        channel: Channel::Email,
        to: applied.email.as_str().to_string(),
        subject,
        body,
        code: None,
        locale,
        purpose: "trial.received",
    };
    if let Err(e) = app.notifier.dispatch(message).await {
        tracing::warn!(error = %e, "the trial acknowledgement was not sent");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error("no pending application '{0}'")]
    NotPending(String),
    #[error("'{0}' is not a tenant id (1-63 of a-z 0-9 -)")]
    BadTenantId(String),
    #[error("tenant '{0}' exists already; choose another id with --tenant-id")]
    TenantExists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "email delivery is not configured for this process: set email.driver (docs/configuration.md) \
         before approving; nothing was changed"
    )]
    NoEmail,
    #[error(
        "tenant '{tenant}' is approved, but the activation email was not delivered ({why}): the \
         contact can set a password with Forgot password at {reset}"
    )]
    NotDelivered {
        tenant: TenantId,
        why: notify::NotifyError,
        reset: String,
    },
}

/// What an approval made.
#[derive(Debug, Clone)]
pub struct Approved {
    pub tenant: TenantId,
    pub user_id: String,
    pub expires_at: UnixTime,
    pub email: String,
}

/// A tenant id from a company name: its ASCII letters and digits, lower-cased and joined by
/// dashes; `trial-…` when nothing is left (a name in Chinese, say).
pub fn slug_of(company: &str) -> String {
    let words: Vec<String> = company
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut slug = words.join("-");
    slug.truncate(40);
    let slug = slug.trim_end_matches('-').to_string();
    match slug.is_empty() {
        true => format!("trial-{}", &new_id()[..8]),
        false => slug,
    }
}

/// Approves application `id`: the tenant (`tenant_id`, or one made from the company's name),
/// in trial for `days`, with its signing keys and the contact's account, then the activation
/// email with a link to set a password.
pub async fn approve(
    app: &App,
    id: &str,
    tenant_id: Option<&str>,
    days: i64,
) -> Result<Approved, TrialError> {
    let key = id.to_string();
    let application = app
        .store
        .run(move |c| trials::find(c, &key))
        .await?
        .filter(|a| !a.approved)
        .ok_or_else(|| TrialError::NotPending(id.to_string()))?;
    // The contact learns of the approval only by email: without it, nothing is changed, rather
    // than a tenant made whose owner cannot be told.
    if !app.notifier.offers(Channel::Email) {
        return Err(TrialError::NoEmail);
    }
    let wanted = tenant_id
        .map(str::to_string)
        .unwrap_or_else(|| slug_of(&application.company));
    let tenant = TenantId::parse(&wanted).ok_or(TrialError::BadTenantId(wanted.clone()))?;
    let now = app.now();
    let expires_at = now.plus(days * 86_400);
    let mut spec = TenantSpec::named(&application.company);
    spec.status = TenantStatus::Trial;
    spec.trial_expires_at = Some(expires_at);
    let profile = UserProfile {
        email: Email::parse(&application.email),
        phone: Phone::parse(&application.phone, None),
        display_name: application.contact_name.clone(),
        locale: Some(application.locale.clone()),
        ..UserProfile::default()
    };
    let (t, app_id) = (tenant.clone(), application.id.clone());
    let user = app
        .store
        .run(move |c| {
            crate::store::tx::write(c, |c| {
                if tenants::find(c, &t)?.is_some() {
                    return Err(StoreError::Conflict(t.to_string()));
                }
                tenants::insert(c, &t, &spec, now)?;
                let user = users::insert(
                    c,
                    &t,
                    &NewUser {
                        id: None,
                        profile,
                        status: UserStatus::Active,
                        password_hash: None,
                        must_change_password: false,
                    },
                    now,
                )?;
                if !trials::approve(c, &app_id, t.as_str(), now)? {
                    return Err(StoreError::Conflict(app_id.clone()));
                }
                Ok(user)
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(what) if what == tenant.as_str() => TrialError::TenantExists(what),
            StoreError::Conflict(what) => TrialError::NotPending(what),
            other => TrialError::Store(other),
        })?;
    let (store, master, t) = (app.store.clone(), app.master.clone(), tenant.clone());
    tokio::task::spawn_blocking(move || crate::bootstrap::ensure_keys(&store, &master, &t, now))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    app.invalidate_caches();
    let to = Destination {
        channel: Channel::Email,
        address: application.email.clone(),
    };
    let base = format!("{}/reset-password?token=", app.issuer(&tenant));
    let link = codes::link(app, &tenant, &user.id, &to, &base, ACTIVATION_LIFETIME).await?;
    let locale = Locale::from_tag(&application.locale).unwrap_or(crate::i18n::FALLBACK);
    let (subject, body) = notify::compose(
        &app.templates.catalogs,
        locale,
        Channel::Email,
        "trial_ready",
        &[
            ("tenant", &application.company),
            ("until", &crate::flow::password::format_time(expires_at)),
            ("days", &(ACTIVATION_LIFETIME / 86_400).to_string()),
            ("email", &application.email),
            ("link", &link),
        ],
    );
    app.notifier
        .send_now(Message {
            tenant: tenant.clone(),
            channel: Channel::Email,
            to: application.email.clone(),
            subject,
            body,
            code: None,
            locale,
            purpose: "trial.ready",
        })
        .await
        .map_err(|why| TrialError::NotDelivered {
            reset: format!("{}/forgot-password", app.issuer(&tenant)),
            tenant: tenant.clone(),
            why,
        })?;
    Ok(Approved {
        tenant,
        user_id: user.id,
        expires_at,
        email: application.email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_come_from_company_names() {
        assert_eq!(slug_of("Acme & Co., Ltd."), "acme-co-ltd");
        assert!(slug_of("纷享销客").starts_with("trial-"));
        assert!(TenantId::parse(&slug_of("纷享销客")).is_some());
        assert_eq!(slug_of(&"x".repeat(100)).len(), 40);
    }

    #[test]
    fn the_form_wants_names_a_number_and_an_address() {
        let form = |body: &str| OAuthForm::parse(body.as_bytes()).unwrap();
        let ok = parse(&form(
            "company=Acme&contact_name=Ann&region=CN&phone=138+0013+8000&email=ann%40acme.test",
        ))
        .unwrap();
        assert_eq!(ok.phone.as_str(), "+8613800138000");
        for bad in [
            "company=&contact_name=Ann&region=CN&phone=13800138000&email=a%40b.c",
            "company=Acme&contact_name=Ann&region=CN&phone=12&email=a%40b.c",
            "company=Acme&contact_name=Ann&region=CN&phone=13800138000&email=nope",
        ] {
            assert!(parse(&form(bad)).is_err(), "{bad}");
        }
    }
}
