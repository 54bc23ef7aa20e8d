//! The call-log pages' server functions: thin adapters over `service::usage` that answer the
//! page drawn (see `draw`), in the reader's language.

use crate::error::AppError;
use leptos::prelude::*;

/// The signed-in user's calls as the page `/logs?{query}` shows them: the filters, a keyset
/// page of 50 calls (or the error that names a bad filter) and the pager, drawn.
#[server(prefix = "/_sfn", endpoint = "me/logs")]
pub async fn my_logs(query: String) -> Result<String, AppError> {
    use crate::ssr::*;
    use service::accounts::Actor;
    let svc = services()?;
    let user = current_user(&svc).await?;
    let id = user.id;
    let filters = super::draw::Filters::parse(super::Scope::Mine, &query);
    let keys = service::keys::list(&svc, &Actor::User(user), Some(id)).await?;
    let calls = super::draw::shown(service::usage::my_calls(&svc, id, &filters.calls()).await)?;
    Ok(super::draw::Read {
        filters,
        users: None,
        keys,
        calls,
    }
    .draw(request_lang()))
}

/// Every user's calls as the page `/admin/calls?{query}` shows them (administrators): as
/// [`my_logs`], with a user filter.
#[server(prefix = "/_sfn", endpoint = "admin/logs")]
pub async fn all_logs(query: String) -> Result<String, AppError> {
    use crate::ssr::*;
    let svc = services()?;
    let actor = current_admin(&svc).await?;
    let filters = super::draw::Filters::parse(super::Scope::All, &query);
    let users = service::accounts::list_users(&svc, &actor, 500, 0).await?;
    let keys = service::keys::list(&svc, &actor, None).await?;
    let calls =
        super::draw::shown(service::usage::all_calls(&svc, &actor, &filters.calls()).await)?;
    Ok(super::draw::Read {
        filters,
        users: Some(users),
        keys,
        calls,
    }
    .draw(request_lang()))
}
