//! Cleanup: expired sessions, redeem idempotency records past their window, model-health
//! minutes past the status page's day, finished job runs and raised alerts past
//! `retention.job_runs_days`, and
//! rotated log files past `log.retention_days`. Each step is a bounded delete by time.
//!
//! Expired API keys and redeem codes are kept: they are refused at use, and the call logs,
//! ledger and batch counts (`expired`) name them.

use super::RunCtx;
use crate::{accounts, now_ms, telemetry};
use std::path::Path;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

pub async fn run(ctx: &RunCtx) -> anyhow::Result<String> {
    let svc = &ctx.svc;
    let sessions = accounts::purge_expired_sessions(svc).await?;
    ctx.holding()?;
    let idempotency = crate::redeem::purge_requests(
        svc,
        now_ms() - i64::from(svc.config.redeem.idempotency_hours) * HOUR_MS,
    )
    .await?;
    ctx.holding()?;
    let health = crate::usage::purge_health(svc).await?;
    ctx.holding()?;
    let runs = super::repo::purge_runs(
        &svc.db,
        now_ms() - i64::from(svc.config.retention.job_runs_days) * DAY_MS,
    )
    .await?;
    ctx.holding()?;
    let alerts = crate::alerts::purge(
        svc,
        now_ms() - i64::from(svc.config.retention.job_runs_days) * DAY_MS,
    )
    .await?;
    let dir = &svc.config.log.dir;
    let files = if dir.is_empty() {
        0
    } else {
        telemetry::remove_old_logs(Path::new(dir), svc.config.log.retention_days)?
    };
    Ok(format!(
        "removed {sessions} sessions, {idempotency} idempotency records, {health} health minutes, \
         {runs} job runs, {alerts} alerts, {files} log files"
    ))
}
