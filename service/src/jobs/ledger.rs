//! The ledger check, two proofs in one job, summed into `tollgate_ledger_drift_units` (which an
//! alert rule watches, and which raises `ledger.drift` when it becomes non-zero and
//! `ledger.agrees` when it is 0 again) and logged per user:
//!
//! - every user's balance against the sum of their ledger's amounts, and what they hold against
//!   the sum of its holds. Every balance change is a ledger row written in the same
//!   transaction, so both must agree at every moment; one statement reads them together (one
//!   snapshot, on either database).
//! - per user and UTC day, the ledger's charges against the costs of the usage rows (the call
//!   logs). Each charge names the day of the calls it pays for (`usage_day`; the credit manager
//!   never mixes days in a batch), so the two agree exactly once everything served is
//!   reported. What may still be on its way (a batch reported within `report_interval_ms` of
//!   its calls, a usage row in a writer's queue) is told apart by reading twice, a moment
//!   apart: only a difference seen both times counts. What differs for good is money served and
//!   not collected (a lease taken over from a paused instance, see *Billing guarantees*), a
//!   call log lost, or a defect.

use super::RunCtx;
use crate::billing::credit::day_of;
use crate::{Services, now_ms};
use std::collections::BTreeMap;
use std::time::Duration;

/// Users (or user days) named in the log per run (the gauge sums them all).
const NAMED: usize = 20;
/// The days compared, today included (earlier days were compared by earlier runs).
const DAYS: i64 = 7;
const DAY_MS: i64 = 86_400_000;

pub async fn run(ctx: &RunCtx) -> anyhow::Result<String> {
    let svc = &ctx.svc;
    let (users, balance_drift) = balances(svc).await?;
    let first = seen(svc).await?;
    let days = if first.is_empty() {
        first
    } else {
        // Whatever is on its way is reported within a report interval; a usage row is written
        // within the writer's linger.
        let wait = Duration::from_millis(svc.config.billing.report_interval_ms)
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        ctx.holding()?;
        let second = seen(svc).await?;
        first
            .into_iter()
            .filter_map(|(k, a)| {
                let b = *second.get(&k)?;
                // The same sign both times: the smaller is what has not moved.
                (a.signum() == b.signum()).then(|| (k, a.signum() * a.abs().min(b.abs())))
            })
            .collect()
    };
    let day_drift = days
        .values()
        .fold(0i64, |acc, d| acc.saturating_add(d.abs()));
    for (i, ((user, day), diff)) in days.iter().enumerate() {
        if i < NAMED {
            tracing::error!(
                user.id = user,
                day = %types::date::format_day(day / DAY_MS),
                charges_less_costs = diff,
                "a day's charges disagree with its usage rows"
            );
        }
    }
    let drift = balance_drift.saturating_add(day_drift);
    svc.metrics.ledger_drift.set(drift);
    let mut found = Vec::new();
    if users > 0 {
        found.push(format!(
            "{users} users' balances or holds differ from their ledgers by {balance_drift} units"
        ));
    }
    if !days.is_empty() {
        found.push(format!(
            "{} user days' charges differ from their usage rows' costs by {day_drift} units",
            days.len()
        ));
    }
    let detail = if found.is_empty() {
        "every balance and hold agrees with its ledger, and every day's charges with its usage rows"
            .to_string()
    } else {
        found.join("; ")
    };
    ctx.holding()?;
    // Drift, or agreement after it: one alert per change (see `alerts`).
    crate::alerts::ledger_checked(svc, drift, &detail).await?;
    Ok(detail)
}

/// Users whose balance or hold differs from their ledger, and by how much in all.
async fn balances(svc: &Services) -> anyhow::Result<(usize, i64)> {
    let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(&svc.db.sql(
        "SELECT u.id, u.balance, u.reserved, \
         CAST(COALESCE(SUM(l.amount), 0) AS BIGINT), CAST(COALESCE(SUM(l.hold), 0) AS BIGINT) \
         FROM users u LEFT JOIN ledger l ON l.user_id = u.id \
         GROUP BY u.id, u.balance, u.reserved \
         HAVING u.balance <> COALESCE(SUM(l.amount), 0) OR u.reserved <> COALESCE(SUM(l.hold), 0)",
    ))
    .fetch_all(svc.db.pool())
    .await?;
    let mut drift: i64 = 0;
    for (i, (user, balance, reserved, amounts, holds)) in rows.iter().enumerate() {
        drift = drift
            .saturating_add((balance - amounts).abs())
            .saturating_add((reserved - holds).abs());
        if i < NAMED {
            tracing::error!(
                user.id = user,
                balance,
                ledger_amounts = amounts,
                reserved,
                ledger_holds = holds,
                "a balance disagrees with its ledger"
            );
        }
    }
    Ok((rows.len(), drift))
}

/// Per user and day compared, charges less usage costs where they differ. A day is compared
/// from its start when the usage rows of all of it are kept (retention) and every charge in it
/// names its day (charges written before `usage_day` existed do not). Calls imported from
/// one-api/new-api (`upstream_kind = 'imported'`) were paid for there. Today is compared only
/// for users without an open credit grant: a grant in use always has some cost still to
/// report (the next run, or the end of the day, compares it).
async fn seen(svc: &Services) -> anyhow::Result<BTreeMap<(i64, i64), i64>> {
    let now = now_ms();
    let kept_from = day_of(now - i64::from(svc.config.retention.usage_days) * DAY_MS) + DAY_MS;
    let unnamed: Option<i64> = sqlx::query_scalar(
        &svc.db
            .sql("SELECT MAX(created_at) FROM ledger WHERE kind = 'charge' AND usage_day IS NULL"),
    )
    .fetch_one(svc.db.pool())
    .await?;
    let from = (day_of(now) - (DAYS - 1) * DAY_MS)
        .max(kept_from)
        .max(unnamed.map_or(i64::MIN, |at| day_of(at) + DAY_MS));
    let charges: Vec<(i64, i64, i64)> = sqlx::query_as(&svc.db.sql(
        "SELECT user_id, usage_day, CAST(SUM(-amount) AS BIGINT) FROM ledger \
         WHERE kind = 'charge' AND usage_day >= $1 GROUP BY user_id, usage_day",
    ))
    .bind(from)
    .fetch_all(svc.db.pool())
    .await?;
    let costs: Vec<(i64, i64, i64)> = sqlx::query_as(&svc.db.sql(
        "SELECT user_id, created_at - created_at % 86400000, CAST(SUM(cost) AS BIGINT) \
         FROM usage_logs WHERE created_at >= $1 AND cost <> 0 \
         AND (upstream_kind IS NULL OR upstream_kind <> 'imported') \
         GROUP BY user_id, created_at - created_at % 86400000",
    ))
    .bind(from)
    .fetch_all(svc.db.pool())
    .await?;
    let mut diff: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for (user, day, charged) in charges {
        *diff.entry((user, day)).or_default() += charged;
    }
    for (user, day, cost) in costs {
        *diff.entry((user, day)).or_default() -= cost;
    }
    let open: Vec<i64> = sqlx::query_scalar(
        &svc.db
            .sql("SELECT DISTINCT user_id FROM credit_grants WHERE status = 'open'"),
    )
    .fetch_all(svc.db.pool())
    .await?;
    let today = day_of(now);
    diff.retain(|(user, day), d| *d != 0 && !(*day >= today && open.contains(user)));
    Ok(diff)
}
