//! `/api/admin/*`: Scheduled jobs (list, runs, run now) and the retention archives. Every handler hands the actor to the service, which
//! checks the role.

use super::{BadInput, Denied};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminActor, ApiPath, ApiQuery};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use service::{Services, jobs};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(job_runs))
        .routes(routes!(run_job))
        .routes(routes!(list_archives))
        .routes(routes!(download_archive))
}

#[utoipa::path(
    get,
    path = "/jobs",
    tag = "admin",
    summary = "The scheduled jobs: schedule, next run, latest run and latest success",
    responses(
        (status = 200, description = "Every job", body = Vec<types::JobView>),
        Denied
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
    params(("name" = String, Path, description = "retention, cleanup, channel_probe, backup or ledger_check"), RunsPage),
    responses(
        (status = 200, description = "Runs", body = Vec<types::JobRun>),
        BadInput,
        Denied,
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
    params(("name" = String, Path, description = "retention, cleanup, channel_probe, backup or ledger_check")),
    responses(
        (status = 202, description = "Started; follow it in the job's runs", body = types::JobRun),
        (status = 400, description = "Not for this deployment (backup on PostgreSQL or MySQL)", body = ErrorBody),
        Denied,
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
        Denied,
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
        Denied,
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
