//! Random secrets and the hashes the store keeps instead of them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` bytes from the OS generator, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `n` bytes from the OS generator as lowercase hex. Every SAML message takes one or two of these,
/// so the digits are written into one buffer rather than formatted byte by byte.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    to_hex(&bytes)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// A password a person can type: 20 characters without look-alikes (~114 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    // 256 is not a multiple of 57; the bias this leaves is negligible for 20 draws of a secret this
    // long, but rejection sampling costs nothing, so do it.
    let mut out = String::with_capacity(20);
    let mut rng = OsRng;
    while out.len() < 20 {
        let b = (rng.next_u32() & 0xff) as usize;
        if b < 57 * 4 {
            out.push(ALPHABET[b % 57] as char);
        }
    }
    out
}

/// A 32-byte digest of a secret: plain SHA-256 for the random tokens Sesame generates (one-time
/// codes, refresh tokens, cookies), where guessing 256 random bits is infeasible whatever the hash
/// costs, or a keyed [`DigestKey`] digest for client secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(secret: &str) -> TokenHash {
        TokenHash(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<TokenHash> {
        Some(TokenHash(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison against a presented secret.
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(&self.0, &TokenHash::of(presented).0)
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A keyed digest (HMAC-SHA256) for secrets an administrator may choose, such as client secrets:
/// unlike a plain hash, a database dump alone does not let anyone test guesses offline. It stays
/// one fast MAC, so a service client's grant costs no password hash.
#[derive(Clone)]
pub struct DigestKey([u8; 32]);

impl DigestKey {
    pub fn new(key: [u8; 32]) -> DigestKey {
        DigestKey(key)
    }

    pub fn digest(&self, secret: &str) -> TokenHash {
        use hmac::Mac;
        // HMAC accepts keys of any length, so this cannot fail; fall back to a zero tag anyway.
        match <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(secret.as_bytes());
                TokenHash(mac.finalize().into_bytes().into())
            }
            Err(_) => TokenHash([0; 32]),
        }
    }

    /// Constant-time check of a presented secret against a stored digest.
    pub fn matches(&self, stored: &TokenHash, presented: &str) -> bool {
        constant_time_eq(&stored.0, &self.digest(presented).0)
    }
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey([redacted])")
    }
}

/// A secret that never shows up in logs or `Debug` output.
#[derive(Clone)]
pub struct SecretString(zeroize::Zeroizing<String>);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(zeroize::Zeroizing::new(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString::new)
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = random_token(32);
        assert_ne!(a, random_token(32));
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn random_hex_is_lowercase_hex_of_fresh_bytes() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(a, random_hex(16));
        assert_eq!(random_hex(0), "");
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xf0, 0xff]), "000fa5f0ff");
    }

    #[test]
    fn hash_matches_only_its_secret() {
        let h = TokenHash::of("s3cret");
        assert!(h.matches("s3cret"));
        assert!(!h.matches("s3cret "));
        assert_eq!(format!("{h:?}"), "TokenHash(..)");
    }

    #[test]
    fn generated_passwords_avoid_look_alikes() {
        let p = generate_password();
        assert_eq!(p.len(), 20);
        assert!(!p.contains(['0', 'O', 'l', '1', 'I']));
    }

    #[test]
    fn keyed_digests_depend_on_the_key() {
        let a = DigestKey::new([1; 32]);
        let b = DigestKey::new([2; 32]);
        let stored = a.digest("client-secret");
        assert!(a.matches(&stored, "client-secret"));
        assert!(!a.matches(&stored, "client-secreT"));
        assert!(
            !b.matches(&stored, "client-secret"),
            "another key does not verify"
        );
        assert_ne!(stored, TokenHash::of("client-secret"), "not a plain hash");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        assert_eq!(
            format!("{:?}", SecretString::new("x".into())),
            "SecretString([redacted])"
        );
    }
}
