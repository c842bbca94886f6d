//! Authorization codes (RFC 6749 §4.1.2): 256 random bits, stored only as a hash in the one-time
//! token table with everything the token endpoint needs, redeemable once within
//! `tokens.authorization_code_lifetime`.
//!
//! Each code carries the id of the refresh-token family its redemption starts, so a replayed
//! code can revoke what the first redemption issued (§4.1.2, RFC 9700 §4.2.4).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::App;
use crate::clock::UnixTime;
use crate::crypto::secret::{TokenHash, random_token};
use crate::store::sessions;
use crate::store::tokens::{self, NewOneTimeToken};
use crate::store::{StoreError, new_id};
use crate::tenant::TenantId;

pub const KIND: &str = "authorization_code";

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

/// Stores `grant` and returns the code to hand to the client. The session notes the client, so
/// logout reaches it.
pub async fn issue(app: &App, tenant: &TenantId, grant: &CodeGrant) -> Result<String, StoreError> {
    let code = random_token(32);
    let hash = code_hash(&grant.client_id, &code);
    let now = app.now();
    let expires_at = now.plus(app.config.tokens.authorization_code_lifetime);
    let payload = serde_json::to_value(grant).unwrap_or_default();
    let (t, subject) = (tenant.clone(), grant.user_id.clone());
    let (sid, client_id) = (grant.sid.clone(), grant.client_id.clone());
    // A client signing in again through the same session is already on record: skip the write.
    let record = (tenant.clone(), sid.clone(), client_id.clone());
    let known = app.recorded_session_clients.get(&record, now).is_some();
    app.store
        .run(move |c| {
            if !known {
                sessions::add_client(c, &t, &sid, &client_id, now)?;
            }
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
            )
        })
        .await?;
    app.recorded_session_clients.put(record, (), now);
    Ok(code)
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

/// Consumes `code` for `client_id` (one `UPDATE … RETURNING`); a code this client redeemed
/// before is reported as replayed.
pub fn redeem(
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
