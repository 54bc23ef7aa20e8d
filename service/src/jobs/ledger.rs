//! The ledger check: every user's balance against the sum of their ledger's amounts, and what
//! they hold against the sum of its holds. Every balance change is a ledger row written in the
//! same transaction, so both must agree at every moment; one statement reads them together (one
//! snapshot, on either database). What differs is logged per user and summed into
//! `tollgate_ledger_drift_units`, which an alert watches.

use super::RunCtx;

/// Users named in the log per run (the gauge sums them all).
const NAMED: usize = 20;

pub async fn run(ctx: &RunCtx) -> anyhow::Result<String> {
    let svc = &ctx.svc;
    let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT u.id, u.balance, u.reserved, \
         CAST(COALESCE(SUM(l.amount), 0) AS BIGINT), CAST(COALESCE(SUM(l.hold), 0) AS BIGINT) \
         FROM users u LEFT JOIN ledger l ON l.user_id = u.id \
         GROUP BY u.id, u.balance, u.reserved \
         HAVING u.balance <> COALESCE(SUM(l.amount), 0) OR u.reserved <> COALESCE(SUM(l.hold), 0)",
    )
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
    svc.metrics.ledger_drift.set(drift);
    Ok(if rows.is_empty() {
        "every balance and hold agrees with its ledger".to_string()
    } else {
        format!(
            "{} users' balances or holds differ from their ledgers by {drift} units in all",
            rows.len()
        )
    })
}
