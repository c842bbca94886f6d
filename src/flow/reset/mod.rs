//! Forgot password. `GET`/`POST /t/{tenant}/forgot-password` asks for the account's mobile
//! number or email address and sends a code to a number or a link to an address;
//! `POST /forgot-password/code` sets the new password with the code, and
//! `GET`/`POST /reset-password` with the link. Sending follows [`crate::codes`] (cooldown, caps,
//! captcha, the same answer whether or not the account exists); [`super::password::reset`] does
//! the rest.
//!
//! The code only works in the browser that asked for it (it is bound to a digest of the
//! browser's CSRF cookie); the link works anywhere, since it is opened from a mailbox.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use minijinja::context;

mod link;

pub use link::{link_page, with_link};

use super::password::{PasswordPolicy, Rule};
use super::{captcha, cookies, language, login, password, session};
use crate::account::Login;
use crate::app::App;
use crate::codes::{self, Destination, Issued, Purpose};
use crate::crypto::secret::TokenHash;
use crate::i18n::{Locale, Text};
use crate::notify::Channel;
use crate::oidc::form::OAuthForm;
use crate::store::users::{self, UserStatus};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;
use crate::web::{self, ClientInfo};

/// What the CSRF tokens of these forms are for.
const CSRF_PURPOSE: &str = "forgot-password";
/// Longest code input looked at.
const MAX_CODE_INPUT: usize = 32;

/// Which form the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The account to send to.
    Ask,
    /// A link is on its way: nothing to fill in.
    Sent,
    /// The code that was sent, and the new password.
    Code,
    /// The new password, from a followed link.
    Link,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Ask => "ask",
            Step::Sent => "sent",
            Step::Code => "code",
            Step::Link => "link",
        }
    }
}

/// One request's page: the tenant, the browser's CSRF binding, the language, and what the
/// person typed so far.
struct Page<'a> {
    app: &'a App,
    tenant: &'a TenantCtx,
    browser: String,
    locale: Locale,
    form: OAuthForm,
}

/// What a page shows besides its form.
#[derive(Default)]
struct Shown<'a> {
    error: Option<&'a Text>,
    notice: Option<&'a Text>,
    captcha: Option<captcha::Challenge>,
    /// Rules of the password policy the new password broke.
    broken: &'a [Rule],
}

impl<'a> Page<'a> {
    /// A posted form, its CSRF token checked against this browser.
    fn posted(
        app: &'a App,
        tenant: &'a TenantCtx,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page<'a>, PageError> {
        let form = OAuthForm::parse(body)
            .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
        let browser = cookies::read(headers, &session::jar(app).browser_name())
            .filter(|b| app.csrf.verify(Some(b), CSRF_PURPOSE, form.get("csrf")))
            .ok_or(PageError::Refused(Text::new("login.form_expired")))?;
        Ok(Page {
            app,
            tenant,
            browser,
            locale: language::locale(tenant, headers, &[]),
            form,
        })
    }

    fn field(&self, name: &str) -> &str {
        self.form.get(name).unwrap_or_default().trim()
    }

    /// The sign-in flow the person came from, to go back to afterwards.
    fn flow(&self) -> &str {
        let flow = self.field("flow");
        match super::plausible_id(flow) {
            true => flow,
            false => "",
        }
    }

    /// Binds a code to the browser that asked for it, without storing the cookie itself.
    fn context(&self) -> String {
        let digest = TokenHash::of(&format!("password-reset\u{0}{}", self.browser));
        URL_SAFE_NO_PAD.encode(digest.as_bytes())
    }

    fn destination(&self) -> Option<Destination> {
        let account = self.field("account");
        (account.len() <= 254)
            .then(|| Login::parse(account, self.form.get("region")))
            .flatten()
            .as_ref()
            .and_then(Destination::of)
    }

    fn render(&self, step: Step, shown: Shown<'_>) -> Result<Response, PageError> {
        let (app, tenant) = (self.app, self.tenant);
        let base = login::tenant_path(tenant);
        let action = match step {
            Step::Ask | Step::Sent => format!("{base}/forgot-password"),
            Step::Code => format!("{base}/forgot-password/code"),
            Step::Link => format!("{base}/reset-password"),
        };
        let flow = self.flow();
        let here = match flow.is_empty() {
            true => format!("{base}/forgot-password"),
            false => format!("{base}/forgot-password?flow={flow}"),
        };
        let region = self
            .form
            .get("region")
            .map(str::to_string)
            .or_else(|| {
                tenant
                    .tenant
                    .settings
                    .get("default_region")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "CN".into());
        let t = &app.templates;
        let html = t.render_in(
            "forgot.html",
            self.locale,
            context! {
                // A followed link is not shown again with the switcher: its address carries the
                // secret, and the switcher would put it in another URL.
                switcher => (step != Step::Link).then(|| language::switcher(tenant, &here)),
                tenant_name => &tenant.tenant.display_name,
                step => step.as_str(),
                action => action,
                csrf => app.csrf.token(&self.browser, CSRF_PURPOSE),
                flow => flow,
                account => self.field("account"),
                region => region,
                regions => login::regions(app, self.locale),
                token => self.field("token"),
                error => shown.error.map(|e| t.text(e, self.locale)),
                notice => shown.notice.map(|e| t.text(e, self.locale)),
                captcha => shown.captcha,
                captcha_max => captcha::MAX_ANSWER,
                min_length => PasswordPolicy::of(&tenant.tenant).min_length,
                rules => password::rules_for_page(app, tenant, self.locale, shown.broken),
                back_url => back_url(tenant, flow),
            },
        )?;
        Ok(web::page(StatusCode::OK, html, None))
    }

    fn error(&self, step: Step, text: &Text) -> Result<Response, PageError> {
        self.render(
            step,
            Shown {
                error: Some(text),
                ..Shown::default()
            },
        )
    }

    /// The new-password form again, naming the rules `broken` broke.
    fn refuse(&self, step: Step, broken: &[Rule]) -> Result<Response, PageError> {
        let first = broken.first().map(|r| r.text());
        self.render(
            step,
            Shown {
                error: first.as_ref(),
                broken,
                ..Shown::default()
            },
        )
    }

    /// The rules `new` breaks for `user`'s account, history aside.
    fn broken(&self, new: &str, user: Option<&users::User>) -> Vec<Rule> {
        let none = users::UserProfile::default();
        let profile = user.map_or(&none, |u| &u.profile);
        PasswordPolicy::of(&self.tenant.tenant).check(
            new,
            self.form.get("confirm_password"),
            profile,
        )
    }

    /// The page after a reset: done, with the way back to signing in.
    fn done(&self) -> Result<Response, PageError> {
        let back = back_url(self.tenant, self.flow());
        let sign_in = Text::new("forgot.back");
        super::message(
            self.app,
            self.locale,
            StatusCode::OK,
            &Text::new("forgot.done_title"),
            &Text::new("forgot.done_text"),
            back.as_deref().map(|url| (url, &sign_in)),
        )
    }
}

/// The sign-in page of flow `flow`, if there is one to go back to.
fn back_url(tenant: &TenantCtx, flow: &str) -> Option<String> {
    (!flow.is_empty()).then(|| format!("{}/login?flow={flow}", login::tenant_path(tenant)))
}

/// A page reached by a link (not a form): the browser gets its CSRF binding if it had none.
fn first_view(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    locale: Locale,
    form: OAuthForm,
    step: Step,
) -> Result<Response, PageError> {
    let (browser, set_cookie) = session::browser(app, headers);
    let page = Page {
        app,
        tenant,
        browser,
        locale,
        form,
    };
    let mut response = page.render(step, Shown::default())?;
    if let Some(set) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    Ok(response)
}

/// `GET /t/{tenant}/forgot-password[?flow=ID]`
pub async fn ask(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let locale = language::locale(&tenant, &headers, &[]);
    if !super::code::offered(&app) {
        // Nothing can reach the user: only an administrator can help.
        return super::message(
            &app,
            locale,
            StatusCode::OK,
            &Text::new("forgot.title"),
            &Text::new("forgot.text"),
            None,
        );
    }
    let form = OAuthForm::parse(query.unwrap_or_default().as_bytes())
        .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
    first_view(&app, &tenant, &headers, locale, form, Step::Ask)
}

/// `POST /t/{tenant}/forgot-password`: sends a code to a number or a link to an address, with
/// the same answer whether or not they belong to an account.
pub async fn send(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let page = Page::posted(&app, &tenant, &headers, &body)?;
    let now = app.now();
    if let Some(refusal) = super::tenant_refusal(&tenant.tenant, now) {
        return page.error(Step::Ask, &refusal);
    }
    let Some(to) = page.destination() else {
        return page.error(Step::Ask, &Text::new("login.code_needs_account"));
    };
    let address = login::address_key(&tenant, &client);
    if app.address_failures.blocked_for(&address, now).is_some() {
        return page.error(Step::Ask, &Text::new("login.throttled"));
    }
    let context = page.context();
    let captcha_tried = page.form.get("captcha_id").is_some();
    let captcha_solved = captcha_tried
        && captcha::solve(
            &app,
            tenant.id(),
            &context,
            page.form.get("captcha_id"),
            page.form.get("captcha_answer"),
        )
        .await?;
    // A disabled account is treated as none: it gets nothing, and the answer is the same.
    let user = match Login::parse(page.field("account"), page.form.get("region")) {
        Some(login) => {
            let t = tenant.id().clone();
            app.store
                .run(move |c| users::find_by_login(c, &t, &login))
                .await?
                .filter(|u| u.status != UserStatus::Disabled)
        }
        None => None,
    };
    let link_base = format!("{}/reset-password?token=", tenant.issuer);
    // Codes per address are counted by its rate-limit key (an IPv6 /64).
    let rate_key = client.rate_key();
    let issued = codes::issue(
        &app,
        tenant.id(),
        codes::Request {
            purpose: Purpose::PasswordReset,
            to: &to,
            user: user.as_ref(),
            context: &context,
            ip: rate_key.as_deref(),
            locale: page.locale,
            tenant_name: &tenant.tenant.display_name,
            captcha_solved,
            link_base: (to.channel == Channel::Email).then_some(link_base.as_str()),
        },
    )
    .await?;
    let config = &app.config.codes;
    match issued {
        Issued::Sent => {
            let (step, notice) = match to.channel {
                Channel::Email => (
                    Step::Sent,
                    Text::new("forgot.sent_link")
                        .with("to", to.address.as_str())
                        .with("minutes", (config.link_lifetime / 60).to_string()),
                ),
                Channel::Sms => (
                    Step::Code,
                    Text::new("forgot.sent_code").with("to", to.address.as_str()),
                ),
            };
            page.render(
                step,
                Shown {
                    notice: Some(&notice),
                    ..Shown::default()
                },
            )
        }
        other => {
            let why = super::code::refusal(
                &app,
                &tenant,
                &client,
                other,
                super::code::Asked {
                    binding: &context,
                    address: &address,
                    captcha_tried,
                    action: "password.reset.send",
                },
            )
            .await?;
            page.render(
                Step::Ask,
                Shown {
                    error: Some(&why.text),
                    captcha: why.captcha,
                    ..Shown::default()
                },
            )
        }
    }
}

/// `POST /t/{tenant}/forgot-password/code`: the code sent by SMS, and the new password.
pub async fn with_code(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let page = Page::posted(&app, &tenant, &headers, &body)?;
    let Some(to) = page.destination().filter(|d| d.channel == Channel::Sms) else {
        return page.error(Step::Ask, &Text::new("login.code_needs_account"));
    };
    if let Some(refusal) = super::tenant_refusal(&tenant.tenant, app.now()) {
        return page.error(Step::Ask, &refusal);
    }
    // The rules that need no account are checked first, so a typo does not cost the code. The
    // rest (the account's own names, its history) only once the code proves whose account it
    // is: checked earlier, they would tell anyone whether the number has an account.
    let new = page.form.get("new_password").unwrap_or_default();
    let broken = page.broken(new, None);
    if !broken.is_empty() {
        return page.refuse(Step::Code, &broken);
    }
    let now = app.now();
    let address = login::address_key(&tenant, &client);
    if app.address_failures.blocked_for(&address, now).is_some() {
        return page.error(Step::Code, &Text::new("login.throttled"));
    }
    let code = page.form.get("code").unwrap_or_default();
    let context = page.context();
    let verified = match code.len() <= MAX_CODE_INPUT {
        true => {
            codes::verify(
                &app,
                tenant.id(),
                Purpose::PasswordReset,
                &to,
                &context,
                code,
            )
            .await?
        }
        false => None,
    };
    let Some(verified) = verified else {
        return wrong_code(&app, &tenant, &client, &page, &address).await;
    };
    let owner = match verified.user_id.clone() {
        Some(id) => {
            let t = tenant.id().clone();
            app.store.run(move |c| users::find(c, &t, &id)).await?
        }
        None => None,
    };
    let Some(owner) = owner.filter(|u| u.status != UserStatus::Disabled) else {
        return wrong_code(&app, &tenant, &client, &page, &address).await;
    };
    let mut broken = page.broken(new, Some(&owner));
    if broken.is_empty() && password::reused(&app, &tenant, &owner.id, new).await? {
        broken.push(Rule::NotRecent {
            count: PasswordPolicy::of(&tenant.tenant).history,
        });
    }
    if !broken.is_empty() {
        return page.refuse(Step::Code, &broken);
    }
    let Some(redeemed) = codes::spend(&app, tenant.id(), verified).await? else {
        return wrong_code(&app, &tenant, &client, &page, &address).await;
    };
    let user_id = redeemed.user_id;
    password::reset(
        &app,
        &tenant,
        &client,
        &user_id,
        Channel::Sms,
        new,
        page.locale,
    )
    .await?;
    page.done()
}

/// A wrong, expired or spent code: counted against the address and audited.
async fn wrong_code(
    app: &App,
    tenant: &TenantCtx,
    client: &ClientInfo,
    page: &Page<'_>,
    address: &str,
) -> Result<Response, PageError> {
    app.address_failures.record_failure(address, app.now());
    login::record(
        app,
        tenant,
        client,
        "anonymous",
        "password.reset",
        None,
        "failure",
    )
    .await?;
    page.error(Step::Code, &Text::new("forgot.code_wrong"))
}
