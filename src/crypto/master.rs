//! The master key: AES-256-GCM over every private key the store holds. On the embedded default it
//! is generated into the data folder (mode 0600) on first start; its absence once the database
//! holds encrypted keys is a start-up error rather than a silent re-key.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use super::CryptoError;
use crate::config::Config;

const CHECK_PLAINTEXT: &[u8] = b"sesame master key check v1";
const CHECK_AAD: &[u8] = b"meta:master_key_check";

#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        MasterKey(*Key::<Aes256Gcm>::from_slice(bytes.as_ref()))
    }

    pub fn from_base64(text: &str) -> Result<MasterKey, CryptoError> {
        let bytes =
            Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
                CryptoError::MasterKey("the master key is not valid base64".into())
            })?);
        if bytes.len() != 32 {
            return Err(CryptoError::MasterKey(format!(
                "the master key must be 32 bytes, found {}",
                bytes.len()
            )));
        }
        Ok(MasterKey(*Key::<Aes256Gcm>::from_slice(&bytes)))
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_slice()))
    }

    /// `nonce (12 bytes) || ciphertext+tag`. `aad` binds the ciphertext to its row, so a key
    /// copied into another tenant's row does not decrypt.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = Aes256Gcm::new(&self.0);
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Key("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn decrypt(&self, data: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if data.len() < 12 + 16 {
            return Err(CryptoError::WrongMasterKey);
        }
        let (nonce, ct) = data.split_at(12);
        Aes256Gcm::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::WrongMasterKey)
    }

    /// A sub-key for one purpose (HMAC-SHA256 of the purpose under the master key), so a key used
    /// for digests never doubles as the encryption key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::Mac;
        match <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.as_slice()) {
            Ok(mut mac) => {
                mac.update(b"sesame/");
                mac.update(purpose.as_bytes());
                mac.finalize().into_bytes().into()
            }
            Err(_) => [0; 32],
        }
    }

    /// An encryption key of its own for one purpose, for values sealed to be opened only by
    /// Sesame (such as self-contained authorization codes), never by the key that guards the
    /// stored private keys.
    pub fn sub_key(&self, purpose: &str) -> MasterKey {
        let bytes = Zeroizing::new(self.derive(purpose));
        MasterKey(*Key::<Aes256Gcm>::from_slice(bytes.as_ref()))
    }

    /// The key client secrets are digested with.
    pub fn client_secret_key(&self) -> super::secret::DigestKey {
        super::secret::DigestKey::new(self.derive("client-secret-v1"))
    }

    /// A value stored in the database so a wrong key is caught at start-up, before any key is
    /// used or written.
    pub fn check_value(&self) -> Result<String, CryptoError> {
        Ok(STANDARD.encode(self.encrypt(CHECK_PLAINTEXT, CHECK_AAD)?))
    }

    pub fn verify_check_value(&self, stored: &str) -> Result<(), CryptoError> {
        let data = STANDARD
            .decode(stored)
            .map_err(|_| CryptoError::WrongMasterKey)?;
        let plain = self.decrypt(&data, CHECK_AAD)?;
        if plain.as_slice() == CHECK_PLAINTEXT {
            Ok(())
        } else {
            Err(CryptoError::WrongMasterKey)
        }
    }
}

/// Says so on stderr (logging may not be set up yet) when the key file can be read by other
/// users: whoever reads it can decrypt every signing key.
fn warn_if_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "warning: {} can be read by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
}

/// Where the master key comes from, for messages.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    Config,
    File(PathBuf),
    Generated(PathBuf),
}

/// Finds the master key: `master_key`, else `master_key_file`, else `{data_dir}/master.key`.
/// Generates the default file only when `database_has_keys` is false.
pub fn load(
    config: &Config,
    database_has_keys: bool,
) -> Result<(MasterKey, MasterKeySource), CryptoError> {
    if let Some(text) = &config.master_key {
        return Ok((MasterKey::from_base64(text)?, MasterKeySource::Config));
    }
    let (path, explicit) = match &config.master_key_file {
        Some(p) => (p.clone(), true),
        None => (config.data_dir.join("master.key"), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = MasterKey::from_base64(&text).map_err(|e| {
                CryptoError::MasterKey(format!("master_key_file {}: {e}", path.display()))
            })?;
            warn_if_readable_by_others(&path);
            Ok((key, MasterKeySource::File(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if database_has_keys {
                return Err(CryptoError::MasterKey(format!(
                    "config key `master_key_file`: {} does not exist, but the database holds keys \
                     encrypted under a master key; restore that file or set master_key to the original key",
                    path.display()
                )));
            }
            if explicit {
                return Err(CryptoError::MasterKey(format!(
                    "config key `master_key_file`: {} does not exist; create it with \
                     `head -c32 /dev/urandom | base64 > {}` and chmod 600",
                    path.display(),
                    path.display()
                )));
            }
            let key = MasterKey::generate();
            write_private_file(&path, key.to_base64().as_bytes()).map_err(|e| {
                CryptoError::MasterKey(format!(
                    "cannot write {}: {e}; check data_dir",
                    path.display()
                ))
            })?;
            Ok((key, MasterKeySource::Generated(path)))
        }
        Err(e) => Err(CryptoError::MasterKey(format!(
            "config key `master_key_file`: cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Creates `path` with mode 0600 (never overwriting an existing file).
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::data_dir::create_private(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let key = MasterKey::generate();
        let ct = key.encrypt(b"private", b"row-1").unwrap();
        assert_eq!(key.decrypt(&ct, b"row-1").unwrap().as_slice(), b"private");
        assert!(matches!(
            key.decrypt(&ct, b"row-2"),
            Err(CryptoError::WrongMasterKey)
        ));
        assert!(matches!(
            MasterKey::generate().decrypt(&ct, b"row-1"),
            Err(CryptoError::WrongMasterKey)
        ));
    }

    #[test]
    fn check_value_catches_a_wrong_key() {
        let key = MasterKey::generate();
        let check = key.check_value().unwrap();
        key.verify_check_value(&check).unwrap();
        assert!(MasterKey::generate().verify_check_value(&check).is_err());
    }

    #[test]
    fn default_file_is_generated_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let (k1, src) = load(&config, false).unwrap();
        assert!(matches!(src, MasterKeySource::Generated(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, src) = load(&config, true).unwrap();
        assert!(matches!(src, MasterKeySource::File(_)));
        assert_eq!(k1.to_base64(), k2.to_base64());
    }

    #[test]
    fn missing_file_with_existing_keys_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let err = load(&config, true).unwrap_err().to_string();
        assert!(err.contains("master_key_file"), "{err}");
        assert!(!dir.path().join("master.key").exists());
    }
}
