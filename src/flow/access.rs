//! Who may use an app: its access scope for the client's channel (web clients check the web
//! scope, mobile clients the mobile scope). A client that belongs to no app is open to every user
//! of the tenant.

use crate::store::apps::{AccessScope, App, Channel};
use crate::store::subjects::Subject;

pub fn may_use(app: Option<&App>, channel: Channel, subject: &Subject) -> bool {
    let Some(app) = app else {
        return true;
    };
    let scope = match channel {
        Channel::Web => &app.web_access,
        Channel::Mobile => &app.mobile_access,
    };
    in_scope(scope, subject)
}

/// A department in the scope admits its sub-departments too.
fn in_scope(scope: &AccessScope, subject: &Subject) -> bool {
    scope.everyone
        || scope.users.contains(&subject.user.id)
        || scope
            .departments
            .iter()
            .any(|d| subject.department_path.contains(d))
        || scope
            .roles
            .iter()
            .any(|r| subject.roles.iter().any(|(held, _)| held == r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UnixTime;
    use crate::store::users::{User, UserProfile, UserStatus};
    use crate::tenant::TenantId;

    fn subject(path: &[&str], roles: &[&str]) -> Subject {
        Subject {
            user: User {
                tenant_id: TenantId::parse("acme").unwrap(),
                id: "u1".into(),
                profile: UserProfile::default(),
                email_verified: false,
                phone_verified: false,
                status: UserStatus::Active,
                has_password: true,
                must_change_password: false,
                password_changed_at: None,
                failed_logins: 0,
                last_failed_at: None,
                locked_until: None,
                created_at: UnixTime(0),
                updated_at: UnixTime(0),
                last_login_at: None,
            },
            department_path: path.iter().map(|s| s.to_string()).collect(),
            roles: roles.iter().map(|r| (r.to_string(), None)).collect(),
            agreed_versions: Vec::new(),
        }
    }

    fn app(web: AccessScope, mobile: AccessScope) -> App {
        App {
            id: "crm".into(),
            name: "CRM".into(),
            description: String::new(),
            web_access: web,
            mobile_access: mobile,
            admins: vec![],
        }
    }

    #[test]
    fn departments_admit_their_subtree_on_their_channel_only() {
        let crm = app(
            AccessScope {
                departments: vec!["sales".into()],
                ..AccessScope::default()
            },
            AccessScope::default(),
        );
        let east = subject(&["hq", "sales", "sales-east"], &[]);
        let hq = subject(&["hq"], &[]);
        assert!(may_use(Some(&crm), Channel::Web, &east));
        assert!(!may_use(Some(&crm), Channel::Web, &hq));
        assert!(!may_use(Some(&crm), Channel::Mobile, &east));
        assert!(may_use(None, Channel::Mobile, &hq));
    }

    #[test]
    fn users_roles_and_everyone() {
        let by_user = app(
            AccessScope {
                users: vec!["u1".into()],
                ..AccessScope::default()
            },
            AccessScope {
                roles: vec!["crm:rep".into()],
                ..AccessScope::default()
            },
        );
        assert!(may_use(Some(&by_user), Channel::Web, &subject(&[], &[])));
        assert!(!may_use(
            Some(&by_user),
            Channel::Mobile,
            &subject(&[], &[])
        ));
        assert!(may_use(
            Some(&by_user),
            Channel::Mobile,
            &subject(&[], &["crm:rep"])
        ));
        let open = app(
            AccessScope {
                everyone: true,
                ..AccessScope::default()
            },
            AccessScope::default(),
        );
        assert!(may_use(Some(&open), Channel::Web, &subject(&[], &[])));
    }
}
