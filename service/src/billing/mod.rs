//! Money: prices, credit grants, charges and balance adjustments. Charging happens here only
//! (called by `proxy`), never in an adapter.

mod account;
pub mod credit;
pub mod price;
pub mod repo;

pub use account::AccountId;
pub use credit::{CreditManager, Reservation};
pub use price::{Price, PriceBook, Quote, Usage};

use crate::accounts::Actor;
use crate::config::{Config, parse_multiplier};
use crate::db::Db;
use crate::keys::KeyAuth;
use crate::{Error, Services};
use types::Credits;

/// The account a key spends from: the user's, held against the key too when it is capped.
pub fn account_for(key: &KeyAuth) -> AccountId {
    AccountId {
        user_id: key.user_id,
        capped_key: key.spend_cap.map(|_| key.id),
    }
}

/// Loads the active prices and the group multipliers (the database's, then the config's).
pub async fn load_prices(db: &Db, config: &Config) -> Result<PriceBook, Error> {
    let mut book = PriceBook::default();
    book.prices.extend(repo::active_prices(db).await?);
    book.multipliers.extend(repo::group_multipliers(db).await?);
    for (group, text) in &config.billing.group_multipliers {
        let m = parse_multiplier(group, text)
            .map_err(|e| Error::invalid("group_multipliers", e.to_string()))?;
        book.multipliers.entry(group.clone()).or_insert(m);
    }
    Ok(book)
}

pub use repo::set_price;

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
