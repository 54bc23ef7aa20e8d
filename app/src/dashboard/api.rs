//! The signed-in user's money and usage: thin adapters over `service`, each reading only the
//! session's own user.

use crate::error::AppError;
use leptos::prelude::*;
use types::{Dashboard, LedgerQuery, LedgerRow, Redeemed, Slice};

/// Redeems a code for the signed-in user (throttled like the REST endpoint).
#[server(prefix = "/_sfn", endpoint = "me/redeem")]
pub async fn redeem(code: String, idempotency_key: Option<String>) -> Result<Redeemed, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: user } = Ctx::user().await?;
    let ip = client_ip(&svc)?;
    Ok(service::redeem::redeem(&svc, user.id, &code, idempotency_key.as_deref(), ip).await?)
}

/// The signed-in user's ledger, newest first.
#[server(prefix = "/_sfn", endpoint = "me/ledger")]
pub async fn my_ledger(query: LedgerQuery) -> Result<Slice<LedgerRow>, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: user } = Ctx::user().await?;
    Ok(service::usage::my_ledger(&svc, user.id, &query).await?)
}

/// Everything the dashboard shows, in one round trip, its chart and tables drawn in the
/// reader's language (see [`Dashboard`]).
#[server(prefix = "/_sfn", endpoint = "me/dashboard")]
pub async fn my_dashboard() -> Result<Dashboard, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who } = Ctx::user().await?;
    let d = service::views::pages::dashboard(&svc, &who).await?;
    let read = super::draw::Read {
        today: d.today,
        by_model: d.by_model,
        by_key: d.by_key,
        errors: d.errors,
        keys: d.keys,
        base_url: format!("{}/v1", site_url(&svc)?),
        example_model: d.example_model,
    };
    Ok(read.draw(d.user, request_lang()))
}
