//! A tenant's password policy, from its settings: a minimum length, character classes, not the
//! account's own names, not a common password, not one of the last few, and an optional
//! maximum age. Pure rules; the history check needs the stored hashes and lives in the caller.
//!
//! The common passwords are the 20,000 most frequent ones (lower-cased, de-duplicated), as
//! published by Royce Williams and shipped with Django; sorted bytewise so a lookup is a binary
//! search over the embedded text, built only when a password is first set.

use std::sync::OnceLock;

use serde::Serialize;

use crate::clock::UnixTime;
use crate::i18n::Text;
use crate::store::tenants::Tenant;
use crate::store::users::UserProfile;

/// One password per line, sorted bytewise.
const COMMON: &str = include_str!("common-passwords.txt");

/// The list as a sorted slice, made at the first use.
fn common() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| COMMON.lines().filter(|l| !l.is_empty()).collect())
}

/// Whether `password`, ignoring case, is one of the common passwords.
pub fn is_common(password: &str) -> bool {
    let lowered = password.to_lowercase();
    common().binary_search(&lowered.as_str()).is_ok()
}

/// The longest password accepted; argon2 of a megabyte is a cheap denial of service.
pub const MAX_LENGTH: usize = 1024;

/// The rules every tenant's policy starts from, for a password an administrator gives (`sesame
/// user add`, an import file), where no tenant policy is at hand: at least 8 characters, at most
/// [`MAX_LENGTH`] bytes, no control characters. The tenant's own rules apply at its next change.
pub fn base_rules(password: &str) -> Result<(), &'static str> {
    let fits = password.chars().count() >= 8
        && password.len() <= MAX_LENGTH
        && !password.chars().any(char::is_control);
    match fits {
        true => Ok(()),
        false => Err(
            "the password must have at least 8 characters, at most 1024 bytes, and no control characters",
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Characters, not bytes (setting `password_min_length`, 8 to 128, default 8).
    pub min_length: usize,
    /// Of lower case, upper case, digits and other characters (`password_min_classes`, 1 to 4,
    /// default 1: NIST SP 800-63B advises length and a blocklist over composition rules).
    pub min_classes: usize,
    /// The new password may not be any of this many most recent ones, the current one included
    /// (`password_history`, 0 to 24, default 3; 0 turns the check off).
    pub history: usize,
    /// Days after which a password must be changed at the next sign-in (`password_max_age_days`,
    /// default none).
    pub max_age_days: Option<i64>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            min_classes: 1,
            history: 3,
            max_age_days: None,
        }
    }
}

/// A rule of the policy, as the page lists it and a failed check names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    Length {
        min: usize,
    },
    Classes {
        min: usize,
    },
    NotAccount,
    NotCommon,
    NotRecent {
        count: usize,
    },
    Match,
    /// Shown only when broken: a password past [`MAX_LENGTH`] bytes.
    TooLong {
        max: usize,
    },
    /// Shown only when broken: control characters (RFC 8265 §4.1 leaves them out of passwords,
    /// and no keyboard types them).
    Printable,
}

impl Rule {
    pub fn text(self) -> Text {
        match self {
            Rule::Length { min } => Text::new("password.rule_length").with("min", min.to_string()),
            Rule::Classes { min } => {
                Text::new("password.rule_classes").with("min", min.to_string())
            }
            Rule::NotAccount => Text::new("password.rule_not_account"),
            Rule::NotCommon => Text::new("password.rule_not_common"),
            Rule::NotRecent { count } => {
                Text::new("password.rule_not_recent").with("count", count.to_string())
            }
            Rule::Match => Text::new("password.mismatch"),
            Rule::TooLong { max } => {
                Text::new("password.rule_too_long").with("max", max.to_string())
            }
            Rule::Printable => Text::new("password.rule_printable"),
        }
    }
}

/// Lower case, upper case, digits, anything else (symbols, spaces, and letters without case,
/// such as Chinese characters).
fn classes(password: &str) -> usize {
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    [
        has(|c| c.is_lowercase()),
        has(|c| c.is_uppercase()),
        has(|c| c.is_numeric()),
        has(|c| !(c.is_lowercase() || c.is_uppercase() || c.is_numeric())),
    ]
    .iter()
    .filter(|x| **x)
    .count()
}

/// A setting of the tenant as a number within `range`, else `default`.
fn setting(tenant: &Tenant, key: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    tenant
        .settings
        .get(key)
        .and_then(serde_json::Value::as_i64)
        .filter(|v| range.contains(v))
}

impl PasswordPolicy {
    pub fn of(tenant: &Tenant) -> PasswordPolicy {
        let default = PasswordPolicy::default();
        let int = |key, range, fallback: usize| {
            setting(tenant, key, range)
                .and_then(|v| usize::try_from(v).ok())
                .unwrap_or(fallback)
        };
        PasswordPolicy {
            min_length: int("password_min_length", 8..=128, default.min_length),
            min_classes: int("password_min_classes", 1..=4, default.min_classes),
            history: int("password_history", 0..=24, default.history),
            max_age_days: setting(tenant, "password_max_age_days", 1..=3650),
        }
    }

    /// The rules as the page lists them.
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = vec![Rule::Length {
            min: self.min_length,
        }];
        if self.min_classes > 1 {
            rules.push(Rule::Classes {
                min: self.min_classes,
            });
        }
        rules.push(Rule::NotAccount);
        rules.push(Rule::NotCommon);
        if self.history > 0 {
            rules.push(Rule::NotRecent {
                count: self.history,
            });
        }
        rules
    }

    /// The rules `new` breaks (all but history, which needs the stored hashes), given the
    /// second typing `confirm` and the account it is for.
    pub fn check(&self, new: &str, confirm: Option<&str>, account: &UserProfile) -> Vec<Rule> {
        let mut broken = Vec::new();
        let length = new.chars().count();
        if length < self.min_length {
            broken.push(Rule::Length {
                min: self.min_length,
            });
        }
        if new.len() > MAX_LENGTH {
            broken.push(Rule::TooLong { max: MAX_LENGTH });
        }
        if new.chars().any(char::is_control) {
            broken.push(Rule::Printable);
        }
        if classes(new) < self.min_classes {
            broken.push(Rule::Classes {
                min: self.min_classes,
            });
        }
        if is_account_name(new, account) {
            broken.push(Rule::NotAccount);
        }
        if is_common(new) {
            broken.push(Rule::NotCommon);
        }
        if confirm != Some(new) {
            broken.push(Rule::Match);
        }
        broken
    }

    /// Whether a password set at `changed_at` must be changed at `now`.
    pub fn expired(&self, changed_at: Option<UnixTime>, now: UnixTime) -> bool {
        match (self.max_age_days, changed_at) {
            (Some(days), Some(at)) => now.0 - at.0 >= days * 86_400,
            _ => false,
        }
    }
}

/// Whether `password` is, ignoring case, the account's username, email address (or its part
/// before the `@`) or mobile number (with or without `+` and country code).
fn is_account_name(password: &str, account: &UserProfile) -> bool {
    let p = password.trim().to_lowercase();
    let mut names: Vec<String> = Vec::new();
    if let Some(u) = &account.username {
        names.push(u.as_str().to_lowercase());
    }
    if let Some(e) = &account.email {
        let e = e.as_str().to_lowercase();
        if let Some((local, _)) = e.split_once('@') {
            names.push(local.to_string());
        }
        names.push(e);
    }
    if let Some(phone) = &account.phone {
        let digits = phone.as_str().trim_start_matches('+').to_string();
        names.push(phone.as_str().to_string());
        if let Some(national) = phone.national() {
            names.push(national);
        }
        names.push(digits);
    }
    names.iter().any(|n| !n.is_empty() && *n == p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{Email, Phone, Username};

    fn alice() -> UserProfile {
        UserProfile {
            username: Username::parse("alice"),
            email: Email::parse("alice.w@acme.test"),
            phone: Phone::parse("+8613800138000", None),
            ..UserProfile::default()
        }
    }

    #[test]
    fn the_list_is_sorted_complete_and_ignores_case() {
        let list = common();
        assert!(list.len() >= 19_000, "{}", list.len());
        assert!(list.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        for p in [
            "123456", "password", "Password", "QWERTY", "iloveyou", "dragon",
        ] {
            assert!(is_common(p), "{p}");
        }
        assert!(!is_common("correct horse battery staple 42"));
    }

    #[test]
    fn the_default_policy_wants_length_and_an_uncommon_password() {
        let p = PasswordPolicy::default();
        let a = alice();
        assert_eq!(
            p.check("long enough phrase", Some("long enough phrase"), &a),
            vec![]
        );
        assert_eq!(
            p.check("short", Some("short"), &a),
            vec![Rule::Length { min: 8 }]
        );
        assert_eq!(
            p.check("password1", Some("password1"), &a),
            vec![Rule::NotCommon]
        );
        assert_eq!(
            p.check("long enough phrase", Some("other"), &a),
            vec![Rule::Match]
        );
        assert_eq!(
            p.check("长度足够的中文密码", Some("长度足够的中文密码"), &a),
            vec![],
            "characters, not bytes"
        );
        // Too long says so, not "at least 8"; control characters are no password's.
        let long = "x".repeat(MAX_LENGTH + 1);
        assert_eq!(
            p.check(&long, Some(&long), &a),
            vec![Rule::TooLong { max: MAX_LENGTH }]
        );
        let nul = "\0".repeat(10);
        assert_eq!(p.check(&nul, Some(&nul), &a), vec![Rule::Printable]);
        assert_eq!(
            p.check("tab\tseparated words", Some("tab\tseparated words"), &a),
            vec![Rule::Printable]
        );
    }

    #[test]
    fn the_account_s_own_names_are_refused() {
        let p = PasswordPolicy::default();
        let a = alice();
        for name in [
            "Alice-does-not-match",
            "ALICE.W@ACME.TEST",
            "alice.w@acme.test",
            "+8613800138000",
            "8613800138000",
            "13800138000",
        ] {
            let broken = p.check(name, Some(name), &a);
            let expected = !name.starts_with("Alice-");
            assert_eq!(broken.contains(&Rule::NotAccount), expected, "{name}");
        }
        let short_name = UserProfile {
            username: Username::parse("alicealice"),
            ..UserProfile::default()
        };
        assert!(
            p.check("AliceAlice", Some("AliceAlice"), &short_name)
                .contains(&Rule::NotAccount)
        );
    }

    #[test]
    fn tenants_set_classes_history_and_age() {
        let mut tenant = Tenant::for_tests("acme");
        tenant.settings = serde_json::json!({
            "password_min_length": 12,
            "password_min_classes": 3,
            "password_history": 5,
            "password_max_age_days": 90,
        });
        let p = PasswordPolicy::of(&tenant);
        assert_eq!(
            p,
            PasswordPolicy {
                min_length: 12,
                min_classes: 3,
                history: 5,
                max_age_days: Some(90)
            }
        );
        let a = UserProfile::default();
        assert_eq!(
            p.check("all lower case words", Some("all lower case words"), &a),
            vec![Rule::Classes { min: 3 }]
        );
        assert_eq!(
            p.check("Mixed Case 2024 phrase", Some("Mixed Case 2024 phrase"), &a),
            vec![]
        );
        let changed = UnixTime(1_000_000);
        assert!(!p.expired(Some(changed), changed.plus(89 * 86_400)));
        assert!(p.expired(Some(changed), changed.plus(90 * 86_400)));
        assert!(!PasswordPolicy::default().expired(Some(changed), changed.plus(9_999 * 86_400)));
        // Out of range settings fall back to the defaults.
        tenant.settings =
            serde_json::json!({ "password_min_length": 3, "password_min_classes": "x" });
        assert_eq!(PasswordPolicy::of(&tenant), PasswordPolicy::default());
    }
}
