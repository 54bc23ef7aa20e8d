//! The signed-in user's account: password and sessions.

use crate::error::AppError;
use leptos::prelude::*;

/// Changes the password (the current one required); the user's other sessions end.
#[server(prefix = "/_sfn", endpoint = "me/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: user } = Ctx::user().await?;
    let token = session_token(&svc.config, &parts()?.headers).unwrap_or_default();
    Ok(
        service::accounts::change_password(&svc, &user, &token, current_password, new_password)
            .await?,
    )
}

/// Ends every session of the signed-in user, this one included.
#[server(prefix = "/_sfn", endpoint = "me/sign_out_everywhere")]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: user } = Ctx::user().await?;
    service::accounts::sign_out_everywhere(&svc, &user).await?;
    set_cookie(&clear_session_cookie(&svc.config));
    Ok(())
}

/// The signed-in user's alert settings and latest alerts.
#[server(prefix = "/_sfn", endpoint = "me/alerts")]
pub async fn my_alerts() -> Result<types::Alerts, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: user } = Ctx::user().await?;
    Ok(service::alerts::mine(&svc, &service::accounts::Actor::User(user)).await?)
}

/// Sets the signed-in user's alerts: a balance threshold (USD), a key-cap percent, an e-mail
/// address and a webhook (its secret kept when left empty). Empty fields clear them.
#[server(prefix = "/_sfn", endpoint = "me/set_alerts")]
pub async fn set_my_alerts(
    balance_below: String,
    key_cap_percent: String,
    #[server(default)] email: String,
    webhook_url: String,
    webhook_secret: String,
) -> Result<types::Alerts, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: user } = Ctx::user().await?;
    let settings =
        types::AlertSettings {
            balance_below: alert_amount(&balance_below)?,
            key_cap_percent: match key_cap_percent.trim() {
                "" => None,
                p => Some(p.parse().map_err(|_| {
                    service::Error::invalid("key_cap_percent", "not a whole number")
                })?),
            },
            ..alert_targets(email, webhook_url, webhook_secret)
        };
    Ok(service::alerts::set_mine(&svc, &service::accounts::Actor::User(user), settings).await?)
}

/// A threshold typed in the console (USD), or none.
#[cfg(feature = "ssr")]
fn alert_amount(text: &str) -> Result<Option<types::Credits>, service::Error> {
    match text.trim() {
        "" => Ok(None),
        t => types::Credits::parse_usd(t.trim_start_matches('$'))
            .map(Some)
            .map_err(|e| service::Error::invalid("balance_below", e.to_string())),
    }
}

/// Where alerts go, as typed in the console: empty is none; an empty secret keeps the one set.
#[cfg(feature = "ssr")]
pub fn alert_targets(email: String, url: String, secret: String) -> types::AlertSettings {
    let given = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    types::AlertSettings {
        email: given(email),
        webhook_url: given(url),
        webhook_secret: given(secret),
        ..Default::default()
    }
}
