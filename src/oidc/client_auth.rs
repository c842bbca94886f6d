//! Which client is calling, from the credentials it presented (RFC 6749 §2.3, OIDC Core §9).
//! Parsing is pure; a shared secret is checked as one keyed digest compared in constant time, an
//! assertion (`private_key_jwt`) by [`super::assertion`]. Repeated failures from one address for
//! one client are refused for a while, so secrets cannot be brute-forced.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use axum::http::{HeaderMap, header};

use super::assertion::{self, ASSERTION_TYPE};
use super::error::OAuthError;
use super::form::OAuthForm;
use crate::app::App;
use crate::crypto::secret::{DigestKey, SecretString};
use crate::store::clients::{AuthMethod, Client};
use crate::store::jtis;
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;

/// Failed authentications of one client from one address before it must wait.
pub const MAX_FAILURES: u32 = 10;
/// The window those failures count in, in seconds.
pub const FAILURE_WINDOW: i64 = 300;

/// Credentials as presented, before any lookup.
#[derive(Debug, Clone)]
pub enum Presented {
    /// `Authorization: Basic` (client_secret_basic).
    Basic {
        client_id: String,
        secret: SecretString,
    },
    /// `client_id` and `client_secret` in the body (client_secret_post).
    Post {
        client_id: String,
        secret: SecretString,
    },
    /// A signed JWT (private_key_jwt); `client_id` is its `iss`.
    Assertion { client_id: String, jwt: String },
    /// Only `client_id`: a public client (`none`).
    Public { client_id: String },
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Presented::Basic { client_id, .. }
            | Presented::Post { client_id, .. }
            | Presented::Assertion { client_id, .. }
            | Presented::Public { client_id } => client_id,
        }
    }

    fn used_basic(&self) -> bool {
        matches!(self, Presented::Basic { .. })
    }

    /// Reads the credentials. More than one method at once is `invalid_request` (§2.3).
    pub fn parse(authorization: Option<&str>, form: &OAuthForm) -> Result<Presented, OAuthError> {
        let basic = match authorization {
            Some(value) => Some(parse_basic(value)?),
            None => None,
        };
        let body_id = form.get("client_id");
        let body_secret = form.get("client_secret");
        if let Some(kind) = form.get("client_assertion_type") {
            if basic.is_some() || body_secret.is_some() {
                return Err(OAuthError::InvalidRequest(
                    "use one client authentication method, not two".into(),
                ));
            }
            if kind != ASSERTION_TYPE {
                return Err(OAuthError::InvalidClient { basic: false });
            }
            let jwt = form.require("client_assertion")?;
            let client_id =
                assertion::claimed_client(jwt).ok_or(OAuthError::InvalidClient { basic: false })?;
            if body_id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::InvalidClient { basic: false });
            }
            return Ok(Presented::Assertion {
                client_id,
                jwt: jwt.to_string(),
            });
        }
        match (basic, body_id, body_secret) {
            (Some(_), _, Some(_)) => Err(OAuthError::InvalidRequest(
                "use one client authentication method, not two".into(),
            )),
            (Some((id, _)), Some(body), None) if body != id => Err(OAuthError::InvalidRequest(
                "client_id in the body differs from the Basic credentials".into(),
            )),
            (Some((client_id, secret)), _, None) => Ok(Presented::Basic { client_id, secret }),
            (None, Some(id), Some(secret)) => Ok(Presented::Post {
                client_id: id.to_string(),
                secret: SecretString::new(secret.to_string()),
            }),
            (None, Some(id), None) => Ok(Presented::Public {
                client_id: id.to_string(),
            }),
            (None, None, _) => Err(OAuthError::InvalidClient { basic: false }),
        }
    }

    /// Checks a shared secret (or its absence, for a public client) against the registered
    /// client. Every failure is the same `invalid_client` and costs the same digest, so a caller
    /// learns nothing about which part was wrong. Assertions are checked by [`authenticate`].
    pub fn authenticate(&self, client: &Client, keys: &DigestKey) -> Result<(), OAuthError> {
        let fail = OAuthError::InvalidClient {
            basic: self.used_basic(),
        };
        let (secret, method_fits) = match (self, client.auth_method) {
            (Presented::Basic { secret, .. }, m) => {
                (Some(secret), m == AuthMethod::ClientSecretBasic)
            }
            (Presented::Post { secret, .. }, m) => {
                (Some(secret), m == AuthMethod::ClientSecretPost)
            }
            (Presented::Public { .. }, AuthMethod::None) => return Ok(()),
            _ => (None, false),
        };
        let presented = secret.map(SecretString::expose).unwrap_or_default();
        let matches = match &client.secret_hash {
            Some(stored) => keys.matches(stored, presented),
            None => {
                let _ = keys.digest(presented);
                false
            }
        };
        if matches && method_fits {
            Ok(())
        } else {
            Err(fail)
        }
    }
}

/// The calling client, authenticated by the credentials in the request at `endpoint` (`token`,
/// `introspect` or `revoke`). An unknown client costs the same digest as a wrong secret, so
/// timing does not tell which client ids exist.
pub async fn authenticate(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    caller: &ClientInfo,
    form: &OAuthForm,
    endpoint: &str,
) -> Result<Client, OAuthError> {
    if super::repeats_authorization(headers) {
        return Err(OAuthError::InvalidRequest(
            "send one Authorization header, not several".into(),
        ));
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presented = Presented::parse(authorization, form)?;
    let now = app.now();
    let limit_key = format!(
        "{}\u{0}{}\u{0}{}",
        tenant.id(),
        presented.client_id(),
        caller.ip.as_deref().unwrap_or("")
    );
    if let Some(wait) = app.client_auth_failures.blocked_for(&limit_key, now) {
        return Err(OAuthError::TooManyAttempts { retry_after: wait });
    }
    let outcome = check(app, tenant, &presented, endpoint).await;
    match &outcome {
        Err(OAuthError::InvalidClient { .. }) => {
            app.client_auth_failures.record_failure(&limit_key, now);
        }
        Ok(_) => app.client_auth_failures.clear(&limit_key),
        Err(_) => {}
    }
    outcome
}

async fn check(
    app: &App,
    tenant: &TenantCtx,
    presented: &Presented,
    endpoint: &str,
) -> Result<Client, OAuthError> {
    let fail = OAuthError::InvalidClient {
        basic: presented.used_basic(),
    };
    let Some(client) = app.client(tenant.id(), presented.client_id()).await? else {
        let _ = app.client_secrets.digest(presented.client_id());
        return Err(fail);
    };
    match presented {
        Presented::Assertion { jwt, client_id } => {
            if client.auth_method != AuthMethod::PrivateKeyJwt {
                return Err(fail);
            }
            let keys = assertion::client_keys(app, &tenant.tenant, &client).await?;
            let audiences = vec![
                format!("{}/{endpoint}", tenant.issuer),
                tenant.issuer.to_string(),
            ];
            let verified = assertion::verify(jwt, &keys, client_id, &audiences, app.now())
                .ok_or(fail.clone())?;
            let (t, cid) = (tenant.id().clone(), client_id.clone());
            let fresh = app
                .store
                .run(move |c| jtis::remember(c, &t, &cid, &verified.jti, verified.exp))
                .await?;
            if !fresh {
                tracing::warn!(client_id = %client_id, "a client assertion was replayed");
                return Err(fail);
            }
        }
        other => other.authenticate(&client, &app.client_secrets)?,
    }
    Ok((*client).clone())
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding, so each is
/// percent-decoded whole (`+` is a space); nothing is split on `&` or `=`.
fn parse_basic(value: &str) -> Result<(String, SecretString), OAuthError> {
    let bad = || OAuthError::InvalidClient { basic: true };
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> Option<String> {
        let spaced = s.replace('+', " ");
        percent_decode(&spaced)
    };
    let id = unescape(id).filter(|i| !i.is_empty()).ok_or_else(bad)?;
    let secret = unescape(secret).ok_or_else(bad)?;
    Ok((id, SecretString::new(secret)))
}

/// `%XX` escapes to bytes, the result UTF-8; `None` for a malformed escape.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(method: AuthMethod, keys: &DigestKey, secret: Option<&str>) -> Client {
        Client {
            secret_hash: secret.map(|s| keys.digest(s)),
            grant_types: vec!["client_credentials".into()],
            ..Client::for_tests("crm", method)
        }
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_credentials_are_decoded_whole() {
        let form = OAuthForm::default();
        let keys = DigestKey::new([7; 32]);
        let c = client(AuthMethod::ClientSecretBasic, &keys, Some("right&x=y z"));
        let p = Presented::parse(Some(&basic("crm", "right%26x%3Dy+z")), &form).unwrap();
        p.authenticate(&c, &keys).unwrap();
        let cut = Presented::parse(Some(&basic("crm", "right&anything")), &form).unwrap();
        assert!(
            cut.authenticate(&c, &keys).is_err(),
            "a raw & does not end the secret"
        );
        assert!(Presented::parse(Some(&basic("crm", "bad%zz")), &form).is_err());
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let form = OAuthForm::default();
        let p = Presented::parse(Some(&basic("crm", "a%2Bb%3Ac")), &form).unwrap();
        let keys = DigestKey::new([7; 32]);
        assert_eq!(p.client_id(), "crm");
        p.authenticate(
            &client(AuthMethod::ClientSecretBasic, &keys, Some("a+b:c")),
            &keys,
        )
        .unwrap();
    }

    #[test]
    fn wrong_secret_method_or_key_is_invalid_client() {
        let keys = DigestKey::new([7; 32]);
        let c = client(AuthMethod::ClientSecretBasic, &keys, Some("right"));
        let form = OAuthForm::default();
        let wrong = Presented::parse(Some(&basic("crm", "wrong")), &form).unwrap();
        assert_eq!(
            wrong.authenticate(&c, &keys),
            Err(OAuthError::InvalidClient { basic: true })
        );
        let post = Presented::parse(
            None,
            &OAuthForm::parse(b"client_id=crm&client_secret=right").unwrap(),
        )
        .unwrap();
        assert_eq!(
            post.authenticate(&c, &keys),
            Err(OAuthError::InvalidClient { basic: false }),
            "method not registered"
        );
        let public = Presented::parse(None, &OAuthForm::parse(b"client_id=crm").unwrap()).unwrap();
        assert!(
            public.authenticate(&c, &keys).is_err(),
            "a confidential client cannot skip its secret"
        );
        let right = Presented::parse(Some(&basic("crm", "right")), &form).unwrap();
        assert!(right.authenticate(&c, &DigestKey::new([8; 32])).is_err());
    }

    #[test]
    fn malformed_and_doubled_credentials() {
        let form = OAuthForm::default();
        for bad in [
            "Bearer x",
            "Basic",
            "Basic !!!",
            &format!("Basic {}", STANDARD.encode("no-colon")),
            &basic("", "s"),
        ] {
            assert!(
                matches!(
                    Presented::parse(Some(bad), &form),
                    Err(OAuthError::InvalidClient { basic: true })
                ),
                "{bad}"
            );
        }
        let both = OAuthForm::parse(b"client_id=crm&client_secret=s").unwrap();
        assert!(matches!(
            Presented::parse(Some(&basic("crm", "s")), &both),
            Err(OAuthError::InvalidRequest(_))
        ));
        let other = OAuthForm::parse(b"client_id=other").unwrap();
        assert!(matches!(
            Presented::parse(Some(&basic("crm", "s")), &other),
            Err(OAuthError::InvalidRequest(_))
        ));
        assert!(matches!(
            Presented::parse(None, &form),
            Err(OAuthError::InvalidClient { basic: false })
        ));
    }
}
