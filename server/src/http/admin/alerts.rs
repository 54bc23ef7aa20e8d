//! `/api/admin/alerts`: the system's alerts (channels down and up, ledger drift): where they go
//! and the latest ones. The handler hands the actor to the service, which checks the role.

use super::{BadInput, Denied};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{AdminActor, ApiJson};
use axum::Json;
use axum::extract::State;
use service::{Services, alerts};
use types::{AlertSettings, Alerts};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(system_alerts, set_system_alerts))
}

#[utoipa::path(
    get,
    path = "/alerts",
    tag = "admin",
    summary = "The system's alert settings and latest alerts (channels, ledger drift)",
    responses(
        (status = 200, description = "Settings and the latest 20 alerts, newest first", body = Alerts),
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn system_alerts(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
) -> Result<Json<Alerts>, ApiError> {
    Ok(Json(alerts::system(&svc, &actor).await?))
}

#[utoipa::path(
    put,
    path = "/alerts",
    tag = "admin",
    summary = "Sets where the system's alerts go and which are sent",
    description = "`channels`: a channel failing its probe, and answering again; \
                   `ledger_drift`: the ledger check finding drift, and agreeing again. \
                   `webhook_secret` is required with a first `webhook_url` and kept when left \
                   out; `email` needs `alerts.smtp` in the config. `balance_below` and \
                   `key_cap_percent` are a user's (400 here).",
    request_body = AlertSettings,
    responses(
        (status = 200, description = "The settings as saved, and the latest alerts", body = Alerts),
        BadInput,
        Denied
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn set_system_alerts(
    State(svc): State<Services>,
    AdminActor(actor): AdminActor,
    ApiJson(body): ApiJson<AlertSettings>,
) -> Result<Json<Alerts>, ApiError> {
    Ok(Json(alerts::set_system(&svc, &actor, body).await?))
}
