//! `/api/admin/*`, one file per resource. Every handler hands the actor to the service, which
//! checks the role; the error answers the routes share are documented once, here.

mod alerts;
mod channels;
mod jobs;
mod keys;
mod logs;
mod prices;
mod profile;
mod redeem;
mod users;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use utoipa::IntoResponses;
use utoipa_axum::router::OpenApiRouter;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::routes())
        .merge(keys::routes())
        .merge(channels::routes())
        .merge(prices::routes())
        .merge(logs::routes())
        .merge(redeem::routes())
        .merge(jobs::routes())
        .merge(profile::routes())
        .merge(alerts::routes())
        .fallback(|| async { ApiError::new(types::ErrorKind::NotFound, "unknown endpoint") })
}

/// 401 and 403, which every administrators' route answers.
#[derive(IntoResponses)]
#[expect(dead_code, reason = "documents the answers; ApiError makes them")]
enum Denied {
    #[response(status = 401, description = "No credentials, or bad ones")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Not allowed")]
    Forbidden(ErrorBody),
}

/// 400 with the field at fault.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "Bad input: the field at fault is in `param`"
)]
#[expect(dead_code, reason = "documents the answer; ApiError makes it")]
struct BadInput(ErrorBody);

#[derive(IntoResponses)]
#[response(status = 404, description = "Not found")]
#[expect(dead_code, reason = "documents the answer; ApiError makes it")]
struct NotFound(ErrorBody);

#[derive(IntoResponses)]
#[response(status = 409, description = "Conflict")]
#[expect(dead_code, reason = "documents the answer; ApiError makes it")]
struct Conflict(ErrorBody);
