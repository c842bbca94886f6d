//! The sign-in page's verification-code method ("Dynamic Verification Code Login"):
//! `POST /t/{tenant}/login/code/send` is the **Get** button, sending a code to a registered
//! mobile number or email address; `POST /t/{tenant}/login/code` signs in with it. The rules
//! (cooldown, caps, attempts, single use) live in [`crate::codes`]; this module only speaks
//! the page.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::login::{self, Shown};
use super::state::LoginFlow;
use super::{FlowForm, captcha, language, session};
use crate::account::Login;
use crate::app::App;
use crate::codes::{self, Destination, Issued, Purpose};
use crate::i18n::{Locale, Text};
use crate::notify::Channel;
use crate::oidc::form::OAuthForm;
use crate::store::users;
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;
use crate::web::error::PageError;

/// Longest code input looked at; a code is six digits, spaces aside.
const MAX_CODE_INPUT: usize = 32;

/// Whether the page offers the method at all: some channel can deliver codes.
pub fn offered(app: &App) -> bool {
    app.notifier.offers(Channel::Email) || app.notifier.offers(Channel::Sms)
}

/// A form posted on the code page of a live flow: what the person typed, and how to show the
/// page again.
struct Page<'a> {
    app: &'a App,
    tenant: &'a TenantCtx,
    flow: LoginFlow,
    browser: String,
    form: OAuthForm,
    locale: Locale,
}

impl<'a> Page<'a> {
    /// The posted form with its CSRF token checked, or the page for a flow that is gone.
    async fn open(
        app: &'a App,
        tenant: &'a TenantCtx,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Result<Page<'a>, Response>, PageError> {
        let FlowForm {
            form,
            browser,
            flow,
        } = super::flow_form(app, tenant, headers, body).await?;
        let Some(flow) = flow else {
            return Ok(Err(super::expired(
                app,
                language::locale(tenant, headers, &[]),
            )?));
        };
        let locale = language::locale(tenant, headers, &flow.needs.ui_locales);
        Ok(Ok(Page {
            app,
            tenant,
            flow,
            browser,
            form,
            locale,
        }))
    }

    fn account(&self) -> &str {
        self.form.get("account").unwrap_or_default().trim()
    }

    fn region(&self) -> Option<&str> {
        self.form.get("region")
    }

    fn agreed(&self) -> bool {
        self.form.get("agree") == Some("yes")
    }

    /// Whether the flow accepts a code sign-in's class. The page hides the method otherwise; a
    /// script that asks for or types a code anyway is refused before a code is sent or spent.
    fn accepted(&self) -> bool {
        session::admits(&self.flow.needs.classes, session::CLASS_CODE)
    }

    fn show(
        &self,
        error: Option<&Text>,
        notice: Option<&Text>,
        captcha: Option<captcha::Challenge>,
    ) -> Result<Response, PageError> {
        login::render(
            self.app,
            self.tenant,
            &self.flow,
            &self.browser,
            self.locale,
            StatusCode::OK,
            Shown {
                error,
                notice,
                captcha,
                account: self.account(),
                region: self.region(),
                agreed: self.agreed(),
                remember: self.form.get("remember") == Some("yes"),
                code_mode: true,
            },
        )
    }

    fn error(&self, text: &Text) -> Result<Response, PageError> {
        self.show(Some(text), None, None)
    }

    /// The account field as a login, if it names one.
    fn login(&self) -> Option<Login> {
        let account = self.account();
        (account.len() <= 254)
            .then(|| Login::parse(account, self.region()))
            .flatten()
    }
}

/// `POST /t/{tenant}/login/code/send`: the **Get** button. Whether or not the destination
/// belongs to an account, the answer is the same.
pub async fn send(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let page = match Page::open(&app, &tenant, &headers, &body).await? {
        Ok(page) => page,
        Err(gone) => return Ok(gone),
    };
    if !page.accepted() {
        return page.error(&Text::new("login.code_not_accepted"));
    }
    let now = app.now();
    if let Some(refusal) = super::tenant_refusal(&tenant.tenant, now) {
        return page.error(&refusal);
    }
    let login = page.login();
    let Some(to) = login.as_ref().and_then(Destination::of) else {
        return page.error(&Text::new("login.code_needs_account"));
    };
    let address = login::address_key(&tenant, &client);
    if app.address_failures.blocked_for(&address, now).is_some() {
        return page.error(&Text::new("login.throttled"));
    }
    // An answered captcha is spent now, right or wrong, like on the password form.
    let (form, flow) = (&page.form, &page.flow);
    let captcha_tried = form.get("captcha_id").is_some();
    let captcha_solved = captcha_tried
        && captcha::solve(
            &app,
            tenant.id(),
            &flow.id,
            form.get("captcha_id"),
            form.get("captcha_answer"),
        )
        .await?;
    let user = match login {
        Some(login) => {
            let t = tenant.id().clone();
            app.store
                .run(move |c| users::find_by_login(c, &t, &login))
                .await?
        }
        None => None,
    };
    // Codes per address are counted by its rate-limit key (an IPv6 /64).
    let rate_key = client.rate_key();
    let issued = codes::issue(
        &app,
        tenant.id(),
        codes::Request {
            purpose: Purpose::SignIn,
            to: &to,
            user: user.as_ref(),
            context: &flow.id,
            ip: rate_key.as_deref(),
            locale: page.locale,
            tenant_name: &tenant.tenant.display_name,
            captcha_solved,
            link_base: None,
        },
    )
    .await?;
    match issued {
        Issued::Sent => {
            let minutes = (app.config.codes.lifetime / 60).to_string();
            let notice = Text::new("login.code_sent")
                .with("to", to.address.as_str())
                .with("minutes", minutes);
            page.show(None, Some(&notice), None)
        }
        other => {
            let why = refusal(
                &app,
                &tenant,
                &client,
                other,
                Asked {
                    binding: &flow.id,
                    address: &address,
                    captcha_tried,
                    action: "sign_in.code.send",
                },
            )
            .await?;
            page.show(Some(&why.text), None, why.captcha)
        }
    }
}

/// How a request for a code was made, for [`refusal`].
pub(super) struct Asked<'a> {
    /// What a captcha image is bound to (the flow, or the browser).
    pub binding: &'a str,
    /// The address's key in the failure counters.
    pub address: &'a str,
    pub captcha_tried: bool,
    /// The audit action of a request that could not be sent.
    pub action: &'static str,
}

/// Why no code was sent, for the page: a sentence, and an image when a captcha must come
/// first. A wrong captcha answer counts against the address; a failing channel is audited.
pub(super) struct Refusal {
    pub text: Text,
    pub captcha: Option<captcha::Challenge>,
}

pub(super) async fn refusal(
    app: &App,
    tenant: &TenantCtx,
    client: &ClientInfo,
    issued: Issued,
    asked: Asked<'_>,
) -> Result<Refusal, PageError> {
    let text = match issued {
        Issued::Sent => Text::new("login.code_sent"),
        Issued::Wait(seconds) => Text::new("login.code_wait").with("seconds", seconds.to_string()),
        Issued::Capped => Text::new("login.code_capped"),
        Issued::NotOffered => Text::new("login.code_not_offered"),
        Issued::Unavailable => {
            login::record(
                app,
                tenant,
                client,
                "anonymous",
                asked.action,
                None,
                "unavailable",
            )
            .await?;
            Text::new("login.code_unavailable")
        }
        Issued::NeedsCaptcha => {
            let text = match asked.captcha_tried {
                true => {
                    app.address_failures
                        .record_failure(asked.address, app.now());
                    Text::new("login.captcha_wrong")
                }
                false => Text::new("login.code_captcha"),
            };
            let challenge = captcha::issue(app, tenant.id(), asked.binding, asked.address).await?;
            return Ok(Refusal {
                text,
                captcha: Some(challenge),
            });
        }
    };
    Ok(Refusal {
        text,
        captcha: None,
    })
}

/// `POST /t/{tenant}/login/code`: sign in with the code that was sent.
pub async fn submit(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let page = match Page::open(&app, &tenant, &headers, &body).await? {
        Ok(page) => page,
        Err(gone) => return Ok(gone),
    };
    if !page.accepted() {
        return page.error(&Text::new("login.code_not_accepted"));
    }
    let now = app.now();
    if !page.agreed() {
        return page.error(&Text::new("login.must_agree"));
    }
    if let Some(refusal) = super::tenant_refusal(&tenant.tenant, now) {
        return page.error(&refusal);
    }
    let login = page.login();
    let Some(to) = login.as_ref().and_then(Destination::of) else {
        return page.error(&Text::new("login.code_needs_account"));
    };
    let address = login::address_key(&tenant, &client);
    if app.address_failures.blocked_for(&address, now).is_some() {
        return page.error(&Text::new("login.throttled"));
    }
    let code = page.form.get("code").unwrap_or_default();
    let redeemed = match code.len() <= MAX_CODE_INPUT {
        true => codes::redeem(&app, tenant.id(), Purpose::SignIn, &to, &page.flow.id, code).await?,
        false => None,
    };
    let user = match redeemed {
        Some(id) => {
            let t = tenant.id().clone();
            app.store.run(move |c| users::find(c, &t, &id)).await?
        }
        None => None,
    };
    let Some(user) = user else {
        app.address_failures.record_failure(&address, now);
        login::record(
            &app,
            &tenant,
            &client,
            "anonymous",
            "sign_in.code",
            None,
            "failure",
        )
        .await?;
        return page.error(&Text::new("login.code_wrong"));
    };
    let check = login::check_account(&user, now);
    if check != login::AccountCheck::Allowed {
        login::record(
            &app,
            &tenant,
            &client,
            &user.id,
            "sign_in.code",
            Some(&user.id),
            "refused",
        )
        .await?;
        return page.error(&check.message());
    }
    // The code reached the destination: if it is still the user's, it is verified.
    let (current, verified) = match to.channel {
        Channel::Email => (
            user.profile.email.as_ref().map(|e| e.as_str()),
            user.email_verified,
        ),
        Channel::Sms => (
            user.profile.phone.as_ref().map(|p| p.as_str()),
            user.phone_verified,
        ),
    };
    let verified = verified || current != Some(to.address.as_str());
    if !verified {
        let (t, id, channel) = (tenant.id().clone(), user.id.clone(), to.channel);
        app.store
            .run(move |c| users::mark_verified(c, &t, &id, channel, now))
            .await?;
        app.forget_subject(tenant.id(), &user.id);
    }
    // RFC 8176: a one-time password, and for SMS the SMS confirmation as well.
    let amr = match to.channel {
        Channel::Sms => vec!["otp".to_string(), "sms".to_string()],
        Channel::Email => vec!["otp".to_string()],
    };
    let signed_in = session::SignedIn {
        user_id: user.id.clone(),
        amr,
        auth_time: now,
        user_agent: client.user_agent.clone(),
        ip: client.ip.clone(),
        remember: page.form.get("remember") == Some("yes"),
    };
    if super::password::must_change(&tenant, &user, now).is_some() {
        return super::password::change::ask(
            &app,
            &tenant,
            &page.flow,
            &page.browser,
            page.locale,
            &user,
            signed_in,
        )
        .await;
    }
    super::finish(&app, &tenant, &headers, &client, page.flow, signed_in).await
}
