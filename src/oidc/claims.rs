//! Claims about a user (OIDC Core §5.1, §5.4, §5.5), chosen by the granted scopes and the
//! `claims` request parameter, plus Sesame's claims for apps.
//!
//! - `profile`: `name`, `preferred_username`, `locale`, `updated_at`, and Sesame's `department`
//!   (the path of department ids from the root, `hq/sales/sales-east`) and `employee_no`.
//! - `email`: `email`, `email_verified`; `phone`: `phone_number`, `phone_number_verified`.
//! - Always, for any user token: `tenant`, and `roles`: the roles the user holds in the client's
//!   app (none for a client that belongs to no app).

use serde_json::{Map, Value, json};

use super::scope::Scope;
use crate::store::subjects::Subject;
use crate::tenant::TenantId;

/// The access-token claim that carries the names a `claims` request asked UserInfo for.
pub const USERINFO_CLAIMS: &str = "userinfo_claims";
/// At most this many claims are requested individually; more is not a client.
const MAX_REQUESTED: usize = 32;

/// Which claims a `claims` request asks for in one place (`userinfo` or `id_token`).
pub fn requested_names(claims: Option<&Value>, place: &str) -> Vec<String> {
    claims
        .and_then(|c| c.get(place))
        .and_then(Value::as_object)
        .map(|m| m.keys().take(MAX_REQUESTED).cloned().collect())
        .unwrap_or_default()
}

/// The classes an essential `acr` in the ID token's `claims` request demands (OIDC Core
/// §5.5.1.1): its `values`, or its single `value`. The sign-in must reach one of them or fail.
/// A voluntary `acr`, like `acr_values`, is a wish: the token states what the sign-in met.
pub fn essential_acr(claims: Option<&Value>) -> Vec<String> {
    let Some(acr) = claims
        .and_then(|c| c.get("id_token"))
        .and_then(|c| c.get("acr"))
    else {
        return Vec::new();
    };
    if acr.get("essential").and_then(Value::as_bool) != Some(true) {
        return Vec::new();
    }
    let values = match (acr.get("values"), acr.get("value")) {
        (Some(Value::Array(values)), _) => values.iter().collect(),
        (_, Some(value)) => vec![value],
        _ => Vec::new(),
    };
    values
        .into_iter()
        .filter_map(Value::as_str)
        .take(MAX_REQUESTED)
        .map(str::to_string)
        .collect()
}

/// The user a `claims` request names by an ID token `sub` with a `value` (OIDC Core §5.5.1): only
/// that user's sign-in may be answered.
pub fn requested_sub(claims: Option<&Value>) -> Option<&str> {
    claims?.get("id_token")?.get("sub")?.get("value")?.as_str()
}

/// Every claim Sesame can state about `subject`, each tagged with the scope that releases it.
fn available(
    subject: &Subject,
    tenant: &TenantId,
    app_id: Option<&str>,
) -> Vec<(&'static str, &'static str, Value)> {
    let p = &subject.user.profile;
    let mut all: Vec<(&str, &str, Value)> = vec![
        ("profile", "name", json!(p.display_name)),
        ("profile", "updated_at", json!(subject.user.updated_at.0)),
    ];
    if let Some(u) = &p.username {
        all.push(("profile", "preferred_username", json!(u.as_str())));
    }
    if let Some(l) = &p.locale {
        all.push(("profile", "locale", json!(l)));
    }
    if !subject.department_path.is_empty() {
        all.push((
            "profile",
            "department",
            json!(subject.department_path.join("/")),
        ));
    }
    if let Some(e) = &p.employee_no {
        all.push(("profile", "employee_no", json!(e)));
    }
    if let Some(e) = &p.email {
        all.push(("email", "email", json!(e.as_str())));
        all.push((
            "email",
            "email_verified",
            json!(subject.user.email_verified),
        ));
    }
    if let Some(ph) = &p.phone {
        all.push(("phone", "phone_number", json!(ph.as_str())));
        all.push((
            "phone",
            "phone_number_verified",
            json!(subject.user.phone_verified),
        ));
    }
    all.push(("", "tenant", json!(tenant.as_str())));
    all.push(("", "roles", json!(subject.roles_for_app(app_id))));
    all
}

/// The claims to release: those of the granted scopes, those named in the `claims` request, and
/// the always-present app claims. `sub` is the caller's to add.
pub fn user_claims(
    subject: &Subject,
    tenant: &TenantId,
    app_id: Option<&str>,
    scope: &Scope,
    requested: &[String],
) -> Map<String, Value> {
    let mut out = Map::new();
    for (released_by, name, value) in available(subject, tenant, app_id) {
        let by_scope = released_by.is_empty() || scope.contains(released_by);
        if by_scope || requested.iter().any(|r| r == name) {
            out.insert(name.to_string(), value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{Email, Phone, Username};
    use crate::clock::UnixTime;
    use crate::store::users::{User, UserProfile, UserStatus};

    fn subject() -> Subject {
        Subject {
            user: User {
                tenant_id: TenantId::parse("acme").unwrap(),
                id: "u1".into(),
                profile: UserProfile {
                    username: Username::parse("alice"),
                    email: Email::parse("alice@acme.test"),
                    phone: Phone::parse("+8613800138000", None),
                    display_name: "Alice".into(),
                    department_id: Some("east".into()),
                    employee_no: Some("E1".into()),
                    locale: None,
                },
                email_verified: true,
                phone_verified: false,
                status: UserStatus::Active,
                has_password: true,
                must_change_password: false,
                password_changed_at: None,
                failed_logins: 0,
                last_failed_at: None,
                locked_until: None,
                created_at: UnixTime(0),
                updated_at: UnixTime(5),
                last_login_at: None,
            },
            department_path: vec!["hq".into(), "sales".into(), "east".into()],
            roles: vec![
                ("crm:rep".into(), Some("crm".into())),
                ("mkt:viewer".into(), Some("marketing".into())),
            ],
            agreed_versions: Vec::new(),
        }
    }

    #[test]
    fn scopes_release_their_claims_and_roles_follow_the_app() {
        let acme = TenantId::parse("acme").unwrap();
        let openid = Scope::parse("openid").unwrap();
        let c = user_claims(&subject(), &acme, Some("crm"), &openid, &[]);
        assert_eq!(c["tenant"], "acme");
        assert_eq!(c["roles"], json!(["crm:rep"]));
        assert!(c.get("email").is_none() && c.get("name").is_none());

        let all = Scope::parse("openid profile email phone").unwrap();
        let c = user_claims(&subject(), &acme, None, &all, &[]);
        assert_eq!(c["name"], "Alice");
        assert_eq!(c["preferred_username"], "alice");
        assert_eq!(c["department"], "hq/sales/east");
        assert_eq!(c["employee_no"], "E1");
        assert_eq!(c["email_verified"], true);
        assert_eq!(c["phone_number"], "+8613800138000");
        assert_eq!(c["roles"], json!([]));
    }

    #[test]
    fn the_claims_parameter_asks_for_single_claims() {
        let acme = TenantId::parse("acme").unwrap();
        let request =
            json!({"userinfo": {"email": {"essential": true}}, "id_token": {"name": null}});
        let names = requested_names(Some(&request), "userinfo");
        assert_eq!(names, vec!["email".to_string()]);
        let c = user_claims(
            &subject(),
            &acme,
            None,
            &Scope::parse("openid").unwrap(),
            &names,
        );
        assert_eq!(c["email"], "alice@acme.test");
        assert!(c.get("email_verified").is_none());
        assert_eq!(
            requested_names(Some(&request), "id_token"),
            vec!["name".to_string()]
        );
        assert!(requested_names(None, "userinfo").is_empty());
    }

    #[test]
    fn only_an_essential_acr_demands_its_values() {
        let acr = |v: Value| essential_acr(Some(&json!({ "id_token": { "acr": v } })));
        assert_eq!(
            acr(json!({"essential": true, "values": ["a", "b", 7]})),
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(
            acr(json!({"essential": true, "value": "a"})),
            vec!["a".to_string()]
        );
        assert!(acr(json!({"values": ["a"]})).is_empty(), "voluntary");
        assert!(acr(json!({"essential": false, "value": "a"})).is_empty());
        assert!(acr(json!({"essential": true})).is_empty(), "no values");
        assert!(acr(Value::Null).is_empty());
        let in_userinfo = json!({"userinfo": {"acr": {"essential": true, "value": "a"}}});
        assert!(essential_acr(Some(&in_userinfo)).is_empty());
        assert!(essential_acr(None).is_empty());
    }

    #[test]
    fn a_sub_with_a_value_names_a_user() {
        let named = json!({"id_token": {"sub": {"value": "u1"}}});
        assert_eq!(requested_sub(Some(&named)), Some("u1"));
        for other in [
            json!({"id_token": {"sub": null}}),
            json!({"id_token": {"sub": {"value": 7}}}),
            json!({"userinfo": {"sub": {"value": "u1"}}}),
        ] {
            assert_eq!(requested_sub(Some(&other)), None, "{other}");
        }
    }
}
