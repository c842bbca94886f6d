//! ID tokens (OpenID Connect Core §2, §3.1.3.6, §3.3.2.11). RS256 by default: the one
//! algorithm OIDC Core §15.1 obliges every relying party to support.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::clock::UnixTime;
use crate::crypto::keys::Alg;

pub const DEFAULT_ALG: Alg = Alg::RS256;

/// The protocol claims of an ID token; user claims are merged in by [`IdToken::claims`].
#[derive(Debug, Clone)]
pub struct IdToken<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    /// The client; also `azp`, since some libraries insist on it with a single audience.
    pub audience: &'a str,
    pub issued_at: UnixTime,
    pub lifetime: i64,
    pub auth_time: UnixTime,
    pub nonce: Option<&'a str>,
    pub acr: Option<&'a str>,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    pub at_hash: Option<String>,
}

impl IdToken<'_> {
    /// User claims first, so none of them can overwrite a protocol claim.
    pub fn claims(&self, user: Map<String, Value>) -> Map<String, Value> {
        let mut c = user;
        c.insert("iss".into(), json!(self.issuer));
        c.insert("sub".into(), json!(self.subject));
        c.insert("aud".into(), json!(self.audience));
        c.insert("azp".into(), json!(self.audience));
        c.insert("iat".into(), json!(self.issued_at.0));
        c.insert("exp".into(), json!(self.issued_at.plus(self.lifetime).0));
        c.insert("auth_time".into(), json!(self.auth_time.0));
        for (name, value) in [("nonce", self.nonce), ("acr", self.acr), ("sid", self.sid)] {
            match value {
                Some(v) => c.insert(name.into(), json!(v)),
                None => c.remove(name),
            };
        }
        if self.amr.is_empty() {
            c.remove("amr");
        } else {
            c.insert("amr".into(), json!(self.amr));
        }
        match &self.at_hash {
            Some(h) => c.insert("at_hash".into(), json!(h)),
            None => c.remove("at_hash"),
        };
        c
    }
}

/// `at_hash` / `c_hash`: base64url of the left-most half of the hash of the ASCII value, with the
/// hash of the ID token's `alg` (SHA-256 for RS256/ES256; SHA-512 for EdDSA over Ed25519, as the
/// OpenID Foundation specifies for that curve).
pub fn half_hash(alg: Alg, value: &str) -> String {
    match alg {
        Alg::RS256 | Alg::PS256 | Alg::ES256 => {
            let digest = Sha256::digest(value.as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..16])
        }
        Alg::EdDSA => {
            let digest = Sha512::digest(value.as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..32])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_core_appendix_a_vectors() {
        // OIDC Core A.3 (at_hash) and A.4 (c_hash), both RS256.
        assert_eq!(
            half_hash(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            half_hash(
                Alg::RS256,
                "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
            ),
            "LDktKdoQak3Pk0cnXxCltA"
        );
    }

    #[test]
    fn protocol_claims_win_over_user_claims() {
        let mut user = Map::new();
        user.insert("sub".into(), json!("evil"));
        user.insert("nonce".into(), json!("forged"));
        user.insert("name".into(), json!("Alice"));
        let amr = vec!["pwd".to_string()];
        let c = IdToken {
            issuer: "https://id.example.com/t/acme",
            subject: "u1",
            audience: "crm",
            issued_at: UnixTime(100),
            lifetime: 60,
            auth_time: UnixTime(90),
            nonce: None,
            acr: None,
            amr: &amr,
            sid: Some("s1"),
            at_hash: Some("h".into()),
        }
        .claims(user);
        assert_eq!(c["sub"], "u1");
        assert!(c.get("nonce").is_none());
        assert_eq!(c["name"], "Alice");
        assert_eq!(c["exp"], 160);
        assert_eq!(c["azp"], "crm");
        assert_eq!(c["amr"], json!(["pwd"]));
    }

    #[test]
    fn eddsa_uses_the_left_half_of_sha512() {
        let h = half_hash(Alg::EdDSA, "token");
        assert_eq!(URL_SAFE_NO_PAD.decode(h).unwrap().len(), 32);
    }
}
