//! OIDC Back-Channel Logout 1.0: a signed logout token POSTed to each client's
//! `backchannel_logout_uri` when a session ends. Sent in the background with retries, so a slow
//! or broken app never holds up the user's logout; a final failure is logged and audited.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::id_token;
use crate::app::App;
use crate::clock::UnixTime;
use crate::crypto::keys::Alg;
use crate::crypto::secret::random_token;
use crate::outbound;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::clients::Client;
use crate::store::sessions::Session;
use crate::tenant::resolve::TenantCtx;

/// §2.4: logout tokens are explicitly typed so they cannot pass for ID tokens.
pub const TYP: &str = "logout+jwt";
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Seconds before each attempt: at once, then twice more with growing pauses.
const BACKOFF: [u64; 3] = [0, 2, 10];
/// A logout token is accepted for this long (§2.4 recommends a short lifetime).
const LIFETIME: i64 = 120;
/// One attempt, connecting included, may take this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The answer's body means nothing (§2.8); a little is read so the connection ends cleanly.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// §2.4 claims: `iss`, `aud`, `iat`, `exp`, `jti`, `events`, `sub` and `sid`; never a `nonce`.
pub fn logout_token_claims(
    issuer: &str,
    client_id: &str,
    sub: &str,
    sid: &str,
    now: UnixTime,
    jti: &str,
) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("iss".into(), json!(issuer));
    c.insert("aud".into(), json!(client_id));
    c.insert("iat".into(), json!(now.0));
    c.insert("exp".into(), json!(now.plus(LIFETIME).0));
    c.insert("jti".into(), json!(jti));
    c.insert("sub".into(), json!(sub));
    c.insert("sid".into(), json!(sid));
    c.insert("events".into(), json!({ EVENT: {} }));
    c
}

/// Sends the logout token for `session` to `client` in the background.
pub fn notify(app: App, tenant: TenantCtx, client: Client, session: Session) {
    tokio::spawn(async move {
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            return;
        };
        let claims = logout_token_claims(
            &tenant.issuer,
            &client.client_id,
            &session.user_id,
            &session.sid,
            app.now(),
            &random_token(16),
        );
        let alg = client
            .id_token_alg
            .as_deref()
            .and_then(|a| a.parse::<Alg>().ok())
            .unwrap_or(id_token::DEFAULT_ALG);
        let token = match app
            .keyring(tenant.id())
            .await
            .map(|ring| ring.sign(alg, TYP, claims))
        {
            Ok(Ok(token)) => token,
            Ok(Err(e)) => {
                tracing::error!(error = %e, client_id = %client.client_id, "cannot sign a logout token");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, client_id = %client.client_id, "cannot sign a logout token");
                return;
            }
        };
        let policy = outbound::Policy {
            max_bytes: MAX_ANSWER_BYTES,
            timeout: ATTEMPT_TIMEOUT,
            allow_private: outbound::tenant_allows_private(&tenant.tenant),
        };
        let form = [("logout_token", token.as_str())];
        let mut attempts = 0;
        for (attempt, pause) in BACKOFF.iter().enumerate() {
            tokio::time::sleep(Duration::from_secs(*pause)).await;
            attempts += 1;
            match outbound::send(&uri, outbound::Request::PostForm(&form), &policy).await {
                // A body too large to read still came with a 2xx status, checked first.
                Ok(_) | Err(outbound::FetchError::TooLarge(_)) => {
                    tracing::info!(client_id = %client.client_id, "back-channel logout delivered");
                    return;
                }
                // The address will not become acceptable by retrying.
                Err(e @ (outbound::FetchError::Private { .. } | outbound::FetchError::Scheme)) => {
                    tracing::error!(
                        client_id = %client.client_id,
                        error = %e,
                        "back-channel logout not sent: the tenant does not allow this address"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(client_id = %client.client_id, error = %e, attempt, "back-channel logout failed")
                }
            }
        }
        tracing::error!(client_id = %client.client_id, "back-channel logout gave up");
        let (t, now, cid, uid) = (
            tenant.id().clone(),
            app.now(),
            client.client_id.clone(),
            session.user_id.clone(),
        );
        let recorded = app
            .store
            .run(move |c| {
                audit::record(
                    c,
                    &t,
                    &NewAuditEvent {
                        actor: &uid,
                        action: "logout.backchannel",
                        target: Some(&cid),
                        outcome: "failure",
                        ip: None,
                        details: json!({ "attempts": attempts }),
                    },
                    now,
                )
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record the back-channel logout failure");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_tokens_carry_the_event_and_no_nonce() {
        let c = logout_token_claims("https://id/t/a", "crm", "u1", "s1", UnixTime(10), "j");
        assert_eq!(c["events"][EVENT], json!({}));
        assert_eq!(c["exp"], 130);
        assert!(c.get("nonce").is_none());
        assert_eq!(
            (c["sub"].as_str(), c["sid"].as_str()),
            (Some("u1"), Some("s1"))
        );
    }
}
