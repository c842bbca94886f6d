//! Scopes (RFC 6749 §3.3): a set of space-delimited tokens, kept sorted and unique so two
//! requests for the same scopes compare equal (consent lookups, refresh narrowing).

use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

/// At most this many scope tokens in one request; more is an attack, not a client.
const MAX_TOKENS: usize = 64;
const MAX_TOKEN_LEN: usize = 128;

impl Scope {
    /// `None` for an empty token (two spaces), a character outside `%x21 / %x23-5B / %x5D-7E`, or
    /// an absurd size.
    pub fn parse(s: &str) -> Option<Scope> {
        let mut set = BTreeSet::new();
        if s.is_empty() {
            return Some(Scope(set));
        }
        for token in s.split(' ') {
            let ok = !token.is_empty()
                && token.len() <= MAX_TOKEN_LEN
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !ok {
                return None;
            }
            set.insert(token.to_string());
        }
        (set.len() <= MAX_TOKENS).then_some(Scope(set))
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// RFC 6749 §6: a refresh may ask for the same or fewer scopes, never more.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Only the tokens also in `allowed`.
    pub fn intersect(&self, allowed: &Scope) -> Scope {
        Scope(self.0.intersection(&allowed.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for t in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts_and_dedups() {
        let s = Scope::parse("openid profile email openid").unwrap();
        assert_eq!(s.to_string(), "email openid profile");
        assert!(s.contains("openid"));
        assert!(Scope::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_tokens() {
        for bad in [
            "openid  profile",
            " openid",
            "open\"id",
            "openid\\",
            "é",
            "a\tb",
            &"x ".repeat(100),
        ] {
            assert!(Scope::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn subsets_and_intersections() {
        let all = Scope::parse("openid profile offline_access").unwrap();
        let some = Scope::parse("openid profile").unwrap();
        assert!(some.is_subset_of(&all) && !all.is_subset_of(&some));
        assert_eq!(
            Scope::parse("openid admin")
                .unwrap()
                .intersect(&all)
                .to_string(),
            "openid"
        );
    }
}
