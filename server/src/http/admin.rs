//! `/api/admin/*`: users. Every handler hands the actor to the service, which checks the role.

use super::AppState;
use super::error::ApiError;
use super::extract::{AdminActor, ApiJson};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use service::{Services, accounts};
use types::{NewUser, UserInfo, UserStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user))
        .route("/users/{id}/status", post(set_status))
}

#[derive(Deserialize)]
struct Page {
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn default_limit() -> i64 {
    100
}

async fn list_users(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Query(page): Query<Page>,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    Ok(Json(
        accounts::list_users(&svc, &actor, page.limit, page.offset).await?,
    ))
}

async fn create_user(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(accounts::create_user(&svc, &actor, new).await?),
    ))
}

async fn get_user(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(id): Path<i64>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(accounts::get_user(&svc, &actor, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: UserStatus,
}

async fn set_status(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(id): Path<i64>,
    ApiJson(change): ApiJson<StatusChange>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(
        accounts::set_user_status(&svc, &actor, id, change.status).await?,
    ))
}
