//! The identifiers a person signs in with: username, email, or mobile number in E.164. Each is a
//! newtype whose constructor normalizes it, so the store's uniqueness rules and the sign-in lookup
//! agree on what "the same account" means.

use std::fmt;

/// 1-64 characters of letters, digits, `.`, `_`, `-`, starting with a letter (so it never reads
/// as a phone number or an email), stored lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Option<Username> {
        let s = s.trim().to_lowercase();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        ok.then_some(Username(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, trimmed and lower-cased (every mail system we deliver to treats the local
/// part case-insensitively, and users type it both ways).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Option<Email> {
        let s = s.trim().to_lowercase();
        let (local, domain) = s.split_once('@')?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && s.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ','));
        ok.then_some(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A valid mobile number in E.164 (`+8613800138000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses `+CC…` as is, or a national number with `region` (ISO 3166 code such as `CN`) from
    /// the sign-in page's country/region selector.
    pub fn parse(s: &str, region: Option<&str>) -> Option<Phone> {
        let region = match region {
            Some(r) => Some(
                r.to_ascii_uppercase()
                    .parse::<phonenumber::country::Id>()
                    .ok()?,
            ),
            None => None,
        };
        // A number written with its country code is read without the region: given one, the
        // parser strips that region's trunk prefix from the number's start too, so with `US`
        // selected `+49 1512 3456789` would lose its `1` (and be someone else's number).
        let s = s.trim();
        let region = if s.starts_with('+') { None } else { region };
        let number = phonenumber::parse(region, s).ok()?;
        if !phonenumber::is_valid(&number) {
            return None;
        }
        Some(Phone(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number without its country code (`13800138000`).
    pub fn national(&self) -> Option<String> {
        phonenumber::parse(None, &self.0)
            .ok()
            .map(|n| n.national().value().to_string())
    }
}

/// Country/region codes the sign-in page offers for mobile numbers: (ISO 3166 code, calling
/// code, name). A number typed with its own `+` prefix needs none of them.
pub const REGIONS: &[(&str, &str, &str)] = &[
    ("CN", "86", "China mainland"),
    ("HK", "852", "Hong Kong"),
    ("MO", "853", "Macao"),
    ("TW", "886", "Taiwan"),
    ("SG", "65", "Singapore"),
    ("MY", "60", "Malaysia"),
    ("JP", "81", "Japan"),
    ("KR", "82", "South Korea"),
    ("TH", "66", "Thailand"),
    ("VN", "84", "Vietnam"),
    ("ID", "62", "Indonesia"),
    ("PH", "63", "Philippines"),
    ("IN", "91", "India"),
    ("AE", "971", "United Arab Emirates"),
    ("AU", "61", "Australia"),
    ("US", "1", "United States"),
    ("CA", "1", "Canada"),
    ("GB", "44", "United Kingdom"),
    ("DE", "49", "Germany"),
    ("FR", "33", "France"),
];

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
display_as_str!(Username, Email, Phone);

/// What a person typed in the account field, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Username(Username),
    Email(Email),
    Phone(Phone),
}

impl Login {
    pub fn parse(input: &str, region: Option<&str>) -> Option<Login> {
        let input = input.trim();
        if input.contains('@') {
            return Email::parse(input).map(Login::Email);
        }
        let looks_like_phone = input.starts_with('+')
            || (input.chars().any(|c| c.is_ascii_digit())
                && input
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')')));
        if looks_like_phone {
            return Phone::parse(input, region).map(Login::Phone);
        }
        Username::parse(input).map(Login::Username)
    }
}

/// Whether `name` may be shown to others as a person's or a company's name: 1 to `max`
/// characters, none of them a control character or an invisible one that changes how the text
/// around it reads (RFC 8266 §2.2 leaves these out of nicknames). A right-to-left override in
/// a display name would make "Alice\u{202E}nimdA" read as an administrator's; a zero-width
/// space would make two names that look alike differ. The joiners U+200C and U+200D stay
/// allowed: Persian, the Indic scripts and emoji sequences need them.
pub fn is_shown_name(name: &str, max: usize) -> bool {
    // Unicode's Default_Ignorable_Code_Point (the PRECIS classes leave them out), but for the
    // joiners and the text and emoji variation selectors.
    let invisible = |c: char| {
        matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}' | '\u{200E}' | '\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0D}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
    };
    (1..=max).contains(&name.chars().count())
        && !name.chars().any(|c| c.is_control() || invisible(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_names_carry_no_invisible_controls() {
        for ok in [
            "Alice",
            "王小明",
            "می\u{200C}خواهم",
            "👩\u{200D}💻 Dev",
            "A".repeat(100).as_str(),
        ] {
            assert!(is_shown_name(ok, 100), "{ok:?}");
        }
        for bad in [
            "",
            "Alice\u{202E}nimdA",
            "Ali\u{200B}ce",
            "\u{2066}Bob\u{2069}",
            "Tab\there",
            "\u{FEFF}Eve",
            "\u{3164}",
            "Bob\u{E0041}\u{E0042}",
            "A".repeat(101).as_str(),
        ] {
            assert!(!is_shown_name(bad, 100), "{bad:?}");
        }
    }

    #[test]
    fn usernames() {
        assert_eq!(Username::parse(" Alice.W ").unwrap().as_str(), "alice.w");
        for bad in ["", "1alice", "al ice", "a@b", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Alice@Example.COM").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "alice",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn phones_are_e164() {
        assert_eq!(
            Phone::parse("+86 138 0013 8000", None).unwrap().as_str(),
            "+8613800138000"
        );
        assert_eq!(
            Phone::parse("13800138000", Some("cn")).unwrap().as_str(),
            "+8613800138000"
        );
        assert_eq!(
            Phone::parse("(415) 555-2671", Some("US")).unwrap().as_str(),
            "+14155552671"
        );
        assert!(Phone::parse("12345", None).is_none());
        assert!(Phone::parse("13800138000", Some("XX")).is_none());
        // A number with its country code is that number whatever region the selector shows:
        // a region with trunk prefix 1 (US, CA) must not eat the 1 that follows the code.
        for region in [None, Some("US"), Some("CA"), Some("DE"), Some("CN")] {
            assert_eq!(
                Phone::parse("+49 1512 3456789", region).unwrap().as_str(),
                "+4915123456789",
                "{region:?}"
            );
            assert_eq!(
                Phone::parse("+86 138 0013 8000", region).unwrap().as_str(),
                "+8613800138000"
            );
        }
    }

    #[test]
    fn login_classifies_the_account_field() {
        assert!(matches!(
            Login::parse("bob@example.com", None),
            Some(Login::Email(_))
        ));
        assert!(matches!(
            Login::parse("+8613800138000", None),
            Some(Login::Phone(_))
        ));
        assert!(matches!(
            Login::parse("138 0013 8000", Some("CN")),
            Some(Login::Phone(_))
        ));
        assert!(matches!(
            Login::parse("bob", None),
            Some(Login::Username(_))
        ));
    }
}
