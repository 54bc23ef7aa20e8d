//! `/api/admin/*`: users. Every handler hands the actor to the service, which checks the role.

use super::AppState;
use super::error::ApiError;
use super::extract::{AdminActor, ApiJson};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use service::catalog::{self, Mapping, PriceView};
use service::config::PriceConfig;
use service::keys::{self, CreatedKey, KeyView, NewKey};
use service::routing::{ChannelInput, ChannelView};
use service::{Services, accounts, billing};
use types::{NewUser, UserInfo, UserStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user))
        .route("/users/{id}/status", post(set_status))
        .route("/users/{id}/balance", post(adjust_balance))
        .route("/keys", get(list_keys).post(create_key))
        .route("/keys/{id}", axum::routing::delete(delete_key))
        .route("/keys/{id}/status", post(set_key_status))
        .route("/channels", get(list_channels).post(create_channel))
        .route("/channels/{id}", put(update_channel).delete(delete_channel))
        .route("/model-mappings", get(list_mappings))
        .route(
            "/model-mappings/{*model}",
            put(set_mapping).delete(delete_mapping),
        )
        .route("/prices", get(list_prices))
        .route("/prices/{*model}", put(set_price).delete(delete_price))
        .fallback(|| async { ApiError::new(types::ErrorKind::NotFound, "unknown endpoint") })
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceChange {
    /// Signed USD decimal string.
    amount: String,
    reason: String,
}

async fn adjust_balance(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(id): Path<i64>,
    ApiJson(change): ApiJson<BalanceChange>,
) -> Result<Json<Value>, ApiError> {
    let balance = billing::adjust_balance(&svc, &actor, id, &change.amount, &change.reason).await?;
    Ok(Json(
        json!({ "user_id": id, "balance": balance.to_usd_string() }),
    ))
}

#[derive(Deserialize)]
struct KeyFilter {
    user_id: Option<i64>,
}

async fn list_keys(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Query(f): Query<KeyFilter>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    Ok(Json(keys::list(&svc, &actor, f.user_id).await?))
}

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

async fn set_key_status(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(id): Path<i64>,
    ApiJson(change): ApiJson<StatusChange>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(
        keys::set_status(&svc, &actor, id, change.status == UserStatus::Active).await?,
    ))
}

async fn delete_key(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    keys::delete(&svc, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_channels(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    Ok(Json(catalog::list_channels(&svc, &actor).await?))
}

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

async fn update_channel(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<ChannelInput>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(
        catalog::save_channel(&svc, &actor, Some(id), input).await?,
    ))
}

async fn delete_channel(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    catalog::delete_channel(&svc, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_mappings(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<Mapping>>, ApiError> {
    Ok(Json(catalog::list_mappings(&svc, &actor).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Targets {
    targets: Vec<String>,
}

async fn set_mapping(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(model): Path<String>,
    ApiJson(t): ApiJson<Targets>,
) -> Result<Json<Mapping>, ApiError> {
    Ok(Json(
        catalog::set_mapping(&svc, &actor, &model, t.targets).await?,
    ))
}

async fn delete_mapping(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(model): Path<String>,
) -> Result<StatusCode, ApiError> {
    catalog::delete_mapping(&svc, &actor, &model).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_prices(
    State(svc): State<Services>,
    AdminActor(_actor): AdminActor,
) -> Result<Json<Vec<PriceView>>, ApiError> {
    Ok(Json(catalog::list_prices(&svc).await?))
}

async fn set_price(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(model): Path<String>,
    ApiJson(price): ApiJson<PriceConfig>,
) -> Result<Json<PriceView>, ApiError> {
    Ok(Json(catalog::set_price(&svc, &actor, &model, price).await?))
}

async fn delete_price(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    Path(model): Path<String>,
) -> Result<StatusCode, ApiError> {
    catalog::delete_price(&svc, &actor, &model).await?;
    Ok(StatusCode::NO_CONTENT)
}
