//! `/api/*` outside the admin API: the public price table and build facts, redeem codes and the
//! call logs of an API key's owner. Thin adapters over `service`.

use super::AppState;
use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery};
use super::openai::ApiKey;
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::Deserialize;
use service::{Services, redeem, usage};
use types::{About, LogsQuery, Page, Pricing, RedeemCheck, Redeemed, UsageRow};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pricing))
        .routes(routes!(about))
        .routes(routes!(check_code, redeem_code))
        .routes(routes!(logs))
        .routes(routes!(super::openapi::document))
        .fallback(|| async { ApiError::new(types::ErrorKind::NotFound, "unknown endpoint") })
}

/// An API key when the request presents one (then it must be valid), else nobody.
pub struct MaybeKey(pub Option<ApiKey>);

impl FromRequestParts<AppState> for MaybeKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
            || parts.headers.contains_key("x-api-key");
        Ok(MaybeKey(if presented {
            Some(ApiKey::from_request_parts(parts, state).await?)
        } else {
            None
        }))
    }
}

#[utoipa::path(
    get,
    path = "/pricing",
    tag = "public",
    summary = "The price table, with the caller's group multiplier when a key is presented",
    responses(
        (status = 200, description = "Priced, routed models", body = Pricing),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody)
    ),
    security((), ("api_key" = []))
)]
async fn pricing(State(svc): State<Services>, MaybeKey(key): MaybeKey) -> Json<Pricing> {
    Json(service::proxy::pricing(&svc, key.as_ref().map(|k| &*k.key)))
}

#[utoipa::path(
    get,
    path = "/about",
    tag = "public",
    summary = "Name, version, build and uptime",
    responses(
        (status = 200, description = "This instance", body = About)
    ),
    security(())
)]
async fn about(State(svc): State<Services>) -> Json<About> {
    Json(service::about(&svc, env!("TOLLGATE_BUILD")))
}

/// A redeem code, as handed out (`RC-…`; case and dashes do not matter).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeText {
    code: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CodeQuery {
    /// The code to check.
    code: String,
}

#[utoipa::path(
    get,
    path = "/redeem",
    tag = "redeem",
    summary = "What a redeem code is worth and whether it can be redeemed (the same answer for an unknown and a used code)",
    params(CodeQuery),
    responses(
        (status = 200, description = "The check", body = RedeemCheck),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 429, description = "Throttled; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; see `Retry-After`", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn check_code(
    State(svc): State<Services>,
    key: ApiKey,
    ApiQuery(q): ApiQuery<CodeQuery>,
) -> Result<Json<RedeemCheck>, ApiError> {
    Ok(Json(
        redeem::check(&svc, key.key.user_id, &q.code, key.client_ip).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/redeem",
    tag = "redeem",
    summary = "Redeems a code for the key's owner; `Idempotency-Key` makes a retry safe",
    params(("Idempotency-Key" = Option<String>, Header, description = "A replay with the same key returns the first answer")),
    request_body = CodeText,
    responses(
        (status = 200, description = "Credited", body = Redeemed),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody),
        (status = 429, description = "Throttled; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; see `Retry-After`", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn redeem_code(
    State(svc): State<Services>,
    key: ApiKey,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CodeText>,
) -> Result<Json<Redeemed>, ApiError> {
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::from(service::Error::invalid(
                "Idempotency-Key",
                "must be printable ASCII",
            ))
        })?),
    };
    Ok(Json(
        redeem::redeem(
            &svc,
            key.key.user_id,
            &body.code,
            idempotency_key,
            key.client_ip,
        )
        .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/logs",
    tag = "usage",
    summary = "The key owner's calls, newest first, in numbered pages",
    params(LogsQuery),
    responses(
        (status = 200, description = "A page of calls", body = Page<UsageRow>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; see `Retry-After`", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn logs(
    State(svc): State<Services>,
    key: ApiKey,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Json<Page<UsageRow>>, ApiError> {
    Ok(Json(
        usage::logs(&svc, key.key.id, key.key.user_id, &q).await?,
    ))
}
