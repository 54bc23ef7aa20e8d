//! Money: prices, credit grants, charges and balance adjustments. Charging happens here only
//! (called by `proxy`), never in an adapter.

pub mod credit;
pub mod price;
pub mod repo;

pub use credit::{AccountId, CreditManager, Reservation};
pub use price::{Price, PriceBook, Usage};

use crate::accounts::Actor;
use crate::config::{Config, parse_multiplier};
use crate::db::Db;
use crate::keys::KeyAuth;
use crate::{Error, Services, now_ms};
use sqlx::Row as _;
use types::Credits;

/// The account a key spends from: the user's, held against the key too when it is capped.
pub fn account_for(key: &KeyAuth) -> AccountId {
    AccountId {
        user_id: key.user_id,
        capped_key: key.spend_cap.map(|_| key.id),
    }
}

/// Loads the active prices and the group multipliers.
pub async fn load_prices(db: &Db, config: &Config) -> Result<PriceBook, Error> {
    let rows = sqlx::query(
        "SELECT model, version, input_per_1m, output_per_1m, cached_input_per_1m, per_request FROM prices WHERE active = 1",
    )
    .fetch_all(db.pool())
    .await?;
    let mut book = PriceBook::default();
    for r in rows {
        book.prices.insert(
            r.try_get("model")?,
            Price {
                version: r.try_get("version")?,
                input_per_1m: r.try_get("input_per_1m")?,
                output_per_1m: r.try_get("output_per_1m")?,
                cached_input_per_1m: r.try_get("cached_input_per_1m")?,
                per_request: r.try_get("per_request")?,
            },
        );
    }
    let groups: Vec<(String, i64)> =
        sqlx::query_as("SELECT user_group, multiplier_milli FROM group_multipliers")
            .fetch_all(db.pool())
            .await?;
    book.multipliers.extend(groups);
    for (group, text) in &config.billing.group_multipliers {
        let m = parse_multiplier(group, text)
            .map_err(|e| Error::invalid("group_multipliers", e.to_string()))?;
        book.multipliers.entry(group.clone()).or_insert(m);
    }
    Ok(book)
}

/// Sets a model's price: a new version when it differs from the active one.
pub async fn set_price(db: &Db, model: &str, p: &config_price::Parsed) -> Result<i64, Error> {
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

pub mod config_price {
    pub use crate::config::ParsedPrice as Parsed;
}

/// An administrator adds (or removes, with a negative amount) money, with a reason.
pub async fn adjust_balance(
    svc: &Services,
    actor: &Actor,
    user_id: i64,
    amount: &str,
    reason: &str,
) -> Result<Credits, Error> {
    if !actor.is_admin() {
        return Err(Error::Forbidden("administrators only"));
    }
    let amount = Credits::parse_usd(amount).map_err(|e| Error::invalid("amount", e.to_string()))?;
    if amount.units() == 0 {
        return Err(Error::invalid("amount", "must not be zero"));
    }
    let reason = reason.trim();
    Error::check_text("reason", reason, 200)?;
    let balance =
        repo::adjust(&svc.db, user_id, amount.units(), "adjustment", reason, None).await?;
    tracing::info!(
        user.id = user_id,
        amount = amount.units(),
        "balance adjusted"
    );
    Ok(Credits::from_units(balance))
}
