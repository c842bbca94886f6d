//! Verifying what an SP signed: the query string of a Redirect-binding message (SAML Bindings
//! §3.4.4.1) and the enveloped signature of a POST-binding one (xmlsec, through samael).
//!
//! SHA-1 signatures are refused: an SP still on them must be moved to RSA-SHA256.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::X509;
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

/// The XML signature algorithms accepted on a POST-binding message.
const ALLOWED: [AllowedSignatureAlgorithm; 4] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
];

/// The raw (still percent-encoded) value of `name` in `query`; an error if it appears twice.
fn raw_param<'a>(query: &'a str, name: &str) -> Result<Option<&'a str>, String> {
    let mut found = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            if found.is_some() {
                return Err(format!("{name} appears twice"));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

fn decoded(raw: &str) -> String {
    url::form_urlencoded::parse(format!("v={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Whether the query carries a signature at all.
pub fn redirect_is_signed(query: &str) -> bool {
    matches!(raw_param(query, "Signature"), Ok(Some(_)))
}

/// Verifies a Redirect-binding signature over `field` (`SAMLRequest` or `SAMLResponse`),
/// `RelayState` and `SigAlg` exactly as they were encoded in `query`: the binding requires the
/// original encoding, which re-encoding the decoded values would not always reproduce.
pub fn verify_redirect(query: &str, field: &str, certificates: &[String]) -> Result<(), String> {
    let message = raw_param(query, field)?.ok_or_else(|| format!("{field} is missing"))?;
    let relay = raw_param(query, "RelayState")?;
    let sig_alg = raw_param(query, "SigAlg")?.ok_or("the request is not signed (no SigAlg)")?;
    let signature =
        raw_param(query, "Signature")?.ok_or("the request is not signed (no Signature)")?;
    let digest = match decoded(sig_alg).as_str() {
        RSA_SHA256 | ECDSA_SHA256 => MessageDigest::sha256(),
        RSA_SHA384 => MessageDigest::sha384(),
        RSA_SHA512 => MessageDigest::sha512(),
        other => return Err(format!("the signature algorithm {other} is not accepted")),
    };
    let mut signed = format!("{field}={message}");
    if let Some(r) = relay {
        signed.push_str("&RelayState=");
        signed.push_str(r);
    }
    signed.push_str("&SigAlg=");
    signed.push_str(sig_alg);
    // base64 never holds a space: one here was a '+' the SP forgot to encode.
    let signature = STANDARD
        .decode(decoded(signature).replace(' ', "+"))
        .map_err(|_| "the Signature is not base64".to_string())?;
    for cert in certificates {
        let Some(key) = STANDARD
            .decode(cert)
            .ok()
            .and_then(|der| X509::from_der(&der).ok())
            .and_then(|x| x.public_key().ok())
        else {
            continue;
        };
        // XML Signature's ECDSA value is r‖s (RFC 4051 §3.3), OpenSSL verifies DER; some SPs
        // send DER all the same.
        let der = (key.id() == openssl::pkey::Id::EC)
            .then(|| ecdsa_der(&signature))
            .flatten();
        let verified = der.iter().chain([&signature]).any(|candidate| {
            Verifier::new(digest, &key)
                .and_then(|mut v| v.verify_oneshot(candidate, signed.as_bytes()))
                .unwrap_or(false)
        });
        if verified {
            return Ok(());
        }
    }
    Err("the signature does not verify with the SP's certificate".into())
}

/// An ECDSA signature read as the concatenation of `r` and `s`, each of half its length, in
/// DER; `None` when it cannot be one.
fn ecdsa_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let r = openssl::bn::BigNum::from_slice(r).ok()?;
    let s = openssl::bn::BigNum::from_slice(s).ok()?;
    openssl::ecdsa::EcdsaSig::from_private_components(r, s)
        .ok()?
        .to_der()
        .ok()
}

/// Verifies the enveloped signature of a POST-binding message against the SP's certificates and
/// returns only what the signature covers, so nothing unsigned (a wrapped element) is read after.
pub fn verify_post(xml: &str, certificates: &[String]) -> Result<String, String> {
    let certs: Vec<CertificateDer> = certificates
        .iter()
        .filter_map(|c| STANDARD.decode(c).ok())
        .map(CertificateDer::from)
        .collect();
    if certs.is_empty() {
        return Err("the SP has no signing certificate".into());
    }
    let signed = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &certs,
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(&ALLOWED),
    )
    .map_err(|e| {
        // The library's words (xmlsec's, OpenSSL's) are for the log, not for the SP.
        tracing::info!(error = %e, "a POST-binding signature does not verify");
        "the signature does not verify with the SP's certificate".to_string()
    })?;
    // SAML Core §5.4.2: the signature references the root of the protocol message. One over an
    // element inside it (signature wrapping) signs something else, whatever that contains.
    let root_id = |xml: &str| super::request::root(xml).ok().and_then(|r| r.id);
    match root_id(xml) {
        Some(id) if root_id(&signed).as_ref() == Some(&id) => Ok(signed),
        _ => Err("the signature does not cover the message itself, only part of it".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;

    fn keypair() -> (PKey<openssl::pkey::Private>, String) {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let der =
            crate::crypto::cert::self_signed(&key, "sp", crate::clock::UnixTime(1_700_000_000))
                .unwrap();
        (key, STANDARD.encode(der))
    }

    fn signed_query(key: &PKey<openssl::pkey::Private>, relay: &str) -> String {
        let alg = "http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256";
        let unsigned = format!("SAMLRequest=abc%2Bdef%3D&RelayState={relay}&SigAlg={alg}");
        let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
        let sig = signer.sign_oneshot_to_vec(unsigned.as_bytes()).unwrap();
        let sig: String =
            url::form_urlencoded::byte_serialize(STANDARD.encode(sig).as_bytes()).collect();
        format!("{unsigned}&Signature={sig}")
    }

    #[test]
    fn the_original_encoding_is_what_verifies() {
        let (key, cert) = keypair();
        // Lower-case hex in RelayState: re-encoding would write %2F and break the signature.
        let query = signed_query(&key, "a%2fb");
        let certs = vec![cert];
        verify_redirect(&query, "SAMLRequest", &certs).unwrap();
        assert!(redirect_is_signed(&query));
        let tampered = query.replace("abc", "abd");
        assert!(verify_redirect(&tampered, "SAMLRequest", &certs).is_err());
        let (_, other) = keypair();
        assert!(verify_redirect(&query, "SAMLRequest", &[other]).is_err());
        let doubled = format!("{query}&SigAlg=x");
        assert!(
            verify_redirect(&doubled, "SAMLRequest", &certs)
                .unwrap_err()
                .contains("twice")
        );
        let sha1 = query.replace("rsa-sha256", "rsa-sha1");
        assert!(
            verify_redirect(&sha1, "SAMLRequest", &certs)
                .unwrap_err()
                .contains("not accepted")
        );
        let unsigned = "SAMLRequest=abc";
        assert!(!redirect_is_signed(unsigned));
        assert!(verify_redirect(unsigned, "SAMLRequest", &certs).is_err());
    }

    #[test]
    fn an_ecdsa_signature_is_read_as_xml_signature_writes_it() {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        let cert = STANDARD.encode(
            crate::crypto::cert::self_signed(&key, "sp", crate::clock::UnixTime(1_700_000_000))
                .unwrap(),
        );
        let alg = "http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23ecdsa-sha256";
        let unsigned = format!("SAMLRequest=abc&RelayState=r&SigAlg={alg}");
        let der = Signer::new(MessageDigest::sha256(), &key)
            .unwrap()
            .sign_oneshot_to_vec(unsigned.as_bytes())
            .unwrap();
        // r‖s, each left-padded to the curve's 32 bytes.
        let sig = openssl::ecdsa::EcdsaSig::from_der(&der).unwrap();
        let mut raw = sig.r().to_vec_padded(32).unwrap();
        raw.extend(sig.s().to_vec_padded(32).unwrap());
        let query = |bytes: &[u8]| {
            let b64: String =
                url::form_urlencoded::byte_serialize(STANDARD.encode(bytes).as_bytes()).collect();
            format!("{unsigned}&Signature={b64}")
        };
        let certs = vec![cert];
        verify_redirect(&query(&raw), "SAMLRequest", &certs).unwrap();
        // DER, as some SPs send it, verifies too; a tampered r‖s does not.
        verify_redirect(&query(&der), "SAMLRequest", &certs).unwrap();
        raw[5] ^= 1;
        assert!(verify_redirect(&query(&raw), "SAMLRequest", &certs).is_err());
    }
}
