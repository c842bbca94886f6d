//! Which client is calling, from the credentials it presented (RFC 6749 §2.3). Parsing is pure;
//! checking a secret is one keyed digest compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use axum::http::{HeaderMap, header};

use super::error::OAuthError;
use super::form::OAuthForm;
use crate::app::App;
use crate::crypto::secret::{DigestKey, SecretString};
use crate::store::clients::{AuthMethod, Client};
use crate::tenant::resolve::TenantCtx;

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
    /// Only `client_id`: a public client (`none`).
    Public { client_id: String },
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Presented::Basic { client_id, .. }
            | Presented::Post { client_id, .. }
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

    /// Checks the credentials against the registered client. Every failure is the same
    /// `invalid_client`, so a caller learns nothing about which part was wrong.
    pub fn authenticate(&self, client: &Client, keys: &DigestKey) -> Result<(), OAuthError> {
        let fail = OAuthError::InvalidClient {
            basic: self.used_basic(),
        };
        let secret = match (self, client.auth_method) {
            (Presented::Basic { secret, .. }, AuthMethod::ClientSecretBasic)
            | (Presented::Post { secret, .. }, AuthMethod::ClientSecretPost) => secret,
            (Presented::Public { .. }, AuthMethod::None) => return Ok(()),
            _ => return Err(fail),
        };
        match &client.secret_hash {
            Some(stored) if keys.matches(stored, secret.expose()) => Ok(()),
            _ => Err(fail),
        }
    }
}

/// The calling client, authenticated by the credentials in the request (token, introspection and
/// revocation endpoints). An unknown client costs the same digest as a wrong secret, so timing
/// does not tell which client ids exist.
pub async fn authenticate(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Client, OAuthError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presented = Presented::parse(authorization, form)?;
    match app.client(tenant.id(), presented.client_id()).await? {
        Some(client) => {
            presented.authenticate(&client, &app.client_secrets)?;
            Ok((*client).clone())
        }
        None => {
            let _ = app.client_secrets.digest(presented.client_id());
            Err(OAuthError::InvalidClient {
                basic: presented.used_basic(),
            })
        }
    }
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding.
fn parse_basic(value: &str) -> Result<(String, SecretString), OAuthError> {
    let bad = || OAuthError::InvalidClient { basic: true };
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let id = unescape(id).filter(|i| !i.is_empty()).ok_or_else(bad)?;
    let secret = unescape(secret).ok_or_else(bad)?;
    Ok((id, SecretString::new(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::apps::Channel;

    fn client(method: AuthMethod, keys: &DigestKey, secret: Option<&str>) -> Client {
        Client {
            client_id: "crm".into(),
            app_id: None,
            name: "CRM".into(),
            secret_hash: secret.map(|s| keys.digest(s)),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            auth_method: method,
            channel: Channel::Web,
            first_party: true,
            access_token_lifetime: None,
            id_token_lifetime: None,
            refresh_token_lifetime: None,
            jwks: None,
            jwks_uri: None,
            backchannel_logout_uri: None,
            id_token_alg: None,
            allowed_scopes: vec![],
            allowed_resources: vec![],
        }
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
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
