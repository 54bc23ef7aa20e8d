//! The service's status, as the visitor's group sees it.

use crate::error::AppError;
use leptos::prelude::*;
use types::ServiceStatus;

/// The service's health and the success rate and latency of each model the visitor may call
/// (the public models when signed out).
#[server(prefix = "/_sfn", endpoint = "status")]
pub async fn status_reading() -> Result<ServiceStatus, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let group = match signed_in(&svc).await? {
        Some(user) => service::accounts::me(&svc, &user).await?.group,
        None => "default".to_string(),
    };
    Ok((*service::usage::service_status(&svc, &group).await?).clone())
}
