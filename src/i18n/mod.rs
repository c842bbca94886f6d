//! Languages: which of Simplified Chinese, English and Traditional Chinese a page is shown in,
//! and the text catalogs every page and message is drawn from.
//!
//! Catalogs are TOML files under `templates/i18n/`, embedded at build time like the templates, so
//! a release stays one file and a translator edits text without touching code. Keys are dotted
//! paths (`login.submit`); a text may hold `{name}` placeholders, filled with escaped values, and
//! is otherwise trusted markup (a sentence can carry its own links).

pub mod negotiate;

use std::collections::BTreeMap;

pub use negotiate::{Preferences, negotiate};

/// The languages every page is offered in, in the order the switcher lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locale {
    ZhCn,
    En,
    ZhTw,
}

impl Locale {
    pub const ALL: [Locale; 3] = [Locale::ZhCn, Locale::En, Locale::ZhTw];

    /// The BCP 47 tag, as in `<html lang>`, the cookie and `ui_locales`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
            Locale::ZhTw => "zh-TW",
        }
    }

    /// The language's name in itself, for the switcher.
    pub fn native_name(self) -> &'static str {
        match self {
            Locale::ZhCn => "简体中文",
            Locale::En => "English",
            Locale::ZhTw => "繁體中文",
        }
    }

    /// The offered language a BCP 47 tag asks for: `en-GB` is English; `zh-TW`, `zh-HK`,
    /// `zh-MO` and `zh-Hant-*` are Traditional Chinese; any other `zh` is Simplified Chinese.
    pub fn from_tag(tag: &str) -> Option<Locale> {
        let tag = tag.trim().to_ascii_lowercase();
        let mut subtags = tag.split(['-', '_']);
        match subtags.next()? {
            "en" => Some(Locale::En),
            "zh" => {
                let traditional = subtags.any(|s| matches!(s, "hant" | "tw" | "hk" | "mo"));
                Some(if traditional {
                    Locale::ZhTw
                } else {
                    Locale::ZhCn
                })
            }
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Locale::ZhCn => 0,
            Locale::En => 1,
            Locale::ZhTw => 2,
        }
    }
}

/// The language when nothing else decides: a tenant's `default_locale` setting overrides it.
pub const FALLBACK: Locale = Locale::En;

const SOURCES: [(Locale, &str); 3] = [
    (
        Locale::ZhCn,
        include_str!("../../templates/i18n/zh-CN.toml"),
    ),
    (Locale::En, include_str!("../../templates/i18n/en.toml")),
    (
        Locale::ZhTw,
        include_str!("../../templates/i18n/zh-TW.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("templates/i18n/{file}.toml: {why}")]
    Invalid { file: &'static str, why: String },
}

/// Every language's texts by key.
#[derive(Debug)]
pub struct Catalogs {
    texts: [BTreeMap<String, String>; 3],
}

impl Catalogs {
    pub fn load() -> Result<Catalogs, CatalogError> {
        let mut texts: [BTreeMap<String, String>; 3] = Default::default();
        for (locale, source) in SOURCES {
            let invalid = |why: String| CatalogError::Invalid {
                file: locale.tag(),
                why,
            };
            let table: toml::Table = source.parse().map_err(|e| invalid(format!("{e}")))?;
            flatten("", &table, &mut texts[locale.index()]).map_err(invalid)?;
        }
        Ok(Catalogs { texts })
    }

    /// The text for `key` in `locale`, else in English, else the key itself: a missing
    /// translation shows as something a tester reports, never as an error page.
    pub fn text<'a>(&'a self, locale: Locale, key: &'a str) -> &'a str {
        self.texts[locale.index()]
            .get(key)
            .or_else(|| self.texts[Locale::En.index()].get(key))
            .map_or(key, String::as_str)
    }

    /// [`Self::text`] with its `{name}` placeholders filled by `args`, escaped for HTML.
    pub fn format(&self, locale: Locale, key: &str, args: &[(&str, &str)]) -> String {
        fill(self.text(locale, key), args, escape_html)
    }

    /// [`Self::text`] with its placeholders filled as they are, for plain-text messages (an
    /// email's subject, a JSON description). Not for HTML.
    pub fn plain(&self, locale: Locale, key: &str, args: &[(&str, &str)]) -> String {
        fill(self.text(locale, key), args, str::to_string)
    }

    /// The keys of one language, for the completeness test.
    pub fn keys(&self, locale: Locale) -> impl Iterator<Item = &str> {
        self.texts[locale.index()].keys().map(String::as_str)
    }
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::String(text) => {
                out.insert(key, text.clone());
            }
            toml::Value::Table(inner) => flatten(&key, inner, out)?,
            _ => return Err(format!("{key} must be a string or a table")),
        }
    }
    Ok(())
}

fn fill(text: &str, args: &[(&str, &str)], escape: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match args.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(&escape(value)),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A message chosen by code and shown in the reader's language: a catalog key and the values of
/// its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub key: &'static str,
    pub args: Vec<(&'static str, String)>,
}

impl Text {
    pub const fn new(key: &'static str) -> Text {
        Text {
            key,
            args: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Text {
        self.args.push((name, value.into()));
        self
    }

    /// The text in `locale`, its values escaped for HTML, as markup for a template.
    pub fn render(&self, catalogs: &Catalogs, locale: Locale) -> minijinja::Value {
        let args: Vec<(&str, &str)> = self.args.iter().map(|(n, v)| (*n, v.as_str())).collect();
        minijinja::Value::from_safe_string(catalogs.format(locale, self.key, &args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_language_has_every_key() {
        let c = Catalogs::load().unwrap();
        let all: BTreeSet<&str> = Locale::ALL.iter().flat_map(|l| c.keys(*l)).collect();
        for locale in Locale::ALL {
            let have: BTreeSet<&str> = c.keys(locale).collect();
            let missing: Vec<_> = all.difference(&have).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", locale.tag());
        }
    }

    #[test]
    fn placeholders_match_across_languages() {
        let c = Catalogs::load().unwrap();
        let names = |text: &str| -> BTreeSet<String> {
            text.split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(n, _)| n.to_string()))
                .collect()
        };
        for key in c.keys(Locale::En) {
            let english = names(c.text(Locale::En, key));
            for locale in [Locale::ZhCn, Locale::ZhTw] {
                assert_eq!(
                    names(c.text(locale, key)),
                    english,
                    "{key} in {}",
                    locale.tag()
                );
            }
        }
    }

    #[test]
    fn every_key_a_template_or_the_code_uses_exists() {
        let c = Catalogs::load().unwrap();
        let known: BTreeSet<&str> = c.keys(Locale::En).collect();
        let mut sources: Vec<(String, String)> = Vec::new();
        for dir in ["templates", "src"] {
            collect(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
                &mut sources,
            );
        }
        let mut used = 0;
        // This module names keys in its own docs and tests.
        for (path, text) in sources.iter().filter(|(p, _)| !p.contains("src/i18n")) {
            for key in used_keys(text) {
                used += 1;
                assert!(
                    known.contains(key.as_str()),
                    "{path} uses unknown key {key}"
                );
            }
        }
        assert!(used > 50, "the scan found the keys in use ({used})");
    }

    /// Keys appear as `t("a.b")` in templates and `Text::new("a.b")` in code; `t(` must stand
    /// alone (not the end of `host(`).
    fn used_keys(text: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for marker in ["t(\"", "Text::new(\""] {
            let mut from = 0;
            while let Some(at) = text[from..].find(marker).map(|i| i + from) {
                from = at + marker.len();
                let standalone = text[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
                if !standalone && marker.starts_with('t') {
                    continue;
                }
                if let Some((key, _)) = text[from..].split_once('"')
                    && key.contains('.')
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
                {
                    keys.push(key.to_string());
                }
            }
        }
        keys
    }

    fn collect(dir: std::path::PathBuf, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect(path, out);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "html") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.display().to_string(), text));
            }
        }
    }

    #[test]
    fn tags_map_to_the_offered_languages() {
        assert_eq!(Locale::from_tag("en-GB"), Some(Locale::En));
        assert_eq!(Locale::from_tag("zh"), Some(Locale::ZhCn));
        assert_eq!(Locale::from_tag("zh-Hans-CN"), Some(Locale::ZhCn));
        assert_eq!(Locale::from_tag("zh-hk"), Some(Locale::ZhTw));
        assert_eq!(Locale::from_tag("zh_Hant"), Some(Locale::ZhTw));
        assert_eq!(Locale::from_tag("fr"), None);
        assert_eq!(Locale::from_tag(""), None);
    }

    #[test]
    fn placeholders_are_escaped_and_unknown_ones_kept() {
        let out = fill(
            "Hi <b>{name}</b> {other}",
            &[("name", "<script>")],
            escape_html,
        );
        assert_eq!(out, "Hi <b>&lt;script&gt;</b> {other}");
        assert_eq!(fill("open { brace", &[], escape_html), "open { brace");
    }
}
