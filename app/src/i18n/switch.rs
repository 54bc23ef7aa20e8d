//! Switching the console's language: the one server function of the translations.

use crate::error::AppError;
use leptos::prelude::*;

/// Remembers the visitor's language (a cookie for a year); the page then reloads in it.
#[server(prefix = "/_sfn", endpoint = "language")]
pub async fn set_language(lang: String) -> Result<(), AppError> {
    use super::{COOKIE, Lang};
    let lang = Lang::from_tag(&lang)
        .ok_or_else(|| AppError::from(service::Error::invalid("lang", "must be en or zh-CN")))?;
    crate::ssr::set_cookie(&format!(
        "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.tag()
    ));
    Ok(())
}
