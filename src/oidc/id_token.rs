//! ID token pieces (OpenID Connect Core §2, §3.1.3.6, §3.3.2.11).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256, Sha512};

use crate::crypto::keys::Alg;

/// `at_hash` / `c_hash`: base64url of the left-most half of the hash of the ASCII value, with the
/// hash of the ID token's `alg` (SHA-256 for RS256/ES256; SHA-512 for EdDSA over Ed25519, as the
/// OpenID Foundation specifies for that curve).
pub fn half_hash(alg: Alg, value: &str) -> String {
    match alg {
        Alg::RS256 | Alg::ES256 => {
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
    fn eddsa_uses_the_left_half_of_sha512() {
        let h = half_hash(Alg::EdDSA, "token");
        assert_eq!(URL_SAFE_NO_PAD.decode(h).unwrap().len(), 32);
    }
}
