//! `OAuthForm`: the body of the token, introspection and revocation endpoints. RFC 6749 §3.1/§3.2:
//! parameters are `application/x-www-form-urlencoded`, and none may appear twice; a malformed body
//! is `invalid_request` in the protocol's own shape, never axum's plain-text rejection.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request};
use axum::http::header;

use super::error::OAuthError;

/// Form parameters, each present at most once. Empty values count as absent (RFC 6749 §3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuthForm(pub HashMap<String, String>);

impl OAuthForm {
    pub fn parse(body: &[u8]) -> Result<OAuthForm, OAuthError> {
        let mut params = HashMap::new();
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let (key, value) = (decoded(key)?, decoded(value)?);
            if value.is_empty() {
                continue;
            }
            if params.contains_key(&key) {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter '{}' is repeated",
                    printable(&key)
                )));
            }
            params.insert(key, value);
        }
        Ok(OAuthForm(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The parameter, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("parameter '{name}' is missing")))
    }
}

/// One name or value of a form: `+` is a space, `%XX` a byte, and the bytes must be UTF-8 (RFC
/// 6749 Appendix B). Not replaced where they are not: a `state` must come back exactly as sent
/// (§4.1.2), which a replacement character would silently break.
fn decoded(raw: &[u8]) -> Result<String, OAuthError> {
    let spaced: std::borrow::Cow<'_, [u8]> = if raw.contains(&b'+') {
        raw.iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect::<Vec<u8>>()
            .into()
    } else {
        raw.into()
    };
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| OAuthError::InvalidRequest("a parameter is not UTF-8".into()))
}

/// A parameter name as it may appear in `error_description` (RFC 6749 §5.2 allows only
/// `%x20-21 / %x23-5B / %x5D-7E`): other characters dropped, at most 64 kept.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e) && *c != '\'')
        .take(64)
        .collect()
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, OAuthError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded".into(),
            ));
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    OAuthError::RequestTooLarge
                } else {
                    OAuthError::InvalidRequest("the body could not be read".into())
                }
            })?;
        OAuthForm::parse(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let f = OAuthForm::parse(b"grant_type=client_credentials&scope=a%20b+c&empty=").unwrap();
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("scope"), Some("a b c"));
        assert_eq!(f.get("empty"), None);
        assert_eq!(f.require("code").unwrap_err().code(), "invalid_request");
    }

    #[test]
    fn descriptions_never_carry_unsafe_characters() {
        let e = OAuthForm::parse("a%22%5C%0A\u{e9}b=1&a%22%5C%0A\u{e9}b=2".as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(
            !text.contains('"') && !text.contains('\\') && !text.contains('\n'),
            "{text}"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_not_replaced() {
        let e = OAuthForm::parse(b"state=%ff%fe").unwrap_err();
        assert_eq!(e.code(), "invalid_request");
        assert!(OAuthForm::parse(b"st%C3=x").is_err());
        assert!(OAuthForm::parse(b"state=\xff").is_err());
        let f = OAuthForm::parse("state=%E2%9C%93+%EF%BF%BD&bare&=v&a=b=c".as_bytes()).unwrap();
        assert_eq!(f.get("state"), Some("\u{2713} \u{fffd}"));
        assert_eq!(f.get("a"), Some("b=c"));
        assert_eq!(f.get("bare"), None);
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let e = OAuthForm::parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(
            e,
            OAuthError::InvalidRequest("parameter 'scope' is repeated".into())
        );
    }
}
