//! The signed-in user's money and usage: thin adapters over `service`, each reading only the
//! session's own user.

use crate::error::AppError;
use leptos::prelude::*;
use types::{
    CallsQuery, LedgerQuery, LedgerRow, Redeemed, Slice, UsagePoint, UsageQuery, UsageRow,
};

/// Redeems a code for the signed-in user (throttled like the REST endpoint).
#[server(prefix = "/_sfn", endpoint = "me/redeem")]
pub async fn redeem(code: String, idempotency_key: Option<String>) -> Result<Redeemed, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = current_user(&svc).await?;
    let ip = client_ip(&svc)?;
    Ok(service::redeem::redeem(&svc, user.id, &code, idempotency_key.as_deref(), ip).await?)
}

/// The signed-in user's calls, newest first, in keyset pages.
#[server(prefix = "/_sfn", endpoint = "me/calls")]
pub async fn my_calls(query: CallsQuery) -> Result<Slice<UsageRow>, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = current_user(&svc).await?;
    Ok(service::usage::my_calls(&svc, user.id, &query).await?)
}

/// The signed-in user's daily usage by model or key.
#[server(prefix = "/_sfn", endpoint = "me/usage")]
pub async fn my_usage(query: UsageQuery) -> Result<Vec<UsagePoint>, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = current_user(&svc).await?;
    Ok(service::usage::daily(&svc, user.id, &query).await?)
}

/// The signed-in user's ledger, newest first.
#[server(prefix = "/_sfn", endpoint = "me/ledger")]
pub async fn my_ledger(query: LedgerQuery) -> Result<Slice<LedgerRow>, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = current_user(&svc).await?;
    Ok(service::usage::my_ledger(&svc, user.id, &query).await?)
}
