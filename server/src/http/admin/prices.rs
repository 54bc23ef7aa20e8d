//! `/api/admin/*`: Prices (with their history) and group multipliers. Every handler hands the actor to the service, which
//! checks the role.

use super::{BadInput, Denied, NotFound};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminActor, ApiJson, ApiPath};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use service::Services;
use service::catalog::{self, PriceView};
use service::config::PriceConfig;
use types::GroupView;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_prices))
        .routes(routes!(price_history, set_price, delete_price))
        .routes(routes!(list_groups))
        .routes(routes!(set_group, delete_group))
}

#[utoipa::path(
    get,
    path = "/prices",
    tag = "admin",
    summary = "Active prices",
    responses(
        (status = 200, description = "Prices", body = Vec<PriceView>),
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_prices(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<PriceView>>, ApiError> {
    Ok(Json(catalog::list_prices(&svc, &actor).await?))
}

#[utoipa::path(
    get,
    path = "/prices/{*model}",
    tag = "admin",
    summary = "A model's price versions, newest first (the last 100; the one charged now is active)",
    params(("model" = String, Path)),
    responses(
        (status = 200, description = "Versions", body = Vec<types::PriceVersion>),
        Denied,
        (status = 404, description = "No price was ever set for the model", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn price_history(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(model): ApiPath<String>,
) -> Result<Json<Vec<types::PriceVersion>>, ApiError> {
    Ok(Json(catalog::price_history(&svc, &actor, &model).await?))
}

#[utoipa::path(
    put,
    path = "/prices/{*model}",
    tag = "admin",
    summary = "Sets a price: a new version when it differs",
    params(("model" = String, Path)),
    request_body = PriceConfig,
    responses(
        (status = 200, description = "The price", body = PriceView),
        BadInput,
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn set_price(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(model): ApiPath<String>,
    ApiJson(price): ApiJson<PriceConfig>,
) -> Result<Json<PriceView>, ApiError> {
    Ok(Json(catalog::set_price(&svc, &actor, &model, price).await?))
}

#[utoipa::path(
    delete,
    path = "/prices/{*model}",
    tag = "admin",
    summary = "Retires a price",
    params(("model" = String, Path)),
    responses(
        (status = 204, description = "Retired"),
        Denied,
        NotFound
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn delete_price(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(model): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    catalog::delete_price(&svc, &actor, &model).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/groups",
    tag = "admin",
    summary = "Group multipliers",
    responses(
        (status = 200, description = "Groups", body = Vec<GroupView>),
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_groups(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    Ok(Json(catalog::groups(&svc, &actor)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Multiplier {
    /// A decimal string, at most 3 decimals: `"1.5"`.
    multiplier: String,
}

#[utoipa::path(
    put,
    path = "/groups/{name}",
    tag = "admin",
    summary = "Sets a group's multiplier",
    params(("name" = String, Path)),
    request_body = Multiplier,
    responses(
        (status = 200, description = "The group", body = GroupView),
        BadInput,
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn set_group(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(name): ApiPath<String>,
    ApiJson(m): ApiJson<Multiplier>,
) -> Result<Json<GroupView>, ApiError> {
    Ok(Json(
        catalog::set_group(&svc, &actor, &name, &m.multiplier).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/groups/{name}",
    tag = "admin",
    summary = "Removes a group's multiplier",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        Denied,
        NotFound
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn delete_group(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    catalog::delete_group(&svc, &actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
