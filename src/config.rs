//! Typed configuration: defaults usable on a laptop, then an optional TOML file, then `SESAME_…`
//! environment variables. Every problem is reported as one line naming the key and the fix, so
//! an operator never has to read a stack trace to start the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

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

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The URL browsers and apps reach Sesame at; issuers are `{public_url}/t/{tenant}`.
    pub public_url: String,
    pub listen: String,
    pub data_dir: PathBuf,
    /// Base64 of 32 random bytes; wins over `master_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    pub database: DatabaseConfig,
    pub tls: TlsConfig,
    pub log: LogConfig,
    pub password_hash: PasswordHashConfig,
    pub http: HttpConfig,
    pub tokens: TokenConfig,
    pub session: SessionConfig,
    pub sign_in: SignInConfig,
    /// Verification codes sent by email or SMS (sign-in by code, password reset).
    pub codes: crate::codes::CodeConfig,
    pub email: crate::notify::config::EmailConfig,
    pub sms: crate::notify::config::SmsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; defaults to `sqlite://{data_dir}/sesame.db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub pool_size: u32,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `sesame=debug,tower_http=info`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Argon2id cost; the defaults are OWASP's (m=19456 KiB, t=2, p=1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordHashConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// Load balancers (addresses or networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
}

/// Defaults for clients that do not set their own lifetimes, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub access_token_lifetime: i64,
    pub id_token_lifetime: i64,
    /// Absolute lifetime of a refresh-token family: no rotation extends past it.
    pub refresh_token_lifetime: i64,
    /// A refresh token unused for this long expires, even inside the family's lifetime.
    pub refresh_token_idle_lifetime: i64,
    /// Authorization codes are redeemable this long (RFC 6749 §4.1.2 recommends at most 10 min).
    pub authorization_code_lifetime: i64,
}

/// The browser SSO session and the login flows that lead to it, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// A session not used for this long ends.
    pub idle_timeout: i64,
    /// A session ends this long after sign-in, however active.
    pub absolute_timeout: i64,
    /// A sign-in page left open longer than this must be restarted from the app.
    pub login_flow_lifetime: i64,
}

/// Brute-force protection of the sign-in page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInConfig {
    /// Wrong passwords in a row that lock an account.
    pub lockout_threshold: i64,
    /// Seconds a locked account stays locked (then it unlocks by itself).
    pub lockout_duration: i64,
    /// Failed sign-ins from one address, per `lockout_duration`, before it must wait.
    pub address_limit: i64,
    /// Failures of an account after which the page asks for a captcha.
    pub captcha_after: i64,
    /// Failures from one address (any accounts) after which the page asks for a captcha.
    pub address_captcha_after: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            public_url: "http://127.0.0.1:8080".into(),
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./sesame-data"),
            master_key: None,
            master_key_file: None,
            database: DatabaseConfig {
                url: None,
                pool_size: 8,
                connect_timeout_secs: 5,
            },
            tls: TlsConfig::default(),
            log: LogConfig {
                level: "info".into(),
                format: LogFormat::Text,
            },
            password_hash: PasswordHashConfig {
                memory_kib: 19456,
                iterations: 2,
                parallelism: 1,
            },
            http: HttpConfig {
                max_body_bytes: 64 * 1024,
                request_timeout_secs: 30,
                shutdown_grace_secs: 20,
                trusted_proxies: Vec::new(),
            },
            tokens: TokenConfig {
                access_token_lifetime: 900,
                id_token_lifetime: 900,
                refresh_token_lifetime: 30 * 24 * 3600,
                refresh_token_idle_lifetime: 14 * 24 * 3600,
                authorization_code_lifetime: 60,
            },
            session: SessionConfig {
                idle_timeout: 2 * 3600,
                absolute_timeout: 12 * 3600,
                login_flow_lifetime: 1800,
            },
            sign_in: SignInConfig {
                lockout_threshold: 5,
                lockout_duration: 900,
                address_limit: 100,
                captcha_after: 3,
                address_captcha_after: 20,
            },
            codes: crate::codes::CodeConfig::default(),
            email: Default::default(),
            sms: Default::default(),
        }
    }
}

impl Config {
    /// A copy safe to print: the master key, passwords and the SMS gateway's likely keys replaced.
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        if shown.master_key.is_some() {
            shown.master_key = Some("[redacted]".into());
        }
        if let Some(url) = &shown.database.url {
            shown.database.url = Some(redact_url(url));
        }
        if shown.email.password.is_some() {
            shown.email.password = Some("[redacted]".into());
        }
        // Gateways carry their API key in a header, the query string or the body.
        if let Some(url) = &shown.sms.url {
            let url = redact_url(url);
            shown.sms.url = Some(match url.split_once('?') {
                Some((base, _)) => format!("{base}?[query redacted]"),
                None => url,
            });
        }
        for value in shown.sms.headers.values_mut() {
            *value = "[redacted]".into();
        }
        if !shown.sms.body.is_empty() {
            shown.sms.body = format!("[redacted: {} characters]", shown.sms.body.chars().count());
        }
        shown
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.redacted();
        f.debug_struct("Config")
            .field("public_url", &r.public_url)
            .field("listen", &r.listen)
            .field("data_dir", &r.data_dir)
            .field("master_key", &r.master_key)
            .field("master_key_file", &r.master_key_file)
            .field("database", &r.database)
            .field("tls", &r.tls)
            .field("log", &r.log)
            .field("password_hash", &r.password_hash)
            .field("http", &r.http)
            .field("tokens", &r.tokens)
            .field("session", &r.session)
            .field("sign_in", &r.sign_in)
            .field("codes", &r.codes)
            .field("email", &r.email)
            .field("sms", &r.sms)
            .finish()
    }
}

/// A configuration problem, always naming the key and the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("config key `{key}`: {problem}; {fix}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Which backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    pub fn of(url: &str) -> Option<DatabaseKind> {
        if url.starts_with("sqlite://") {
            Some(DatabaseKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DatabaseKind::Postgres)
        } else {
            None
        }
    }
}

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
        // wants a list, as a comma-separated one.
        let (mut as_text, mut as_list): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        let mut config: Config = loop {
            let mut merged = figment.clone();
            for (key, _, value) in &env {
                let value = if as_list.contains(key) {
                    let items: Vec<String> = value
                        .split(',')
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .collect();
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
            let path = e.path.join(".");
            let variable = env.iter().find(|(key, ..)| *key == path);
            if let (figment::error::Kind::InvalidType(_, expected), Some(_)) = (&e.kind, variable) {
                if expected.contains("sequence") && !as_list.contains(&path) {
                    as_list.push(path);
                    continue;
                }
                if !as_text.contains(&path) && !as_list.contains(&path) {
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

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError::new(
                "listen",
                format!("'{}' is not an address and port", self.listen),
                "write it as IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:443",
            )
        })
    }

    /// The public URL without a trailing slash, the base of every issuer.
    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("sesame.db").display()),
        }
    }

    pub fn database_kind(&self) -> DatabaseKind {
        DatabaseKind::of(&self.database_url()).unwrap_or(DatabaseKind::Sqlite)
    }

    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Checks every key and normalizes `public_url` (lower-case scheme and host, no default port,
    /// no trailing slash) so issuers built from it are stable.
    fn validate(&mut self) -> Result<(), ConfigError> {
        match url::Url::parse(&self.public_url) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                if u.query().is_some() || u.fragment().is_some() {
                    return Err(ConfigError::new(
                        "public_url",
                        "has a query or fragment",
                        "use a plain URL such as https://id.example.com",
                    ));
                }
                if !u.username().is_empty() || u.password().is_some() {
                    return Err(ConfigError::new(
                        "public_url",
                        "contains a user name or password",
                        "use a plain URL such as https://id.example.com",
                    ));
                }
                self.public_url = u.as_str().trim_end_matches('/').to_string();
            }
            _ => {
                return Err(ConfigError::new(
                    "public_url",
                    format!("'{}' is not an http(s) URL", self.public_url),
                    "use the URL users reach Sesame at, e.g. https://id.example.com",
                ));
            }
        }
        self.listen_addr()?;
        let db = self.database_url();
        match DatabaseKind::of(&db) {
            Some(DatabaseKind::Postgres) => {
                if url::Url::parse(&db).is_err() {
                    return Err(ConfigError::new(
                        "database.url",
                        "is not a valid PostgreSQL URL",
                        "write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                    ));
                }
            }
            Some(DatabaseKind::Sqlite) => {
                if db.trim_start_matches("sqlite://").is_empty() {
                    return Err(ConfigError::new(
                        "database.url",
                        "names no file",
                        "write it as sqlite://PATH/TO/sesame.db",
                    ));
                }
            }
            None => {
                return Err(ConfigError::new(
                    "database.url",
                    format!("unsupported scheme in '{}'", redact_url(&db)),
                    "use sqlite://PATH or postgres://USER@HOST/DATABASE",
                ));
            }
        }
        if !(1..=1000).contains(&self.database.pool_size) {
            return Err(ConfigError::new(
                "database.pool_size",
                format!("{} is out of range", self.database.pool_size),
                "set 1 to 1000 (4-8 is typical)",
            ));
        }
        for (key, value, max) in [
            (
                "database.connect_timeout_secs",
                self.database.connect_timeout_secs,
                300,
            ),
            (
                "http.request_timeout_secs",
                self.http.request_timeout_secs,
                3600,
            ),
            (
                "http.shutdown_grace_secs",
                self.http.shutdown_grace_secs,
                3600,
            ),
        ] {
            // Zero would not mean "none": the server would take it as a second, or not wait.
            if !(1..=max).contains(&value) {
                return Err(ConfigError::new(
                    key,
                    format!("{value} is out of range"),
                    format!("give 1 to {max} seconds"),
                ));
            }
        }
        if let Some(key) = &self.master_key {
            crate::crypto::master::MasterKey::from_base64(key).map_err(|_| {
                ConfigError::new(
                    "master_key",
                    "is not base64 of 32 bytes",
                    "generate one with `head -c32 /dev/urandom | base64`",
                )
            })?;
        }
        match (&self.tls.cert, &self.tls.key) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                for (name, path) in [("tls.cert", cert), ("tls.key", key)] {
                    if let Err(e) = std::fs::metadata(path) {
                        return Err(ConfigError::new(
                            name,
                            format!("cannot read {}: {e}", path.display()),
                            "point it at a readable PEM file",
                        ));
                    }
                }
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "tls.key",
                    "is missing while tls.cert is set",
                    "set both or neither",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "tls.cert",
                    "is missing while tls.key is set",
                    "set both or neither",
                ));
            }
        }
        check_log_filter("log.level", &self.log.level)?;
        let ph = &self.password_hash;
        // Above the costs Sesame verifies (`crypto::password`), one sign-in would take the node's
        // memory or seconds of CPU, and the first sign-in, which rehashes the password at the
        // configured cost, would take the node down. (Lower costs than the defaults are
        // accepted, for tests; docs/configuration.md tells operators not to.)
        use crate::crypto::password::{MAX_ITERATIONS, MAX_MEMORY_KIB, MAX_PARALLELISM};
        for (key, value, max, fix) in [
            (
                "password_hash.memory_kib",
                ph.memory_kib,
                MAX_MEMORY_KIB,
                "give KiB up to 262144 (256 MiB); the default is 19456",
            ),
            (
                "password_hash.iterations",
                ph.iterations,
                MAX_ITERATIONS,
                "give 1 to 16 passes; the default is 2",
            ),
            (
                "password_hash.parallelism",
                ph.parallelism,
                MAX_PARALLELISM,
                "give 1 to 16 lanes; the default is 1",
            ),
        ] {
            if value > max {
                return Err(ConfigError::new(key, format!("{value} is too large"), fix));
            }
        }
        if argon2::Params::new(ph.memory_kib, ph.iterations, ph.parallelism, None).is_err() {
            return Err(ConfigError::new(
                "password_hash",
                "memory_kib/iterations/parallelism are out of argon2's range",
                "use the defaults (19456, 2, 1), or at least 8 KiB of memory per lane",
            ));
        }
        for (key, value) in [
            (
                "tokens.access_token_lifetime",
                self.tokens.access_token_lifetime,
            ),
            ("tokens.id_token_lifetime", self.tokens.id_token_lifetime),
            (
                "tokens.refresh_token_lifetime",
                self.tokens.refresh_token_lifetime,
            ),
            (
                "tokens.refresh_token_idle_lifetime",
                self.tokens.refresh_token_idle_lifetime,
            ),
            (
                "tokens.authorization_code_lifetime",
                self.tokens.authorization_code_lifetime,
            ),
            ("session.idle_timeout", self.session.idle_timeout),
            ("session.absolute_timeout", self.session.absolute_timeout),
            (
                "session.login_flow_lifetime",
                self.session.login_flow_lifetime,
            ),
            ("sign_in.lockout_duration", self.sign_in.lockout_duration),
        ] {
            if !(1..=MAX_LIFETIME).contains(&value) {
                return Err(ConfigError::new(
                    key,
                    "must be between 1 second and 10 years",
                    "give a lifetime in seconds, at most 315360000",
                ));
            }
        }
        for (key, value) in [
            ("sign_in.lockout_threshold", self.sign_in.lockout_threshold),
            ("sign_in.address_limit", self.sign_in.address_limit),
            ("sign_in.captcha_after", self.sign_in.captcha_after),
            (
                "sign_in.address_captcha_after",
                self.sign_in.address_captcha_after,
            ),
        ] {
            if !(1..=1_000_000).contains(&value) {
                return Err(ConfigError::new(
                    key,
                    "must be between 1 and 1000000",
                    "give a number of failed sign-ins (defaults: lockout_threshold 5, address_limit 100, captcha_after 3)",
                ));
            }
        }
        if let Err(bad) = crate::web::proxies::TrustedProxies::parse(&self.http.trusted_proxies) {
            return Err(ConfigError::new(
                "http.trusted_proxies",
                format!("'{bad}' is not an address or network"),
                "list addresses or networks, e.g. [\"10.0.0.0/8\", \"192.0.2.7\"]",
            ));
        }
        self.codes.validate()?;
        self.email.validate()?;
        self.sms.validate()?;
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "http.max_body_bytes",
                "is below 1024",
                "use at least 1024 (default 65536)",
            ));
        }
        // Request extractors stop at 2 MiB whatever this says; a larger setting would lie.
        if self.http.max_body_bytes > MAX_BODY_LIMIT {
            return Err(ConfigError::new(
                "http.max_body_bytes",
                "is above 2097152 (2 MiB)",
                "use at most 2097152 (default 65536)",
            ));
        }
        Ok(())
    }
}

/// Refuses a log filter `tracing` would not read as meant. A lone word is taken by `tracing` as
/// the name of a module to show logs of, so `warning` or `verbose` would silence every line,
/// the master key's "back it up" warning included: a lone word must be a level.
fn check_log_filter(key: &str, filter: &str) -> Result<(), ConfigError> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let word = !filter.contains(['=', ',', ':', '[']);
    let known = LEVELS.contains(&filter.trim().to_ascii_lowercase().as_str());
    if (word && !known) || tracing_subscriber::EnvFilter::try_new(filter).is_err() {
        return Err(ConfigError::new(
            key,
            format!("'{filter}' is not a log level or filter"),
            "use a level (error, warn, info, debug, trace, off) or a filter like sesame=debug,info",
        ));
    }
    Ok(())
}

/// The longest lifetime or timeout a setting may give: ten years, far below any overflow.
const MAX_LIFETIME: i64 = 10 * 365 * 24 * 3600;

/// The largest `http.max_body_bytes`: axum's extractors' own bound.
const MAX_BODY_LIMIT: usize = 2 * 1024 * 1024;

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

/// Strips a password from a URL before it is printed.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://./sesame-data/sesame.db");
        assert_eq!(c.password_hash.memory_kib, 19456);
    }

    #[test]
    fn file_then_environment_override() {
        let f = file("public_url = \"https://id.example.com\"\n[database]\npool_size = 3\n");
        let c = Config::load_from(
            Some(f.path()),
            env(&[
                ("SESAME_DATABASE_URL", "postgres://u@db/sesame"),
                ("SESAME_DATABASE_POOL_SIZE", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(c.public_url, "https://id.example.com");
        assert_eq!(c.database_url(), "postgres://u@db/sesame");
        assert_eq!(c.database.pool_size, 5);
    }

    #[test]
    fn every_section_and_kind_of_value_can_come_from_the_environment() {
        let c = Config::load_from(
            None,
            env(&[
                ("SESAME_SIGN_IN_LOCKOUT_THRESHOLD", "3"),
                ("SESAME_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7"),
                ("SESAME_EMAIL_PASSWORD", "20481937"),
                ("SESAME_EMAIL_USERNAME", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.sign_in.lockout_threshold, 3);
        assert_eq!(c.http.trusted_proxies, ["10.0.0.0/8", "192.0.2.7"]);
        assert_eq!(
            c.email.password.as_deref(),
            Some("20481937"),
            "text stays text"
        );
        assert_eq!(c.email.username.as_deref(), Some("true"));
        // A wrong type names the variable, and never shows the value.
        let e =
            Config::load_from(None, env(&[("SESAME_DATABASE_POOL_SIZE", "s3cret")])).unwrap_err();
        assert_eq!(e.key, "database.pool_size");
        let text = e.to_string();
        assert!(
            text.contains("SESAME_DATABASE_POOL_SIZE") && !text.contains("s3cret"),
            "{text}"
        );
    }

    #[test]
    fn log_filters_that_would_log_nothing_and_ruinous_costs_are_refused() {
        for (var, value, key) in [
            ("SESAME_LOG_LEVEL", "warning", "log.level"),
            ("SESAME_LOG", "verbose", "SESAME_LOG"),
            ("SESAME_LOG", "sesame=[", "SESAME_LOG"),
            (
                "SESAME_PASSWORD_HASH_MEMORY_KIB",
                "4294967295",
                "password_hash.memory_kib",
            ),
            (
                "SESAME_PASSWORD_HASH_ITERATIONS",
                "100",
                "password_hash.iterations",
            ),
            (
                "SESAME_HTTP_REQUEST_TIMEOUT_SECS",
                "0",
                "http.request_timeout_secs",
            ),
            ("SESAME_DATABASE_POOL_SIZE", "100000", "database.pool_size"),
            (
                "SESAME_TOKENS_ACCESS_TOKEN_LIFETIME",
                "9223372036854775807",
                "tokens.access_token_lifetime",
            ),
        ] {
            let e = Config::load_from(None, env(&[(var, value)])).unwrap_err();
            assert_eq!(e.key, key, "{var}={value}: {e}");
        }
        for ok in [
            "warn",
            "DEBUG",
            "off",
            "sesame=debug,info",
            "info,tower_http=warn",
        ] {
            Config::load_from(None, env(&[("SESAME_LOG_LEVEL", ok)])).unwrap();
        }
    }

    #[test]
    fn what_is_printed_holds_no_gateway_key() {
        let mut c = Config::load_from(None, env(&[])).unwrap();
        c.sms.url = Some("https://sms.example/send?apikey=SMSQUERYKEY123&to={{ to }}".into());
        c.sms.body = r#"{"key": "BODYKEY456", "text": "{{ text }}"}"#.into();
        c.email.password = Some("SMTPPASS789".into());
        let shown = format!("{:?}", c.redacted());
        for secret in ["SMSQUERYKEY123", "BODYKEY456", "SMTPPASS789"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("https://sms.example/send?[query redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let f = file("[database]\nulr = \"sqlite://x\"\n");
        let e = Config::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(e.key, "database.ulr");
        assert!(e.to_string().contains("url"), "{e}");
    }

    #[test]
    fn unknown_environment_key_is_named() {
        let e = Config::load_from(None, env(&[("SESAME_PUBLIK_URL", "x")])).unwrap_err();
        assert_eq!(e.key, "publik_url");
    }

    #[test]
    fn bad_urls_name_the_key() {
        let e = Config::load_from(None, env(&[("SESAME_PUBLIC_URL", "not a url")])).unwrap_err();
        assert_eq!(e.key, "public_url");
        let e =
            Config::load_from(None, env(&[("SESAME_DATABASE_URL", "mysql://x/y")])).unwrap_err();
        assert_eq!(e.key, "database.url");
        let e = Config::load_from(None, env(&[("SESAME_LISTEN", "localhost")])).unwrap_err();
        assert_eq!(e.key, "listen");
    }

    #[test]
    fn body_limit_is_bounded_both_ways() {
        for bad in ["100", "4194304"] {
            let e =
                Config::load_from(None, env(&[("SESAME_HTTP_MAX_BODY_BYTES", bad)])).unwrap_err();
            assert_eq!(e.key, "http.max_body_bytes", "{bad}");
        }
        let ok =
            Config::load_from(None, env(&[("SESAME_HTTP_MAX_BODY_BYTES", "2097152")])).unwrap();
        assert_eq!(ok.http.max_body_bytes, 2097152);
    }

    #[test]
    fn unreadable_file_and_partial_toml_are_reported() {
        let e =
            Config::load_from(Some(Path::new("/nonexistent/sesame.toml")), env(&[])).unwrap_err();
        assert_eq!(e.key, "--config");
        let f = file("public_url = \"https://id.example.com\"\n[database\n");
        let e = Config::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert!(e.to_string().contains("line"), "{e}");
    }

    #[test]
    fn tls_needs_both_halves_and_readable_files() {
        let e =
            Config::load_from(None, env(&[("SESAME_TLS_CERT", "/nonexistent.pem")])).unwrap_err();
        assert_eq!(e.key, "tls.key");
        let e = Config::load_from(
            None,
            env(&[
                ("SESAME_TLS_CERT", "/nonexistent.pem"),
                ("SESAME_TLS_KEY", "/nonexistent.key"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.key, "tls.cert");
    }

    #[test]
    fn public_url_is_normalized_and_secrets_never_printed() {
        let c = Config::load_from(
            None,
            env(&[
                ("SESAME_PUBLIC_URL", "HTTPS://ID.Example.com:443/"),
                (
                    "SESAME_MASTER_KEY",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
                ("SESAME_DATABASE_URL", "postgres://u:hunter2@db/sesame"),
            ]),
        )
        .unwrap();
        assert_eq!(c.public_url, "https://id.example.com");
        assert!(c.https());
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("AAAAAAAA"),
            "{debug}"
        );
        let e = Config::load_from(
            None,
            env(&[("SESAME_PUBLIC_URL", "https://u:p@id.example.com")]),
        )
        .unwrap_err();
        assert_eq!(e.key, "public_url");
        // A URL under the wrong key is reported without its password.
        let e = Config::load_from(
            None,
            env(&[("SESAME_DATABASE", "postgres://u:hunter2@h/db")]),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = Config::load_from(None, env(&[("SESAME_LOG_LEVEL", "loud=[")])).unwrap_err();
        assert_eq!(e.key, "log.level");
    }

    #[test]
    fn wrong_type_is_named() {
        let f = file("[database]\npool_size = \"many\"\n");
        let e = Config::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(e.key, "database.pool_size");
    }

    #[test]
    fn test_variables_are_not_config_keys() {
        Config::load_from(
            None,
            env(&[
                ("SESAME_TEST_DATABASE_URL", "postgres://x/y"),
                ("SESAME_CONFIG", "a"),
            ]),
        )
        .unwrap();
    }

    /// docs/configuration.md lists every key; this fails when a key is added without docs.
    #[test]
    fn every_key_is_documented() {
        let docs = include_str!("../docs/configuration.md");
        let mut full = Config {
            master_key: Some(String::new()),
            master_key_file: Some(PathBuf::new()),
            ..Config::default()
        };
        full.database.url = Some(String::new());
        full.tls = TlsConfig {
            cert: Some(PathBuf::new()),
            key: Some(PathBuf::new()),
        };
        let value = serde_json::to_value(&full).unwrap();
        let mut keys = Vec::new();
        for (k, v) in value.as_object().unwrap() {
            match v.as_object() {
                Some(section) => keys.extend(section.keys().map(|inner| format!("{k}.{inner}"))),
                None => keys.push(k.clone()),
            }
        }
        assert!(keys.len() > 15);
        for key in keys {
            assert!(
                docs.contains(&format!("| `{key}` |")),
                "docs/configuration.md does not document `{key}`"
            );
        }
    }
}
