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
        if acceptable_phc(stored).is_err() {
            return false;
        }
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

/// Largest argon2 cost Sesame will verify: an imported hash with a huge memory cost would make
/// every sign-in allocate gigabytes.
const MAX_MEMORY_KIB: u32 = 256 * 1024;
const MAX_ITERATIONS: u32 = 16;
const MAX_PARALLELISM: u32 = 16;

/// Checks an imported `password_hash`: an argon2 PHC string within the cost limits.
pub fn acceptable_phc(s: &str) -> Result<(), String> {
    let not_phc = || "password_hash must be an argon2 PHC string ($argon2id$…)".to_string();
    let parsed = PasswordHash::new(s).map_err(|_| not_phc())?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(not_phc());
    }
    let params =
        Params::try_from(&parsed).map_err(|e| format!("password_hash has bad parameters: {e}"))?;
    if params.m_cost() > MAX_MEMORY_KIB
        || params.t_cost() > MAX_ITERATIONS
        || params.p_cost() > MAX_PARALLELISM
    {
        return Err(format!(
            "password_hash costs more than Sesame verifies (at most m={MAX_MEMORY_KIB}, t={MAX_ITERATIONS}, p={MAX_PARALLELISM})"
        ));
    }
    Ok(())
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
        assert!(acceptable_phc(&hash).is_ok());
        assert!(acceptable_phc("plain").is_err());
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        assert!(acceptable_phc(huge).unwrap_err().contains("costs more"));
        assert!(
            !h.verify_blocking(huge, "x"),
            "never runs an oversized hash"
        );
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
