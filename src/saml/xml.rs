//! Escaping for the XML Sesame writes. Everything that goes into a document, whether from the
//! store, the configuration or a request, passes through [`escape`], so no value can open an
//! element or an attribute of its own.

use std::borrow::Cow;

/// `s` escaped for XML text and for double- or single-quoted attribute values. Characters XML 1.0
/// cannot carry at all (most C0 controls) are dropped rather than escaped: `&#1;` is not
/// well-formed either.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s
        .chars()
        .any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'') || is_forbidden(c) || c == '\r')
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Kept as a reference: a literal CR would be normalized away by the parser.
            '\r' => out.push_str("&#13;"),
            c if is_forbidden(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Not a `Char` in XML 1.0 (§2.2).
pub(crate) fn is_forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_cannot_escape_its_value() {
        assert_eq!(escape("plain"), "plain");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape(r#"a"/><x y='1'>&amp;</x>"#),
            "a&quot;/&gt;&lt;x y=&apos;1&apos;&gt;&amp;amp;&lt;/x&gt;"
        );
        assert_eq!(escape("a\u{0}b\u{1B}c\td\ne\rf"), "abc\td\ne&#13;f");
    }
}
