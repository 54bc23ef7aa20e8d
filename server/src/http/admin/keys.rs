//! `/api/admin/*`: API keys of any user. Every handler hands the actor to the service, which
//! checks the role.

use super::users::StatusChange;
use super::{BadInput, Denied, NotFound};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{AdminActor, ApiJson, ApiPath, ApiQuery};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use service::Services;
use service::keys::{self, CreatedKey, KeyView, NewKey};
use types::UserStatus;
use types::{KeyPatch, KeysQuery, Slice};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(update_key, delete_key))
        .routes(routes!(set_key_status))
}

#[utoipa::path(
    get,
    path = "/keys",
    tag = "admin",
    summary = "API keys (never their secrets), newest first, in keyset pages",
    params(KeysQuery),
    responses(
        (status = 200, description = "A page of keys; `next_cursor` continues it", body = Slice<KeyView>),
        BadInput,
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_keys(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(q): ApiQuery<KeysQuery>,
) -> Result<Json<Slice<KeyView>>, ApiError> {
    Ok(Json(keys::page(&svc, &actor, &q).await?))
}

#[utoipa::path(
    post,
    path = "/keys",
    tag = "admin",
    summary = "Creates a key; its secret is shown this once",
    request_body = NewKey,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        BadInput,
        Denied,
        NotFound
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn create_key(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiJson(new): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(keys::create(&svc, &actor, new).await?),
    ))
}

#[utoipa::path(
    post,
    path = "/keys/{id}/status",
    tag = "admin",
    summary = "Enables or disables a key",
    params(("id" = i64, Path)),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The key", body = KeyView),
        BadInput,
        Denied,
        NotFound
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn set_key_status(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(change): ApiJson<StatusChange>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(
        keys::set_status(&svc, &actor, id, change.status == UserStatus::Active).await?,
    ))
}

#[utoipa::path(
    patch,
    path = "/keys/{id}",
    tag = "admin",
    summary = "Changes a key's name, expiry, models, IPs, spend cap or limits",
    description = "Fields left out stay; `null` clears a nullable one. Every instance applies the change within a second (with Redis).",
    params(("id" = i64, Path)),
    request_body = KeyPatch,
    responses(
        (status = 200, description = "The key", body = KeyView),
        BadInput,
        Denied,
        NotFound
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn update_key(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(patch): ApiJson<KeyPatch>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(keys::update(&svc, &actor, id, patch).await?))
}

#[utoipa::path(
    delete,
    path = "/keys/{id}",
    tag = "admin",
    summary = "Deletes a key",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        BadInput,
        Denied,
        NotFound
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn delete_key(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    keys::delete(&svc, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
