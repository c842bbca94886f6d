//! argon2id password hashing on a bounded pool: hashing is deliberately expensive, so it gets at
//! most one permit per core and can never starve the workers that serve tokens and discovery.

use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use super::CryptoError;
use super::secret::{SecretString, constant_time_eq};
use crate::config::PasswordHashConfig;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// argon2's working memory (19 MiB at the default cost), kept and reused: allocating it per
    /// verification left the freed memory in allocator arenas, so a burst of sign-ins grew the
    /// process by hundreds of MiB. At most one buffer per permit is kept.
    scratch: Arc<Mutex<Vec<Vec<Block>>>>,
    keep: usize,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn password_error(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Password(e.to_string())
}

impl PasswordHasher {
    pub fn new(config: &PasswordHashConfig) -> Result<PasswordHasher, CryptoError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(password_error)?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(cores)),
            scratch: Arc::new(Mutex::new(Vec::new())),
            keep: cores,
        })
    }

    /// Runs `f` with `blocks` blocks of working memory from the pool. A buffer larger than the
    /// configured cost needs (an imported hash with a higher cost) is not kept.
    fn with_scratch<T>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let mut buffer = self
            .scratch
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        if buffer.len() < blocks {
            buffer.resize(blocks, Block::default());
        }
        let result = f(&mut buffer[..blocks]);
        if buffer.len() <= self.params.block_count()
            && let Ok(mut pool) = self.scratch.lock()
            && pool.len() < self.keep
        {
            pool.push(buffer);
        }
        result
    }

    /// PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`), for callers already off the async workers.
    pub fn hash_blocking(&self, password: &str) -> Result<String, CryptoError> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_raw = salt
            .as_salt()
            .decode_b64(&mut salt_bytes)
            .map_err(password_error)?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        self.with_scratch(self.params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut out, blocks)
        })
        .map_err(password_error)?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(password_error)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(password_error)?),
        };
        Ok(phc.to_string())
    }

    /// Verifies with the parameters recorded in the hash itself, so raising the cost later does
    /// not lock anyone out. A malformed stored hash verifies nothing.
    pub fn verify_blocking(&self, stored: &str, password: &str) -> bool {
        self.try_verify(stored, password).unwrap_or(false)
    }

    fn try_verify(&self, stored: &str, password: &str) -> Option<bool> {
        acceptable_phc(stored).ok()?;
        let parsed = PasswordHash::new(stored).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::V0x13,
        };
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let mut salt_bytes = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt_bytes).ok()?;
        let mut out = vec![0u8; expected.len()];
        let argon2 = Argon2::new(algorithm, version, params.clone());
        self.with_scratch(params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
        })
        .ok()?;
        Some(constant_time_eq(&out, expected.as_bytes()))
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
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;
pub const MAX_ITERATIONS: u32 = 16;
pub const MAX_PARALLELISM: u32 = 16;

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
    fn hashes_interoperate_with_the_reference_implementation() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let h = cheap();
        let ours = h.hash_blocking("tr0ub4dor").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"tr0ub4dor", &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(2048, 2, 1, None).unwrap(),
        )
        .hash_password(b"tr0ub4dor", &salt)
        .unwrap()
        .to_string();
        assert!(h.verify_blocking(&theirs, "tr0ub4dor"));
        assert!(!h.verify_blocking(&theirs, "tr0ub4dor?"));
        // The larger buffer that hash needed is not kept.
        assert!(h.scratch.lock().unwrap().iter().all(|b| b.len() <= 1024));
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
