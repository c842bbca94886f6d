//! A keyring's memo of the tokens it verified, by digest, so a token presented again (a resource
//! server introspecting it on every call, an app asking UserInfo) costs a SHA-256 instead of a
//! signature check (an ECDSA P-256 verification is some 60 µs on one core).
//!
//! Verification against a fixed set of keys is a pure function of the token, and a keyring's keys
//! never change: a rotation or reload builds a new keyring with an empty memo. So a remembered
//! answer is the answer verification would give; expiry, audience and revocation stay the
//! caller's to check on every use. Only successes are kept, under a digest of the token (never
//! the bearer token itself), and the memo is bounded.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Claims as verified, shared between the memo and its readers.
pub type Claims = Arc<Map<String, Value>>;

/// At most this many tokens per keyring (a few MiB of claims); a full memo starts over.
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct Verified {
    entries: RwLock<HashMap<[u8; 32], Claims>>,
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.entries.read().map_or(0, |e| e.len());
        f.debug_struct("Verified").field("entries", &len).finish()
    }
}

/// The memo's key: the token's digest, with the `typ` it was verified for.
pub fn key(token: &str, typ: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(typ.as_bytes())
        .chain_update([0])
        .chain_update(token.as_bytes())
        .finalize()
        .into()
}

impl Verified {
    pub fn get(&self, key: &[u8; 32]) -> Option<Claims> {
        self.entries.read().ok()?.get(key).cloned()
    }

    pub fn put(&self, key: [u8; 32], claims: Claims) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, claims);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_tokens_and_types_apart() {
        assert_ne!(key("a.b.c", "JWT"), key("a.b.c", "at+jwt"));
        assert_ne!(key("a.b.c", "JWT"), key("a.b.d", "JWT"));
        // The separator keeps `typ` and token from running into each other.
        assert_ne!(key("xa.b.c", "JWT"), key("a.b.c", "JWTx"));
    }

    #[test]
    fn the_memo_is_bounded() {
        let memo = Verified::default();
        let claims: Claims = Arc::new(Map::new());
        for i in 0..MAX_ENTRIES + 10 {
            memo.put(key(&i.to_string(), "JWT"), claims.clone());
        }
        let len = memo.entries.read().unwrap().len();
        assert!(len <= MAX_ENTRIES && len > 0, "{len}");
        assert!(
            memo.get(&key(&(MAX_ENTRIES + 9).to_string(), "JWT"))
                .is_some()
        );
    }
}
