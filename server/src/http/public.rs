//! `/api/*` outside the admin API: the public price table and build facts, redeem codes, and the
//! call logs and daily usage of an API key's owner. Thin adapters over `service`.

use super::AppState;
use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery, SessionUser};
use super::openai::ApiKey;
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::IntoResponse as _;
use serde::Deserialize;
use service::actor::Actor;
use service::{Services, alerts, redeem, usage};
use types::{
    About, AlertSettings, Alerts, CallsQuery, LogsQuery, Page, Pricing, RedeemCheck, Redeemed,
    ServiceStatus, UsagePoint, UsageQuery, UsageRow,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pricing))
        .routes(routes!(about))
        .routes(routes!(status))
        .routes(routes!(check_code, redeem_code))
        .routes(routes!(logs))
        .routes(routes!(daily_usage))
        .routes(routes!(my_logs_csv))
        .routes(routes!(my_alerts, set_my_alerts))
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

#[utoipa::path(
    get,
    path = "/status",
    tag = "public",
    summary = "The service's health and each public model's success rate and latency",
    description = "From the calls the gateway served: the last hour decides a model's state \
                   (`operational` at 99% success, `degraded` from 90%, `down` below, `idle` \
                   without calls); client errors are left out. The models are the caller's \
                   group's when a key is presented, else the public ones. Read at most once \
                   every two seconds.",
    responses(
        (status = 200, description = "The status", body = ServiceStatus),
        (status = 401, description = "Bad credentials", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; see `Retry-After`", body = ErrorBody)
    ),
    security((), ("api_key" = []))
)]
async fn status(
    State(svc): State<Services>,
    MaybeKey(key): MaybeKey,
) -> Result<Json<ServiceStatus>, ApiError> {
    let group = key
        .as_ref()
        .map_or("default", |k| k.key.user_group.as_str());
    Ok(Json((*usage::service_status(&svc, group).await?).clone()))
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

#[utoipa::path(
    get,
    path = "/usage",
    tag = "usage",
    summary = "The key owner's usage per day, by model or by key",
    description = "From the hourly aggregates: one row per day and model (`by=model`, the \
                   default) or per day and key (`by=key`; `key_id` 0 for calls made without a \
                   key), days with no call left out, oldest first. `from` and `to` are days \
                   (`YYYY-MM-DD`, both included; by default the last 30 days), at most 400 days \
                   apart; days begin at UTC plus `utc_offset_minutes` (whole hours, -720 to \
                   840). Money exact in USD. Counts toward `limits.log_query_per_minute`.",
    params(UsageQuery),
    responses(
        (status = 200, description = "Days, oldest first", body = Vec<UsagePoint>),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 429, description = "Past the key's log-read quota; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; see `Retry-After`", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn daily_usage(
    State(svc): State<Services>,
    key: ApiKey,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<Vec<UsagePoint>>, ApiError> {
    Ok(Json(
        usage::key_usage(&svc, key.key.id, key.key.user_id, &q).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/me/logs.csv",
    tag = "usage",
    summary = "The signed-in user's calls in the filtered range as CSV, newest first, streamed",
    description = "The console's export. Filters as the call log's (`model`, `status`, `from`, \
                   `to` in unix seconds, `key_id`); the whole range, any size, one row per call; \
                   money exact in USD; text a spreadsheet would read as a formula is defused.",
    params(CallsQuery),
    responses(
        (status = 200, description = "CSV, `text/csv`", content_type = "text/csv", body = String),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody)
    ),
    security(("session" = []))
)]
async fn my_logs_csv(
    State(svc): State<Services>,
    SessionUser(user): SessionUser,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> Result<axum::response::Response, ApiError> {
    Ok(csv(usage::my_calls_csv(&svc, user.id, &q).await?))
}

#[utoipa::path(
    get,
    path = "/me/alerts",
    tag = "usage",
    summary = "The signed-in user's alert settings and latest alerts",
    responses(
        (status = 200, description = "Settings and the latest 20 alerts, newest first", body = Alerts),
        (status = 401, description = "Not signed in", body = ErrorBody)
    ),
    security(("session" = []))
)]
async fn my_alerts(
    State(svc): State<Services>,
    SessionUser(user): SessionUser,
) -> Result<Json<Alerts>, ApiError> {
    Ok(Json(alerts::mine(&svc, &Actor::User(user)).await?))
}

#[utoipa::path(
    put,
    path = "/me/alerts",
    tag = "usage",
    summary = "Sets when the signed-in user is told, and where",
    description = "`balance_below` (USD): told once when the balance falls below it (again after \
                   it rose above); `key_cap_percent` (1 to 100): told once when a key with a \
                   spending cap has spent that share of it. Saving judges both afresh. \
                   `webhook_secret` is required with a first `webhook_url` and kept when left \
                   out; `email` needs `alerts.smtp` in the config. `channels` and \
                   `ledger_drift` are the system's (400 here).",
    request_body = AlertSettings,
    responses(
        (status = 200, description = "The settings as saved, and the latest alerts", body = Alerts),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody)
    ),
    security(("session" = []))
)]
async fn set_my_alerts(
    State(svc): State<Services>,
    SessionUser(user): SessionUser,
    ApiJson(body): ApiJson<AlertSettings>,
) -> Result<Json<Alerts>, ApiError> {
    Ok(Json(
        alerts::set_mine(&svc, &Actor::User(user), body).await?,
    ))
}

/// A CSV download. A failure mid-stream (the database gone) is logged and cuts the body, so the
/// client sees an incomplete download rather than a file that looks whole.
pub fn csv(body: usage::CsvStream) -> axum::response::Response {
    use futures_util::TryStreamExt as _;
    let name = format!(
        "attachment; filename=\"tollgate-calls-{}.csv\"",
        types::date::format_day(service::now_ms().div_euclid(86_400_000))
    );
    let body = body.map_err(|e| {
        tracing::warn!(error = %e, "call export failed mid-stream");
        std::io::Error::other(e.to_string())
    });
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, name),
            (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}
