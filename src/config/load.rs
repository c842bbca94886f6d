//! Where the configuration comes from: defaults, then the TOML file, then `SESAME_` variables,
//! each overriding the one before, and how a problem there is told (the key, its source, the fix;
//! never the value).

use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

use super::validate::check_log_filter;
use super::{Config, ConfigError};

/// Environment variables with the `SESAME_` prefix that are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["config", "test_database_url", "log"];

/// Sections whose keys can be set as `SESAME_{SECTION}_{KEY}`.
const SECTIONS: &[&str] = &[
    "database",
    "tls",
    "log",
    "password_hash",
    "http",
    "tokens",
    "session",
    "email",
    "sms",
    "codes",
    "sign_in",
];

impl Config {
    /// Reads defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_from(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment, so tests need not touch the process's.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    "--config",
                    format!("cannot read {}: {e}", path.display()),
                    "pass a readable TOML file with --config or SESAME_CONFIG",
                )
            })?;
            figment = figment.merge(Toml::string(&text));
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        // Not a key, but read with them (telemetry): refused here rather than silently dropped.
        // Empty, it is unset (as `telemetry` takes it).
        if let Some((_, filter)) = env
            .iter()
            .find(|(k, v)| k == "SESAME_LOG" && !v.trim().is_empty())
        {
            check_log_filter("SESAME_LOG", filter)?;
        }
        // (path, variable, value)
        let env: Vec<(String, String, String)> = env
            .into_iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("SESAME_")?.to_ascii_lowercase();
                if NON_CONFIG_ENV.contains(&key.as_str()) {
                    return None;
                }
                Some((env_key_to_path(&key), k, v))
            })
            .collect();
        // A variable's value is read as a number or a boolean when it looks like one; where the
        // key wants text (an all-digit SMTP password), it is read again as text, and where it
        // wants a list (or a pair, such as `sms.success_status`), as a comma-separated one whose
        // items are read the same way: as numbers where they look like them, else as text.
        let (mut as_text, mut as_list): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        let mut config: Config = loop {
            let mut merged = figment.clone();
            for (key, _, value) in &env {
                let value = if as_list.contains(key) {
                    let items = value.split(',').map(str::trim).filter(|v| !v.is_empty());
                    let items: Vec<figment::value::Value> = if as_text.contains(key) {
                        items.map(figment::value::Value::from).collect()
                    } else {
                        items.map(parse_env_value).collect()
                    };
                    figment::value::Value::from(items)
                } else if as_text.contains(key) {
                    figment::value::Value::from(value.clone())
                } else {
                    parse_env_value(value)
                };
                merged = merged.merge((key.as_str(), value));
            }
            let e = match merged.extract() {
                Ok(config) => break config,
                Err(e) => e,
            };
            let mut path = e.path.join(".");
            // An item of a list read from a variable: its error is the variable's, and reading
            // the items again as text helps only if this one wanted text.
            let mut item_wants_text = true;
            if let Some((list, index)) = path.rsplit_once('.')
                && index.bytes().all(|b| b.is_ascii_digit())
                && as_list.iter().any(|l| l == list)
            {
                item_wants_text = matches!(&e.kind,
                    figment::error::Kind::InvalidType(_, expected) if expected.contains("string"));
                path = list.to_string();
            }
            let variable = env.iter().find(|(key, ..)| *key == path);
            if let (figment::error::Kind::InvalidType(_, expected), Some(_), true) =
                (&e.kind, variable, item_wants_text)
            {
                let wants_list = expected.contains("sequence") || expected.contains("array");
                if wants_list && !as_list.contains(&path) {
                    as_list.push(path);
                    continue;
                }
                // Text for a plain key; for a list, text items.
                if !as_text.contains(&path) {
                    as_text.push(path);
                    continue;
                }
            }
            let source = match (variable, file) {
                (Some((_, name, _)), _) => Some(name.clone()),
                (None, Some(f)) => Some(f.display().to_string()),
                (None, None) => None,
            };
            return Err(figment_error(e, source.as_deref()));
        };
        config.validate()?;
        Ok(config)
    }
}

/// `database_url` → `database.url`: the first `_` after a section name separates section and key.
fn env_key_to_path(key: &str) -> String {
    for section in SECTIONS {
        if let Some(rest) = key.strip_prefix(section).and_then(|r| r.strip_prefix('_')) {
            return format!("{section}.{rest}");
        }
    }
    key.to_string()
}

/// Environment values are strings; numbers are passed on as numbers so `SESAME_DATABASE_POOL_SIZE=4`
/// works.
fn parse_env_value(value: &str) -> figment::value::Value {
    if let Ok(n) = value.parse::<i64>() {
        return figment::value::Value::from(n);
    }
    if let Ok(b) = value.parse::<bool>() {
        return figment::value::Value::from(b);
    }
    figment::value::Value::from(value.to_string())
}

fn figment_error(e: figment::Error, source: Option<&str>) -> ConfigError {
    use figment::error::Kind;
    let key = if e.path.is_empty() {
        "(file)".to_string()
    } else {
        e.path.join(".")
    };
    let source = match source {
        Some(f) => format!(" in {f}"),
        None => String::new(),
    };
    match &e.kind {
        Kind::UnknownField(field, expected) => {
            let key = if e.path.last() == Some(field) {
                key
            } else if e.path.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
            ConfigError::new(
                &key,
                format!("is not a known key{source}"),
                format!(
                    "remove it or check its spelling (known here: {})",
                    expected.join(", ")
                ),
            )
        }
        // Name only the type found: the value may be a password (a URL put under the wrong key).
        Kind::InvalidType(actual, expected) => ConfigError::new(
            &key,
            format!("has the wrong type{source}: found {}", type_name(actual)),
            format!("give {expected}"),
        ),
        Kind::Message(msg) => ConfigError::new(
            &key,
            format!("cannot be read{source}: {msg}"),
            "fix the TOML syntax",
        ),
        other => ConfigError::new(
            &key,
            format!("{other}{source}"),
            "see docs/configuration.md",
        ),
    }
}

fn type_name(actual: &figment::error::Actual) -> String {
    use figment::error::Actual;
    // The kind only, never the value: it may be a secret in the wrong place.
    match actual {
        Actual::Str(_) | Actual::Other(_) => "a string".into(),
        Actual::Bytes(_) => "bytes".into(),
        Actual::Char(_) => "a character".into(),
        Actual::Bool(_) => "a boolean".into(),
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer".into(),
        Actual::Float(_) => "a number with a fraction".into(),
        Actual::Seq => "a list".into(),
        Actual::Map => "a table".into(),
        other => other.to_string(),
    }
}
