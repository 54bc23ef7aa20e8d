//! Admin server functions: each checks the role on the server, in `service::accounts`.

use crate::error::AppError;
use leptos::prelude::*;
use types::UserInfo;

#[server(prefix = "/_sfn", endpoint = "admin/users")]
pub async fn list_users() -> Result<Vec<UserInfo>, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let actor = current_admin(&svc).await?;
    Ok(service::accounts::list_users(&svc, &actor, 500, 0).await?)
}

#[server(prefix = "/_sfn", endpoint = "admin/create_user")]
pub async fn create_user(
    username: String,
    password: String,
    role: String,
) -> Result<UserInfo, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let actor = current_admin(&svc).await?;
    let role = role
        .parse()
        .map_err(|()| service::Error::invalid("role", "must be user or admin"))?;
    let new = types::NewUser {
        username,
        password,
        role,
    };
    Ok(service::accounts::create_user(&svc, &actor, new).await?)
}

#[server(prefix = "/_sfn", endpoint = "admin/set_user_status")]
pub async fn set_user_status(id: i64, status: String) -> Result<UserInfo, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let actor = current_admin(&svc).await?;
    let status = status
        .parse()
        .map_err(|()| service::Error::invalid("status", "must be active or disabled"))?;
    Ok(service::accounts::set_user_status(&svc, &actor, id, status).await?)
}
