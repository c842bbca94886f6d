//! XML Encryption of an assertion for the SP (SAML Core §2.3.4, XML Encryption 1.1): a fresh
//! content key encrypts the (already signed) assertion with AES-256-GCM (or AES-128-GCM or
//! AES-128-CBC for SP libraries that lack it), and
//! RSA-OAEP encrypts that key for the certificate the SP registered for encryption.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::rsa::Padding;
use openssl::symm::Cipher;
use openssl::x509::X509;

use super::c14n::{DS, El};
use crate::store::service_providers::Encryption;

#[derive(Debug, thiserror::Error)]
#[error("encrypting the assertion failed: {0}")]
pub struct EncryptError(String);

fn err(e: impl std::fmt::Display) -> EncryptError {
    EncryptError(e.to_string())
}

impl Encryption {
    /// Sesame's block ciphers, most preferred first.
    pub const ALL: [Encryption; 3] = [
        Encryption::Aes256Gcm,
        Encryption::Aes128Gcm,
        Encryption::Aes128Cbc,
    ];

    /// The XML Encryption algorithm URI.
    pub fn algorithm(self) -> &'static str {
        match self {
            Encryption::Aes256Gcm => "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            Encryption::Aes128Gcm => "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            Encryption::Aes128Cbc => "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        }
    }
}

const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";
const RSA_OAEP: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// `assertion` as a `saml:EncryptedAssertion` for the holder of `certificate` (DER).
pub fn assertion(
    assertion: &str,
    certificate: &[u8],
    method: Encryption,
) -> Result<El, EncryptError> {
    let (cipher, iv_len) = match method {
        Encryption::Aes256Gcm => (Cipher::aes_256_gcm(), 12),
        Encryption::Aes128Gcm => (Cipher::aes_128_gcm(), 12),
        Encryption::Aes128Cbc => (Cipher::aes_128_cbc(), 16),
    };
    let mut key = zeroize::Zeroizing::new(vec![0u8; cipher.key_len()]);
    let mut iv = vec![0u8; iv_len];
    openssl::rand::rand_bytes(&mut key).map_err(err)?;
    openssl::rand::rand_bytes(&mut iv).map_err(err)?;
    // XML Encryption: the IV first, then the ciphertext (then, for GCM, the 128-bit tag).
    let mut data = iv.clone();
    match method {
        Encryption::Aes256Gcm | Encryption::Aes128Gcm => {
            let mut tag = [0u8; 16];
            let sealed = openssl::symm::encrypt_aead(
                cipher,
                &key,
                Some(&iv),
                &[],
                assertion.as_bytes(),
                &mut tag,
            )
            .map_err(err)?;
            data.extend_from_slice(&sealed);
            data.extend_from_slice(&tag);
        }
        // PKCS#7 padding ends with the pad length, which is all XML Encryption's padding asks.
        Encryption::Aes128Cbc => data.extend_from_slice(
            &openssl::symm::encrypt(cipher, &key, Some(&iv), assertion.as_bytes()).map_err(err)?,
        ),
    }
    let rsa = X509::from_der(certificate)
        .and_then(|c| c.public_key())
        .and_then(|k| k.rsa())
        .map_err(|_| EncryptError("the SP's encryption certificate holds no RSA key".into()))?;
    let mut wrapped = vec![0u8; usize::try_from(rsa.size()).map_err(err)?];
    let n = rsa
        .public_encrypt(&key, &mut wrapped, Padding::PKCS1_OAEP)
        .map_err(err)?;
    wrapped.truncate(n);
    let xenc = |name| El::new(name, XENC);
    let cipher_value = |bytes: &[u8]| {
        xenc("xenc:CipherData").child(xenc("xenc:CipherValue").text(STANDARD.encode(bytes)))
    };
    let encrypted_key = xenc("xenc:EncryptedKey")
        .child(
            xenc("xenc:EncryptionMethod")
                .attr("Algorithm", RSA_OAEP)
                .child(El::new("ds:DigestMethod", DS).attr("Algorithm", SHA1)),
        )
        .child(cipher_value(&wrapped));
    Ok(El::new("saml:EncryptedAssertion", ASSERTION).child(
        xenc("xenc:EncryptedData")
            .attr("Type", ELEMENT)
            .child(xenc("xenc:EncryptionMethod").attr("Algorithm", method.algorithm()))
            .child(El::new("ds:KeyInfo", DS).child(encrypted_key))
            .child(cipher_value(&data)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::PKey;

    fn unwrap_cipher_values(xml: &str) -> (Vec<u8>, Vec<u8>) {
        let values: Vec<Vec<u8>> = xml
            .split("<xenc:CipherValue>")
            .skip(1)
            .map(|v| STANDARD.decode(v.split('<').next().unwrap()).unwrap())
            .collect();
        (values[0].clone(), values[1].clone())
    }

    #[test]
    fn the_holder_of_the_key_reads_the_assertion_back() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let cert =
            crate::crypto::cert::self_signed(&key, "sp", crate::clock::UnixTime(1_700_000_000))
                .unwrap();
        let plain = "<saml:Assertion>secret &amp; signed</saml:Assertion>";
        for method in [
            Encryption::Aes256Gcm,
            Encryption::Aes128Gcm,
            Encryption::Aes128Cbc,
        ] {
            let xml = assertion(plain, &cert, method).unwrap().canonical();
            assert!(!xml.contains("secret"));
            assert!(xml.contains(method.algorithm()));
            let (wrapped, data) = unwrap_cipher_values(&xml);
            let rsa = key.rsa().unwrap();
            let mut content_key = vec![0u8; 256];
            let n = rsa
                .private_decrypt(&wrapped, &mut content_key, Padding::PKCS1_OAEP)
                .unwrap();
            content_key.truncate(n);
            let back = match method {
                Encryption::Aes256Gcm | Encryption::Aes128Gcm => {
                    let (iv, rest) = data.split_at(12);
                    let (ct, tag) = rest.split_at(rest.len() - 16);
                    let cipher = match method {
                        Encryption::Aes256Gcm => Cipher::aes_256_gcm(),
                        _ => Cipher::aes_128_gcm(),
                    };
                    openssl::symm::decrypt_aead(cipher, &content_key, Some(iv), &[], ct, tag)
                        .unwrap()
                }
                Encryption::Aes128Cbc => {
                    let (iv, ct) = data.split_at(16);
                    openssl::symm::decrypt(Cipher::aes_128_cbc(), &content_key, Some(iv), ct)
                        .unwrap()
                }
            };
            assert_eq!(back, plain.as_bytes());
        }
        let not_rsa = crate::crypto::cert::self_signed(
            &PKey::from_ec_key(
                openssl::ec::EcKey::generate(
                    &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                        .unwrap(),
                )
                .unwrap(),
            )
            .unwrap(),
            "ec",
            crate::clock::UnixTime(1_700_000_000),
        )
        .unwrap();
        assert!(assertion(plain, &not_rsa, Encryption::Aes256Gcm).is_err());
    }
}
