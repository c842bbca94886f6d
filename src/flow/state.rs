//! The login flow as data and pure rules. A protocol (OIDC authorize, later SAML) creates a flow
//! holding what it requires ([`Requirements`]) and an opaque payload it needs to answer later
//! (`resume`); sign-in methods read only the requirements and record [`Progress`]. When the flow
//! is satisfied, the protocol that started it resumes from its payload.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::store::apps::Channel;
use crate::store::flows::Flow;
use crate::store::sessions::Session;

/// Which protocol answers when the flow completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Oidc,
    /// A SAML AuthnRequest.
    Saml,
    /// Signing in to the user's own account page.
    Account,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Oidc => "oidc",
            Protocol::Saml => "saml",
            Protocol::Account => "account",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "oidc" => Some(Protocol::Oidc),
            "saml" => Some(Protocol::Saml),
            "account" => Some(Protocol::Account),
            _ => None,
        }
    }
}

/// What the protocol demands of the sign-in, and what the page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirements {
    pub client_id: String,
    pub client_name: String,
    pub app_id: Option<String>,
    pub channel: Channel,
    /// `prompt=login`: sign in again even with a live session.
    pub force_login: bool,
    /// OIDC `max_age`: the session's sign-in must be at most this many seconds old.
    pub max_age: Option<i64>,
    /// The authentication classes the sign-in must reach, any one of them: the values of an
    /// essential `acr` in an OIDC `claims` request, or a SAML `RequestedAuthnContext`. Empty
    /// when any class will do.
    #[serde(default)]
    pub classes: Vec<String>,
    pub login_hint: Option<String>,
    pub ui_locales: Vec<String>,
    /// The app's redirect URI: the sign-in form's submission ends there, so the page's
    /// `form-action` policy must allow it.
    pub return_to: String,
}

/// A step the flow waits for, after the user is known. Each step's handler accepts only a flow
/// waiting for it, so one kind of flow cannot be replayed at another step's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Awaiting {
    PasswordChange,
    Consent,
    /// A new version of the tenant's agreement, for a user signed in already.
    Agreement,
}

/// What the flow has established so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub user_id: Option<String>,
    #[serde(default)]
    pub awaiting: Option<Awaiting>,
    /// RFC 8176 method references of the steps done (`pwd`, `otp`, `mfa` ...).
    pub amr: Vec<String>,
    pub auth_time: Option<UnixTime>,
    /// "Remember me" was ticked on the sign-in form.
    #[serde(default)]
    pub remember: bool,
}

impl Progress {
    /// A flow of the user signed in as `session`, waiting for `step` only.
    pub fn awaiting(session: &Session, step: Awaiting) -> Progress {
        Progress {
            user_id: Some(session.user_id.clone()),
            awaiting: Some(step),
            amr: session.amr.clone(),
            auth_time: Some(session.auth_time),
            remember: session.remember,
        }
    }
}

/// A flow read from the store, its JSON columns parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginFlow {
    pub id: String,
    pub protocol: Protocol,
    pub needs: Requirements,
    pub resume: serde_json::Value,
    pub progress: Progress,
    pub version: i32,
}

#[derive(Serialize, Deserialize)]
struct StoredRequest {
    needs: Requirements,
    resume: serde_json::Value,
}

impl LoginFlow {
    /// The `request` column for a new flow.
    pub fn request_json(needs: &Requirements, resume: serde_json::Value) -> serde_json::Value {
        serde_json::to_value(StoredRequest {
            needs: needs.clone(),
            resume,
        })
        .unwrap_or_default()
    }

    /// `None` for a row this version cannot read (written by a newer node, or edited by hand):
    /// such a flow is treated as expired rather than guessed at.
    pub fn from_stored(flow: Flow) -> Option<LoginFlow> {
        let request: StoredRequest = serde_json::from_value(flow.request).ok()?;
        let progress = serde_json::from_value(flow.state).unwrap_or_default();
        Some(LoginFlow {
            id: flow.id,
            protocol: Protocol::parse(&flow.protocol)?,
            needs: request.needs,
            resume: request.resume,
            progress,
            version: flow.version,
        })
    }
}

/// Whether a live SSO session already satisfies the flow's requirements, so the user is not asked
/// again (OIDC Core §3.1.2.3: `prompt=login` and `max_age` demand a fresh sign-in; `max_age=0`
/// is `prompt=login`, §3.1.2.1, even for a session signed in within the same second).
pub fn session_satisfies(needs: &Requirements, session: &Session, now: UnixTime) -> bool {
    if needs.force_login || !super::session::reaches(&needs.classes, session) {
        return false;
    }
    match needs.max_age {
        Some(0) => false,
        Some(max_age) => now.0.saturating_sub(session.auth_time.0) <= max_age,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> Requirements {
        Requirements {
            client_id: "crm".into(),
            client_name: "CRM".into(),
            app_id: None,
            channel: Channel::Web,
            force_login: false,
            max_age: None,
            classes: vec![],
            login_hint: None,
            ui_locales: vec![],
            return_to: "https://crm.example.com/cb".into(),
        }
    }

    fn session(auth_time: i64) -> Session {
        Session {
            sid: "s".into(),
            user_id: "u".into(),
            auth_time: UnixTime(auth_time),
            amr: vec!["pwd".into()],
            acr: None,
            remember: false,
            user_agent: None,
            ip: None,
            created_at: UnixTime(auth_time),
            last_seen_at: UnixTime(auth_time),
            idle_expires_at: UnixTime(auth_time + 100),
            absolute_expires_at: UnixTime(auth_time + 1000),
        }
    }

    #[test]
    fn a_live_session_satisfies_unless_login_is_forced_or_too_old() {
        let now = UnixTime(1000);
        assert!(session_satisfies(&needs(), &session(900), now));
        let forced = Requirements {
            force_login: true,
            ..needs()
        };
        assert!(!session_satisfies(&forced, &session(999), now));
        let max_age = Requirements {
            max_age: Some(60),
            ..needs()
        };
        assert!(session_satisfies(&max_age, &session(940), now));
        assert!(!session_satisfies(&max_age, &session(939), now));
        let zero = Requirements {
            max_age: Some(0),
            ..needs()
        };
        assert!(!session_satisfies(&zero, &session(999), now));
        assert!(
            !session_satisfies(&zero, &session(1000), now),
            "not even this second's"
        );
    }

    #[test]
    fn stored_flows_round_trip_and_unknown_ones_are_refused() {
        let request = LoginFlow::request_json(&needs(), serde_json::json!({"k": 1}));
        let stored = Flow {
            id: "f".into(),
            protocol: "oidc".into(),
            request: request.clone(),
            state: serde_json::json!({}),
            user_id: None,
            version: 0,
            created_at: UnixTime(0),
            expires_at: UnixTime(10),
        };
        let flow = LoginFlow::from_stored(stored.clone()).unwrap();
        assert_eq!(flow.needs, needs());
        assert_eq!(flow.resume["k"], 1);
        assert_eq!(flow.progress, Progress::default());
        let other = Flow {
            protocol: "carrier-pigeon".into(),
            ..stored.clone()
        };
        assert!(LoginFlow::from_stored(other).is_none());
        let garbled = Flow {
            request: serde_json::json!({"needs": 1}),
            ..stored
        };
        assert!(LoginFlow::from_stored(garbled).is_none());
    }
}
