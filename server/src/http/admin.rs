//! `/api/admin/*`: users. Every handler hands the actor to the service, which checks the role.

use super::AppState;
use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{AdminActor, ApiJson, ApiPath, ApiQuery};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service::catalog::{self, Mapping, PriceView};
use service::config::PriceConfig;
use service::keys::{self, CreatedKey, KeyView, NewKey};
use service::routing::{ChannelInput, ChannelView};
use service::{Services, accounts, billing, jobs};
use service::{redeem, usage};
use types::KeyPatch;
use types::{
    AuditEntry, AuditQuery, CallsQuery, CreatedRedeemBatch, GroupView, LedgerQuery, LedgerRow,
    NewRedeemBatch, NewUser, RedeemBatch, RedeemCodeView, Slice, UsageRow, UserInfo, UserPatch,
    UserStatus,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(set_status))
        .routes(routes!(adjust_balance))
        .routes(routes!(user_ledger))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(update_key, delete_key))
        .routes(routes!(set_key_status))
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(update_channel, delete_channel))
        .routes(routes!(test_channel))
        .routes(routes!(channel_health))
        .routes(routes!(list_mappings))
        .routes(routes!(set_mapping, delete_mapping))
        .routes(routes!(list_prices))
        .routes(routes!(price_history, set_price, delete_price))
        .routes(routes!(list_groups))
        .routes(routes!(set_group, delete_group))
        .routes(routes!(all_logs))
        .routes(routes!(all_logs_csv))
        .routes(routes!(list_codes, create_codes))
        .routes(routes!(void_code))
        .routes(routes!(list_batches))
        .routes(routes!(void_batch))
        .routes(routes!(audit_log))
        .routes(routes!(list_jobs))
        .routes(routes!(job_runs))
        .routes(routes!(run_job))
        .routes(routes!(list_archives))
        .routes(routes!(download_archive))
        .fallback(|| async { ApiError::new(types::ErrorKind::NotFound, "unknown endpoint") })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn default_limit() -> i64 {
    100
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "admin",
    summary = "Users",
    params(Page),
    responses(
        (status = 200, description = "Users", body = Vec<UserInfo>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_users(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    Ok(Json(
        accounts::list_users(&svc, &actor, page.limit, page.offset).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/users",
    tag = "admin",
    summary = "Creates a user",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserInfo),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
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

#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "admin",
    summary = "One user",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn get_user(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(accounts::get_user(&svc, &actor, id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: UserStatus,
}

#[utoipa::path(
    post,
    path = "/users/{id}/status",
    tag = "admin",
    summary = "Enables or disables a user",
    params(("id" = i64, Path)),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn set_status(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(change): ApiJson<StatusChange>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(
        accounts::set_user_status(&svc, &actor, id, change.status).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BalanceChange {
    /// Signed USD decimal string.
    amount: String,
    reason: String,
}

#[utoipa::path(
    post,
    path = "/users/{id}/balance",
    tag = "admin",
    summary = "Adds (or removes) money, with a reason",
    params(("id" = i64, Path)),
    request_body = BalanceChange,
    responses(
        (status = 200, description = "The new balance", body = BalanceAnswer),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn adjust_balance(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(change): ApiJson<BalanceChange>,
) -> Result<Json<BalanceAnswer>, ApiError> {
    let balance = billing::adjust_balance(&svc, &actor, id, &change.amount, &change.reason).await?;
    Ok(Json(BalanceAnswer {
        user_id: id,
        balance: balance.to_usd_string(),
    }))
}

#[derive(Serialize, ToSchema)]
struct BalanceAnswer {
    user_id: i64,
    /// USD decimal string.
    balance: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct KeyFilter {
    user_id: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/keys",
    tag = "admin",
    summary = "API keys (never their secrets)",
    params(KeyFilter),
    responses(
        (status = 200, description = "Keys", body = Vec<KeyView>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_keys(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(f): ApiQuery<KeyFilter>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    Ok(Json(keys::list(&svc, &actor, f.user_id).await?))
}

#[utoipa::path(
    post,
    path = "/keys",
    tag = "admin",
    summary = "Creates a key; its secret is shown this once",
    request_body = NewKey,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
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

#[utoipa::path(
    get,
    path = "/channels",
    tag = "admin",
    summary = "Upstream channels (never their keys)",
    responses(
        (status = 200, description = "Channels", body = Vec<ChannelView>),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody)
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody)
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
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
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
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
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
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

#[utoipa::path(
    get,
    path = "/prices",
    tag = "admin",
    summary = "Active prices",
    responses(
        (status = 200, description = "Prices", body = Vec<PriceView>),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_prices(
    State(svc): State<Services>,
    AdminActor(_actor): AdminActor,
) -> Result<Json<Vec<PriceView>>, ApiError> {
    Ok(Json(catalog::list_prices(&svc).await?))
}

#[utoipa::path(
    get,
    path = "/prices/{*model}",
    tag = "admin",
    summary = "A model's price versions, newest first (the last 100; the one charged now is active)",
    params(("model" = String, Path)),
    responses(
        (status = 200, description = "Versions", body = Vec<types::PriceVersion>),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
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
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
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
    patch,
    path = "/users/{id}",
    tag = "admin",
    summary = "Changes a user's role or price group",
    params(("id" = i64, Path)),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn update_user(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(accounts::update_user(&svc, &actor, id, patch).await?))
}

#[utoipa::path(
    get,
    path = "/users/{id}/ledger",
    tag = "admin",
    summary = "A user's ledger, newest first",
    params(("id" = i64, Path), LedgerQuery),
    responses(
        (status = 200, description = "A page of ledger rows", body = Slice<LedgerRow>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn user_ledger(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> Result<Json<Slice<LedgerRow>>, ApiError> {
    Ok(Json(usage::user_ledger(&svc, &actor, id, &q).await?))
}

#[utoipa::path(
    get,
    path = "/groups",
    tag = "admin",
    summary = "Group multipliers",
    responses(
        (status = 200, description = "Groups", body = Vec<GroupView>),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_groups(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    Ok(Json(billing::groups(&svc, &actor)?))
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
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
        billing::set_group(&svc, &actor, &name, &m.multiplier).await?,
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
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn delete_group(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    billing::delete_group(&svc, &actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/logs",
    tag = "admin",
    summary = "Every user's calls (or one user's), newest first",
    params(CallsQuery),
    responses(
        (status = 200, description = "A page of calls", body = Slice<UsageRow>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn all_logs(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> Result<Json<Slice<UsageRow>>, ApiError> {
    Ok(Json(usage::all_calls(&svc, &actor, &q).await?))
}

#[utoipa::path(
    get,
    path = "/logs.csv",
    tag = "admin",
    summary = "Every user's calls (or one user's) in the filtered range as CSV, streamed",
    params(CallsQuery),
    responses(
        (status = 200, description = "CSV, `text/csv`", content_type = "text/csv", body = String),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn all_logs_csv(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> Result<axum::response::Response, ApiError> {
    Ok(super::public::csv(usage::all_calls_csv(&svc, &actor, &q)?))
}

#[utoipa::path(
    post,
    path = "/redeem-codes",
    tag = "admin",
    summary = "Creates a batch of redeem codes; the codes are shown this once",
    request_body = NewRedeemBatch,
    responses(
        (status = 201, description = "Created", body = CreatedRedeemBatch),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn create_codes(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiJson(new): ApiJson<NewRedeemBatch>,
) -> Result<(StatusCode, Json<CreatedRedeemBatch>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(redeem::create_batch(&svc, &actor, new).await?),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CodesQuery {
    batch: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

#[utoipa::path(
    get,
    path = "/redeem-codes",
    tag = "admin",
    summary = "Redeem codes (never their text), newest first",
    params(CodesQuery),
    responses(
        (status = 200, description = "A page of codes", body = Slice<RedeemCodeView>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_codes(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(q): ApiQuery<CodesQuery>,
) -> Result<Json<Slice<RedeemCodeView>>, ApiError> {
    Ok(Json(
        redeem::list_codes(
            &svc,
            &actor,
            q.batch.as_deref(),
            q.status.as_deref(),
            q.cursor.as_deref(),
            q.limit.as_deref(),
        )
        .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/redeem-batches",
    tag = "admin",
    summary = "Batches of redeem codes with their counts, newest first",
    params(LedgerQuery),
    responses(
        (status = 200, description = "A page of batches", body = Slice<RedeemBatch>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_batches(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> Result<Json<Slice<RedeemBatch>>, ApiError> {
    Ok(Json(
        redeem::list_batches(&svc, &actor, q.cursor.as_deref(), q.limit.as_deref()).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/redeem-codes/{id}/void",
    tag = "admin",
    summary = "Voids an unused code",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Voided"),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn void_code(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    redeem::void_code(&svc, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/redeem-batches/{id}/void",
    tag = "admin",
    summary = "Voids a batch's unused codes",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "How many were voided", body = VoidedBatch),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn void_batch(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<VoidedBatch>, ApiError> {
    let voided = redeem::void_batch(&svc, &actor, id).await?;
    Ok(Json(VoidedBatch {
        batch_id: id,
        voided,
    }))
}

#[derive(Serialize, ToSchema)]
struct VoidedBatch {
    batch_id: i64,
    voided: u64,
}

#[utoipa::path(
    get,
    path = "/audit",
    tag = "admin",
    summary = "The audit log: every administrator's action, newest first",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = Slice<AuditEntry>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn audit_log(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Slice<AuditEntry>>, ApiError> {
    Ok(Json(service::audit::list(&svc, &actor, &q).await?))
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
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
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
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn channel_health(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<types::ChannelHealth>>, ApiError> {
    Ok(Json(catalog::channel_health(&svc, &actor).await?))
}

#[utoipa::path(
    get,
    path = "/jobs",
    tag = "admin",
    summary = "The scheduled jobs: schedule, next run, latest run and latest success",
    responses(
        (status = 200, description = "Every job", body = Vec<types::JobView>),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_jobs(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<types::JobView>>, ApiError> {
    Ok(Json(jobs::list(&svc, &actor).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RunsPage {
    /// Runs with an id below this one (the previous page's last id).
    #[serde(default)]
    before: Option<i64>,
    /// 1 to 500.
    #[serde(default = "default_runs")]
    limit: i64,
}

fn default_runs() -> i64 {
    50
}

#[utoipa::path(
    get,
    path = "/jobs/{name}/runs",
    tag = "admin",
    summary = "A job's runs, newest first",
    params(("name" = String, Path, description = "retention, cleanup, channel_probe or backup"), RunsPage),
    responses(
        (status = 200, description = "Runs", body = Vec<types::JobRun>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn job_runs(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(name): ApiPath<String>,
    ApiQuery(page): ApiQuery<RunsPage>,
) -> Result<Json<Vec<types::JobRun>>, ApiError> {
    Ok(Json(
        jobs::runs(&svc, &actor, &name, page.before, page.limit).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/jobs/{name}/run",
    tag = "admin",
    summary = "Runs a job now on this instance; answers at once with the run as it started",
    params(("name" = String, Path, description = "retention, cleanup, channel_probe or backup")),
    responses(
        (status = 202, description = "Started; follow it in the job's runs", body = types::JobRun),
        (status = 400, description = "Not for this deployment (backup on PostgreSQL)", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "A run of the job is under way", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn run_job(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(name): ApiPath<String>,
) -> Result<(StatusCode, Json<types::JobRun>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(jobs::run_now(&svc, &actor, &name).await?),
    ))
}

#[utoipa::path(
    get,
    path = "/archives",
    tag = "admin",
    summary = "The days of call logs archived to object storage by the retention job",
    responses(
        (status = 200, description = "Archived days, oldest first", body = Vec<types::ArchiveDay>),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 503, description = "Object storage did not answer", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn list_archives(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Vec<types::ArchiveDay>>, ApiError> {
    Ok(Json(jobs::list_archives(&svc, &actor).await?))
}

#[utoipa::path(
    get,
    path = "/archives/{day}",
    tag = "admin",
    summary = "One archived day: gzip-compressed JSON Lines, one usage row per line, streamed",
    params(("day" = String, Path, description = "YYYY-MM-DD (UTC)")),
    responses(
        (status = 200, description = "The archive", content_type = "application/gzip"),
        (status = 400, description = "Not a date", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No archive of that day", body = ErrorBody),
        (status = 503, description = "Object storage did not answer", body = ErrorBody)
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn download_archive(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(day): ApiPath<String>,
) -> Result<axum::response::Response, ApiError> {
    let stream = jobs::open_archive(&svc, &actor, &day).await?;
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/gzip")
        .header(
            axum::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"usage-{day}.jsonl.gz\""),
        )
        .body(axum::body::Body::from_stream(stream))
        .map_err(|e| ApiError::from(service::Error::Internal(e.into())))
}
