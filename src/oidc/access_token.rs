//! JWT access tokens (RFC 9068): `typ: at+jwt`, with `iss`, `exp`, `aud`, `sub`, `client_id`,
//! `iat`, `jti` and `scope`. Signed ES256 by default: a fraction of RS256's signing cost, and every
//! resource server library verifies it.
//!
//! A token issued under a user's grant (a code's redemption and the refreshes after it) has a
//! `jti` that starts with the grant's id, so that revoking the grant (a code used twice, a rotated
//! refresh token presented again, RFC 7009 revocation of the refresh token) revokes its access
//! tokens too, without a record per token.

use serde_json::{Map, Value, json};

use super::scope::Scope;
use crate::clock::UnixTime;
use crate::crypto::keys::{Alg, Keyring};
use crate::crypto::secret::random_token;
use crate::crypto::verified::Claims;
use crate::store::access_revocations::Issued;

pub const TYP: &str = "at+jwt";
pub const DEFAULT_ALG: Alg = Alg::ES256;

/// The algorithm `client`'s access tokens are signed with: its own choice, or ES256. An
/// unparsable stored value (the import refuses one) falls back to the default.
pub fn alg_for(client: &crate::store::clients::Client) -> Alg {
    client
        .access_token_alg
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or(DEFAULT_ALG)
}

/// A new token's `jti`: random, after the id of the grant it is issued under, if any.
pub fn new_jti(grant: Option<&str>) -> String {
    let unique = random_token(16);
    match grant {
        Some(grant) => format!("{grant}{GRANT_END}{unique}"),
        None => unique,
    }
}

/// Ends the grant's id in a `jti`; neither grant ids (hex) nor random tokens (base64url) contain
/// it.
const GRANT_END: char = '.';

/// The grant a `jti` made by [`new_jti`] was issued under.
fn grant_of(jti: &str) -> Option<&str> {
    jti.split_once(GRANT_END).map(|(grant, _)| grant)
}

/// The claims of an access token this tenant issued as `issuer`, if it is live at `now`: signed
/// with a published key, typed `at+jwt`, not expired and not revoked. Whom it concerns is the
/// caller's to check.
pub fn live_claims(ring: &Keyring, token: &str, issuer: &str, now: UnixTime) -> Option<Claims> {
    let claims = ring.verify(token, TYP)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti");
    let grant = jti.and_then(grant_of);
    let issued = Issued {
        jti,
        grant,
        // A user's tokens come from a grant; without one, `sub` is the client itself (RFC 9068
        // §2.2), and a user who happens to share its id must not revoke it.
        user: grant.and(text("sub")),
        client: text("client_id"),
        session: text("sid"),
        issued_at: claims.get("iat").and_then(Value::as_i64).unwrap_or(0),
    };
    let live = text("iss") == Some(issuer)
        && claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_some_and(|exp| exp > now.0)
        && !ring.revocations().revokes(&issued);
    live.then_some(claims)
}

#[derive(Debug, Clone)]
pub struct AccessToken<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// The user, or for a client acting on its own behalf the client id (RFC 9068 §2.2).
    pub subject: &'a str,
    pub client_id: &'a str,
    pub scope: &'a Scope,
    pub issued_at: UnixTime,
    pub lifetime: i64,
    pub jti: &'a str,
}

impl AccessToken<'_> {
    pub fn claims(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(self.subject));
        claims.insert("aud".into(), json!(self.audience));
        claims.insert("client_id".into(), json!(self.client_id));
        claims.insert("iat".into(), json!(self.issued_at.0));
        claims.insert("exp".into(), json!(self.issued_at.plus(self.lifetime).0));
        claims.insert("jti".into(), json!(self.jti));
        if !self.scope.is_empty() {
            claims.insert("scope".into(), json!(self.scope.to_string()));
        }
        claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9068_claims() {
        let scope = Scope::parse("reports:read").unwrap();
        let c = AccessToken {
            issuer: "https://id.example.com/t/acme",
            audience: "https://api.example.com",
            subject: "svc",
            client_id: "svc",
            scope: &scope,
            issued_at: UnixTime(1000),
            lifetime: 300,
            jti: "j1",
        }
        .claims();
        for required in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
            assert!(c.contains_key(required), "{required}");
        }
        assert_eq!(c["exp"], 1300);
        assert_eq!(c["scope"], "reports:read");
    }

    #[test]
    fn a_grant_s_tokens_name_it_in_their_jti() {
        let grant = crate::store::new_id();
        let jti = new_jti(Some(&grant));
        assert_eq!(grant_of(&jti), Some(grant.as_str()));
        assert_ne!(jti, new_jti(Some(&grant)));
        assert_eq!(grant_of(&new_jti(None)), None);
    }
}
