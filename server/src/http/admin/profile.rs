//! `/api/admin/profile`: a flamegraph of this process's CPU over a few seconds, for finding
//! what a call costs. An in-process sampler (the `pprof` crate: a `SIGPROF` timer and a stack
//! walk per sample, so no hardware counters are needed, which these machines lack); built only
//! with the server's `profile` feature (`make profile` builds it and runs the bench load under
//! it). One profile at a time.

use super::{BadInput, Conflict, Denied, NotFound};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{AdminActor, ApiQuery};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use service::Error;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(profile))
}

/// The longest profile, in seconds.
const MAX_SECONDS: u64 = 120;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ProfileQuery {
    /// How long to sample, 1 to 120 (10 when absent).
    seconds: Option<u64>,
    /// Samples per second of CPU time, 1 to 1000 (499 when absent).
    frequency: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/profile",
    tag = "admin",
    summary = "A flamegraph (SVG) of the process's CPU over `seconds`",
    description = "Samples every thread's stack `frequency` times per second of CPU time for \
                   `seconds`, then answers the flamegraph: each box is a function, its width the \
                   share of samples in it and what it called. Only in a build with the `profile` \
                   feature (`make profile`); 404 otherwise. One at a time (409).",
    params(ProfileQuery),
    responses(
        (status = 200, description = "The flamegraph", content_type = "image/svg+xml", body = String),
        BadInput,
        Denied,
        NotFound,
        Conflict
    ),
    security(("admin_token" = []), ("session" = []))
)]
async fn profile(
    AdminActor(actor): AdminActor,
    ApiQuery(q): ApiQuery<ProfileQuery>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let seconds = q.seconds.unwrap_or(10);
    if !(1..=MAX_SECONDS).contains(&seconds) {
        return Err(Error::invalid("seconds", format!("must be 1 to {MAX_SECONDS}")).into());
    }
    let frequency = q.frequency.unwrap_or(499);
    if !(1..=1000).contains(&frequency) {
        return Err(Error::invalid("frequency", "must be 1 to 1000").into());
    }
    let svg = sampler::flamegraph(std::time::Duration::from_secs(seconds), frequency).await?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

#[cfg(feature = "profile")]
mod sampler {
    use service::Error;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    static BUSY: AtomicBool = AtomicBool::new(false);

    /// Frees the one profile's place however the profile ends.
    struct Place;

    impl Drop for Place {
        fn drop(&mut self) {
            BUSY.store(false, Ordering::Release);
        }
    }

    /// Samples for `length` on a blocking thread (the sampler and the drawing are not async),
    /// and draws the flamegraph.
    pub(super) async fn flamegraph(length: Duration, frequency: u32) -> Result<Vec<u8>, Error> {
        if BUSY.swap(true, Ordering::AcqRel) {
            return Err(Error::Conflict("a profile is being taken; one at a time"));
        }
        let place = Place;
        let drawn = tokio::task::spawn_blocking(move || {
            let _place = place;
            // Samples whose innermost frame is in these libraries are skipped: unwinding
            // through them inside the signal handler can deadlock.
            let guard = pprof::ProfilerGuardBuilder::default()
                .frequency(i32::try_from(frequency).unwrap_or(499))
                .blocklist(&["libc", "libgcc", "pthread", "vdso"])
                .build()?;
            std::thread::sleep(length);
            let report = guard.report().build()?;
            drop(guard);
            let mut svg = Vec::new();
            report.flamegraph(&mut svg)?;
            Ok::<_, pprof::Error>(svg)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the profile's thread failed: {e}"))?;
        drawn.map_err(|e| Error::Internal(anyhow::anyhow!("profiling failed: {e}")))
    }
}

#[cfg(not(feature = "profile"))]
mod sampler {
    use service::Error;
    use std::time::Duration;

    pub(super) async fn flamegraph(_: Duration, _: u32) -> Result<Vec<u8>, Error> {
        Err(Error::NotFound(
            "a profiler in this build (`make profile` builds one)",
        ))
    }
}
