//! `/api/admin/*`: Every call log (JSON and CSV) and the audit log. Every handler hands the actor to the service, which
//! checks the role.

use super::{BadInput, Denied};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{AdminActor, ApiQuery};
use axum::Json;
use axum::extract::State;
use service::Services;
use service::usage;
use types::{AuditEntry, AuditQuery, CallsQuery, Slice, UsageRow};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(all_logs))
        .routes(routes!(all_logs_csv))
        .routes(routes!(audit_log))
}

#[utoipa::path(
    get,
    path = "/logs",
    tag = "admin",
    summary = "Every user's calls (or one user's), newest first",
    params(CallsQuery),
    responses(
        (status = 200, description = "A page of calls", body = Slice<UsageRow>),
        BadInput,
        Denied
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
        BadInput,
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn all_logs_csv(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> Result<axum::response::Response, ApiError> {
    Ok(crate::http::public::csv(usage::all_calls_csv(
        &svc, &actor, &q,
    )?))
}

#[utoipa::path(
    get,
    path = "/audit",
    tag = "admin",
    summary = "The audit log: every administrator's action, newest first",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = Slice<AuditEntry>),
        BadInput,
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn audit_log(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Slice<AuditEntry>>, ApiError> {
    Ok(Json(service::audit::list(&svc.db, &actor, &q).await?))
}
