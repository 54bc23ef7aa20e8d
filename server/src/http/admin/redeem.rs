//! `/api/admin/*`: Redeem code batches: create, list, void. Every handler hands the actor to the service, which
//! checks the role.

use super::{BadInput, Conflict, Denied, NotFound};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{AdminActor, ApiJson, ApiPath, ApiQuery};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service::Services;
use service::redeem;
use types::{CreatedRedeemBatch, LedgerQuery, NewRedeemBatch, RedeemBatch, RedeemCodeView, Slice};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_codes, create_codes))
        .routes(routes!(void_code))
        .routes(routes!(list_batches))
        .routes(routes!(void_batch))
}

#[utoipa::path(
    post,
    path = "/redeem-codes",
    tag = "admin",
    summary = "Creates a batch of redeem codes; the codes are shown this once",
    request_body = NewRedeemBatch,
    responses(
        (status = 201, description = "Created", body = CreatedRedeemBatch),
        BadInput,
        Denied
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
        BadInput,
        Denied
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
        BadInput,
        Denied
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
        BadInput,
        Denied,
        NotFound,
        Conflict
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
        BadInput,
        Denied,
        NotFound
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
