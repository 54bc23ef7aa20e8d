//! SQL for prices (versioned: a change is a new version, the old one kept) and group
//! multipliers.

use crate::billing::price::Price;
use crate::db::Db;
use crate::{Error, now_ms};
use sqlx::Row as _;

/// Sets a group's multiplier (in thousandths).
pub async fn set_group_multiplier(db: &Db, group: &str, milli: i64) -> Result<(), Error> {
    db.write(
        sqlx::query(
            "INSERT INTO group_multipliers (user_group, multiplier_milli, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_group) DO UPDATE SET multiplier_milli = excluded.multiplier_milli, updated_at = excluded.updated_at",
        )
        .bind(group)
        .bind(milli)
        .bind(now_ms()),
    )
    .await?;
    Ok(())
}

/// Removes a group's multiplier; false when it had none.
pub async fn delete_group_multiplier(db: &Db, group: &str) -> Result<bool, Error> {
    Ok(db
        .write(sqlx::query("DELETE FROM group_multipliers WHERE user_group = $1").bind(group))
        .await?
        > 0)
}

/// Retires a model's active price (its versions stay for the records). False when it had none.
pub async fn deactivate_price(db: &Db, model: &str) -> Result<bool, Error> {
    Ok(db
        .write(
            sqlx::query("UPDATE prices SET active = 0 WHERE model = $1 AND active = 1").bind(model),
        )
        .await?
        > 0)
}

/// The active price of every model.
pub async fn active_prices(db: &Db) -> Result<Vec<(String, Price)>, Error> {
    let rows = sqlx::query(
        "SELECT model, version, input_per_1m, output_per_1m, cached_input_per_1m, per_request FROM prices WHERE active = 1",
    )
    .fetch_all(db.pool())
    .await?;
    let mut prices = Vec::with_capacity(rows.len());
    for r in rows {
        prices.push((
            r.try_get("model")?,
            Price {
                version: r.try_get("version")?,
                input_per_1m: r.try_get("input_per_1m")?,
                output_per_1m: r.try_get("output_per_1m")?,
                cached_input_per_1m: r.try_get("cached_input_per_1m")?,
                per_request: r.try_get("per_request")?,
            },
        ));
    }
    Ok(prices)
}

/// A model's price versions, newest first: (price, active, set at).
pub async fn price_history(
    db: &Db,
    model: &str,
    limit: i64,
) -> Result<Vec<(i64, Price, bool, i64)>, Error> {
    let rows = sqlx::query(
        "SELECT version, input_per_1m, output_per_1m, cached_input_per_1m, per_request, active, \
         created_at FROM prices WHERE model = $1 ORDER BY version DESC LIMIT $2",
    )
    .bind(model)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let version: i64 = r.try_get("version")?;
        out.push((
            version,
            Price {
                version,
                input_per_1m: r.try_get("input_per_1m")?,
                output_per_1m: r.try_get("output_per_1m")?,
                cached_input_per_1m: r.try_get("cached_input_per_1m")?,
                per_request: r.try_get("per_request")?,
            },
            r.try_get::<i64, _>("active")? != 0,
            r.try_get("created_at")?,
        ));
    }
    Ok(out)
}

/// Group multipliers set through the admin API, in thousandths.
pub async fn group_multipliers(db: &Db) -> Result<Vec<(String, i64)>, Error> {
    Ok(
        sqlx::query_as("SELECT user_group, multiplier_milli FROM group_multipliers")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Sets a model's price: a new version when it differs from the active one.
pub async fn set_price(db: &Db, model: &str, p: &crate::config::ParsedPrice) -> Result<i64, Error> {
    let mut tx = db.begin_write().await?;
    let current: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT version, input_per_1m, output_per_1m, cached_input_per_1m, per_request FROM prices WHERE model = $1 AND active = 1",
    )
    .bind(model)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((v, i, o, c, r)) = current
        && (i, o, c, r)
            == (
                p.input_per_1m,
                p.output_per_1m,
                p.cached_input_per_1m,
                p.per_request,
            )
    {
        tx.rollback().await?;
        return Ok(v);
    }
    let next: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM prices WHERE model = $1")
            .bind(model)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query("UPDATE prices SET active = 0 WHERE model = $1")
        .bind(model)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO prices (model, version, input_per_1m, output_per_1m, cached_input_per_1m, per_request, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
    )
    .bind(model)
    .bind(next)
    .bind(p.input_per_1m)
    .bind(p.output_per_1m)
    .bind(p.cached_input_per_1m)
    .bind(p.per_request)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(next)
}
