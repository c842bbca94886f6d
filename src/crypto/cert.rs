//! Self-signed X.509 certificates for keys that relying parties pin by certificate instead of
//! fetching a key set: a SAML service provider reads the IdP's signing certificate from its
//! metadata. Nobody builds a chain to it, so a self-signed certificate is what SAML metadata
//! expects (the SAML V2.0 Metadata Interoperability Profile: the key counts, not its issuer).

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509NameBuilder};

use super::CryptoError;
use crate::clock::UnixTime;

/// How long a generated certificate is valid. An SP that checks validity would fail on expiry, not
/// on a planned rotation, so the term is long and rotation is an explicit act.
pub const VALIDITY_DAYS: i64 = 3650;

/// A self-signed certificate for `key` with the subject `CN=common_name`, as DER.
pub fn self_signed(
    key: &PKey<Private>,
    common_name: &str,
    now: UnixTime,
) -> Result<Vec<u8>, CryptoError> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", common_name)?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    // A day back, so a relying party whose clock runs behind does not find it not yet valid.
    let not_before = Asn1Time::from_unix(now.0 - 86_400)?;
    let not_after = Asn1Time::from_unix(now.0 + VALIDITY_DAYS * 86_400)?;
    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(key)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build().to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_holds_the_key_and_verifies_itself() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let now = UnixTime(1_700_000_000);
        let der = self_signed(&key, "Sesame SAML acme", now).unwrap();
        let cert = X509::from_der(&der).unwrap();
        assert!(cert.public_key().unwrap().public_eq(&key));
        assert!(cert.verify(&key).unwrap(), "self-signed");
        let cn = cert.subject_name().entries().next().unwrap().data();
        assert_eq!(cn.to_string().unwrap(), "Sesame SAML acme");
        assert!(cert.not_before() < Asn1Time::from_unix(now.0).unwrap());
        assert!(cert.not_after() > Asn1Time::from_unix(now.0 + 3000 * 86_400).unwrap());
    }
}
