//! The rules of every configuration key, checked once at start: a value outside them stops
//! start-up with the key and the fix, rather than being clamped or ignored at run time.

use super::{Config, ConfigError, DatabaseKind, redact_url};

impl Config {
    /// Checks every key and normalizes `public_url` (lower-case scheme and host, no default port,
    /// no trailing slash) so issuers built from it are stable.
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
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
        if self.http.shutdown_delay_secs > 300 {
            return Err(ConfigError::new(
                "http.shutdown_delay_secs",
                format!("{} is out of range", self.http.shutdown_delay_secs),
                "give 0 to 300 seconds: a little more than the load balancer's health-check interval",
            ));
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
pub(super) fn check_log_filter(key: &str, filter: &str) -> Result<(), ConfigError> {
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
