//! The call-log pages' server functions: thin adapters over `service::usage` that answer the
//! page drawn (see `draw`), in the reader's language.

use crate::error::AppError;
use leptos::prelude::*;

/// The signed-in user's calls as the page `/logs?{query}` shows them: the filters, a keyset
/// page of 50 calls (or the error that names a bad filter) and the pager, drawn.
#[server(prefix = "/_sfn", endpoint = "me/logs")]
pub async fn my_logs(query: String) -> Result<String, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who } = Ctx::user().await?;
    let filters = super::draw::Filters::parse(super::Scope::Mine, &query);
    let read = service::views::pages::my_calls(&svc, &who, &filters.calls()).await?;
    Ok(super::draw::Read::new(filters, read).draw(request_lang()))
}

/// Every user's calls as the page `/admin/calls?{query}` shows them (administrators): as
/// [`my_logs`], with a user filter.
#[server(prefix = "/_sfn", endpoint = "admin/logs")]
pub async fn all_logs(query: String) -> Result<String, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who } = Ctx::admin().await?;
    let filters = super::draw::Filters::parse(super::Scope::All, &query);
    let read = service::views::pages::all_calls(&svc, &who, &filters.calls()).await?;
    Ok(super::draw::Read::new(filters, read).draw(request_lang()))
}
