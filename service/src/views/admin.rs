//! Administrators' read models: pages that gather what several domains know (the overview, a
//! user's detail). They sit above the domains and read them; no domain reads them.
//!
//! The overview: the last hour's calls per minute (from the model health minutes), today's
//! spend and its top models and users (from the hourly aggregates, so it stays fast whatever
//! the size of the call log), the channels' health, and the latest admin actions.

use super::repo;
use crate::actor::Actor;
use crate::usage::repo::minute_of;
use crate::{Error, Services, now_ms};
use types::{AdminOverview, AuditQuery, ChannelGlance, Credits, MinutePoint};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

pub async fn overview(svc: &Services, actor: &Actor) -> Result<AdminOverview, Error> {
    actor.require_admin()?;
    let now = now_ms();
    let last = minute_of(now);
    let first = last - 59 * MINUTE_MS;
    let rows = repo::minutes_since(&svc.db, first).await?;
    let mut minutes: Vec<MinutePoint> = (0..60)
        .map(|i| MinutePoint {
            minute: first + i * MINUTE_MS,
            requests: 0,
            failures: 0,
        })
        .collect();
    for (minute, requests, failures) in rows {
        let i = (minute - first) / MINUTE_MS;
        if let Some(p) = usize::try_from(i).ok().and_then(|i| minutes.get_mut(i)) {
            p.requests = requests;
            p.failures = failures;
        }
    }
    let today = now - now.rem_euclid(DAY_MS);
    let top_models = repo::top_models_since(&svc.db, today).await?;
    let top_users = repo::top_users_since(&svc.db, today).await?;
    let (spend_today, requests_today) = repo::totals_since(&svc.db, today).await?;
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
        &svc.db,
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
        spend_today: Credits::from_units(spend_today),
        requests_today,
        top_models,
        top_users,
        channels,
        recent,
    })
}

/// One user as an administrator sees them (see [`types::UserDetail`]): the same reads as the
/// admin API's user, keys, usage and ledger routes; `ledger` pages the ledger.
pub async fn user_detail(
    svc: &Services,
    actor: &Actor,
    id: i64,
    ledger: &types::LedgerQuery,
) -> Result<types::UserDetail, Error> {
    let user = crate::accounts::get_user(svc, actor, id).await?;
    let keys = crate::keys::list(svc, actor, Some(id)).await?;
    let today = now_ms().div_euclid(86_400_000);
    let range = types::UsageQuery {
        from: Some(types::date::format_day(today - 29)),
        to: Some(types::date::format_day(today)),
        by: Some("model".into()),
        utc_offset_minutes: None,
    };
    let usage = crate::usage::daily(svc, id, &range).await?;
    // The user exists and the actor is an administrator (get_user): the ledger page itself.
    let ledger = crate::usage::my_ledger(svc, id, ledger).await?;
    Ok(types::UserDetail {
        user,
        keys,
        today: types::date::format_day(today),
        usage,
        ledger,
    })
}
