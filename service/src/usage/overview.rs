//! The admin overview: the last hour's calls per minute (from the model health minutes), today's
//! spend and its top models and users (from the hourly aggregates, so it stays fast whatever
//! the size of the call log), the channels' health, and the latest admin actions.

use super::repo::minute_of;
use crate::accounts::Actor;
use crate::{Error, Services, now_ms};
use sqlx::Row as _;
use types::{AdminOverview, AuditQuery, ChannelGlance, Credits, MinutePoint, TopItem};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

pub async fn overview(svc: &Services, actor: &Actor) -> Result<AdminOverview, Error> {
    actor.require_admin()?;
    let now = now_ms();
    let last = minute_of(now);
    let first = last - 59 * MINUTE_MS;
    let rows = sqlx::query(
        "SELECT minute, CAST(SUM(requests) AS BIGINT) AS requests, \
         CAST(SUM(failures) AS BIGINT) AS failures FROM model_health \
         WHERE minute >= $1 GROUP BY minute",
    )
    .bind(first)
    .fetch_all(svc.db.pool())
    .await?;
    let mut minutes: Vec<MinutePoint> = (0..60)
        .map(|i| MinutePoint {
            minute: first + i * MINUTE_MS,
            requests: 0,
            failures: 0,
        })
        .collect();
    for r in rows {
        let minute: i64 = r.try_get("minute")?;
        let i = (minute - first) / MINUTE_MS;
        if let Some(p) = usize::try_from(i).ok().and_then(|i| minutes.get_mut(i)) {
            p.requests = u64::try_from(r.try_get::<i64, _>("requests")?).unwrap_or(0);
            p.failures = u64::try_from(r.try_get::<i64, _>("failures")?).unwrap_or(0);
        }
    }
    let today = now - now.rem_euclid(DAY_MS);
    let top = |sql: &'static str| async move {
        let rows = sqlx::query(sql)
            .bind(today)
            .fetch_all(svc.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TopItem {
                    name: r.try_get("name")?,
                    cost: Credits::from_units(r.try_get("cost")?),
                    requests: u64::try_from(r.try_get::<i64, _>("requests")?).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, Error>>()
    };
    let top_models = top("SELECT model AS name, CAST(SUM(cost) AS BIGINT) AS cost, \
         CAST(SUM(requests) AS BIGINT) AS requests FROM usage_hourly WHERE hour >= $1 \
         GROUP BY model ORDER BY 2 DESC, 1 LIMIT 5")
    .await?;
    let top_users = top(
        "SELECT u.username AS name, CAST(SUM(h.cost) AS BIGINT) AS cost, \
         CAST(SUM(h.requests) AS BIGINT) AS requests FROM usage_hourly h \
         JOIN users u ON u.id = h.user_id WHERE h.hour >= $1 \
         GROUP BY u.username ORDER BY 2 DESC, 1 LIMIT 5",
    )
    .await?;
    let totals = sqlx::query(
        "SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) AS cost, \
         CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests FROM usage_hourly WHERE hour >= $1",
    )
    .bind(today)
    .fetch_one(svc.db.pool())
    .await?;
    let channels = crate::catalog::list_channels(svc, actor)
        .await?
        .into_iter()
        .map(|c| ChannelGlance {
            health: svc.routing.health_of(c.id).view(c.id),
            id: c.id,
            name: c.name,
            enabled: c.enabled,
        })
        .collect();
    let recent = crate::audit::list(
        svc,
        actor,
        &AuditQuery {
            limit: Some("8".into()),
            ..Default::default()
        },
    )
    .await?
    .data;
    Ok(AdminOverview {
        minutes,
        spend_today: Credits::from_units(totals.try_get("cost")?),
        requests_today: u64::try_from(totals.try_get::<i64, _>("requests")?).unwrap_or(0),
        top_models,
        top_users,
        channels,
        recent,
    })
}
