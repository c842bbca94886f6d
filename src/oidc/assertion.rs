//! `private_key_jwt` client authentication (OIDC Core §9, RFC 7523 §2.2 and §3): the client
//! signs a short-lived JWT with a key whose public half it registered, by value (`jwks`) or by
//! URI (`jwks_uri`, fetched with a size and time limit and cached briefly). Each `jti` is
//! accepted once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, JwsVerifier, PS256, RS256};
use serde_json::Value;

use super::error::OAuthError;
use crate::app::App;
use crate::clock::UnixTime;
use crate::outbound;
use crate::store::clients::Client;
use crate::store::tenants::Tenant;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An assertion may be valid for at most this long, which also bounds how long its `jti` is kept.
const MAX_LIFETIME: i64 = 600;
/// Clock difference tolerated between the client and Sesame.
const SKEW: i64 = 60;
const MAX_JTI_LEN: usize = 256;
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// A token request waits this long at most for the client's keys.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ASSERTION_LEN: usize = 8 * 1024;

/// The client an assertion claims to come from (`iss`, which must equal `sub`), read before
/// verifying so the right keys can be chosen.
pub fn claimed_client(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let payload = assertion.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let iss = claims.get("iss")?.as_str()?;
    (claims.get("sub")?.as_str()? == iss).then(|| iss.to_string())
}

/// A verified assertion: its `jti`, to be remembered until `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub jti: String,
    pub exp: UnixTime,
}

/// Every verifier a JWK Set offers: (alg, kid, verifier). A key with an `alg` serves only it.
fn verifiers(jwks: &Value) -> Vec<(&'static str, Option<String>, Box<dyn JwsVerifier>)> {
    let mut out: Vec<(&'static str, Option<String>, Box<dyn JwsVerifier>)> = Vec::new();
    let keys = jwks.get("keys").and_then(Value::as_array);
    for key in keys.into_iter().flatten() {
        let Some(map) = key.as_object().cloned() else {
            continue;
        };
        if map.contains_key("d") {
            // A private key was registered by mistake; refuse to use it for anything.
            continue;
        }
        let Ok(jwk) = Jwk::from_map(map) else {
            continue;
        };
        let kid = jwk.key_id().map(str::to_string);
        let wanted = jwk.algorithm().map(str::to_string);
        let fits = |alg: &str| wanted.as_deref().is_none_or(|w| w == alg);
        match jwk.key_type() {
            "RSA" => {
                if fits("RS256")
                    && let Ok(v) = RS256.verifier_from_jwk(&jwk)
                {
                    out.push(("RS256", kid.clone(), Box::new(v)));
                }
                if fits("PS256")
                    && let Ok(v) = PS256.verifier_from_jwk(&jwk)
                {
                    out.push(("PS256", kid.clone(), Box::new(v)));
                }
            }
            "EC" if fits("ES256") => {
                if let Ok(v) = ES256.verifier_from_jwk(&jwk) {
                    out.push(("ES256", kid, Box::new(v)));
                }
            }
            "OKP" if fits("EdDSA") => {
                if let Ok(v) = EdDSA.verifier_from_jwk(&jwk) {
                    out.push(("EdDSA", kid, Box::new(v)));
                }
            }
            _ => {}
        }
    }
    out
}

/// Verifies `assertion` for `client_id` against `jwks`; `audiences` are the values its `aud`
/// may name (the endpoint called, or the issuer). Every failure is the same `None`.
pub fn verify(
    assertion: &str,
    jwks: &Value,
    client_id: &str,
    audiences: &[String],
    now: UnixTime,
) -> Option<Verified> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let candidates = verifiers(jwks);
    let (payload, _) = josekit::jwt::decode_with_verifier_selector(assertion, |header| {
        let alg = header.algorithm();
        let kid = header.key_id();
        let mut fitting = candidates
            .iter()
            .filter(|(a, k, _)| Some(*a) == alg && (kid.is_none() || k.as_deref() == kid));
        let first = fitting.next();
        // Without a kid, the choice must be unambiguous.
        if kid.is_none() && fitting.next().is_some() {
            return Ok(None);
        }
        Ok(first.map(|(_, _, v)| v.as_ref()))
    })
    .ok()?;
    let claims = payload.claims_set();
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return None;
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.iter().any(|x| x == a)),
        _ => false,
    };
    let exp = time("exp")?;
    let fresh = exp > now.0 - SKEW && exp <= now.0 + MAX_LIFETIME + SKEW;
    let started = time("nbf").is_none_or(|n| n <= now.0 + SKEW)
        && time("iat").is_none_or(|i| i <= now.0 + SKEW);
    let jti = text("jti").filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)?;
    (aud_ok && fresh && started).then(|| Verified {
        jti: jti.to_string(),
        exp: UnixTime(exp.max(now.0)).plus(SKEW),
    })
}

/// The client's public keys: registered by value, or fetched from `jwks_uri` (cached per node
/// for the cache TTL, at most 64 KiB, redirects not followed, non-public addresses only where the
/// tenant allows them; see `outbound`).
pub async fn client_keys(
    app: &App,
    tenant: &Tenant,
    client: &Client,
) -> Result<Arc<Value>, OAuthError> {
    if let Some(jwks) = &client.jwks {
        return Ok(Arc::new(jwks.clone()));
    }
    let Some(uri) = &client.jwks_uri else {
        return Err(OAuthError::InvalidClient { basic: false });
    };
    let key = (tenant.id.clone(), client.client_id.clone());
    let now = app.now();
    if let Some(hit) = app.client_jwks.get(&key, now) {
        return Ok(hit);
    }
    let fetched = fetch(tenant, uri).await.map_err(|why| {
        tracing::warn!(client_id = %client.client_id, %why, "cannot fetch the client's jwks_uri");
        OAuthError::InvalidClient { basic: false }
    })?;
    let fetched = Arc::new(fetched);
    app.client_jwks.put(key, fetched.clone(), now);
    Ok(fetched)
}

async fn fetch(tenant: &Tenant, uri: &str) -> Result<Value, String> {
    let policy = outbound::Policy {
        max_bytes: MAX_JWKS_BYTES,
        timeout: FETCH_TIMEOUT,
        allow_private: outbound::tenant_allows_private(tenant),
    };
    let accept = outbound::Request::Get {
        accept: "application/jwk-set+json, application/json",
    };
    let body = outbound::send(uri, accept, &policy)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;
    use josekit::jwt::JwtPayload;
    use serde_json::json;

    fn key() -> (Value, Box<dyn josekit::jws::JwsSigner>) {
        let kp = ES256.generate_key_pair().unwrap();
        let mut public = kp.to_jwk_public_key();
        public.set_key_id("k1");
        let signer = ES256.signer_from_jwk(&kp.to_jwk_private_key()).unwrap();
        (
            json!({"keys": [Value::Object(public.as_ref().clone())]}),
            Box::new(signer),
        )
    }

    fn assertion(signer: &dyn josekit::jws::JwsSigner, claims: Value) -> String {
        let mut header = JwsHeader::new();
        header.set_key_id("k1");
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        josekit::jwt::encode_with_signer(&payload, &header, signer).unwrap()
    }

    const AUD: &str = "https://id.example.com/t/acme/token";

    fn claims(exp: i64) -> Value {
        json!({"iss": "svc", "sub": "svc", "aud": AUD, "exp": exp, "jti": "j1"})
    }

    #[test]
    fn a_good_assertion_verifies_and_bad_ones_do_not() {
        let (jwks, signer) = key();
        let now = UnixTime(1000);
        let aud = vec![AUD.to_string()];
        let good = assertion(signer.as_ref(), claims(1100));
        assert_eq!(claimed_client(&good).as_deref(), Some("svc"));
        let v = verify(&good, &jwks, "svc", &aud, now).unwrap();
        assert_eq!(v.jti, "j1");
        assert!(
            verify(&good, &jwks, "other", &aud, now).is_none(),
            "another client"
        );
        assert!(
            verify(&good, &jwks, "svc", &["x".into()], now).is_none(),
            "audience"
        );
        let expired = assertion(signer.as_ref(), claims(900));
        assert!(verify(&expired, &jwks, "svc", &aud, now).is_none());
        let forever = assertion(signer.as_ref(), claims(1000 + 86_400));
        assert!(verify(&forever, &jwks, "svc", &aud, now).is_none());
        let mut no_jti = claims(1100);
        no_jti.as_object_mut().unwrap().remove("jti");
        assert!(verify(&assertion(signer.as_ref(), no_jti), &jwks, "svc", &aud, now).is_none());
        let (other_keys, _) = key();
        assert!(
            verify(&good, &other_keys, "svc", &aud, now).is_none(),
            "wrong key"
        );
        // Tampered payload, and alg none.
        let parts: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"iss":"svc","sub":"svc","aud":"https://id.example.com/t/acme/token","exp":1100,"jti":"j2"}"#);
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert!(verify(&tampered, &jwks, "svc", &aud, now).is_none());
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            forged
        );
        assert!(verify(&none, &jwks, "svc", &aud, now).is_none());
        let hs = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"k1"}"#),
            forged,
            parts[2]
        );
        assert!(verify(&hs, &jwks, "svc", &aud, now).is_none());
    }

    #[test]
    fn private_keys_in_a_registered_set_are_ignored() {
        let kp = ES256.generate_key_pair().unwrap();
        let private = Value::Object(kp.to_jwk_private_key().as_ref().clone());
        assert!(verifiers(&json!({"keys": [private]})).is_empty());
    }
}
