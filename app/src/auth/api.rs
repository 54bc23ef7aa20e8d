//! Sign-in, sign-out and "who am I": thin adapters over `service::accounts`.

use crate::error::AppError;
use leptos::prelude::*;
use types::UserInfo;

/// Signs in and sets the session cookie (a new session id each time).
#[server(prefix = "/_sfn", endpoint = "login")]
pub async fn login(username: String, password: String) -> Result<UserInfo, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let parts = parts()?;
    let client = client_meta(&svc.config, &parts);
    let previous = session_token(&svc.config, &parts.headers);
    let signed_in =
        service::accounts::login(&svc, &username, password, &client, previous.as_deref()).await?;
    set_cookie(&session_cookie(
        &svc.config,
        &signed_in.token,
        signed_in.max_age,
    ));
    Ok(signed_in.user)
}

/// Ends the session and clears the cookie.
#[server(prefix = "/_sfn", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let parts = parts()?;
    if let Some(token) = session_token(&svc.config, &parts.headers) {
        service::accounts::logout(&svc, &token).await?;
    }
    set_cookie(&clear_session_cookie(&svc.config));
    Ok(())
}

/// The signed-in user, or `None` when nobody is signed in.
#[server(prefix = "/_sfn", endpoint = "me")]
pub async fn current_user() -> Result<Option<UserInfo>, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    match signed_in(&svc).await? {
        Some(user) => Ok(Some(service::accounts::me(&svc, &user).await?)),
        None => Ok(None),
    }
}

/// Whether the login page offers self sign-up.
#[server(prefix = "/_sfn", endpoint = "registration")]
pub async fn registration_open() -> Result<bool, AppError> {
    let svc = crate::ssr::services()?;
    Ok(svc.config.auth.allow_registration)
}

/// Self sign-up (when `auth.allow_registration` is on); signs the new user in.
#[server(prefix = "/_sfn", endpoint = "register")]
pub async fn register(username: String, password: String) -> Result<UserInfo, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let parts = parts()?;
    let client = client_meta(&svc.config, &parts);
    let user = service::accounts::register(&svc, &username, password.clone(), &client).await?;
    let signed_in = service::accounts::login(&svc, &user.username, password, &client, None).await?;
    set_cookie(&session_cookie(
        &svc.config,
        &signed_in.token,
        signed_in.max_age,
    ));
    Ok(signed_in.user)
}
