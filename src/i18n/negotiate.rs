//! Which language a page is shown in. In order: the app's `ui_locales` (OIDC Core §3.1.2.1), the
//! language the user picked on a page (a cookie), the browser's `Accept-Language` (RFC 9110
//! §12.5.4), the tenant's `default_locale`, and English.

use axum::http::{HeaderMap, header};

use super::{FALLBACK, Locale};

/// The cookie the language switcher sets. Not secret and not tied to a tenant: a person's
/// language is the same on every tenant of the server.
pub const COOKIE: &str = "sesame-lang";

/// Everything a request says about the language it wants.
#[derive(Debug, Default, Clone, Copy)]
pub struct Preferences<'a> {
    pub ui_locales: &'a [String],
    pub cookie: Option<&'a str>,
    pub accept_language: Option<&'a str>,
    pub tenant_default: Option<&'a str>,
}

impl<'a> Preferences<'a> {
    /// The cookie and `Accept-Language` of a request; the caller adds `ui_locales` and the
    /// tenant's default where it has them.
    pub fn of(headers: &'a HeaderMap) -> Preferences<'a> {
        Preferences {
            ui_locales: &[],
            cookie: cookie(headers),
            accept_language: headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
            tenant_default: None,
        }
    }
}

pub fn negotiate(p: &Preferences<'_>) -> Locale {
    p.ui_locales
        .iter()
        .find_map(|tag| Locale::from_tag(tag))
        .or_else(|| p.cookie.and_then(Locale::from_tag))
        .or_else(|| p.accept_language.and_then(accept_language))
        .or_else(|| p.tenant_default.and_then(Locale::from_tag))
        .unwrap_or(FALLBACK)
}

/// The offered language the browser ranks highest: ranges by descending `q` (ties keep their
/// order), `q=0` meaning "not this one"; `*` accepts anything and so decides nothing here.
fn accept_language(header: &str) -> Option<Locale> {
    let mut ranges: Vec<(u16, usize, &str)> = header
        .split(',')
        .take(32)
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let range = pieces.next()?.trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), quality)?;
            (q > 0 && !range.is_empty()).then_some((q, i, range))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges
        .iter()
        .find_map(|(_, _, range)| Locale::from_tag(range))
}

/// A quality value (`0`, `0.5`, `1.000`) in thousandths; `None` if malformed.
fn quality(q: &str) -> Option<u16> {
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(
        ui: &[&str],
        cookie: Option<&str>,
        accept: Option<&str>,
        default: Option<&str>,
    ) -> Locale {
        let ui: Vec<String> = ui.iter().map(|s| s.to_string()).collect();
        negotiate(&Preferences {
            ui_locales: &ui,
            cookie,
            accept_language: accept,
            tenant_default: default,
        })
    }

    #[test]
    fn the_order_is_ui_locales_cookie_browser_tenant() {
        assert_eq!(
            pick(&["fr", "zh-TW"], Some("en"), Some("zh-CN"), None),
            Locale::ZhTw
        );
        assert_eq!(pick(&["fr"], Some("en"), Some("zh-CN"), None), Locale::En);
        assert_eq!(
            pick(&[], Some("klingon"), Some("zh-CN"), None),
            Locale::ZhCn
        );
        assert_eq!(pick(&[], None, Some("fr"), Some("zh-TW")), Locale::ZhTw);
        assert_eq!(pick(&[], None, None, None), FALLBACK);
    }

    #[test]
    fn accept_language_follows_quality() {
        let a = |h: &str| accept_language(h);
        assert_eq!(a("fr;q=0.9, zh-TW;q=0.8, en;q=0.7"), Some(Locale::ZhTw));
        assert_eq!(a("en;q=0.5, zh-CN"), Some(Locale::ZhCn));
        assert_eq!(a("zh-CN;q=0, en;q=0.1"), Some(Locale::En), "q=0 refuses");
        assert_eq!(
            a("en;q=2, zh-HK"),
            Some(Locale::ZhTw),
            "a malformed q drops its range"
        );
        assert_eq!(a("*"), None);
        assert_eq!(a(""), None);
        assert_eq!(a("en-US,en;q=0.9"), Some(Locale::En));
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; sesame-lang=zh-TW; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h), Some("zh-TW"));
        assert_eq!(negotiate(&Preferences::of(&h)), Locale::ZhTw);
    }
}
