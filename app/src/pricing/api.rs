//! Prices as the visitor pays them.

use crate::error::AppError;
use leptos::prelude::*;
use types::Pricing;

/// The price table at the signed-in user's group multiplier (the public prices when signed
/// out): only models that are routed and priced.
#[server(prefix = "/_sfn", endpoint = "pricing")]
pub async fn prices() -> Result<Pricing, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let group = match signed_in(&svc).await? {
        Some(user) => service::accounts::me(&svc, &user).await?.group,
        None => "default".to_string(),
    };
    Ok(service::proxy::group_pricing(&svc, &group))
}
