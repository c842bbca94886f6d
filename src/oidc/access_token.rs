//! JWT access tokens (RFC 9068): `typ: at+jwt`, with `iss`, `exp`, `aud`, `sub`, `client_id`,
//! `iat`, `jti` and `scope`. Signed ES256 by default: a fraction of RS256's signing cost, and every
//! resource server library verifies it.

use serde_json::{Map, Value, json};

use super::scope::Scope;
use crate::clock::UnixTime;
use crate::crypto::keys::Alg;

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
}
