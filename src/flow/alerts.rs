//! Login alerts: a sign-in from a browser or a network the user has not signed in from before
//! sends them a notice (time, browser, IP address, and a link to review their sessions). The
//! first sign-in ever alerts nobody. Browsers are told apart by the CSRF-binding cookie every
//! sign-in form sets; networks by the /24 (IPv4) or /48 (IPv6) prefix of the address. Only
//! keyed digests of either are stored.

use std::net::IpAddr;

use axum::http::HeaderMap;

use super::{cookies, session};
use crate::app::App;
use crate::i18n::Locale;
use crate::notify::{self, Channel, Message};
use crate::store::{StoreError, origins, users};
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;

/// The network an address belongs to, as far as alerts care: its /24 or /48.
pub fn network_of(ip: &str) -> Option<String> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

/// "Chrome on Windows" from a User-Agent; `None` when it names no browser we know. The header
/// itself is never shown: it is whatever the sender typed, and a login alert quoting it would
/// carry an attacker's words ("call this number") in a message from the organization.
pub fn describe_browser(user_agent: &str) -> Option<String> {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| *name);
    let system = [
        ("Windows", "Windows"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => Some(format!("{b} on {s}")),
        (Some(b), None) => Some(b.to_string()),
        (None, _) => None,
    }
}

/// Notes where `user_id` signed in from, and sends the alert when it is somewhere new.
pub async fn after_sign_in(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    client: &ClientInfo,
    user_id: &str,
    locale: Locale,
) -> Result<(), StoreError> {
    let browser = cookies::read(headers, &session::jar(app).browser_name())
        .map(|b| app.origin_key.digest(&format!("browser\u{0}{b}")));
    let network = client
        .ip
        .as_deref()
        .and_then(network_of)
        .map(|n| app.origin_key.digest(&format!("network\u{0}{n}")));
    let (t, uid, now) = (tenant.id().clone(), user_id.to_string(), app.now());
    let seen = app
        .store
        .run(move |c| {
            let seen = origins::sign_in(c, &t, &uid, browser.as_ref(), network.as_ref(), now)?;
            let user = match seen.any_before && (seen.new_browser || seen.new_network) {
                true => users::find(c, &t, &uid)?,
                false => None,
            };
            Ok((seen, user))
        })
        .await?;
    let (_, Some(user)) = seen else {
        return Ok(());
    };
    send(app, tenant, client, &user, locale).await;
    Ok(())
}

async fn send(
    app: &App,
    tenant: &TenantCtx,
    client: &ClientInfo,
    user: &users::User,
    page: Locale,
) {
    let locale = user
        .profile
        .locale
        .as_deref()
        .and_then(Locale::from_tag)
        .unwrap_or(page);
    let to = match (&user.profile.email, &user.profile.phone) {
        (Some(email), _) if app.notifier.offers(Channel::Email) => {
            Some((Channel::Email, email.as_str().to_string()))
        }
        (_, Some(phone)) if app.notifier.offers(Channel::Sms) => {
            Some((Channel::Sms, phone.as_str().to_string()))
        }
        _ => None,
    };
    let Some((channel, to)) = to else {
        return;
    };
    let time = super::password::format_time(app.now());
    let browser = client
        .user_agent
        .as_deref()
        .and_then(describe_browser)
        .unwrap_or_else(|| {
            let unknown = app
                .templates
                .catalogs
                .text(locale, "account.unknown_browser");
            unknown.to_string()
        });
    let link = format!("{}/account", tenant.issuer);
    let (subject, body) = notify::compose(
        &app.templates.catalogs,
        locale,
        channel,
        "login_alert",
        &[
            ("tenant", &tenant.tenant.display_name),
            ("time", &time),
            ("browser", &browser),
            ("ip", client.ip.as_deref().unwrap_or("")),
            ("link", &link),
        ],
    );
    let message = Message {
        tenant: tenant.id().clone(),
        channel,
        to,
        subject,
        body,
        code: None,
        locale,
        purpose: "sign_in.alert",
    };
    if let Err(e) = app.notifier.dispatch(message).await {
        tracing::warn!(tenant = %tenant.id(), error = %e, "the login alert was not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_prefixes() {
        assert_eq!(
            network_of("203.0.113.77").as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            network_of("2001:db8:abcd:12::1").as_deref(),
            Some("2001:db8:abcd::/48")
        );
        assert_eq!(network_of("not an address"), None);
    }

    #[test]
    fn browsers_are_described_plainly() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(describe_browser(chrome).unwrap(), "Chrome on Linux");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0";
        assert_eq!(describe_browser(edge).unwrap(), "Edge on Windows");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_browser(iphone).unwrap(), "Safari on iOS");
        assert_eq!(describe_browser("curl/8.0"), None);
        let words = "Call +1 555 0100 now to secure your account (Windows)";
        assert_eq!(describe_browser(words), None, "never the sender's words");
    }
}
