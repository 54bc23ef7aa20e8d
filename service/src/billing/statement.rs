//! What chat clients and scripts read of an API key's money: OpenAI's legacy billing
//! endpoints and the credit summary. One rule decides whose money a key shows (its owner's
//! balance, or its own spend cap when that leaves less), and every figure derives from it, so
//! that `hard_limit_usd - total_usage / 100` is what remains, whatever the window.

use crate::keys::auth::KeyAuth;
use crate::usage::repo as usage;
use crate::{Error, Services};
use types::date::parse_day;
use types::{BillingSubscription, BillingUsage, CreditSummary, DailyCost, LineItem};

const DAY_MS: i64 = 86_400_000;

/// Whose spending a key shows, and what remains of it.
struct Standing {
    /// The key whose own usage counts, when its cap is what limits it.
    key_id: Option<i64>,
    remaining: i64,
}

/// Whose spending a key shows and what remains, after the key's billing-read quota.
async fn standing(svc: &Services, key: &KeyAuth) -> Result<Standing, Error> {
    crate::ratelimit::route_quota(
        &svc.limiter,
        "billing",
        key.id,
        svc.config.limits.billing_query_per_minute,
    )
    .await?;
    let balance: Option<i64> = super::repo::balance(&svc.db, key.user_id).await?;
    let balance = balance.ok_or(Error::NotFound("user"))?;
    if key.spend_cap.is_some()
        && let Some(view) = crate::keys::repo::get(&svc.db, key.id).await?
        && let Some(cap) = view.spend_cap
    {
        let left = cap.units().saturating_sub(view.spent.units()).max(0);
        if left < balance {
            return Ok(Standing {
                key_id: Some(key.id),
                remaining: left,
            });
        }
    }
    Ok(Standing {
        key_id: None,
        remaining: balance,
    })
}

fn usd(units: i64) -> f64 {
    units as f64 / 1e6
}

fn cents(units: i64) -> f64 {
    units as f64 / 1e4
}

/// A billing window from `start_date` (inclusive) and `end_date` (exclusive), UTC days, as
/// unix ms; both or neither.
pub fn window(start: Option<&str>, end: Option<&str>) -> Result<Option<(i64, i64)>, Error> {
    let start = start.filter(|s| !s.is_empty());
    let end = end.filter(|s| !s.is_empty());
    let day = |field: &'static str, text: &str| {
        parse_day(text).ok_or_else(|| Error::invalid(field, "must be a date, YYYY-MM-DD"))
    };
    match (start, end) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::invalid("end_date", "required with start_date")),
        (None, Some(_)) => Err(Error::invalid("start_date", "required with end_date")),
        (Some(s), Some(e)) => {
            let (s, e) = (day("start_date", s)?, day("end_date", e)?);
            if e <= s {
                return Err(Error::invalid("end_date", "must be after start_date"));
            }
            if e - s > crate::usage::MAX_DAYS {
                return Err(Error::invalid(
                    "end_date",
                    format!("a window covers at most {} days", crate::usage::MAX_DAYS),
                ));
            }
            Ok(Some((s * DAY_MS, e * DAY_MS)))
        }
    }
}

async fn spent(
    svc: &Services,
    key: &KeyAuth,
    s: &Standing,
    w: Option<(i64, i64)>,
) -> Result<i64, Error> {
    Ok(usage::spent(
        &svc.db,
        key.user_id,
        s.key_id,
        w.map(|w| w.0),
        w.map(|w| w.1),
    )
    .await?)
}

/// `/v1/dashboard/billing/subscription`: the hard limit is what remains plus what the window
/// (lifetime without one) spent.
pub async fn subscription(
    svc: &Services,
    key: &KeyAuth,
    w: Option<(i64, i64)>,
) -> Result<BillingSubscription, Error> {
    let s = standing(svc, key).await?;
    let used = spent(svc, key, &s, w).await?;
    let limit = usd(s.remaining.saturating_add(used));
    Ok(BillingSubscription {
        object: "billing_subscription".into(),
        has_payment_method: true,
        hard_limit_usd: limit,
        soft_limit_usd: limit,
        system_hard_limit_usd: limit,
        access_until: key.expires_at.map_or(0, |ms| ms / 1000),
    })
}

/// `/v1/dashboard/billing/usage`: the window's cost in cents, per day and model; without a
/// window, the lifetime total (and no days).
pub async fn usage(
    svc: &Services,
    key: &KeyAuth,
    w: Option<(i64, i64)>,
) -> Result<BillingUsage, Error> {
    let s = standing(svc, key).await?;
    let Some((from, to)) = w else {
        let used = spent(svc, key, &s, None).await?;
        return Ok(BillingUsage {
            object: "list".into(),
            total_usage: cents(used),
            daily_costs: Vec::new(),
        });
    };
    let rows = usage::daily_costs(&svc.db, key.user_id, s.key_id, from, to).await?;
    let mut total = 0i64;
    let mut days: Vec<DailyCost> = Vec::new();
    for (day, model, cost) in rows {
        total = total.saturating_add(cost);
        let timestamp = (day / 1000) as f64;
        if days.last().is_none_or(|d| d.timestamp != timestamp) {
            days.push(DailyCost {
                timestamp,
                line_items: Vec::new(),
            });
        }
        if let Some(d) = days.last_mut() {
            d.line_items.push(LineItem {
                name: model,
                cost: cents(cost),
            });
        }
    }
    Ok(BillingUsage {
        object: "list".into(),
        total_usage: cents(total),
        daily_costs: days,
    })
}

/// `/v1/credits`: credited (what remains plus what was used), used and remaining, lifetime.
pub async fn credits(svc: &Services, key: &KeyAuth) -> Result<CreditSummary, Error> {
    let s = standing(svc, key).await?;
    let used = spent(svc, key, &s, None).await?;
    Ok(CreditSummary {
        object: "credit_summary".into(),
        total_granted: usd(s.remaining.saturating_add(used)),
        total_used: usd(used),
        total_available: usd(s.remaining),
    })
}
