//! argon2id password hashing on a bounded pool: hashing is deliberately expensive, so it gets at
//! most one permit per core and can never starve the workers that serve tokens and discovery.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::CryptoError;
use super::secret::SecretString;
use crate::config::PasswordHashConfig;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(config: &PasswordHashConfig) -> Result<PasswordHasher, CryptoError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| CryptoError::Password(e.to_string()))?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(cores)),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`), for callers already off the async workers.
    pub fn hash_blocking(&self, password: &str) -> Result<String, CryptoError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CryptoError::Password(e.to_string()))
    }

    /// Verifies with the parameters recorded in the hash itself, so raising the cost later does
    /// not lock anyone out. A malformed stored hash verifies nothing.
    pub fn verify_blocking(&self, stored: &str, password: &str) -> bool {
        match PasswordHash::new(stored) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, CryptoError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| CryptoError::Password(e.to_string()))?;
        let hasher = self.clone();
        tokio::task::spawn_blocking(move || hasher.hash_blocking(password.expose()))
            .await
            .map_err(|e| CryptoError::Password(e.to_string()))?
    }

    pub async fn verify(
        &self,
        stored: String,
        password: SecretString,
    ) -> Result<bool, CryptoError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| CryptoError::Password(e.to_string()))?;
        let hasher = self.clone();
        tokio::task::spawn_blocking(move || hasher.verify_blocking(&stored, password.expose()))
            .await
            .map_err(|e| CryptoError::Password(e.to_string()))
    }
}

/// Whether a string is a PHC argon2 hash we can verify (for imported `password_hash` values).
pub fn is_argon2_phc(s: &str) -> bool {
    PasswordHash::new(s)
        .map(|h| h.algorithm.as_str().starts_with("argon2"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(&PasswordHashConfig {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = cheap();
        let hash = h.hash_blocking("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(h.verify_blocking(&hash, "correct horse"));
        assert!(!h.verify_blocking(&hash, "correct horse!"));
        assert!(!h.verify_blocking("not a hash", "x"));
        assert!(is_argon2_phc(&hash));
        assert!(!is_argon2_phc("plain"));
    }

    #[test]
    fn default_parameters_are_owasp() {
        let h = PasswordHasher::new(&crate::config::Config::default().password_hash).unwrap();
        assert_eq!(
            (h.params.m_cost(), h.params.t_cost(), h.params.p_cost()),
            (19456, 2, 1)
        );
    }
}
