//! The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1), parsed by one pure function.
//!
//! Order matters (RFC 6749 §4.1.2.1): until the client and its redirect URI are known to match,
//! an error is shown to the user and never redirected; after that, errors go back to the client.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::form::OAuthForm;
use super::pkce::CodeChallenge;
use super::redirect::RedirectUri;
use super::reply::{Reply, ResponseMode};
use super::scope::Scope;
use crate::store::clients::{AuthMethod, Client};

/// Scopes a user can grant through the authorization endpoint. Others are ignored (RFC 6749
/// §3.3 lets the server grant less), and the token response says what was granted.
pub const USER_SCOPES: &[&str] = &["openid", "profile", "email", "phone", "offline_access"];

/// Any single parameter longer than this is refused; a longer `state`, which cannot be echoed,
/// on a page.
const MAX_PARAM_LEN: usize = 4096;
const MAX_NONCE_LEN: usize = 512;
const MAX_LOGIN_HINT_LEN: usize = 254;
const MAX_LIST_ITEMS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    Code,
    /// OAuth 2.0 Multiple Response Types §4: no credential, only `state` and `iss`.
    None,
}

/// OIDC Core §3.1.2.1 `prompt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub reply: Reply,
    pub response_type: ResponseType,
    /// Granted scopes, space-separated and sorted.
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    /// OIDC Core §5.5 `claims`: `{"userinfo": {...}, "id_token": {...}}`.
    pub claims: Option<Value>,
    pub acr_values: Vec<String>,
    pub login_hint: Option<String>,
    pub ui_locales: Vec<String>,
    /// The `sub` of the verified `id_token_hint`, set by the endpoint once it has checked the
    /// signature: only that user's sign-in is answered (OIDC Core §3.1.2.1).
    #[serde(default)]
    pub hinted_sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show `message` to the user.
    Page(String),
    /// Back to the client's redirect URI (RFC 6749 §4.1.2.1).
    Redirect {
        /// Boxed: the reply is large, and errors are the rare path.
        reply: Box<Reply>,
        error: &'static str,
        description: String,
    },
}

/// Parses the request of `client` (looked up by the caller from `client_id`; `None` when unknown).
pub fn parse(
    params: &OAuthForm,
    client: Option<&Client>,
    issuer: &str,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let page = |m: &str| Err(AuthorizeError::Page(m.to_string()));
    let Some(client_id) = params.get("client_id") else {
        return page("The app did not say who it is (client_id is missing).");
    };
    let Some(client) = client.filter(|c| c.client_id == client_id) else {
        return page("The app that sent you here is not registered with this organization.");
    };
    let Some(requested_uri) = params.get("redirect_uri") else {
        return page("The app did not say where to return to (redirect_uri is missing).");
    };
    let matched = if client.auth_method == AuthMethod::None {
        RedirectUri::registered_native(requested_uri, &client.redirect_uris)
    } else {
        RedirectUri::registered(requested_uri, &client.redirect_uris)
    };
    let Some(redirect_uri) = matched else {
        return page("The app asked to return to an address it has not registered.");
    };

    // RFC 6749 §4.1.2.1: an error goes back with the exact `state`. One too long to send back
    // cannot, and an answer without it would fail the app's check as a forgery: say so here.
    let state = params.get("state").map(str::to_string);
    if state.as_ref().is_some_and(|s| s.len() > MAX_PARAM_LEN) {
        return page("The app sent a state parameter too long to return to it.");
    }
    let mode_param = params.get("response_mode");
    // The default mode of the response type asked for (OAuth 2.0 Multiple Response Types §5):
    // one that returns a token (`token`, `id_token`, hybrids) answers in the fragment, so that
    // is where the client looks for the error refusing it, too.
    let returns_tokens = params
        .get("response_type")
        .is_some_and(|t| t.split(' ').any(|p| p == "token" || p == "id_token"));
    let mode = mode_param
        .and_then(ResponseMode::parse)
        .unwrap_or(match returns_tokens {
            true => ResponseMode::Fragment,
            false => ResponseMode::Query,
        });
    let reply = Reply::new(redirect_uri, mode, state, issuer);
    let fail = |error: &'static str, description: &str| {
        Err(AuthorizeError::Redirect {
            reply: Box::new(reply.clone()),
            error,
            description: description.to_string(),
        })
    };

    if params.0.values().any(|v| v.len() > MAX_PARAM_LEN) {
        return fail(
            "invalid_request",
            &format!("a parameter is longer than {MAX_PARAM_LEN} bytes"),
        );
    }
    if params.get("request").is_some() {
        return fail("request_not_supported", "request objects are not supported");
    }
    if params.get("request_uri").is_some() {
        return fail("request_uri_not_supported", "request_uri is not supported");
    }
    if params.get("registration").is_some() {
        return fail(
            "registration_not_supported",
            "the registration parameter is not supported",
        );
    }
    let response_type = match params.get("response_type") {
        Some("code") => ResponseType::Code,
        Some("none") => ResponseType::None,
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "response_type must be code or none",
            );
        }
        None => return fail("invalid_request", "response_type is missing"),
    };
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return fail(
            "unauthorized_client",
            "this client is not registered for the authorization code grant",
        );
    }
    if mode_param.is_some() && mode_param.and_then(ResponseMode::parse).is_none() {
        return fail(
            "invalid_request",
            "response_mode must be query, fragment or form_post",
        );
    }
    let Some(requested) = Scope::parse(params.get("scope").unwrap_or("")) else {
        return fail("invalid_scope", "scope is malformed");
    };
    let granted: Vec<&str> = USER_SCOPES
        .iter()
        .copied()
        .filter(|s| requested.contains(s))
        .collect();

    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(challenge), method) => match CodeChallenge::parse(challenge, method) {
            Ok(c) => Some(c.as_str().to_string()),
            Err(e) => return fail("invalid_request", &e.to_string()),
        },
        (None, Some(_)) => {
            return fail(
                "invalid_request",
                "code_challenge_method was sent without code_challenge",
            );
        }
        (None, None) => None,
    };
    if code_challenge.is_none() && client.auth_method == AuthMethod::None {
        return fail(
            "invalid_request",
            "PKCE (code_challenge with S256) is required for public clients",
        );
    }

    let nonce = params.get("nonce").map(str::to_string);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return fail("invalid_request", "nonce is too long");
    }

    let mut prompt = Prompt::default();
    for value in params.get("prompt").unwrap_or("").split(' ') {
        match value {
            "" => {}
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            _ => return fail("invalid_request", "prompt has an unknown value"),
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
        return fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        );
    }

    let max_age = match params.get("max_age") {
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => return fail("invalid_request", "max_age must be a non-negative integer"),
        },
        None => None,
    };

    let claims = match params.get("claims") {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map))
                if ["userinfo", "id_token"]
                    .iter()
                    .all(|k| map.get(*k).is_none_or(Value::is_object)) =>
            {
                Some(Value::Object(map))
            }
            _ => {
                return fail(
                    "invalid_request",
                    "claims must be a JSON object (OIDC Core section 5.5)",
                );
            }
        },
        None => None,
    };

    let list = |name: &str| -> Vec<String> {
        params
            .get(name)
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .take(MAX_LIST_ITEMS)
            .map(str::to_string)
            .collect()
    };
    let login_hint = params
        .get("login_hint")
        .filter(|h| h.len() <= MAX_LOGIN_HINT_LEN)
        .map(str::to_string);

    Ok(AuthorizeRequest {
        client_id: client.client_id.clone(),
        reply,
        response_type,
        scope: granted.join(" "),
        nonce,
        code_challenge,
        prompt,
        max_age,
        claims,
        acr_values: list("acr_values"),
        login_hint,
        ui_locales: list("ui_locales"),
        hinted_sub: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://id.example.com/t/acme";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(method: AuthMethod) -> Client {
        Client {
            redirect_uris: vec!["https://crm.example.com/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..Client::for_tests("crm", method)
        }
    }

    fn form(q: &str) -> OAuthForm {
        OAuthForm::parse(q.as_bytes()).unwrap()
    }

    const BASE: &str =
        "client_id=crm&redirect_uri=https%3A%2F%2Fcrm.example.com%2Fcb&response_type=code&state=s1";

    fn parse_q(extra: &str, method: AuthMethod) -> Result<AuthorizeRequest, AuthorizeError> {
        parse(&form(&format!("{BASE}{extra}")), Some(&client(method)), ISS)
    }

    fn redirect_error(r: Result<AuthorizeRequest, AuthorizeError>) -> &'static str {
        match r {
            Err(AuthorizeError::Redirect {
                error,
                reply,
                description,
            }) => {
                assert_eq!(reply.state.as_deref(), Some("s1"));
                // RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E only.
                assert!(
                    description
                        .bytes()
                        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
                    "{description}"
                );
                error
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_keeps_known_scopes_only() {
        let r = parse_q(
            "&scope=openid%20email%20admin:all&nonce=n&code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&prompt=login&max_age=60",
            AuthMethod::ClientSecretBasic,
        )
        .unwrap();
        assert_eq!(r.scope, "openid email");
        assert_eq!(r.nonce.as_deref(), Some("n"));
        assert_eq!(r.code_challenge.as_deref(), Some(CHALLENGE));
        assert!(r.prompt.login);
        assert_eq!(r.max_age, Some(60));
        assert_eq!(r.reply.mode, ResponseMode::Query);
    }

    #[test]
    fn untrusted_clients_and_redirect_uris_get_a_page() {
        let c = client(AuthMethod::ClientSecretBasic);
        for q in [
            "redirect_uri=https%3A%2F%2Fcrm.example.com%2Fcb&response_type=code",
            "client_id=crm&response_type=code",
            "client_id=crm&redirect_uri=https%3A%2F%2Fcrm.example.com%2Fcb%2Fx&response_type=code",
            "client_id=crm&redirect_uri=https%3A%2F%2FCRM.example.com%2Fcb&response_type=code",
            "client_id=crm&redirect_uri=javascript%3Aalert(1)&response_type=code",
            "client_id=other&redirect_uri=https%3A%2F%2Fcrm.example.com%2Fcb&response_type=code",
        ] {
            assert!(
                matches!(parse(&form(q), Some(&c), ISS), Err(AuthorizeError::Page(_))),
                "{q}"
            );
        }
        assert!(matches!(
            parse(&form(BASE), None, ISS),
            Err(AuthorizeError::Page(_))
        ));
    }

    #[test]
    fn errors_after_the_redirect_uri_is_trusted_go_back_to_the_client() {
        let m = AuthMethod::ClientSecretBasic;
        let cases = [
            ("&response_type=token", "invalid_request"),
            ("&request=eyJ", "request_not_supported"),
            ("&request_uri=https%3A%2F%2Fx", "request_uri_not_supported"),
            ("&response_mode=web_message", "invalid_request"),
            ("&scope=a%20%20b", "invalid_scope"),
            (
                "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "invalid_request",
            ),
            (
                "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
                "invalid_request",
            ),
            ("&code_challenge_method=S256", "invalid_request"),
            ("&prompt=none%20login", "invalid_request"),
            ("&prompt=sometimes", "invalid_request"),
            ("&max_age=-1", "invalid_request"),
            ("&max_age=soon", "invalid_request"),
            ("&claims=%5B1%5D", "invalid_request"),
            ("&claims=%7B%22userinfo%22%3A1%7D", "invalid_request"),
        ];
        for (extra, expected) in cases {
            // `response_type=token` repeats a parameter of BASE: the form parser refuses it.
            if extra.starts_with("&response_type") {
                continue;
            }
            assert_eq!(redirect_error(parse_q(extra, m)), expected, "{extra}");
        }
        for hybrid in ["token", "id_token", "code%20id_token"] {
            let q = BASE.replace("response_type=code", &format!("response_type={hybrid}"));
            let refused = parse(&form(&q), Some(&client(m)), ISS);
            let Err(AuthorizeError::Redirect { reply, .. }) = &refused else {
                panic!("{hybrid}: {refused:?}");
            };
            assert_eq!(
                reply.mode,
                ResponseMode::Fragment,
                "{hybrid}: its default mode"
            );
            assert_eq!(redirect_error(refused), "unsupported_response_type");
        }
        let q = BASE.replace("&response_type=code", "");
        assert_eq!(
            redirect_error(parse(&form(&q), Some(&client(m)), ISS)),
            "invalid_request"
        );
        let long = format!("&nonce={}", "n".repeat(MAX_NONCE_LEN + 1));
        assert_eq!(redirect_error(parse_q(&long, m)), "invalid_request");
        let huge = format!("&login_hint={}", "x".repeat(MAX_PARAM_LEN + 1));
        assert_eq!(redirect_error(parse_q(&huge, m)), "invalid_request");
    }

    #[test]
    fn public_clients_must_use_pkce() {
        assert_eq!(
            redirect_error(parse_q("&scope=openid", AuthMethod::None)),
            "invalid_request"
        );
        let ok = parse_q(
            "&code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            AuthMethod::None,
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn a_client_without_the_code_grant_is_unauthorized() {
        let mut c = client(AuthMethod::ClientSecretBasic);
        c.grant_types = vec!["client_credentials".into()];
        assert_eq!(
            redirect_error(parse(&form(BASE), Some(&c), ISS)),
            "unauthorized_client"
        );
    }

    #[test]
    fn an_oversized_state_is_refused_on_a_page_as_it_cannot_be_echoed() {
        let q = BASE.replace(
            "state=s1",
            &format!("state={}", "s".repeat(MAX_PARAM_LEN + 1)),
        );
        match parse(&form(&q), Some(&client(AuthMethod::ClientSecretBasic)), ISS) {
            Err(AuthorizeError::Page(message)) => assert!(message.contains("state"), "{message}"),
            other => panic!("{other:?}"),
        }
        // Any other oversized parameter goes back to the app, with its state.
        let q = format!("{BASE}&login_hint={}", "x".repeat(MAX_PARAM_LEN + 1));
        match parse(&form(&q), Some(&client(AuthMethod::ClientSecretBasic)), ISS) {
            Err(AuthorizeError::Redirect { reply, error, .. }) => {
                assert_eq!(error, "invalid_request");
                assert_eq!(reply.state.as_deref(), Some("s1"));
            }
            other => panic!("{other:?}"),
        }
    }
}
