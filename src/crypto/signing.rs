//! OpenSSL signing contexts set up once per key and reused, for the signatures on hot paths: the
//! RS256 ID tokens and ES256 access tokens of every grant, and every SAML response.
//!
//! A one-shot OpenSSL signer fetches the algorithm implementations by name and prepares the key
//! for them on every call; for ES256 that added more than half the signature's own cost (about
//! 15 µs to 25 µs, docs/performance.md). A context already initialised for signing only needs the
//! digest. josekit builds a fresh signer per token, so RS256 and ES256 sign through
//! [`ReusingSigner`] instead; PS256 and EdDSA, which no default uses, keep josekit's.

use std::fmt;
use std::sync::{Arc, Mutex};

use josekit::JoseError;
use josekit::jws::{ES256, JwsAlgorithm, JwsSigner, RS256};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::pkey::{Id, PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use sha2::{Digest, Sha256};

/// Signing contexts for one private key, each initialised for a SHA-256 signature (PKCS#1 v1.5
/// padding for RSA). Each signature takes one and puts it back: there are as many as signatures
/// ever ran at once.
pub struct Contexts {
    key: PKey<Private>,
    idle: Mutex<Vec<PkeyCtx<Private>>>,
}

impl Contexts {
    pub fn new(key: PKey<Private>) -> Contexts {
        Contexts {
            key,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn key(&self) -> &PKey<Private> {
        &self.key
    }

    fn fresh(&self) -> Result<PkeyCtx<Private>, ErrorStack> {
        let mut ctx = PkeyCtx::new(&self.key)?;
        ctx.sign_init()?;
        if self.key.id() == Id::RSA {
            ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1)?;
        }
        ctx.set_signature_md(openssl::md::Md::sha256())?;
        Ok(ctx)
    }

    /// Signs `data`'s SHA-256: RSASSA-PKCS1-v1_5 for an RSA key, a DER `ECDSA-Sig-Value` for an
    /// EC key.
    pub fn sign_sha256(&self, data: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut ctx = match reused {
            Some(ctx) => ctx,
            None => self.fresh()?,
        };
        let mut signature = Vec::with_capacity(self.key.size());
        ctx.sign_to_vec(&Sha256::digest(data), &mut signature)?;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(ctx);
        }
        Ok(signature)
    }

    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }
}

/// The JWS algorithms [`ReusingSigner`] signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    RS256,
    ES256,
}

/// A josekit signer for RS256 or ES256 over reused [`Contexts`].
#[derive(Clone)]
pub struct ReusingSigner {
    alg: JwsAlg,
    contexts: Arc<Contexts>,
}

impl ReusingSigner {
    /// Refuses a key that does not fit `alg` (an RSA key under 2048 bits, a curve other than
    /// P-256), as josekit's own signers do.
    pub fn new(alg: JwsAlg, key: PKey<Private>) -> Result<ReusingSigner, String> {
        match alg {
            JwsAlg::RS256 => {
                let rsa = key
                    .rsa()
                    .map_err(|_| "an RS256 key must be RSA".to_string())?;
                if rsa.size() < 256 {
                    return Err("an RS256 key must be at least 2048 bits".into());
                }
            }
            JwsAlg::ES256 => {
                let ec = key
                    .ec_key()
                    .map_err(|_| "an ES256 key must be EC".to_string())?;
                if ec.group().curve_name() != Some(openssl::nid::Nid::X9_62_PRIME256V1) {
                    return Err("an ES256 key must be on P-256".into());
                }
            }
        }
        Ok(ReusingSigner {
            alg,
            contexts: Arc::new(Contexts::new(key)),
        })
    }
}

impl fmt::Debug for ReusingSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReusingSigner")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// JWS carries an ECDSA P-256 signature as the two 32-byte integers side by side (RFC 7518
/// §3.4), not as OpenSSL's DER.
fn ecdsa_der_to_jws(der: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    let sig = EcdsaSig::from_der(der)?;
    let mut out = sig.r().to_vec_padded(32)?;
    out.extend_from_slice(&sig.s().to_vec_padded(32)?);
    Ok(out)
}

impl JwsSigner for ReusingSigner {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        match self.alg {
            JwsAlg::RS256 => &RS256,
            JwsAlg::ES256 => &ES256,
        }
    }

    /// The key id goes into each token's header by the caller.
    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        match self.alg {
            JwsAlg::RS256 => self.contexts.key().size(),
            JwsAlg::ES256 => 64,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let signed = self
            .contexts
            .sign_sha256(message)
            .and_then(|signature| match self.alg {
                JwsAlg::RS256 => Ok(signature),
                JwsAlg::ES256 => ecdsa_der_to_jws(&signature),
            });
        signed.map_err(|e| JoseError::InvalidSignature(e.into()))
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;
    use josekit::jwt::{self, JwtPayload};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::rsa::Rsa;

    fn rsa_key() -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
    }

    fn ec_key(curve: Nid) -> PKey<Private> {
        let group = EcGroup::from_curve_name(curve).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    fn token(signer: &dyn JwsSigner, sub: &str) -> String {
        let mut header = JwsHeader::new();
        header.set_key_id("k1");
        let mut payload = JwtPayload::new();
        payload.set_subject(sub);
        jwt::encode_with_signer(&payload, &header, signer).unwrap()
    }

    #[test]
    fn rs256_tokens_equal_josekits_own_and_reuse_the_context() {
        let key = rsa_key();
        let pem = key.private_key_to_pem_pkcs8().unwrap();
        let ours = ReusingSigner::new(JwsAlg::RS256, key.clone()).unwrap();
        let theirs = RS256.signer_from_pem(&pem).unwrap();
        let verifier = RS256
            .verifier_from_pem(key.public_key_to_pem().unwrap())
            .unwrap();
        for sub in ["alice", "bob"] {
            // PKCS#1 v1.5 is deterministic: the same bytes as josekit's one-shot signer.
            let token = token(&ours, sub);
            assert_eq!(token, self::token(&theirs, sub));
            let (payload, _) = jwt::decode_with_verifier(&token, &verifier).unwrap();
            assert_eq!(payload.subject(), Some(sub));
        }
        // Both tokens were signed on one context, put back after each.
        assert_eq!(ours.contexts.idle(), 1);
        assert_eq!(ours.signature_len(), 256);
    }

    #[test]
    fn es256_tokens_verify_under_josekit_and_reuse_the_context() {
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let ours = ReusingSigner::new(JwsAlg::ES256, key.clone()).unwrap();
        let verifier = ES256
            .verifier_from_pem(key.public_key_to_pem().unwrap())
            .unwrap();
        let (first, second) = (token(&ours, "alice"), token(&ours, "bob"));
        for (token, sub) in [(&first, "alice"), (&second, "bob")] {
            let signature = token.rsplit('.').next().unwrap();
            let raw = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                signature,
            )
            .unwrap();
            assert_eq!(raw.len(), 64, "r and s, 32 bytes each, not DER");
            let (payload, _) = jwt::decode_with_verifier(token, &verifier).unwrap();
            assert_eq!(payload.subject(), Some(sub));
        }
        assert_eq!(ours.contexts.idle(), 1);
        // Each signature draws a fresh nonce on the reused context: the same token twice differs
        // in r (a repeated nonce would give the private key away).
        let again = token(&ours, "alice");
        assert_ne!(again, first);
        assert_ne!(
            again.rsplit('.').next().unwrap()[..42],
            first.rsplit('.').next().unwrap()[..42]
        );
        // A token signed for alice does not pass as bob's.
        let forged = format!(
            "{}.{}",
            second.rsplit_once('.').unwrap().0,
            first.rsplit('.').next().unwrap()
        );
        assert!(jwt::decode_with_verifier(&forged, &verifier).is_err());
    }

    #[test]
    fn keys_that_do_not_fit_the_algorithm_are_refused() {
        let small = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
        assert!(ReusingSigner::new(JwsAlg::RS256, small).is_err());
        assert!(ReusingSigner::new(JwsAlg::RS256, ec_key(Nid::X9_62_PRIME256V1)).is_err());
        assert!(ReusingSigner::new(JwsAlg::ES256, rsa_key()).is_err());
        assert!(ReusingSigner::new(JwsAlg::ES256, ec_key(Nid::SECP384R1)).is_err());
    }
}
