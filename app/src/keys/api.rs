//! The signed-in user's API keys: thin adapters over `service::keys`, which checks that the key
//! is the user's own.

use crate::error::AppError;
use leptos::prelude::*;
use types::KeySecret;

/// The signed-in user's keys, drawn in the reader's language (see `draw`).
#[server(prefix = "/_sfn", endpoint = "me/keys")]
pub async fn my_keys() -> Result<String, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = current_user(&svc).await?;
    let id = user.id;
    let keys = service::keys::list(&svc, &service::accounts::Actor::User(user), Some(id)).await?;
    Ok(super::draw::draw(keys, request_lang()))
}

/// The form that creates a key, drawn in the reader's language, with the models the
/// signed-in user may call as boxes to tick (to restrict the key to some of them).
#[server(prefix = "/_sfn", endpoint = "me/key_form")]
pub async fn key_form() -> Result<String, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = service::accounts::me(&svc, &current_user(&svc).await?).await?;
    let models = service::proxy::offer(&svc, None, &user.group)
        .into_iter()
        .map(|(model, _)| model)
        .collect();
    Ok(super::draw::form(models, request_lang()))
}

/// Creates a key for the signed-in user from the form's text fields (empty: not set): the
/// expiry a `YYYY-MM-DD` day (the key works through its end, UTC), models comma-separated, IPs
/// separated by commas, spaces or lines, the cap in USD. The answer is the key's name and its
/// secret, this once (the table, drawn again, shows the rest).
#[server(prefix = "/_sfn", endpoint = "me/create_key")]
pub async fn create_key(
    name: String,
    expires_on: String,
    models: String,
    ips: String,
    spend_cap: String,
    rpm: String,
    tpm: String,
) -> Result<KeySecret, AppError> {
    use crate::ssr::*;
    use service::Error;
    let svc = services()?;
    let user = current_user(&svc).await?;
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
        allowed_models: list(&models),
        allowed_ips: list(&ips),
        spend_cap: Some(spend_cap.trim().to_string()).filter(|s| !s.is_empty()),
        rpm: number("rpm", &rpm)?,
        tpm: number("tpm", &tpm)?,
    };
    let created = service::keys::create(&svc, &service::accounts::Actor::User(user), new).await?;
    Ok(KeySecret {
        name: created.view.name,
        key: created.key,
    })
}

/// Enables or disables one of the signed-in user's keys.
#[server(prefix = "/_sfn", endpoint = "me/set_key_status")]
pub async fn set_key_status(id: i64, active: bool) -> Result<(), AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = current_user(&svc).await?;
    service::keys::set_status(&svc, &service::accounts::Actor::User(user), id, active).await?;
    Ok(())
}

/// Deletes one of the signed-in user's keys.
#[server(prefix = "/_sfn", endpoint = "me/delete_key")]
pub async fn delete_key(id: i64) -> Result<(), AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = current_user(&svc).await?;
    Ok(service::keys::delete(&svc, &service::accounts::Actor::User(user), id).await?)
}
