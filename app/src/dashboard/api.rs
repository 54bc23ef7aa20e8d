//! The signed-in user's money and usage: thin adapters over `service`, each reading only the
//! session's own user.

use crate::error::AppError;
use leptos::prelude::*;
use types::{Dashboard, LedgerQuery, LedgerRow, Redeemed, Slice};

/// Redeems a code for the signed-in user (throttled like the REST endpoint).
#[server(prefix = "/_sfn", endpoint = "me/redeem")]
pub async fn redeem(code: String, idempotency_key: Option<String>) -> Result<Redeemed, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = current_user(&svc).await?;
    let ip = client_ip(&svc)?;
    Ok(service::redeem::redeem(&svc, user.id, &code, idempotency_key.as_deref(), ip).await?)
}

/// The signed-in user's ledger, newest first.
#[server(prefix = "/_sfn", endpoint = "me/ledger")]
pub async fn my_ledger(query: LedgerQuery) -> Result<Slice<LedgerRow>, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let user = current_user(&svc).await?;
    Ok(service::usage::my_ledger(&svc, user.id, &query).await?)
}

/// Everything the dashboard shows, in one round trip, its chart and tables drawn in the
/// reader's language (see [`Dashboard`]).
#[server(prefix = "/_sfn", endpoint = "me/dashboard")]
pub async fn my_dashboard() -> Result<Dashboard, AppError> {
    use crate::ssr::*;
    use service::accounts::Actor;
    let svc = services()?;
    let auth = current_user(&svc).await?;
    let user = service::accounts::me(&svc, &auth).await?;
    let today = service::now_ms().div_euclid(86_400_000);
    let range = |by: &str| types::UsageQuery {
        from: Some(types::date::format_day(today - 29)),
        to: Some(types::date::format_day(today)),
        by: Some(by.to_string()),
        utc_offset_minutes: None,
    };
    let by_model = service::usage::daily(&svc, user.id, &range("model")).await?;
    let by_key = service::usage::daily(&svc, user.id, &range("key")).await?;
    let errors = service::usage::my_calls(
        &svc,
        user.id,
        &types::CallsQuery {
            status: Some("error".into()),
            limit: Some("5".into()),
            ..types::CallsQuery::default()
        },
    )
    .await?
    .data;
    let keys = service::keys::list(&svc, &Actor::User(auth), Some(user.id))
        .await?
        .into_iter()
        .map(|k| (k.id, k.name, k.prefix))
        .collect();
    let base_url = format!("{}/v1", site_url(&svc)?);
    let example_model = service::proxy::offer(&svc, None, &user.group)
        .into_iter()
        .next()
        .map(|(m, _)| m);
    let read = super::draw::Read {
        today: types::date::format_day(today),
        by_model,
        by_key,
        errors,
        keys,
        base_url,
        example_model,
    };
    Ok(read.draw(user, request_lang()))
}
