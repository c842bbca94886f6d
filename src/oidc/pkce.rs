//! Proof Key for Code Exchange (RFC 7636). Only `S256` is accepted: `plain` gives no protection
//! against a stolen authorization request (RFC 9700 §2.1.1), so it is refused outright.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::crypto::secret::constant_time_eq;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    #[error("code_challenge must be 43 base64url characters (the SHA-256 of the verifier)")]
    MalformedChallenge,
    #[error("code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~")]
    MalformedVerifier,
}

/// A `code_challenge` accepted at the authorization endpoint: the base64url SHA-256 of a verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// RFC 7636 §4.3; `method` absent means `plain` (§4.3), which is refused.
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<CodeChallenge, PkceError> {
        if method != Some("S256") {
            return Err(PkceError::UnsupportedMethod);
        }
        // A SHA-256 digest is 32 bytes, 43 characters of unpadded base64url.
        let decoded = URL_SAFE_NO_PAD
            .decode(challenge)
            .map_err(|_| PkceError::MalformedChallenge)?;
        if challenge.len() != 43 || decoded.len() != 32 {
            return Err(PkceError::MalformedChallenge);
        }
        Ok(CodeChallenge(challenge.to_string()))
    }

    /// The stored form (it is not a secret: it travelled in the front channel).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: `BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge`.
    pub fn verify(&self, verifier: &str) -> Result<bool, PkceError> {
        if !valid_verifier(verifier) {
            return Err(PkceError::MalformedVerifier);
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Ok(constant_time_eq(computed.as_bytes(), self.0.as_bytes()))
    }
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        let c = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert_eq!(c.verify(VERIFIER), Ok(true));
        let mut wrong = VERIFIER.to_string();
        wrong.replace_range(0..1, "e");
        assert_eq!(c.verify(&wrong), Ok(false));
    }

    #[test]
    fn plain_and_missing_methods_are_refused() {
        assert_eq!(
            CodeChallenge::parse(VERIFIER, Some("plain")),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            CodeChallenge::parse(CHALLENGE, None),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            CodeChallenge::parse(CHALLENGE, Some("s256")),
            Err(PkceError::UnsupportedMethod)
        );
    }

    #[test]
    fn malformed_challenges_and_verifiers() {
        for bad in [
            "",
            "short",
            &format!("{CHALLENGE}A"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
        ] {
            assert_eq!(
                CodeChallenge::parse(bad, Some("S256")),
                Err(PkceError::MalformedChallenge),
                "{bad}"
            );
        }
        let c = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        for bad in [
            "",
            "a".repeat(42).as_str(),
            "a".repeat(129).as_str(),
            &format!("{}!", &VERIFIER[..43]),
        ] {
            assert_eq!(c.verify(bad), Err(PkceError::MalformedVerifier), "{bad}");
        }
    }
}
