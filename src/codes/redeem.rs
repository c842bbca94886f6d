//! Redeeming a code typed on a page, or a link followed from an email. Every redemption counts
//! one attempt against the code before comparing, in the same statement that reads it.

use super::{Destination, Purpose, digest};
use crate::app::App;
use crate::crypto::secret::constant_time_eq;
use crate::store::StoreError;
use crate::store::verification_codes::{self as store, Candidate};
use crate::tenant::TenantId;

/// Longest link token looked at: a row id, a dot and 43 characters of secret.
const MAX_LINK_TOKEN: usize = 128;

fn max_attempts(app: &App) -> i32 {
    i32::try_from(app.config.codes.max_attempts).unwrap_or(5)
}

fn matches(app: &App, tenant: &TenantId, purpose: Purpose, c: &Candidate, secret: &str) -> bool {
    let expected = digest(app, tenant, purpose, &c.destination, secret);
    constant_time_eq(c.code_hash.as_bytes(), expected.as_bytes())
}

/// A code or link that matched, its attempt counted but not yet spent: the caller may still
/// refuse what it was for (a new password that breaks the history rule) without losing it.
#[derive(Debug, Clone)]
pub struct Verified {
    id: String,
    /// `None` when it was sent to a destination of no account (it never can be, since nothing
    /// is sent there; kept for completeness).
    pub user_id: Option<String>,
    /// The stored destination (`e:` address or `p:` number).
    pub destination: String,
}

impl From<Candidate> for Verified {
    fn from(c: Candidate) -> Self {
        Verified {
            id: c.id,
            user_id: c.user_id,
            destination: c.destination,
        }
    }
}

/// What a spent code or link proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub user_id: String,
    /// The stored destination (`e:` address or `p:` number), now proven to be the user's.
    pub destination: String,
}

/// Spends a verified code: its account, or `None` when another request spent it first.
pub async fn spend(
    app: &App,
    tenant: &TenantId,
    verified: Verified,
) -> Result<Option<Redeemed>, StoreError> {
    let (t, id, now) = (tenant.clone(), verified.id.clone(), app.now());
    let spent = app
        .store
        .run(move |c| store::consume(c, &t, &id, now))
        .await?;
    Ok(verified.user_id.filter(|_| spent).map(|user_id| Redeemed {
        user_id,
        destination: verified.destination,
    }))
}

/// Checks `code` for the destination within `context`. Every call counts one attempt against
/// the live code, right or wrong, whatever the input.
pub async fn verify(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    to: &Destination,
    context: &str,
    code: &str,
) -> Result<Option<Verified>, StoreError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let (t, key, max, now) = (tenant.clone(), to.key(), max_attempts(app), app.now());
    let candidates = app
        .store
        .run(move |c| store::attempt(c, &t, purpose.as_str(), &key, max, now))
        .await?;
    let well_formed = code.len() == super::LENGTH && code.bytes().all(|b| b.is_ascii_digit());
    Ok(candidates
        .into_iter()
        .find(|c| well_formed && matches(app, tenant, purpose, c, &code) && c.context == context)
        .map(Verified::from))
}

/// [`verify`] and [`spend`] at once: the account the code was sent to, once.
pub async fn redeem(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    to: &Destination,
    context: &str,
    code: &str,
) -> Result<Option<String>, StoreError> {
    match verify(app, tenant, purpose, to, context, code).await? {
        Some(v) => Ok(spend(app, tenant, v).await?.map(|r| r.user_id)),
        None => Ok(None),
    }
}

fn split(token: &str) -> Option<(&str, &str)> {
    (token.len() <= MAX_LINK_TOKEN)
        .then(|| token.split_once('.'))
        .flatten()
}

/// The account of a live link `token` of `purpose` (to show its form); nothing is counted or
/// spent.
pub async fn peek_link(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    token: &str,
) -> Result<Option<String>, StoreError> {
    let Some((id, secret)) = split(token) else {
        return Ok(None);
    };
    let (t, id_owned, max, now) = (tenant.clone(), id.to_string(), max_attempts(app), app.now());
    let found = app
        .store
        .run(move |c| store::find_live(c, &t, purpose.as_str(), &id_owned, max, now))
        .await?;
    Ok(found
        .filter(|c| matches(app, tenant, purpose, c, secret))
        .and_then(|c| c.user_id))
}

/// Checks the link `token` (`{row id}.{secret}`) of `purpose`, counting one attempt.
pub async fn verify_link(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Verified>, StoreError> {
    let Some((id, secret)) = split(token) else {
        return Ok(None);
    };
    let (t, id_owned, max, now) = (tenant.clone(), id.to_string(), max_attempts(app), app.now());
    let found = app
        .store
        .run(move |c| store::attempt_by_id(c, &t, purpose.as_str(), &id_owned, max, now))
        .await?;
    Ok(found
        .filter(|c| matches(app, tenant, purpose, c, secret))
        .map(Verified::from))
}
