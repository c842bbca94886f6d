//! Administration: the declarative import that the CLI and the demo use, and the admin REST
//! API (`api`), which the console will build on.

pub mod api;
pub mod import;

/// Ids of departments, apps, roles and clients: 1-64 of `a-z 0-9 . _ : -`, starting with a
/// letter or digit, so they read well in claims and URLs.
pub fn valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | ':' | '-')
        })
}
