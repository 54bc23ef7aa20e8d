//! Every string the console shows goes through the [`t!`](crate::t) macro: one table per
//! language (English, 简体中文), the same keys in each, in the same order (checked while
//! compiling), a key turned into its index while compiling. Errors are shown by their code
//! ([`error_text`]), never by the server's English message.
//!
//! The language of a page is chosen on the server: the `tollgate_lang` cookie (set by the switch
//! in the header), else the browser's `Accept-Language`, else English. The page is rendered in
//! it and says so in `<html lang>`, which the browser side reads once when it hydrates: server
//! and browser always render the same text, and a switch reloads the page in the new language.

mod en;
pub mod format;
pub mod switch;
mod zh;

use types::ErrorInfo;

pub use en::EN;
pub use zh::ZH;

/// How many texts each language has (the keys of [`EN`], in its order).
const KEYS: usize = EN.len();

// Every table has the keys of English, in its order: checked while compiling.
const _: () = {
    assert!(ZH.len() == KEYS, "ZH has not the keys of EN");
    let mut i = 0;
    while i < KEYS {
        assert!(
            same(EN[i].0, ZH[i].0),
            "ZH has not the keys of EN, in order"
        );
        i += 1;
    }
};

/// The texts alone, by the index of their key: the tables' keys are read only while compiling
/// (by [`index`], for [`t!`](crate::t)), so neither the keys nor a search of them is in the
/// wasm or on the server's path.
static EN_TEXTS: [&str; KEYS] = texts(EN);
static ZH_TEXTS: [&str; KEYS] = texts(ZH);

const fn texts(table: &[(&'static str, &'static str)]) -> [&'static str; KEYS] {
    let mut out = [""; KEYS];
    let mut i = 0;
    while i < KEYS {
        out[i] = table[i].1;
        i += 1;
    }
    out
}

/// A language of the console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

/// The cookie that remembers a visitor's choice.
pub const COOKIE: &str = "tollgate_lang";

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// The BCP 47 tag: `<html lang>` and the cookie's value.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "简体中文",
        }
    }

    /// `en`, `en-GB`, `zh`, `zh-CN`, `zh-Hans`… (any case); `None` for another language.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let t = tag.trim().to_ascii_lowercase();
        let primary = t.split(['-', '_']).next().unwrap_or_default();
        match primary {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The visitor's language: the cookie's, else the supported language the `Accept-Language`
    /// header weighs highest (the first of equals), else English.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(lang) = cookie.and_then(Lang::from_tag) {
            return lang;
        }
        let mut best: Option<(f32, Lang)> = None;
        for part in accept_language.unwrap_or_default().split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
            if let (Some(lang), Some(q)) = (Lang::from_tag(tag), q)
                && q > 0.0
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    #[cfg(test)]
    fn table(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::En => EN,
            Lang::Zh => ZH,
        }
    }
}

/// The language of the page being rendered: on the server the request's (provided as context
/// by the shell); in the browser the one the server rendered the page in.
pub fn lang() -> Lang {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::use_context::<Lang>().unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        client::lang()
    }
}

#[cfg(not(feature = "ssr"))]
mod client {
    use super::Lang;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// 0: English, 1: 简体中文, anything else: not read yet.
    static LANG: AtomicU8 = AtomicU8::new(u8::MAX);

    pub fn lang() -> Lang {
        match LANG.load(Ordering::Relaxed) {
            0 => Lang::En,
            1 => Lang::Zh,
            _ => {
                let lang = page_lang().unwrap_or_default();
                LANG.store(u8::from(lang == Lang::Zh), Ordering::Relaxed);
                lang
            }
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn page_lang() -> Option<Lang> {
        let tag = leptos::prelude::document()
            .document_element()?
            .get_attribute("lang")?;
        Lang::from_tag(&tag)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn page_lang() -> Option<Lang> {
        None
    }
}

/// The index of `key` in the tables, found while compiling: an unknown key does not compile.
pub const fn index(key: &str) -> usize {
    let mut i = 0;
    while i < EN.len() {
        if same(EN[i].0, key) {
            return i;
        }
        i += 1;
    }
    panic!("an i18n key that is not in the tables (app/src/i18n/en.rs)")
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The text at `index` (see [`index`]) in the page's language.
pub fn t(index: usize) -> &'static str {
    text(lang(), index)
}

/// The text at `index` in `lang`.
pub fn text(lang: Lang, index: usize) -> &'static str {
    match lang {
        Lang::En => EN_TEXTS[index],
        Lang::Zh => ZH_TEXTS[index],
    }
}

/// `t!(key)`, with a literal key: the current language's text of it (the key's index is found
/// while compiling; an unknown key does not compile).
#[macro_export]
macro_rules! t {
    ($key:literal) => {{
        const INDEX: usize = $crate::i18n::index($key);
        $crate::i18n::t(INDEX)
    }};
    ($key:literal, $($name:ident = $value:expr),+ $(,)?) => {{
        const INDEX: usize = $crate::i18n::index($key);
        $crate::i18n::fill(
            $crate::i18n::t(INDEX),
            &[$((stringify!($name), &$value as &dyn ::std::fmt::Display)),+],
        )
    }};
}

/// A text with its `{name}` places filled (`t!(key, name = value)`): each language puts the
/// value where its grammar wants it. A place the text does not have is left out.
pub fn fill(text: &str, values: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..close];
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => out.push_str(&v.to_string()),
            None => out.push_str(&rest[open..=close]),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// What the console says about an error: its code's text, and the field it concerns.
pub fn error_text(e: &ErrorInfo) -> String {
    let base = match e.code() {
        "invalid_request" => t!("error.invalid_request"),
        "unauthorized" => t!("error.unauthorized"),
        "insufficient_quota" => t!("error.insufficient_quota"),
        "forbidden" => t!("error.forbidden"),
        "not_found" | "model_not_found" => t!("error.not_found"),
        "conflict" => t!("error.conflict"),
        "payload_too_large" => t!("error.payload_too_large"),
        "rate_limit_exceeded" => t!("error.rate_limited"),
        "service_unavailable" | "bad_gateway" | "gateway_timeout" => t!("error.unavailable"),
        _ if e.kind == types::ErrorKind::Transport => t!("error.transport"),
        _ => t!("error.internal"),
    };
    match &e.param {
        Some(field) => t!("error.with_field", message = base, field = field),
        None => base.to_string(),
    }
}

/// A role as the console names it.
pub fn role_text(role: types::Role) -> &'static str {
    match role {
        types::Role::Admin => crate::t!("role.admin"),
        types::Role::User => crate::t!("role.user"),
    }
}

/// An account's status as the console names it (a deleted one is `deleted`).
pub fn status_text(user: &types::UserInfo) -> &'static str {
    match user.status {
        _ if user.deleted_at.is_some() => crate::t!("status.deleted"),
        types::UserStatus::Active => crate::t!("status.active"),
        types::UserStatus::Disabled => crate::t!("status.disabled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_text_and_keys_are_unique() {
        for lang in Lang::ALL {
            let table: Vec<&str> = lang.table().iter().map(|(k, _)| *k).collect();
            let english: Vec<&str> = EN.iter().map(|(k, _)| *k).collect();
            assert_eq!(table, english, "{lang:?} has the keys of English, in order");
            assert!(lang.table().iter().all(|(_, text)| !text.is_empty()));
        }
        let mut keys: Vec<&str> = EN.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is in the table twice");
        assert!(EN.iter().all(|(_, text)| !text.is_empty()));
        assert_eq!(t!("admin.nav_users"), "Users");
        for (i, (key, en)) in EN.iter().enumerate() {
            assert_eq!(index(key), i);
            assert_eq!(text(Lang::En, i), *en);
            assert_eq!(text(Lang::Zh, i), ZH[i].1);
        }
    }

    #[test]
    fn the_language_comes_from_the_cookie_then_accept_language() {
        assert_eq!(Lang::negotiate(None, None), Lang::En);
        assert_eq!(
            Lang::negotiate(None, Some("zh-CN,zh;q=0.9,en;q=0.8")),
            Lang::Zh
        );
        assert_eq!(
            Lang::negotiate(None, Some("fr-FR, en;q=0.5, zh;q=0.7")),
            Lang::Zh
        );
        assert_eq!(
            Lang::negotiate(None, Some("en-US,en;q=0.9,zh;q=0.8")),
            Lang::En
        );
        assert_eq!(Lang::negotiate(None, Some("zh;q=0, de")), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("zh-Hant;q=bad, en")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en"), Some("zh-CN")), Lang::En);
        assert_eq!(Lang::negotiate(Some("bogus"), Some("zh-TW")), Lang::Zh);
        assert_eq!(Lang::from_tag("ZH_cn"), Some(Lang::Zh));
        assert_eq!(text(Lang::Zh, index("nav.keys")), "API 密钥");
        assert_eq!(text(Lang::En, index("nav.keys")), "API keys");
    }

    #[test]
    fn texts_take_values_where_each_language_puts_them() {
        assert_eq!(
            fill("Move up {model}", &[("model", &"gpt-4o")]),
            "Move up gpt-4o"
        );
        assert_eq!(
            fill("{units} 单位", &[("units", &1_500)]),
            "1500 单位",
            "a value first"
        );
        assert_eq!(fill("{a}-{b}-{a}", &[("a", &1), ("b", &2)]), "1-2-1");
        assert_eq!(
            fill("{missing} {", &[]),
            "{missing} {",
            "unknown places stay"
        );
        for (i, (key, en)) in EN.iter().enumerate() {
            let places = |t: &str| {
                let mut p: Vec<String> = t
                    .split('{')
                    .skip(1)
                    .filter_map(|s| s.split_once('}').map(|(n, _)| n.to_string()))
                    .collect();
                p.sort();
                p
            };
            assert_eq!(
                places(en),
                places(ZH[i].1),
                "{key}: both languages fill the same places"
            );
        }
    }

    #[test]
    fn errors_are_told_by_their_code_and_field() {
        let mut e = ErrorInfo::new(types::ErrorKind::Invalid, "invalid username: too short");
        e.param = Some("username".into());
        assert_eq!(error_text(&e), "Some input is not valid (field: username)");
        let e = ErrorInfo::new(types::ErrorKind::Unauthorized, "x");
        assert!(error_text(&e).contains("invalid username or password"));
        let e = ErrorInfo::new(types::ErrorKind::Transport, "x");
        assert_eq!(error_text(&e), "The server could not be reached");
    }
}
