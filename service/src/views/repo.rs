//! The overview's SQL: minute and hour aggregates, read whole.

use crate::Error;
use crate::db::Db;
use sqlx::Row as _;
use types::{Credits, TopItem};

fn count(r: &sqlx::any::AnyRow, col: &str) -> Result<u64, Error> {
    Ok(u64::try_from(r.try_get::<i64, _>(col)?).unwrap_or(0))
}

/// Requests and failures per minute since `first` (the model health minutes, all models).
pub(super) async fn minutes_since(db: &Db, first: i64) -> Result<Vec<(i64, u64, u64)>, Error> {
    let rows = sqlx::query(&db.sql(
        "SELECT minute, CAST(SUM(requests) AS BIGINT) AS requests, \
         CAST(SUM(failures) AS BIGINT) AS failures FROM model_health \
         WHERE minute >= $1 GROUP BY minute",
    ))
    .bind(first)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("minute")?,
                count(r, "requests")?,
                count(r, "failures")?,
            ))
        })
        .collect()
}

async fn top(db: &Db, sql: &'static str, since: i64) -> Result<Vec<TopItem>, Error> {
    let rows = sqlx::query(&db.sql(sql))
        .bind(since)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TopItem {
                name: r.try_get("name")?,
                cost: Credits::from_units(r.try_get("cost")?),
                requests: count(r, "requests")?,
            })
        })
        .collect()
}

/// The five models that cost most since `since` (an hour boundary).
pub(super) async fn top_models_since(db: &Db, since: i64) -> Result<Vec<TopItem>, Error> {
    top(
        db,
        "SELECT model AS name, CAST(SUM(cost) AS BIGINT) AS cost, \
         CAST(SUM(requests) AS BIGINT) AS requests FROM usage_hourly WHERE hour >= $1 \
         GROUP BY model ORDER BY 2 DESC, 1 LIMIT 5",
        since,
    )
    .await
}

/// The five users who spent most since `since`.
pub(super) async fn top_users_since(db: &Db, since: i64) -> Result<Vec<TopItem>, Error> {
    top(
        db,
        "SELECT u.username AS name, CAST(SUM(h.cost) AS BIGINT) AS cost, \
         CAST(SUM(h.requests) AS BIGINT) AS requests FROM usage_hourly h \
         JOIN users u ON u.id = h.user_id WHERE h.hour >= $1 \
         GROUP BY u.username ORDER BY 2 DESC, 1 LIMIT 5",
        since,
    )
    .await
}

/// Cost (units) and requests since `since`.
pub(super) async fn totals_since(db: &Db, since: i64) -> Result<(i64, u64), Error> {
    let r = sqlx::query(&db.sql(
        "SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) AS cost, \
         CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests FROM usage_hourly WHERE hour >= $1",
    ))
    .bind(since)
    .fetch_one(db.pool())
    .await?;
    Ok((r.try_get("cost")?, count(&r, "requests")?))
}
