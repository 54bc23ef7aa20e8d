//! SQL for prices (versioned: a change is a new version, the old one kept) and group
//! multipliers.

use crate::billing::price::Price;
use crate::config::{ParsedPrice, Rates, Tier};
use crate::db::{Db, Text};
use crate::{Error, now_ms};
use sqlx::Row as _;

/// Sets a group's multiplier (in thousandths).
pub async fn set_group_multiplier(db: &Db, group: &str, milli: i64) -> Result<(), Error> {
    db.write(
        sqlx::query(
            &db.sql("INSERT INTO group_multipliers (user_group, multiplier_milli, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_group) DO UPDATE SET multiplier_milli = excluded.multiplier_milli, updated_at = excluded.updated_at"),
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
        .write(
            sqlx::query(&db.sql("DELETE FROM group_multipliers WHERE user_group = $1")).bind(group),
        )
        .await?
        > 0)
}

/// Retires a model's active price (its versions stay for the records). False when it had none.
pub async fn deactivate_price(db: &Db, model: &str) -> Result<bool, Error> {
    Ok(db
        .write(
            sqlx::query(&db.sql("UPDATE prices SET active = 0 WHERE model = $1 AND active = 1"))
                .bind(model),
        )
        .await?
        > 0)
}

/// The columns of a price version, in the order [`read`] and [`set_price`] use them.
const COLUMNS: &str = "version, input_per_1m, output_per_1m, cached_input_per_1m, \
     cache_write_5m_per_1m, cache_write_1h_per_1m, reasoning_per_1m, image_input_per_1m, \
     image_output_per_1m, audio_input_per_1m, audio_output_per_1m, per_request, \
     max_output_tokens, tiers";

/// A price version's row.
fn read(r: &sqlx::any::AnyRow) -> Result<Price, Error> {
    let Text(tiers) = r.try_get("tiers")?;
    let tiers: Vec<Tier> = serde_json::from_str(&tiers)
        .map_err(|e| Error::Internal(anyhow::anyhow!("a price's tiers do not read: {e}")))?;
    let max_output: Option<i64> = r.try_get("max_output_tokens")?;
    Ok(Price::new(
        r.try_get("version")?,
        ParsedPrice {
            rates: Rates {
                input_per_1m: r.try_get("input_per_1m")?,
                output_per_1m: r.try_get("output_per_1m")?,
                cached_input_per_1m: r.try_get("cached_input_per_1m")?,
                cache_write_5m_per_1m: r.try_get("cache_write_5m_per_1m")?,
                cache_write_1h_per_1m: r.try_get("cache_write_1h_per_1m")?,
                reasoning_per_1m: r.try_get("reasoning_per_1m")?,
                image_input_per_1m: r.try_get("image_input_per_1m")?,
                image_output_per_1m: r.try_get("image_output_per_1m")?,
                audio_input_per_1m: r.try_get("audio_input_per_1m")?,
                audio_output_per_1m: r.try_get("audio_output_per_1m")?,
            },
            per_request: r.try_get("per_request")?,
            max_output_tokens: max_output.and_then(|m| u64::try_from(m).ok()),
            tiers,
        },
    ))
}

/// The active price of every model.
pub async fn active_prices(db: &Db) -> Result<Vec<(String, Price)>, Error> {
    let rows = sqlx::query(&db.sql(&format!(
        "SELECT model, {COLUMNS} FROM prices WHERE active = 1"
    )))
    .fetch_all(db.pool())
    .await?;
    let mut prices = Vec::with_capacity(rows.len());
    for r in rows {
        prices.push((r.try_get("model")?, read(&r)?));
    }
    Ok(prices)
}

/// A model's price versions, newest first: (price, active, set at).
pub async fn price_history(
    db: &Db,
    model: &str,
    limit: i64,
) -> Result<Vec<(Price, bool, i64)>, Error> {
    let rows = sqlx::query(&db.sql(&format!(
        "SELECT {COLUMNS}, active, created_at FROM prices WHERE model = $1 \
         ORDER BY version DESC LIMIT $2"
    )))
    .bind(model)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push((
            read(&r)?,
            r.try_get::<i64, _>("active")? != 0,
            r.try_get("created_at")?,
        ));
    }
    Ok(out)
}

/// Group multipliers set through the admin API, in thousandths.
pub async fn group_multipliers(db: &Db) -> Result<Vec<(String, i64)>, Error> {
    Ok(
        sqlx::query_as(&db.sql("SELECT user_group, multiplier_milli FROM group_multipliers"))
            .fetch_all(db.pool())
            .await?,
    )
}

/// Sets a model's price: a new version when it differs from the active one.
pub async fn set_price(db: &Db, model: &str, p: &ParsedPrice) -> Result<i64, Error> {
    let mut tx = db.begin_write().await?;
    let current = sqlx::query(&db.sql(&format!(
        "SELECT {COLUMNS} FROM prices WHERE model = $1 AND active = 1"
    )))
    .bind(model)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = current {
        let price = read(&row)?;
        if *price.spec == *p {
            tx.rollback().await?;
            return Ok(price.version);
        }
    }
    let next: i64 = sqlx::query_scalar(
        &db.sql("SELECT COALESCE(MAX(version), 0) + 1 FROM prices WHERE model = $1"),
    )
    .bind(model)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(&db.sql("UPDATE prices SET active = 0 WHERE model = $1"))
        .bind(model)
        .execute(&mut *tx)
        .await?;
    let r = &p.rates;
    let tiers = serde_json::to_string(&p.tiers)
        .map_err(|e| Error::Internal(anyhow::anyhow!("a price's tiers do not write: {e}")))?;
    sqlx::query(&db.sql(&format!(
        "INSERT INTO prices (model, {COLUMNS}, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, $16)"
    )))
    .bind(model)
    .bind(next)
    .bind(r.input_per_1m)
    .bind(r.output_per_1m)
    .bind(r.cached_input_per_1m)
    .bind(r.cache_write_5m_per_1m)
    .bind(r.cache_write_1h_per_1m)
    .bind(r.reasoning_per_1m)
    .bind(r.image_input_per_1m)
    .bind(r.image_output_per_1m)
    .bind(r.audio_input_per_1m)
    .bind(r.audio_output_per_1m)
    .bind(p.per_request)
    .bind(
        p.max_output_tokens
            .map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
    )
    .bind(tiers)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(next)
}
