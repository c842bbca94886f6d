//! The NameID and attributes an SP receives for a user, from the SP's registration.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED};
use crate::clock::UnixTime;
use crate::crypto::secret::DigestKey;
use crate::store::service_providers::{NameIdSource, ServiceProvider};
use crate::store::subjects::Subject;

pub fn format_of(source: NameIdSource) -> &'static str {
    match source {
        NameIdSource::Email => NAMEID_EMAIL,
        NameIdSource::Username => NAMEID_UNSPECIFIED,
        NameIdSource::Persistent => NAMEID_PERSISTENT,
        NameIdSource::Transient => NAMEID_TRANSIENT,
    }
}

/// The NameID value for `subject` at `sp` in session `sid`, signed in at `auth_time`; `None`
/// when the user lacks the field the SP is registered for (an SP keyed by email, a user without
/// one).
///
/// A persistent NameID is a keyed digest of the tenant, the SP's entityID and the user id: stable
/// for the pair, different for every SP, and not reversible without the key (SAML Core §8.3.7).
/// A transient one is a keyed digest of the session, its sign-in, the SP and the user: the same
/// for every assertion of one sign-in, so the SP's logout can name any of them, and unrelated
/// across sign-ins and SPs (§8.3.8 asks for an opaque, temporary value, not one per assertion).
/// The sign-in is part of it because a remembered session keeps its `sid` across sign-ins for
/// months.
pub fn value(
    sp: &ServiceProvider,
    subject: &Subject,
    pseudonyms: &DigestKey,
    sid: &str,
    auth_time: UnixTime,
) -> Option<String> {
    let user = &subject.user;
    match sp.settings.name_id {
        NameIdSource::Email => user.profile.email.as_ref().map(|e| e.as_str().to_string()),
        NameIdSource::Username => Some(
            user.profile
                .username
                .as_ref()
                .map(|u| u.as_str().to_string())
                .unwrap_or_else(|| user.id.clone()),
        ),
        NameIdSource::Persistent => {
            let input = format!("{}\u{0}{}\u{0}{}", user.tenant_id, sp.entity_id, user.id);
            Some(URL_SAFE_NO_PAD.encode(pseudonyms.digest(&input).as_bytes()))
        }
        NameIdSource::Transient => {
            let input = format!(
                "transient\u{0}{sid}\u{0}{}\u{0}{}\u{0}{}",
                auth_time.0, sp.id, user.id
            );
            Some(format!(
                "_{}",
                URL_SAFE_NO_PAD.encode(pseudonyms.digest(&input).as_bytes())
            ))
        }
    }
}

/// Whether `requested`, the NameID of an AuthnRequest's `<Subject>`, names the user that
/// `issued` (the NameID the assertion would carry) stands for: email addresses and usernames are
/// stored lower case, so they match in any case (Core §3.3.4's "strongly matches").
pub fn names(sp: &ServiceProvider, requested: &str, issued: &str) -> bool {
    match sp.settings.name_id {
        NameIdSource::Email | NameIdSource::Username => requested.eq_ignore_ascii_case(issued),
        NameIdSource::Persistent | NameIdSource::Transient => requested == issued,
    }
}

/// The SessionIndex SP `sp_id` is given for session `sid`: a keyed digest of the two, so that no
/// two SPs (nor an SP and an OpenID Connect client, which sees `sid`) hold the same value to
/// link their users by (SAML Core §2.7.2). Sesame finds the session again from the SP's NameID
/// and this value (`saml::slo`).
pub fn session_index(key: &DigestKey, sid: &str, sp_id: &str) -> String {
    let input = format!("{sid}\u{0}{sp_id}");
    format!("_{}", URL_SAFE_NO_PAD.encode(key.digest(&input).as_bytes()))
}

/// The attributes the SP is registered for, each with its values; a field the user lacks gives
/// no attribute rather than an empty one.
pub fn attributes(
    sp: &ServiceProvider,
    subject: &Subject,
    app: Option<&str>,
) -> Vec<(String, Option<String>, Vec<String>)> {
    let user = &subject.user;
    let p = &user.profile;
    sp.settings
        .attributes
        .iter()
        .filter_map(|a| {
            let values: Vec<String> = match a.source.as_str() {
                "email" => p.email.iter().map(|e| e.as_str().to_string()).collect(),
                "username" => p.username.iter().map(|u| u.as_str().to_string()).collect(),
                "display_name" => vec![p.display_name.clone()],
                "phone" => p.phone.iter().map(|n| n.as_str().to_string()).collect(),
                "employee_no" => p.employee_no.iter().cloned().collect(),
                "department" => (!subject.department_path.is_empty())
                    .then(|| subject.department_path.join("/"))
                    .into_iter()
                    .collect(),
                "roles" => subject.roles_for_app(app),
                "user_id" => vec![user.id.clone()],
                _ => Vec::new(),
            };
            (!values.is_empty()).then(|| (a.name.clone(), a.format.clone(), values))
        })
        .collect()
}
