//! Key material and secrets: the master key that encrypts signing keys at rest, the signing keys
//! themselves (generation, rotation, JWKS, JWS, the SAML certificate) and their reused OpenSSL
//! contexts, argon2 password hashing, and random secrets with
//! their hashes.

pub mod cert;
pub mod keys;
pub mod master;
pub mod password;
pub mod secret;
pub mod signing;
pub mod verified;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "the master key does not decrypt the stored signing keys: it is not the key they were encrypted \
         with; restore the original master_key / master_key_file (nothing was changed)"
    )]
    WrongMasterKey,
    #[error("{0}")]
    MasterKey(String),
    #[error("key operation failed: {0}")]
    Key(String),
    #[error("password hashing failed: {0}")]
    Password(String),
}

impl From<openssl::error::ErrorStack> for CryptoError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        CryptoError::Key(e.to_string())
    }
}

impl From<josekit::JoseError> for CryptoError {
    fn from(e: josekit::JoseError) -> Self {
        CryptoError::Key(e.to_string())
    }
}
