//! Every string the console shows goes through [`t`] (or the [`t!`](crate::t) macro): one table
//! per language (English, 简体中文), the same keys in each. Errors are shown by their code
//! ([`error_text`]), never by the server's English message.
//!
//! The language of a page is chosen on the server: the `tollgate_lang` cookie (set by the switch
//! in the header), else the browser's `Accept-Language`, else English. The page is rendered in
//! it and says so in `<html lang>`, which the browser side reads once when it hydrates: server
//! and browser always render the same text, and a switch reloads the page in the new language.

mod en;
pub mod format;
mod zh;

use crate::error::AppError;
use leptos::prelude::*;
use types::ErrorInfo;

pub use en::EN;
pub use zh::ZH;

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
        use_context::<Lang>().unwrap_or_default()
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

/// The text of `key` in the page's language; an unknown key shows as itself (and fails the
/// tables' tests).
pub fn t(key: &'static str) -> &'static str {
    text(lang(), key)
}

/// The text of `key` in `lang`.
pub fn text(lang: Lang, key: &'static str) -> &'static str {
    lang.table()
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, text)| text)
}

/// Remembers the visitor's language (a cookie for a year); the page then reloads in it.
#[server(prefix = "/_sfn", endpoint = "language")]
pub async fn set_language(lang: String) -> Result<(), AppError> {
    let lang = Lang::from_tag(&lang)
        .ok_or_else(|| AppError::from(service::Error::invalid("lang", "must be en or zh-CN")))?;
    crate::ssr::set_cookie(&format!(
        "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.tag()
    ));
    Ok(())
}

/// `t!(key)`, with a literal key: the current language's text of it.
#[macro_export]
macro_rules! t {
    ($key:literal) => {
        $crate::i18n::t($key)
    };
}

/// What the console says about an error: its code's text, and the field it concerns.
pub fn error_text(e: &ErrorInfo) -> String {
    let base = match e.code() {
        "invalid_request" => t("error.invalid_request"),
        "unauthorized" => t("error.unauthorized"),
        "insufficient_quota" => t("error.insufficient_quota"),
        "forbidden" => t("error.forbidden"),
        "not_found" | "model_not_found" => t("error.not_found"),
        "conflict" => t("error.conflict"),
        "payload_too_large" => t("error.payload_too_large"),
        "rate_limit_exceeded" => t("error.rate_limited"),
        "service_unavailable" | "bad_gateway" | "gateway_timeout" => t("error.unavailable"),
        _ if e.kind == types::ErrorKind::Transport => t("error.transport"),
        _ => t("error.internal"),
    };
    match &e.param {
        Some(field) => format!("{base} ({}: {field})", t("error.field")),
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

/// An account status as the console names it.
pub fn status_text(status: types::UserStatus) -> &'static str {
    match status {
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
        assert_eq!(t("admin.nav_users"), "Users");
        assert_eq!(t("no.such.key"), "no.such.key");
    }

    #[test]
    fn every_key_the_console_uses_is_in_the_table() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut missing = Vec::new();
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source");
                // The macro itself, not the end of a longer name such as `format!`.
                for (at, _) in text.match_indices("t!(\"") {
                    let before = text[..at].chars().next_back().unwrap_or(' ');
                    if before.is_alphanumeric() || before == '_' {
                        continue;
                    }
                    let key = text[at + 4..].split('"').next().unwrap_or_default();
                    if !EN.iter().any(|(k, _)| *k == key) {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys without a text: {missing:?}");
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
        assert_eq!(text(Lang::Zh, "nav.keys"), "API 密钥");
        assert_eq!(text(Lang::En, "nav.keys"), "API keys");
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
