//! Per-tenant signing keys: generation, encryption at rest, rotation and the published JWKS.
//!
//! Each algorithm has one `active` key that signs, one `next` key that is published but does not
//! sign yet (so relying parties have it cached before the first token it signs), and `retired`
//! keys that stay published until every token they signed has expired.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, JwsHeader, JwsSigner, JwsVerifier, PS256, RS256};
use josekit::jwt::JwtPayload;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::CryptoError;
use super::master::MasterKey;
use crate::clock::UnixTime;
use crate::store::keys::{KeyState, NewSigningKey, StoredKey};
use crate::store::{Conn, StoreError, keys as key_store, tx};
use crate::tenant::TenantId;

/// JWS algorithms Sesame signs with. RS256 is the OIDC default every client supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    RS256,
    /// RSASSA-PSS: its own RSA key, so the published JWK's `alg` names the one algorithm it
    /// verifies (a key marked RS256 must not be accepted for PS256, RFC 7517 §4.4).
    PS256,
    ES256,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Alg, CryptoError> {
        Alg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                CryptoError::Key(format!(
                    "unknown algorithm '{s}' (use RS256, PS256, ES256 or EdDSA)"
                ))
            })
    }
}

/// A freshly generated key pair: the public JWK (with `kid`, `alg`, `use`) and the private key as
/// PKCS#8 PEM, wiped from memory when dropped.
pub struct GeneratedKey {
    pub kid: String,
    pub alg: Alg,
    pub public_jwk: Value,
    pub private_pem: Zeroizing<Vec<u8>>,
}

pub fn generate(alg: Alg, rsa_bits: u32) -> Result<GeneratedKey, CryptoError> {
    let (jwk, pem) = match alg {
        Alg::RS256 => {
            let kp = RS256.generate_key_pair(rsa_bits.max(2048))?;
            (kp.to_jwk_public_key(), kp.to_pem_private_key())
        }
        // An RSASSA-PSS key (PKCS#8 with the PSS identifier), which josekit's PS256 signer wants.
        Alg::PS256 => {
            let kp = PS256.generate_key_pair(rsa_bits.max(2048))?;
            (kp.to_jwk_public_key(), kp.to_pem_private_key())
        }
        Alg::ES256 => {
            let kp = ES256.generate_key_pair()?;
            (kp.to_jwk_public_key(), kp.to_pem_private_key())
        }
        Alg::EdDSA => {
            let kp = EdDSA.generate_key_pair(EdCurve::Ed25519)?;
            (kp.to_jwk_public_key(), kp.to_pem_private_key())
        }
    };
    let kid = thumbprint(&jwk)?;
    let mut public = jwk.as_ref().clone();
    public.insert("kid".into(), json!(kid));
    public.insert("alg".into(), json!(alg.as_str()));
    public.insert("use".into(), json!("sig"));
    Ok(GeneratedKey {
        kid,
        alg,
        public_jwk: Value::Object(public),
        private_pem: Zeroizing::new(pem),
    })
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
pub fn thumbprint(jwk: &Jwk) -> Result<String, CryptoError> {
    let members: &[&str] = match jwk.key_type() {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        other => {
            return Err(CryptoError::Key(format!(
                "no thumbprint for key type {other}"
            )));
        }
    };
    let mut canonical = BTreeMap::new();
    for m in members {
        let v = jwk
            .parameter(m)
            .and_then(Value::as_str)
            .ok_or_else(|| CryptoError::Key(format!("JWK lacks {m}")))?;
        canonical.insert(*m, v);
    }
    let text = serde_json::to_string(&canonical).map_err(|e| CryptoError::Key(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes())))
}

fn aad(tenant: &TenantId, kid: &str) -> Vec<u8> {
    format!("signing_key:{}:{kid}", tenant.as_str()).into_bytes()
}

fn verifier_from_jwk(alg: Alg, jwk: &Value) -> Result<Box<dyn JwsVerifier>, CryptoError> {
    let map = jwk
        .as_object()
        .cloned()
        .ok_or_else(|| CryptoError::Key("a stored JWK is not an object".into()))?;
    let jwk = Jwk::from_map(map)?;
    Ok(match alg {
        Alg::RS256 => Box::new(RS256.verifier_from_jwk(&jwk)?),
        Alg::PS256 => Box::new(PS256.verifier_from_jwk(&jwk)?),
        Alg::ES256 => Box::new(ES256.verifier_from_jwk(&jwk)?),
        Alg::EdDSA => Box::new(EdDSA.verifier_from_jwk(&jwk)?),
    })
}

fn signer_from_pem(alg: Alg, pem: &[u8]) -> Result<Box<dyn JwsSigner>, CryptoError> {
    Ok(match alg {
        Alg::RS256 => Box::new(RS256.signer_from_pem(pem)?),
        Alg::PS256 => Box::new(PS256.signer_from_pem(pem)?),
        Alg::ES256 => Box::new(ES256.signer_from_pem(pem)?),
        Alg::EdDSA => Box::new(EdDSA.signer_from_pem(pem)?),
    })
}

/// One active key, parsed once and kept for signing.
pub struct ActiveKey {
    pub kid: String,
    pub alg: Alg,
    signer: Box<dyn JwsSigner>,
}

impl fmt::Debug for ActiveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A tenant's keys as the hot path needs them: signers already parsed and the JWKS document
/// already built, so neither costs a key parse or a query per request.
#[derive(Debug)]
pub struct Keyring {
    active: Vec<ActiveKey>,
    jwks: Value,
    /// `jwks` serialized once, so serving it copies bytes instead of re-encoding JSON.
    jwks_json: bytes::Bytes,
    /// Every published key by `kid`, parsed once, to verify tokens Sesame itself issued.
    verifiers: Vec<(String, Box<dyn JwsVerifier>)>,
}

impl Keyring {
    /// Decrypts the active keys and builds the JWKS from every key still published at `now`.
    pub fn load(
        tenant: &TenantId,
        stored: &[StoredKey],
        master: &MasterKey,
        now: UnixTime,
    ) -> Result<Keyring, CryptoError> {
        let mut active = Vec::new();
        let mut published = Vec::new();
        let mut verifiers = Vec::new();
        for key in stored {
            if key.is_published(now) {
                let jwk: Value = serde_json::from_str(&key.public_jwk)
                    .map_err(|e| CryptoError::Key(e.to_string()))?;
                let alg = Alg::from_str(&key.alg)?;
                verifiers.push((key.kid.clone(), verifier_from_jwk(alg, &jwk)?));
                published.push(jwk);
            }
            if key.state == KeyState::Active {
                let alg = Alg::from_str(&key.alg)?;
                let pem = master.decrypt(&key.private_key, &aad(tenant, &key.kid))?;
                active.push(ActiveKey {
                    kid: key.kid.clone(),
                    alg,
                    signer: signer_from_pem(alg, &pem)?,
                });
            }
        }
        active.sort_by_key(|k| k.alg);
        Ok(Keyring {
            active,
            jwks_json: bytes::Bytes::from(json!({ "keys": &published }).to_string()),
            jwks: json!({ "keys": published }),
            verifiers,
        })
    }

    /// The claims of a JWT this tenant signed with a published key, if its signature verifies and
    /// its `typ` is `typ`. The header's `alg` must be the key's own, so `alg: none` and algorithm
    /// confusion fail. Expiry and audience are the caller's to check.
    pub fn verify(&self, token: &str, typ: &str) -> Option<Map<String, Value>> {
        let (payload, header) = josekit::jwt::decode_with_verifier_selector(token, |header| {
            Ok(header
                .key_id()
                .and_then(|kid| self.verifiers.iter().find(|(k, _)| k == kid))
                .map(|(_, v)| v.as_ref() as &dyn JwsVerifier))
        })
        .ok()?;
        (header.token_type() == Some(typ)).then(|| payload.claims_set().clone())
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    pub fn jwks_json(&self) -> bytes::Bytes {
        self.jwks_json.clone()
    }

    pub fn algorithms(&self) -> Vec<Alg> {
        self.active.iter().map(|k| k.alg).collect()
    }

    pub fn active(&self, alg: Alg) -> Option<&ActiveKey> {
        self.active.iter().find(|k| k.alg == alg)
    }

    /// Signs `claims` as a JWT with the active key for `alg`, `typ` set (e.g. `JWT`, `at+jwt`).
    pub fn sign(
        &self,
        alg: Alg,
        typ: &str,
        claims: Map<String, Value>,
    ) -> Result<String, CryptoError> {
        let key = self
            .active(alg)
            .ok_or_else(|| CryptoError::Key(format!("no active {alg} key")))?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&key.kid);
        let payload = JwtPayload::from_map(claims)?;
        Ok(josekit::jwt::encode_with_signer(
            &payload,
            &header,
            key.signer.as_ref(),
        )?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the next {alg} key was published at {published_at}; relying parties may not have fetched it \
         yet. Rotate after {ready_at}, or force it if the active key is compromised"
    )]
    NextKeyTooNew {
        alg: Alg,
        published_at: UnixTime,
        ready_at: UnixTime,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// So key operations can run inside `Store::run` closures.
impl From<KeyError> for StoreError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => s,
            other => StoreError::Invalid(other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for KeyError {
    fn from(e: diesel::result::Error) -> Self {
        KeyError::Store(e.into())
    }
}

fn seal(
    master: &MasterKey,
    tenant: &TenantId,
    key: &GeneratedKey,
    state: KeyState,
    now: UnixTime,
) -> Result<NewSigningKey, CryptoError> {
    Ok(NewSigningKey {
        kid: key.kid.clone(),
        alg: key.alg.as_str().to_string(),
        state,
        public_jwk: key.public_jwk.to_string(),
        private_key: master.encrypt(&key.private_pem, &aad(tenant, &key.kid))?,
        activated_at: (state == KeyState::Active).then_some(now),
    })
}

/// Gives every algorithm an active and a next key; returns how many keys it generated.
pub fn ensure(
    conn: &mut Conn,
    master: &MasterKey,
    tenant: &TenantId,
    rsa_bits: u32,
    now: UnixTime,
) -> Result<usize, KeyError> {
    let existing = key_store::list(conn, tenant)?;
    let mut wanted = Vec::new();
    for alg in Alg::ALL {
        for state in [KeyState::Active, KeyState::Next] {
            if !existing
                .iter()
                .any(|k| k.alg == alg.as_str() && k.state == state)
            {
                wanted.push(seal(master, tenant, &generate(alg, rsa_bits)?, state, now)?);
            }
        }
    }
    let count = wanted.len();
    if count > 0 {
        tx::write(conn, |c| -> Result<(), KeyError> {
            for key in &wanted {
                key_store::insert(c, tenant, key, now)?;
            }
            Ok(())
        })?;
    }
    Ok(count)
}

/// How a rotation treats time.
#[derive(Debug, Clone, Copy)]
pub struct RotationPolicy {
    pub rsa_bits: u32,
    /// How long the retired key stays published: the longest lifetime of a token it signed.
    pub retire_grace: i64,
    /// How long the next key must have been published before it may sign: the longest a relying
    /// party or a node may cache the JWKS. 0 forces an immediate rotation (a compromised key).
    pub min_next_age: i64,
}

/// What a rotation did, for the CLI.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub alg: Alg,
    pub activated: String,
    pub retired: Option<String>,
    pub next: String,
    pub retired_published_until: Option<UnixTime>,
}

/// Promotes `next` to `active`, retires the old active key (published for `retire_grace` more
/// seconds, the longest any token it signed can live) and publishes a new `next`. One write
/// transaction, so a crash leaves the old set intact.
pub fn rotate(
    conn: &mut Conn,
    master: &MasterKey,
    tenant: &TenantId,
    alg: Alg,
    policy: &RotationPolicy,
    now: UnixTime,
) -> Result<Rotation, KeyError> {
    let RotationPolicy {
        rsa_bits,
        retire_grace,
        min_next_age,
    } = *policy;
    // Key generation is slow (RSA); do it before taking the write lock.
    let next_key = seal(
        master,
        tenant,
        &generate(alg, rsa_bits)?,
        KeyState::Next,
        now,
    )?;
    let spare_active = seal(
        master,
        tenant,
        &generate(alg, rsa_bits)?,
        KeyState::Active,
        now,
    )?;
    let publish_until = now.plus(retire_grace);
    tx::write(conn, |c| -> Result<Rotation, KeyError> {
        key_store::delete_expired(c, tenant, now)?;
        let keys = key_store::list(c, tenant)?;
        let old_active = keys
            .iter()
            .find(|k| k.alg == alg.as_str() && k.state == KeyState::Active);
        let old_next = keys
            .iter()
            .find(|k| k.alg == alg.as_str() && k.state == KeyState::Next);
        if let Some(next) = old_next
            && now.0 - next.created_at.0 < min_next_age
        {
            return Err(KeyError::NextKeyTooNew {
                alg,
                published_at: next.created_at,
                ready_at: next.created_at.plus(min_next_age),
            });
        }
        let retired = match old_active {
            Some(k) => {
                key_store::retire(c, tenant, &k.kid, now, publish_until)?;
                Some(k.kid.clone())
            }
            None => None,
        };
        let activated = match old_next {
            Some(k) => {
                key_store::activate(c, tenant, &k.kid, now)?;
                k.kid.clone()
            }
            // No published successor (never happens after `ensure`): activate a fresh key rather
            // than leave the tenant without one.
            None => {
                key_store::insert(c, tenant, &spare_active, now)?;
                spare_active.kid.clone()
            }
        };
        key_store::insert(c, tenant, &next_key, now)?;
        Ok(Rotation {
            alg,
            activated,
            retired,
            next: next_key.kid.clone(),
            retired_published_until: old_active.map(|_| publish_until),
        })
    })
}

/// Decrypts every stored private key once, so a wrong master key is found at start-up.
pub fn verify_decryptable(
    stored: &[StoredKey],
    master: &MasterKey,
    tenant: &TenantId,
) -> Result<(), CryptoError> {
    for key in stored {
        master.decrypt(&key.private_key, &aad(tenant, &key.kid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1.
        let jwk = Jwk::from_bytes(br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn every_algorithm_generates_signs_and_publishes() {
        let tenant = TenantId::parse("acme").unwrap();
        let master = MasterKey::generate();
        let now = UnixTime(1_700_000_000);
        let stored: Vec<StoredKey> = Alg::ALL
            .iter()
            .map(|alg| {
                let key = generate(*alg, 2048).unwrap();
                let sealed = seal(&master, &tenant, &key, KeyState::Active, now).unwrap();
                StoredKey::from_new(sealed, now)
            })
            .collect();
        let ring = Keyring::load(&tenant, &stored, &master, now).unwrap();
        assert_eq!(
            ring.jwks()["keys"].as_array().unwrap().len(),
            Alg::ALL.len()
        );
        for alg in Alg::ALL {
            let mut claims = Map::new();
            claims.insert("sub".into(), json!("alice"));
            let jwt = ring.sign(alg, "JWT", claims).unwrap();
            assert_eq!(jwt.split('.').count(), 3);
        }
        for alg in Alg::ALL {
            let mut claims = Map::new();
            claims.insert("sub".into(), json!("bob"));
            let jwt = ring.sign(alg, "at+jwt", claims).unwrap();
            assert_eq!(ring.verify(&jwt, "at+jwt").unwrap()["sub"], "bob");
            assert!(ring.verify(&jwt, "JWT").is_none(), "typ must match");
            let mut parts: Vec<&str> = jwt.split('.').collect();
            let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
            parts[1] = &forged;
            assert!(
                ring.verify(&parts.join("."), "at+jwt").is_none(),
                "tampered payload"
            );
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
        let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
        assert!(
            ring.verify(&format!("{header}.{body}."), "at+jwt")
                .is_none(),
            "alg none"
        );
        assert!(matches!(
            Keyring::load(&tenant, &stored, &MasterKey::generate(), now),
            Err(CryptoError::WrongMasterKey)
        ));
    }
}
