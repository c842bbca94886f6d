//! The rules of a tenant's settings and branding (docs/sign-in.md, "Tenant settings"), checked
//! when an administrator gives them. The pages read each setting leniently, falling back to its
//! default, so a value outside its rules would otherwise be dropped without a word: a
//! `password_max_age_days = 3651` would mean no maximum age at all, and a misspelt key nothing.

use serde_json::{Map, Value};

use crate::account::REGIONS;
use crate::i18n::Locale;

/// What a setting's value must be.
enum Rule {
    /// An integer in this range.
    Int(i64, i64),
    Bool,
    Text,
    /// An `https://` address.
    Https,
    Locale,
    /// A region code the page's selector offers, such as `CN`.
    Region,
    /// A version: any number, or non-empty text.
    Version,
}

const SETTINGS: &[(&str, Rule)] = &[
    ("default_locale", Rule::Locale),
    ("default_region", Rule::Region),
    ("terms_url", Rule::Https),
    ("privacy_url", Rule::Https),
    ("agreement_version", Rule::Version),
    ("terms_text", Rule::Text),
    ("privacy_text", Rule::Text),
    ("free_trial_days", Rule::Int(0, 365)),
    ("remember_me_days", Rule::Int(0, 365)),
    ("password_min_length", Rule::Int(8, 128)),
    ("password_min_classes", Rule::Int(1, 4)),
    ("password_history", Rule::Int(0, 24)),
    ("password_max_age_days", Rule::Int(1, 3650)),
    ("saml_sign_metadata", Rule::Bool),
    ("private_app_addresses", Rule::Bool),
];

/// The page also reads these three from `branding` when `settings` lacks them.
const BRANDING: &[(&str, Rule)] = &[
    ("logo_url", Rule::Https),
    ("terms_url", Rule::Https),
    ("privacy_url", Rule::Https),
    ("default_region", Rule::Region),
];

/// Checks `settings`; the first problem, naming the key and what it takes.
pub fn check_settings(settings: &Map<String, Value>) -> Result<(), String> {
    check(settings, SETTINGS, "settings")
}

/// Checks `branding` as [`check_settings`] does.
pub fn check_branding(branding: &Map<String, Value>) -> Result<(), String> {
    check(branding, BRANDING, "branding")
}

fn check(given: &Map<String, Value>, rules: &[(&str, Rule)], what: &str) -> Result<(), String> {
    for (key, value) in given {
        let Some((_, rule)) = rules.iter().find(|(k, _)| k == key) else {
            let known: Vec<&str> = rules.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "{what}.{key} is not a setting (known: {})",
                known.join(", ")
            ));
        };
        if let Err(wants) = valid(rule, value) {
            return Err(format!("{what}.{key} must be {wants}"));
        }
    }
    Ok(())
}

fn valid(rule: &Rule, value: &Value) -> Result<(), String> {
    let ok = match rule {
        Rule::Int(min, max) => value.as_i64().is_some_and(|n| (*min..=*max).contains(&n)),
        Rule::Bool => value.is_boolean(),
        Rule::Text => value.is_string(),
        Rule::Https => value
            .as_str()
            .is_some_and(|s| s.starts_with("https://") && url::Url::parse(s).is_ok()),
        Rule::Locale => value.as_str().and_then(Locale::from_tag).is_some(),
        Rule::Region => value
            .as_str()
            .is_some_and(|s| REGIONS.iter().any(|(code, ..)| *code == s)),
        Rule::Version => match value {
            Value::Number(_) => true,
            Value::String(s) => !s.trim().is_empty(),
            _ => false,
        },
    };
    if ok {
        return Ok(());
    }
    Err(match rule {
        Rule::Int(min, max) => format!("a whole number from {min} to {max}"),
        Rule::Bool => "true or false".into(),
        Rule::Text => "text".into(),
        Rule::Https => "an https:// address".into(),
        Rule::Locale => "zh-CN, en or zh-TW".into(),
        Rule::Region => "a region code of the sign-in page's list, in capitals, such as CN".into(),
        Rule::Version => "a version: a number, or text".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: Value) -> Result<(), String> {
        check_settings(v.as_object().unwrap())
    }

    #[test]
    fn settings_outside_their_rules_are_named() {
        settings(json!({
            "password_min_length": 12, "default_locale": "zh-TW", "default_region": "US",
            "terms_url": "https://acme.example/terms", "agreement_version": "2026-1",
            "saml_sign_metadata": true, "remember_me_days": 0
        }))
        .unwrap();
        for (bad, named) in [
            (
                json!({ "password_min_length": 7 }),
                "password_min_length must be a whole number from 8 to 128",
            ),
            (
                json!({ "password_min_length": "12" }),
                "password_min_length must be",
            ),
            (
                json!({ "password_max_age_days": 3651 }),
                "password_max_age_days",
            ),
            (json!({ "remember_me_days": 366 }), "remember_me_days"),
            (
                json!({ "default_locale": "fr" }),
                "default_locale must be zh-CN, en or zh-TW",
            ),
            (json!({ "terms_url": "http://acme.example/terms" }), "https"),
            (
                json!({ "default_region": "us" }),
                "default_region must be a region code",
            ),
            (json!({ "default_region": "ZZ" }), "default_region"),
            (
                json!({ "password_min_lenght": 9 }),
                "password_min_lenght is not a setting",
            ),
        ] {
            let err = settings(bad.clone()).unwrap_err();
            assert!(err.contains(named), "{bad}: {err}");
        }
        settings(json!({ "agreement_version": 2.1 })).unwrap();
        check_branding(
            json!({ "terms_url": "https://a.example/t" })
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let err = check_branding(json!({ "logo": "x" }).as_object().unwrap()).unwrap_err();
        assert!(err.contains("branding.logo is not a setting"), "{err}");
    }
}
