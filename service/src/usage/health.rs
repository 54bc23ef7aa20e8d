//! The status page: the service's checks and, per public model, what the gateway has seen of
//! it (the `model_health` minutes the usage writer keeps) combined with the latest probes of
//! the channels that serve it (see [`types::ModelState`]). Public and so cached: one reading
//! per price group every [`STATUS_TTL`], however often it is asked for.

use super::repo;
use crate::{Error, Services, now_ms};
use std::sync::Arc;
use std::time::Duration;
use types::{
    HealthFigures, HourHealth, ModelState, ModelStatus, ProbeFigures, ServiceStatus, StatusCheck,
};

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
    let ready = svc.ready().await;
    let mut checks = vec![check(
        "database",
        ready.is_ok(),
        true,
        match &ready {
            Ok(_) => "answers".to_string(),
            Err(e) => e.clone(),
        },
    )];
    if let (Some(_), Ok(degraded)) = (&svc.redis, &ready) {
        let down = degraded.contains(&"redis");
        checks.push(check(
            "redis",
            !down,
            false,
            if down {
                "does not answer: limits and caches are kept per instance"
            } else {
                "answers"
            },
        ));
    }
    let (depth, capacity) = (svc.usage.depth(), svc.usage.capacity());
    checks.push(check(
        "usage_writer",
        depth < capacity,
        false,
        format!("{depth} call logs waiting to be written (the queue holds {capacity})"),
    ));
    let models: Vec<String> = crate::proxy::group_pricing(svc, group)
        .data
        .into_iter()
        .map(|m| m.model)
        .collect();
    let (hours, minutes, probes) = if ready.is_ok() {
        let first = repo::hour_of(now) - 23 * HOUR_MS;
        let end = now + 60_000;
        (
            repo::health(&svc.db, first, end, HOUR_MS).await?,
            repo::health(&svc.db, repo::minute_of(now) - 59 * 60_000, end, 60_000).await?,
            crate::routing::repo::probes(&svc.db, now - HOUR_MS).await?,
        )
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    let table = svc.routing.snapshot();
    let models: Vec<ModelStatus> = models
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
            let day = sum(series.iter().map(|(_, _, s)| s));
            let recent: Vec<_> = minutes.iter().filter(|(m, _, _)| *m == model).collect();
            let hour = figures(sum(recent.iter().map(|(_, _, s)| s)));
            let last_call_at = recent
                .iter()
                .filter(|(_, _, s)| s[0] > 0)
                .map(|(_, minute, _)| *minute)
                .max();
            let serving = table.channels_of(&model, group);
            let mut seen = ProbeFigures {
                channels: u32::try_from(serving.len()).unwrap_or(u32::MAX),
                ..ProbeFigures::default()
            };
            for ch in serving {
                if let Some((_, p)) = probes.iter().find(|(id, _)| *id == ch.id) {
                    if p.ok {
                        seen.ok += 1;
                    } else {
                        seen.failing += 1;
                    }
                    seen.at = seen.at.max(Some(p.at));
                }
            }
            ModelStatus {
                state: ModelState::combined(&hour, last_call_at, &seen),
                model,
                hour,
                day: figures(day),
                hours,
                last_call_at,
                probes: seen,
            }
        })
        .collect();
    let down: Vec<&str> = models
        .iter()
        .filter(|m| m.state == ModelState::Down)
        .map(|m| m.model.as_str())
        .collect();
    checks.push(check(
        "models",
        down.is_empty(),
        !models.is_empty() && down.len() == models.len(),
        if down.is_empty() {
            format!("none of {} down", models.len())
        } else {
            format!(
                "{} of {} down: {}",
                down.len(),
                models.len(),
                down.join(", ")
            )
        },
    ));
    Ok(ServiceStatus {
        healthy: checks.iter().all(|c| c.ok || !c.critical),
        degraded: checks
            .iter()
            .filter(|c| !c.ok && !c.critical)
            .map(|c| c.name.clone())
            .collect(),
        checks,
        checked_at: now,
        models,
    })
}

fn check(name: &str, ok: bool, critical: bool, detail: impl Into<String>) -> StatusCheck {
    StatusCheck {
        name: name.to_string(),
        ok,
        critical,
        detail: detail.into(),
    }
}

/// Sums of per-bucket sums.
fn sum<'a>(buckets: impl Iterator<Item = &'a [i64; 5]>) -> [i64; 5] {
    buckets.fold([0i64; 5], |mut acc, s| {
        for (a, v) in acc.iter_mut().zip(s) {
            *a = a.saturating_add(*v);
        }
        acc
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
