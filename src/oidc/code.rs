//! Authorization codes (RFC 6749 §4.1.2), redeemable once within
//! `tokens.authorization_code_lifetime`, bound to the client they were issued to.
//!
//! A code is usually *sealed*: its grant travels inside it, encrypted and authenticated
//! (AES-256-GCM under a key derived from the master key, with the tenant and client as associated
//! data), so issuing one writes nothing. Redeeming records its id among the used single-use
//! identifiers, which is what makes it single-use. A grant too large to carry in a URL (a long
//! `claims` request, say) is *stored* instead: 256 random bits handed out, the grant kept in the
//! one-time token table under their hash.
//!
//! Either way the grant names the refresh-token family its redemption starts, so a replayed code
//! can revoke what the first redemption issued (§4.1.2, RFC 9700 §4.2.4).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::App;
use crate::clock::UnixTime;
use crate::crypto::master::MasterKey;
use crate::crypto::secret::{TokenHash, random_token};
use crate::store::tokens::{self, NewOneTimeToken};
use crate::store::{StoreError, new_id, sessions};
use crate::tenant::TenantId;

pub const KIND: &str = "authorization_code";

/// The longest sealed code handed out; a grant that would seal longer is stored. Codes travel in
/// redirect URLs, and servers commonly refuse request lines much over 8 KB.
const MAX_SEALED_LEN: usize = 2048;

/// A stored code is `random_token(32)`: 43 characters. Every sealed code is longer (nonce, tag
/// and a grant of at least a client id and a user id).
const STORED_LEN: usize = 43;

/// What a code grants; the token endpoint checks the redeeming request against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub claims: Option<Value>,
    pub user_id: String,
    pub sid: String,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// The refresh-token family this code's redemption starts.
    pub family_id: String,
}

impl CodeGrant {
    pub fn new_family_id() -> String {
        new_id()
    }
}

/// The stored hash binds the code to its client (RFC 6749 §4.1.3): presented by any other client
/// it matches nothing, so another client can neither redeem nor spend it, nor set off the replay
/// revocation of the rightful client's tokens.
fn code_hash(client_id: &str, code: &str) -> TokenHash {
    TokenHash::of(&format!("{client_id}\u{0}{code}"))
}

/// What a sealed code holds.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Recorded at redemption, so the code is spent once.
    id: String,
    exp: UnixTime,
    grant: CodeGrant,
}

/// The associated data: a code opens only for the tenant and client it was issued to.
fn sealed_aad(tenant: &TenantId, client_id: &str) -> Vec<u8> {
    format!("authorization_code\u{0}{}\u{0}{client_id}", tenant.as_str()).into_bytes()
}

fn seal(key: &MasterKey, tenant: &TenantId, grant: &CodeGrant, exp: UnixTime) -> Option<String> {
    let sealed = Sealed {
        id: new_id(),
        exp,
        grant: grant.clone(),
    };
    let plain = serde_json::to_vec(&sealed).ok()?;
    let data = key
        .encrypt(&plain, &sealed_aad(tenant, &grant.client_id))
        .ok()?;
    let code = URL_SAFE_NO_PAD.encode(data);
    (code.len() <= MAX_SEALED_LEN).then_some(code)
}

fn open(key: &MasterKey, tenant: &TenantId, client_id: &str, code: &str) -> Option<Sealed> {
    if code.len() > MAX_SEALED_LEN {
        return None;
    }
    let data = URL_SAFE_NO_PAD.decode(code).ok()?;
    let plain = key.decrypt(&data, &sealed_aad(tenant, client_id)).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// Returns the code to hand to the client for `grant`: sealed when it fits, else stored. The
/// session notes the client, so logout reaches it; that is the only write, once per session and
/// client.
pub async fn issue(app: &App, tenant: &TenantId, grant: &CodeGrant) -> Result<String, StoreError> {
    let now = app.now();
    let expires_at = now.plus(app.config.tokens.authorization_code_lifetime);
    let sealed = seal(&app.code_seal, tenant, grant, expires_at);
    let stored = sealed.is_none().then(|| random_token(32));
    let (sid, client_id) = (grant.sid.clone(), grant.client_id.clone());
    // A client signing in again through the same session is already on record: skip the write.
    let record = (tenant.clone(), sid.clone(), client_id.clone());
    let known = app.recorded_session_clients.get(&record, now).is_some();
    if !known || stored.is_some() {
        let t = tenant.clone();
        let subject = grant.user_id.clone();
        let token = stored.as_deref().map(|code| {
            (
                code_hash(&client_id, code),
                serde_json::to_value(grant).unwrap_or_default(),
            )
        });
        app.store
            .run(move |c| {
                if !known {
                    sessions::add_client(c, &t, &sid, &client_id, now)?;
                }
                if let Some((hash, payload)) = token {
                    tokens::insert(
                        c,
                        &t,
                        NewOneTimeToken {
                            hash: &hash,
                            kind: KIND,
                            subject: &subject,
                            payload,
                            expires_at,
                        },
                        now,
                    )?;
                }
                Ok(())
            })
            .await?;
        app.recorded_session_clients.put(record, (), now);
    }
    Ok(sealed.or(stored).unwrap_or_default())
}

/// What presenting a code found.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    Live(Box<CodeGrant>),
    /// Already redeemed once: the grant it issued should be revoked.
    Replayed {
        family_id: Option<String>,
    },
    Invalid,
}

/// A presented code, opened where it is sealed: no store call yet.
#[derive(Debug, Clone, PartialEq)]
pub enum Presented {
    /// A sealed code of this tenant and client within its lifetime. Recording `id` until `exp`
    /// among the client's used identifiers spends it.
    Sealed {
        id: String,
        exp: UnixTime,
        grant: Box<CodeGrant>,
    },
    /// A stored code, consumed by [`redeem_stored`].
    Stored,
    /// Not a code of this tenant and client, or expired.
    Invalid,
}

pub fn open_presented(
    key: &MasterKey,
    tenant: &TenantId,
    client_id: &str,
    code: &str,
    now: UnixTime,
) -> Presented {
    if code.len() == STORED_LEN {
        return Presented::Stored;
    }
    match open(key, tenant, client_id, code) {
        Some(sealed) if sealed.exp > now => Presented::Sealed {
            id: format!("code:{}", sealed.id),
            exp: sealed.exp,
            grant: Box::new(sealed.grant),
        },
        _ => Presented::Invalid,
    }
}

/// Consumes a stored code of `client_id` (one `UPDATE … RETURNING`); a code this client redeemed
/// before is reported as replayed. A sealed code is opened by [`open_presented`] and spent by
/// recording its id.
pub fn redeem_stored(
    conn: &mut crate::store::Conn,
    tenant: &TenantId,
    client_id: &str,
    code: &str,
    now: UnixTime,
) -> Result<Redemption, StoreError> {
    let hash = code_hash(client_id, code);
    if let Some(token) = tokens::consume(conn, tenant, KIND, &hash, now)? {
        return Ok(match serde_json::from_value::<CodeGrant>(token.payload) {
            Ok(grant) => Redemption::Live(Box::new(grant)),
            Err(_) => Redemption::Invalid,
        });
    }
    Ok(match tokens::find_consumed(conn, tenant, KIND, &hash)? {
        Some(payload) => Redemption::Replayed {
            family_id: payload
                .get("family_id")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        None => Redemption::Invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(claims: Option<Value>) -> CodeGrant {
        CodeGrant {
            client_id: "crm-web".into(),
            redirect_uri: "https://crm.acme.test/cb".into(),
            scope: "openid profile".into(),
            nonce: Some("n-1".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            claims,
            user_id: "u-1".into(),
            sid: "s-1".into(),
            auth_time: UnixTime(1_000),
            amr: vec!["pwd".into()],
            acr: None,
            family_id: "f-1".into(),
        }
    }

    #[test]
    fn a_sealed_code_opens_only_for_its_tenant_and_client() {
        let key = MasterKey::generate();
        let acme = TenantId::parse("acme").unwrap();
        let code = seal(&key, &acme, &grant(None), UnixTime(2_000)).unwrap();
        assert!(code.len() < 600, "{} characters", code.len());
        let opened = open(&key, &acme, "crm-web", &code).unwrap();
        assert_eq!(opened.grant, grant(None));
        assert_eq!(opened.exp, UnixTime(2_000));
        assert!(open(&key, &acme, "wiki", &code).is_none());
        assert!(open(&key, &TenantId::parse("globex").unwrap(), "crm-web", &code).is_none());
        assert!(open(&MasterKey::generate(), &acme, "crm-web", &code).is_none());
        // Two codes for one grant differ, and so do their ids.
        let again = seal(&key, &acme, &grant(None), UnixTime(2_000)).unwrap();
        assert_ne!(code, again);
        assert_ne!(open(&key, &acme, "crm-web", &again).unwrap().id, opened.id);
    }

    #[test]
    fn a_grant_too_long_for_a_url_is_not_sealed() {
        let key = MasterKey::generate();
        let acme = TenantId::parse("acme").unwrap();
        let long = serde_json::json!({ "userinfo": { "x".repeat(2000): null } });
        assert!(seal(&key, &acme, &grant(Some(long)), UnixTime(2_000)).is_none());
    }
}
