//! `/api/admin/*`: Channels (with their health and a live test) and model mappings. Every handler hands the actor to the service, which
//! checks the role.

use super::{BadInput, Conflict, Denied, NotFound};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{AdminActor, ApiJson, ApiPath, ApiQuery};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use service::Services;
use service::catalog::{self, Mapping};
use service::routing::{ChannelInput, ChannelView};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(update_channel, delete_channel))
        .routes(routes!(test_channel))
        .routes(routes!(channel_health))
        .routes(routes!(list_mappings))
        .routes(routes!(set_mapping, delete_mapping))
}

#[utoipa::path(
    get,
    path = "/channels",
    tag = "admin",
    summary = "Upstream channels (never their keys)",
    responses(
        (status = 200, description = "Channels", body = Vec<ChannelView>),
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_channels(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    Ok(Json(catalog::list_channels(&svc, &actor).await?))
}

#[utoipa::path(
    post,
    path = "/channels",
    tag = "admin",
    summary = "Creates a channel",
    request_body = ChannelInput,
    responses(
        (status = 201, description = "Created", body = ChannelView),
        BadInput,
        Denied,
        Conflict
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn create_channel(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiJson(input): ApiJson<ChannelInput>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(catalog::save_channel(&svc, &actor, None, input).await?),
    ))
}

#[utoipa::path(
    put,
    path = "/channels/{id}",
    tag = "admin",
    summary = "Replaces a channel (a missing api_key keeps the stored one)",
    params(("id" = i64, Path)),
    request_body = ChannelInput,
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        BadInput,
        Denied,
        NotFound,
        Conflict
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn update_channel(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<ChannelInput>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(
        catalog::save_channel(&svc, &actor, Some(id), input).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/channels/{id}",
    tag = "admin",
    summary = "Deletes a channel",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        BadInput,
        Denied,
        NotFound
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn delete_channel(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    catalog::delete_channel(&svc, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/model-mappings",
    tag = "admin",
    summary = "Model mappings: a public name and its ordered fallback list",
    responses(
        (status = 200, description = "Mappings", body = Vec<Mapping>),
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_mappings(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<Mapping>>, ApiError> {
    Ok(Json(catalog::list_mappings(&svc, &actor).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Targets {
    targets: Vec<String>,
}

#[utoipa::path(
    put,
    path = "/model-mappings/{*model}",
    tag = "admin",
    summary = "Sets a mapping",
    params(("model" = String, Path)),
    request_body = Targets,
    responses(
        (status = 200, description = "The mapping", body = Mapping),
        BadInput,
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn set_mapping(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(model): ApiPath<String>,
    ApiJson(t): ApiJson<Targets>,
) -> Result<Json<Mapping>, ApiError> {
    Ok(Json(
        catalog::set_mapping(&svc, &actor, &model, t.targets).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/model-mappings/{*model}",
    tag = "admin",
    summary = "Deletes a mapping",
    params(("model" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        Denied,
        NotFound
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn delete_mapping(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(model): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    catalog::delete_mapping(&svc, &actor, &model).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ChannelTestInput {
    /// The upstream model to ask; the channel's first when left out.
    #[serde(default)]
    model: Option<String>,
}

#[utoipa::path(
    post,
    path = "/channels/{id}/test",
    tag = "admin",
    summary = "Sends a tiny live request through a channel (max_tokens 1) and tells what happened",
    params(("id" = i64, Path), ChannelTestInput),
    responses(
        (status = 200, description = "What the upstream did (`ok` false with its status and error text when it failed)", body = types::ChannelTest),
        BadInput,
        Denied,
        NotFound
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn test_channel(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(input): ApiQuery<ChannelTestInput>,
) -> Result<Json<types::ChannelTest>, ApiError> {
    Ok(Json(
        catalog::test_channel(&svc, &actor, id, input.model.as_deref()).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/channels/health",
    tag = "admin",
    summary = "Each channel's last hour (requests, failures, mean latency) and circuit as this instance saw them, and its latest scheduled probe (from any instance)",
    responses(
        (status = 200, description = "Per channel", body = Vec<types::ChannelHealth>),
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn channel_health(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<types::ChannelHealth>>, ApiError> {
    Ok(Json(catalog::channel_health(&svc, &actor).await?))
}
