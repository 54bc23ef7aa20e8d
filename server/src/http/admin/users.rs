//! `/api/admin/*`: Users: list, create, read, update, enable or disable, reset the password,
//! delete, adjust the balance, the ledger. Every handler hands the actor to the service, which
//! checks the role.

use super::{BadInput, Conflict, Denied, NotFound};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{AdminActor, ApiJson, ApiPath, ApiQuery};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service::usage;
use service::{Services, accounts, billing};
use types::{
    LedgerQuery, LedgerRow, NewUser, PasswordReset, PasswordWasReset, Slice, UserInfo, UserPatch,
    UserStatus,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_status))
        .routes(routes!(reset_password))
        .routes(routes!(adjust_balance))
        .routes(routes!(user_ledger))
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
        BadInput,
        Denied
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
        BadInput,
        Denied,
        Conflict
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
        BadInput,
        Denied,
        NotFound
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

#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "admin",
    summary = "Deletes a user: keys stop at once, sessions end, ledger and logs are kept",
    description = "The row stays, disabled for good with `deleted_at` set, so that the user's \
                   ledger, call logs and usage keep their owner and still add up; the name is not \
                   given to anyone else. Nobody deletes themselves or the last active \
                   administrator (400); a deleted user takes no further change (409).",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The deleted user", body = UserInfo),
        BadInput,
        Denied,
        NotFound,
        Conflict
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn delete_user(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(accounts::delete_user(&svc, &actor, id).await?))
}

#[utoipa::path(
    post,
    path = "/users/{id}/password",
    tag = "admin",
    summary = "Resets a user's password; every session of theirs ends",
    description = "Give `password`, or send `{}` to have one made (returned this once). The audit \
                   log records the reset, never the password.",
    params(("id" = i64, Path)),
    request_body = PasswordReset,
    responses(
        (status = 200, description = "Reset", body = PasswordWasReset),
        BadInput,
        Denied,
        NotFound,
        Conflict
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn reset_password(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(reset): ApiJson<PasswordReset>,
) -> Result<Json<PasswordWasReset>, ApiError> {
    Ok(Json(
        accounts::reset_password(&svc, &actor, id, reset).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusChange {
    pub(super) status: UserStatus,
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
        BadInput,
        Denied,
        NotFound
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
        BadInput,
        Denied,
        NotFound
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

#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "admin",
    summary = "Changes a user's role or price group",
    params(("id" = i64, Path)),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user", body = UserInfo),
        BadInput,
        Denied,
        NotFound
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
        BadInput,
        Denied,
        NotFound
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
