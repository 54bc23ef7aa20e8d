//! The signed-in user's API keys: thin adapters over `service::keys`, which checks that the key
//! is the user's own.

// A server function takes a form's fields as its arguments, one each.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use leptos::prelude::*;
use types::KeySecret;

/// Where a form posted without JavaScript leaves a new key's secret for the keys page.
#[cfg(feature = "ssr")]
pub(super) const NEW_KEY_COOKIE: &str = "tollgate_new_key";

/// The cookie that carries a new key's secret to the keys page (HttpOnly, sent to `/keys`
/// only, for at most a minute; `max_age` 0 removes it).
#[cfg(feature = "ssr")]
pub(super) fn new_key_cookie(svc: &service::Services, secret: &str, max_age: u32) -> String {
    let secure = if svc.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{NEW_KEY_COOKIE}={secret}; Path=/keys; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    )
}

/// Creates a key for the signed-in user from the form's text fields (empty: not set): the
/// expiry a `YYYY-MM-DD` day (the key works through its end, UTC), the models ticked (`models[]`,
/// none: every model), IPs separated by commas, spaces or lines, the cap in USD. The answer is
/// the key's name and its secret, this once (the table, drawn again, shows the rest).
#[server(prefix = "/_sfn", endpoint = "me/create_key")]
pub async fn create_key(
    name: String,
    expires_on: String,
    #[server(default)] models: Vec<String>,
    ips: String,
    spend_cap: String,
    rpm: String,
    tpm: String,
    #[server(default)] max_concurrent: String,
) -> Result<KeySecret, AppError> {
    use crate::ssr::*;
    use service::Error;
    let Ctx { svc, who: user } = Ctx::user().await?;
    let expires_at = match expires_on.trim() {
        "" => None,
        day => Some(
            (types::date::parse_day(day)
                .ok_or(Error::invalid("expires_at", "not a YYYY-MM-DD date"))?
                + 1)
                * 86_400_000,
        ),
    };
    let number = |field: &'static str, text: &str| -> Result<Option<i64>, Error> {
        match text.trim() {
            "" => Ok(None),
            t => t
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid(field, "not a whole number")),
        }
    };
    let list = |text: &str| -> Vec<String> {
        text.split([',', ' ', '\n', '\r', '\t'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let new = types::NewKey {
        user_id: user.id,
        name,
        expires_at,
        allowed_models: models
            .iter()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect(),
        allowed_ips: list(&ips),
        spend_cap: Some(spend_cap.trim().to_string()).filter(|s| !s.is_empty()),
        rpm: number("rpm", &rpm)?,
        tpm: number("tpm", &tpm)?,
        max_concurrent: number("max_concurrent", &max_concurrent)?,
    };
    let created = service::keys::create(&svc, &service::accounts::Actor::User(user), new).await?;
    if posted_without_script() {
        set_cookie(&new_key_cookie(&svc, &created.key, 60));
    }
    Ok(KeySecret {
        name: created.view.name,
        key: created.key,
    })
}

/// Enables or disables one of the signed-in user's keys.
#[server(prefix = "/_sfn", endpoint = "me/set_key_status")]
pub async fn set_key_status(id: i64, active: bool) -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: user } = Ctx::user().await?;
    service::keys::set_status(&svc, &service::accounts::Actor::User(user), id, active).await?;
    Ok(())
}

/// Deletes one of the signed-in user's keys.
#[server(prefix = "/_sfn", endpoint = "me/delete_key")]
pub async fn delete_key(id: i64) -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: user } = Ctx::user().await?;
    Ok(service::keys::delete(&svc, &service::accounts::Actor::User(user), id).await?)
}
