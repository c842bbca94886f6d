//! Typed configuration: defaults usable on a laptop, then an optional TOML file, then `SESAME_…`
//! environment variables. Every problem is reported as one line naming the key and the fix, so
//! an operator never has to read a stack trace to start the server.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod load;
mod validate;

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
    /// Seconds a node keeps serving after SIGTERM/SIGINT with `/readyz` failing, so the load
    /// balancer stops sending to it before its listener closes. 0: close at once.
    pub shutdown_delay_secs: u64,
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
                shutdown_delay_secs: 0,
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
    use std::path::Path;

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
                ("SESAME_SMS_SUCCESS_STATUS", "200, 202"),
            ]),
        )
        .unwrap();
        assert_eq!(c.sms.success_status, [200, 202], "a pair of numbers");
        // A list of text whose item looks like a number is still read as text, and judged as
        // what it is (here, not a proxy address) rather than as a wrong type.
        let e = Config::load_from(
            None,
            env(&[("SESAME_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, 8")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("trusted_proxies") && !e.contains("type"), "{e}");
        // A wrong item of a list of numbers is the one named.
        let e = Config::load_from(None, env(&[("SESAME_SMS_SUCCESS_STATUS", "200,abc")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("success_status.1") && !e.contains("abc"), "{e}");
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
        let docs = include_str!("../../docs/configuration.md");
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
