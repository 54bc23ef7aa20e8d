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
