//! The reset link from an email: `GET /t/{tenant}/reset-password?token=…` shows the form
//! (spending nothing, so a mail scanner following links does not use it up), and `POST` sets
//! the new password once every rule of the policy holds.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{Page, Step, first_view};
use crate::app::App;
use crate::codes::{self, Purpose};
use crate::flow::language;
use crate::flow::login;
use crate::flow::password::{self, PasswordPolicy, Rule};
use crate::i18n::{Locale, Text};
use crate::notify::Channel;
use crate::oidc::form::OAuthForm;
use crate::store::users::{self, UserStatus};
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;
use crate::web::error::PageError;

/// The page for a link that does not work.
fn link_invalid(app: &App, locale: Locale) -> Result<Response, PageError> {
    let minutes = (app.config.codes.link_lifetime / 60).to_string();
    crate::flow::message(
        app,
        locale,
        StatusCode::BAD_REQUEST,
        &Text::new("forgot.link_invalid_title"),
        &Text::new("forgot.link_invalid_text").with("minutes", minutes),
        None,
    )
}

/// A link that does not work, at submission: audited.
async fn bad_link(
    app: &App,
    tenant: &TenantCtx,
    client: &ClientInfo,
    locale: Locale,
) -> Result<Response, PageError> {
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
    link_invalid(app, locale)
}

/// `GET /t/{tenant}/reset-password?token=…`: the link from the email. Showing the form spends
/// nothing, so a mail scanner that follows links does not use it up.
pub async fn link_page(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let locale = language::locale(&tenant, &headers, &[]);
    let form = OAuthForm::parse(query.unwrap_or_default().as_bytes())
        .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
    let token = form.get("token").unwrap_or_default().to_string();
    if codes::peek_link(&app, tenant.id(), Purpose::PasswordReset, &token)
        .await?
        .is_none()
    {
        return link_invalid(&app, locale);
    }
    first_view(&app, &tenant, &headers, locale, form, Step::Link)
}

/// `POST /t/{tenant}/reset-password`: the new password, with the link's token.
pub async fn with_link(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let page = Page::posted(&app, &tenant, &headers, &body)?;
    let new = page.form.get("new_password").unwrap_or_default();
    let token = page.field("token");
    // A link names its account, so every rule is checked before anything is spent.
    let owner = match codes::peek_link(&app, tenant.id(), Purpose::PasswordReset, token).await? {
        Some(user_id) => {
            let t = tenant.id().clone();
            app.store.run(move |c| users::find(c, &t, &user_id)).await?
        }
        None => None,
    };
    if let Some(refusal) = crate::flow::tenant_refusal(&tenant.tenant, app.now()) {
        return page.error(Step::Link, &refusal);
    }
    let Some(owner) = owner.filter(|u| u.status != UserStatus::Disabled) else {
        return bad_link(&app, &tenant, &client, page.locale).await;
    };
    let mut broken = page.broken(new, Some(&owner));
    if broken.is_empty() && password::reused(&app, &tenant, &owner.id, new).await? {
        broken.push(Rule::NotRecent {
            count: PasswordPolicy::of(&tenant.tenant).history,
        });
    }
    if !broken.is_empty() {
        return page.refuse(Step::Link, &broken);
    }
    let verified = codes::verify_link(&app, tenant.id(), Purpose::PasswordReset, token).await?;
    let redeemed = match verified {
        Some(v) => codes::spend(&app, tenant.id(), v).await?,
        None => None,
    };
    let Some(redeemed) = redeemed else {
        return bad_link(&app, &tenant, &client, page.locale).await;
    };
    let proven = match redeemed.destination.starts_with("p:") {
        true => Channel::Sms,
        false => Channel::Email,
    };
    password::reset(
        &app,
        &tenant,
        &client,
        &redeemed.user_id,
        proven,
        new,
        page.locale,
    )
    .await?;
    page.done()
}
