//! Per-tenant signing keys: generation, encryption at rest, rotation and the published JWKS.
//!
//! Each algorithm has one `active` key that signs, one `next` key that is published but does not
//! sign yet (so relying parties have it cached before the first token it signs), and `retired`
//! keys that stay published until every token they signed has expired.
//!
//! The tenant's SAML signing key lives in the same table and rotation as kind `SAML`: an RSA key
//! whose stored public JWK carries its self-signed certificate (`x5c`). It is published in the SAML
//! metadata, never in the JWKS.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jwk::Jwk;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, JwsHeader, JwsSigner, JwsVerifier, PS256, RS256};
use josekit::jwt::JwtPayload;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::master::MasterKey;
use super::signing::{Contexts, JwsAlg, ReusingSigner};
use super::verified::{self, Claims, Verified};
use super::{CryptoError, cert};
use crate::clock::UnixTime;
use crate::store::access_revocations::{Revocations, Revoke};
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

/// What a stored key signs: JWTs with one JWS algorithm, or SAML messages (RSA-SHA256, with a
/// certificate for the metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Jws(Alg),
    Saml,
}

impl KeyKind {
    pub const ALL: [KeyKind; 5] = [
        KeyKind::Jws(Alg::RS256),
        KeyKind::Jws(Alg::PS256),
        KeyKind::Jws(Alg::ES256),
        KeyKind::Jws(Alg::EdDSA),
        KeyKind::Saml,
    ];

    /// The `alg` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Jws(alg) => alg.as_str(),
            KeyKind::Saml => "SAML",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyKind {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<KeyKind, CryptoError> {
        if s.eq_ignore_ascii_case("saml") {
            return Ok(KeyKind::Saml);
        }
        Alg::from_str(s).map(KeyKind::Jws).map_err(|_| {
            CryptoError::Key(format!(
                "unknown key kind '{s}' (use RS256, PS256, ES256, EdDSA or SAML)"
            ))
        })
    }
}

/// A freshly generated key pair: the public JWK (with `kid`, `alg`, `use`, and for SAML the
/// certificate as `x5c`) and the private key as PKCS#8 PEM, wiped from memory when dropped.
pub struct GeneratedKey {
    pub kid: String,
    pub kind: KeyKind,
    pub public_jwk: Value,
    pub private_pem: Zeroizing<Vec<u8>>,
}

/// Generates a key of `kind`; `tenant` and `now` name and date a SAML key's certificate.
pub fn generate(
    kind: KeyKind,
    rsa_bits: u32,
    tenant: &TenantId,
    now: UnixTime,
) -> Result<GeneratedKey, CryptoError> {
    let alg = match kind {
        KeyKind::Jws(alg) => alg,
        KeyKind::Saml => return generate_saml(rsa_bits, tenant, now),
    };
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
    published(KeyKind::Jws(alg), &jwk, pem, None)
}

fn generate_saml(
    rsa_bits: u32,
    tenant: &TenantId,
    now: UnixTime,
) -> Result<GeneratedKey, CryptoError> {
    let key = PKey::from_rsa(Rsa::generate(rsa_bits.max(2048))?)?;
    let certificate = cert::self_signed(&key, &format!("Sesame SAML {tenant}"), now)?;
    let pem = key.private_key_to_pem_pkcs8()?;
    let jwk = RS256.key_pair_from_pem(&pem)?.to_jwk_public_key();
    published(KeyKind::Saml, &jwk, pem, Some(&certificate))
}

fn published(
    kind: KeyKind,
    jwk: &Jwk,
    pem: Vec<u8>,
    certificate: Option<&[u8]>,
) -> Result<GeneratedKey, CryptoError> {
    let pem = Zeroizing::new(pem);
    let kid = thumbprint(jwk)?;
    let mut public = jwk.as_ref().clone();
    public.insert("kid".into(), json!(kid));
    let alg = match kind {
        KeyKind::Jws(alg) => alg,
        KeyKind::Saml => Alg::RS256,
    };
    public.insert("alg".into(), json!(alg.as_str()));
    public.insert("use".into(), json!("sig"));
    if let Some(der) = certificate {
        public.insert("x5c".into(), json!([STANDARD.encode(der)]));
    }
    Ok(GeneratedKey {
        kid,
        kind,
        public_jwk: Value::Object(public),
        private_pem: pem,
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

/// The certificate a SAML key's stored JWK carries in `x5c`.
fn certificate_of(public_jwk: &str) -> Result<Vec<u8>, CryptoError> {
    let jwk: Value =
        serde_json::from_str(public_jwk).map_err(|e| CryptoError::Key(e.to_string()))?;
    let b64 = jwk["x5c"][0]
        .as_str()
        .ok_or_else(|| CryptoError::Key("a stored SAML key has no certificate".into()))?;
    STANDARD
        .decode(b64)
        .map_err(|e| CryptoError::Key(format!("a stored SAML certificate: {e}")))
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

/// RS256 and ES256, the defaults of every token, sign over reused OpenSSL contexts
/// ([`signing`]); the others through josekit's own signers.
fn signer_from_pem(alg: Alg, pem: &[u8]) -> Result<Box<dyn JwsSigner>, CryptoError> {
    let reusing =
        |alg| ReusingSigner::new(alg, PKey::private_key_from_pem(pem)?).map_err(CryptoError::Key);
    Ok(match alg {
        Alg::RS256 => Box::new(reusing(JwsAlg::RS256)?),
        Alg::PS256 => Box::new(PS256.signer_from_pem(pem)?),
        Alg::ES256 => Box::new(reusing(JwsAlg::ES256)?),
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

/// The active SAML signing key, parsed once.
pub struct SamlKey {
    pub kid: String,
    /// Its certificate (DER).
    pub certificate: Vec<u8>,
    /// The certificate in base64, as every signature's `KeyInfo` carries it.
    pub certificate_base64: String,
    /// RSA-SHA256 signing contexts, reused: setting one up costs as much as the rest of the XML
    /// around an assertion.
    contexts: Contexts,
}

impl SamlKey {
    pub fn new(kid: String, key: PKey<Private>, certificate: Vec<u8>) -> SamlKey {
        SamlKey {
            kid,
            certificate_base64: STANDARD.encode(&certificate),
            certificate,
            contexts: Contexts::new(key),
        }
    }

    pub fn key(&self) -> &PKey<Private> {
        self.contexts.key()
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `data`: XML Signature's `rsa-sha256`, and the
    /// `SigAlg` of a signed Redirect-binding query.
    pub fn sign_rsa_sha256(&self, data: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        self.contexts.sign_sha256(data)
    }
}

impl fmt::Debug for SamlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamlKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A digest of everything [`Keyring::load`] reads from `stored` at `now`: each key's identity and
/// material (the encrypted private key, so a re-imported key with a reused `kid` still counts as
/// new), its state, and whether it is published at `now` (retired keys drop out over time).
fn source_of(stored: &[StoredKey], now: UnixTime) -> [u8; 32] {
    let mut digest = Sha256::new();
    for key in stored {
        for part in [
            key.kid.as_bytes(),
            key.alg.as_bytes(),
            key.state.as_str().as_bytes(),
            key.public_jwk.as_bytes(),
            &key.private_key,
        ] {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part);
        }
        digest.update([u8::from(key.is_published(now))]);
    }
    digest.finalize().into()
}

/// A SAML signing certificate the metadata publishes.
#[derive(Debug, Clone)]
pub struct SamlCertificate {
    pub kid: String,
    pub state: KeyState,
    pub der: Vec<u8>,
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
    saml_key: Option<SamlKey>,
    /// Active first, then the next, then retired ones still published.
    saml_certificates: Vec<SamlCertificate>,
    /// Tokens verified with these keys (see `crypto::verified`).
    verified: Verified,
    /// The tenant's access-token revocations, read with the keys at every reload: a reload that
    /// keeps the keys still replaces them.
    revocations: RwLock<Arc<Revocations>>,
    /// What it was built from, so a reload that finds the same keys keeps it (see
    /// [`Keyring::built_from`]).
    source: [u8; 32],
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
        let mut saml_key = None;
        let mut saml_certificates = Vec::new();
        for key in stored {
            if KeyKind::from_str(&key.alg)? == KeyKind::Saml {
                if key.is_published(now) {
                    saml_certificates.push(SamlCertificate {
                        kid: key.kid.clone(),
                        state: key.state,
                        der: certificate_of(&key.public_jwk)?,
                    });
                }
                if key.state == KeyState::Active {
                    let pem = master.decrypt(&key.private_key, &aad(tenant, &key.kid))?;
                    let private = PKey::private_key_from_pem(&pem)?;
                    saml_key = Some(SamlKey::new(
                        key.kid.clone(),
                        private,
                        certificate_of(&key.public_jwk)?,
                    ));
                }
                continue;
            }
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
        saml_certificates.sort_by_key(|c| match c.state {
            KeyState::Active => 0,
            KeyState::Next => 1,
            KeyState::Retired => 2,
        });
        Ok(Keyring {
            source: source_of(stored, now),
            saml_key,
            saml_certificates,
            active,
            jwks_json: bytes::Bytes::from(json!({ "keys": &published }).to_string()),
            jwks: json!({ "keys": published }),
            verifiers,
            verified: Verified::default(),
            revocations: RwLock::default(),
        })
    }

    /// Whether loading `stored` at `now` would build this same keyring: the same keys, each in
    /// the same state and published or not as before. A reload that finds nothing changed keeps
    /// the keyring instead of decrypting and parsing every key again (milliseconds of CPU), and
    /// keeps the tokens it has verified.
    pub fn built_from(&self, stored: &[StoredKey], now: UnixTime) -> bool {
        self.source == source_of(stored, now)
    }

    /// The claims of a JWT this tenant signed with a published key, if its signature verifies and
    /// its `typ` is `typ`. The header's `alg` must be the key's own, so `alg: none` and algorithm
    /// confusion fail. Expiry and audience are the caller's to check.
    pub fn verify(&self, token: &str, typ: &str) -> Option<Claims> {
        let memo = verified::key(token, typ);
        if let Some(claims) = self.verified.get(&memo) {
            return Some(claims);
        }
        let (payload, header) = josekit::jwt::decode_with_verifier_selector(token, |header| {
            Ok(header
                .key_id()
                .and_then(|kid| self.verifiers.iter().find(|(k, _)| k == kid))
                .map(|(_, v)| v.as_ref() as &dyn JwsVerifier))
        })
        .ok()?;
        if header.token_type() != Some(typ) {
            return None;
        }
        let claims: Claims = Arc::new(payload.claims_set().clone());
        self.verified.put(memo, claims.clone());
        Some(claims)
    }

    /// The tenant's access-token revocations as last read.
    pub fn revocations(&self) -> Arc<Revocations> {
        self.revocations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Adds the revocations just read from the store and forgets those made before
    /// `forget_before` (see [`Revocations::merge`]).
    pub fn merge_revocations(&self, read: Revocations, forget_before: UnixTime) {
        let mut current = self
            .revocations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::make_mut(&mut current).merge(read, forget_before);
    }

    /// Adds a revocation this node just recorded, so it holds here before the next reload.
    pub fn note_revoked(&self, what: Revoke<'_>, at: UnixTime) {
        let mut current = self
            .revocations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::make_mut(&mut current).insert(what, at);
    }

    /// The key that signs SAML messages, if the tenant has one.
    pub fn saml_key(&self) -> Option<&SamlKey> {
        self.saml_key.as_ref()
    }

    pub fn saml_certificates(&self) -> &[SamlCertificate] {
        &self.saml_certificates
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
        "the next {kind} key was published at {published_at}; relying parties may not have fetched it \
         yet. Rotate after {ready_at}, or force it if the active key is compromised"
    )]
    NextKeyTooNew {
        kind: KeyKind,
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
        alg: key.kind.as_str().to_string(),
        state,
        public_jwk: key.public_jwk.to_string(),
        private_key: master.encrypt(&key.private_pem, &aad(tenant, &key.kid))?,
        activated_at: (state == KeyState::Active).then_some(now),
    })
}

/// Gives every kind of key an active and a next key; returns how many keys it generated.
pub fn ensure(
    conn: &mut Conn,
    master: &MasterKey,
    tenant: &TenantId,
    rsa_bits: u32,
    now: UnixTime,
) -> Result<usize, KeyError> {
    let existing = key_store::list(conn, tenant)?;
    let mut wanted = Vec::new();
    for kind in KeyKind::ALL {
        for state in [KeyState::Active, KeyState::Next] {
            if !existing
                .iter()
                .any(|k| k.alg == kind.as_str() && k.state == state)
            {
                let key = generate(kind, rsa_bits, tenant, now)?;
                wanted.push(seal(master, tenant, &key, state, now)?);
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
    pub kind: KeyKind,
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
    kind: KeyKind,
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
        &generate(kind, rsa_bits, tenant, now)?,
        KeyState::Next,
        now,
    )?;
    let spare_active = seal(
        master,
        tenant,
        &generate(kind, rsa_bits, tenant, now)?,
        KeyState::Active,
        now,
    )?;
    let publish_until = now.plus(retire_grace);
    tx::write(conn, |c| -> Result<Rotation, KeyError> {
        key_store::delete_expired(c, tenant, now)?;
        let keys = key_store::list(c, tenant)?;
        let old_active = keys
            .iter()
            .find(|k| k.alg == kind.as_str() && k.state == KeyState::Active);
        let old_next = keys
            .iter()
            .find(|k| k.alg == kind.as_str() && k.state == KeyState::Next);
        if let Some(next) = old_next
            && now.0 - next.created_at.0 < min_next_age
        {
            return Err(KeyError::NextKeyTooNew {
                kind,
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
            kind,
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
    fn saml_signatures_are_rsa_sha256_and_reuse_their_context() {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let saml = SamlKey::new("k".into(), key.clone(), vec![1, 2, 3]);
        assert_eq!(saml.certificate_base64, "AQID");
        let check = |data: &[u8], signature: &[u8]| {
            let mut v =
                openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
            v.verify_oneshot(signature, data).unwrap()
        };
        let first = saml.sign_rsa_sha256(b"one").unwrap();
        assert!(check(b"one", &first));
        assert!(!check(b"two", &first));
        // The second signature runs on the context the first put back, over other data.
        assert_eq!(saml.contexts.idle(), 1);
        let second = saml.sign_rsa_sha256(b"two").unwrap();
        assert!(check(b"two", &second));
        assert_eq!(saml.contexts.idle(), 1);
        // PKCS#1 v1.5 is deterministic: the same as a fresh one-shot signer's.
        let mut fresh =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
        assert_eq!(fresh.sign_oneshot_to_vec(b"two").unwrap(), second);
    }

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
        let stored: Vec<StoredKey> = KeyKind::ALL
            .iter()
            .map(|kind| {
                let key = generate(*kind, 2048, &tenant, now).unwrap();
                let sealed = seal(&master, &tenant, &key, KeyState::Active, now).unwrap();
                StoredKey::from_new(sealed, now)
            })
            .collect();
        let ring = Keyring::load(&tenant, &stored, &master, now).unwrap();
        assert_eq!(
            ring.jwks()["keys"].as_array().unwrap().len(),
            Alg::ALL.len(),
            "the SAML key is published in the SAML metadata, not in the JWKS"
        );
        let saml = ring.saml_key().expect("a SAML signing key");
        let cert = openssl::x509::X509::from_der(&saml.certificate).unwrap();
        assert!(cert.public_key().unwrap().public_eq(saml.key()));
        assert_eq!(ring.saml_certificates().len(), 1);
        assert_eq!(ring.saml_certificates()[0].der, saml.certificate);
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
            // Again, from the memo: the same answer, and still only for its `typ`.
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
