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

/// Spends `hit` and returns its account: `None` when another request spent it first, or when
/// it was sent to a destination of no account.
async fn spend(app: &App, tenant: &TenantId, hit: Candidate) -> Result<Option<String>, StoreError> {
    let (t, id, now) = (tenant.clone(), hit.id.clone(), app.now());
    let spent = app
        .store
        .run(move |c| store::consume(c, &t, &id, now))
        .await?;
    Ok(hit.user_id.filter(|_| spent))
}

/// Redeems `code` for the destination within `context`: the account it was sent to, once.
/// Every call counts one attempt against the live code, right or wrong, whatever the input.
pub async fn redeem(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    to: &Destination,
    context: &str,
    code: &str,
) -> Result<Option<String>, StoreError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let (t, key, max, now) = (tenant.clone(), to.key(), max_attempts(app), app.now());
    let candidates = app
        .store
        .run(move |c| store::attempt(c, &t, purpose.as_str(), &key, max, now))
        .await?;
    let well_formed = code.len() == super::LENGTH && code.bytes().all(|b| b.is_ascii_digit());
    let hit = candidates
        .into_iter()
        .find(|c| well_formed && matches(app, tenant, purpose, c, &code) && c.context == context);
    match hit {
        Some(hit) => spend(app, tenant, hit).await,
        None => Ok(None),
    }
}

/// What a followed link proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub user_id: String,
    /// The stored destination (`e:` address), now proven to be the user's.
    pub destination: String,
}

fn split(token: &str) -> Option<(&str, &str)> {
    (token.len() <= MAX_LINK_TOKEN)
        .then(|| token.split_once('.'))
        .flatten()
}

/// Whether `token` is a live link of `purpose` (to show its form); nothing is counted or spent.
pub async fn peek_link(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    token: &str,
) -> Result<bool, StoreError> {
    let Some((id, secret)) = split(token) else {
        return Ok(false);
    };
    let (t, id_owned, max, now) = (tenant.clone(), id.to_string(), max_attempts(app), app.now());
    let found = app
        .store
        .run(move |c| store::find_live(c, &t, purpose.as_str(), &id_owned, max, now))
        .await?;
    Ok(found.is_some_and(|c| c.user_id.is_some() && matches(app, tenant, purpose, &c, secret)))
}

/// Redeems the link `token` (`{row id}.{secret}`) of `purpose`, once.
pub async fn redeem_link(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Redeemed>, StoreError> {
    let Some((id, secret)) = split(token) else {
        return Ok(None);
    };
    let (t, id_owned, max, now) = (tenant.clone(), id.to_string(), max_attempts(app), app.now());
    let found = app
        .store
        .run(move |c| store::attempt_by_id(c, &t, purpose.as_str(), &id_owned, max, now))
        .await?;
    let Some(hit) = found.filter(|c| matches(app, tenant, purpose, c, secret)) else {
        return Ok(None);
    };
    let destination = hit.destination.clone();
    Ok(spend(app, tenant, hit).await?.map(|user_id| Redeemed {
        user_id,
        destination,
    }))
}
