//! The status page: the service's health and, per public model, what the gateway has seen of
//! it (the `model_health` minutes the usage writer keeps). Public and so cached: one reading
//! per price group every [`STATUS_TTL`], however often it is asked for.

use super::repo;
use crate::{Error, Services, now_ms};
use std::sync::Arc;
use std::time::Duration;
use types::{HealthFigures, HourHealth, ModelState, ModelStatus, ServiceStatus};

/// How long a reading is served again.
pub const STATUS_TTL: Duration = Duration::from_secs(2);
/// How long the minutes are kept (the page reads a day of them).
pub const HEALTH_RETENTION_MS: i64 = 7 * 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// The status of the service and of the models `group` may call.
pub async fn service_status(svc: &Services, group: &str) -> Result<Arc<ServiceStatus>, Error> {
    if let Some(s) = svc.status.fresh(group, STATUS_TTL) {
        return Ok(s);
    }
    let reading = Arc::new(read(svc, group).await?);
    svc.status.put(group, reading.clone());
    Ok(reading)
}

async fn read(svc: &Services, group: &str) -> Result<ServiceStatus, Error> {
    let now = now_ms();
    let (healthy, degraded) = match svc.ready().await {
        Ok(d) => (true, d.into_iter().map(String::from).collect()),
        Err(_) => (false, Vec::new()),
    };
    let models: Vec<String> = crate::proxy::group_pricing(svc, group)
        .data
        .into_iter()
        .map(|m| m.model)
        .collect();
    let (hours, last_hour) = if healthy {
        let first = repo::hour_of(now) - 23 * HOUR_MS;
        let end = now + 60_000;
        (
            repo::health(&svc.db, first, end, HOUR_MS).await?,
            repo::health(&svc.db, repo::minute_of(now) - 59 * 60_000, end, i64::MAX).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let models = models
        .into_iter()
        .map(|model| {
            let series: Vec<_> = hours.iter().filter(|(m, _, _)| *m == model).collect();
            let hours = (0..24)
                .map(|n| {
                    let hour = repo::hour_of(now) - (23 - n) * HOUR_MS;
                    let sums = series
                        .iter()
                        .find(|(_, b, _)| *b == hour)
                        .map(|(_, _, s)| *s)
                        .unwrap_or_default();
                    HourHealth {
                        hour,
                        requests: u(sums[0]),
                        failures: u(sums[1]),
                    }
                })
                .collect();
            let day = series.iter().fold([0i64; 5], |mut acc, (_, _, s)| {
                for (a, v) in acc.iter_mut().zip(s) {
                    *a = a.saturating_add(*v);
                }
                acc
            });
            let hour = last_hour
                .iter()
                .find(|(m, _, _)| *m == model)
                .map(|(_, _, s)| *s)
                .unwrap_or_default();
            let hour = figures(hour);
            ModelStatus {
                state: ModelState::of(&hour),
                model,
                hour,
                day: figures(day),
                hours,
            }
        })
        .collect();
    Ok(ServiceStatus {
        healthy,
        degraded,
        checked_at: now,
        models,
    })
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Sums (requests, failures, latency, ttft, ttft count) as figures with means.
fn figures([requests, failures, latency, ttft, ttft_count]: [i64; 5]) -> HealthFigures {
    let answered = requests - failures;
    HealthFigures {
        requests: u(requests),
        failures: u(failures),
        avg_latency_ms: (answered > 0).then(|| u(latency / answered)),
        avg_ttft_ms: (ttft_count > 0).then(|| u(ttft / ttft_count)),
    }
}

/// Removes the minutes older than the retention; how many went.
pub async fn purge_health(svc: &Services) -> Result<u64, Error> {
    Ok(repo::purge_health(&svc.db, now_ms() - HEALTH_RETENTION_MS).await?)
}
