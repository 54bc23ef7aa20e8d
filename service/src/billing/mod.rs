//! Money: prices, credit grants, charges and balance adjustments. Charging happens here only
//! (called by `proxy`), never in an adapter.

mod account;
pub mod credit;
pub mod price;
pub mod repo;
pub mod statement;

pub use account::AccountId;
pub use credit::{CreditManager, Reservation};
pub use price::{Price, PriceBook, Quote, Usage};

use crate::accounts::Actor;
use crate::audit::snapshot;
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
    for (group, milli) in repo::group_multipliers(db).await? {
        book.from_database.insert(group.clone());
        book.multipliers.insert(group, milli);
    }
    for (group, text) in &config.billing.group_multipliers {
        let m = parse_multiplier(group, text)
            .map_err(|e| Error::invalid("group_multipliers", e.to_string()))?;
        book.multipliers.entry(group.clone()).or_insert(m);
    }
    Ok(book)
}

pub use repo::{price_history, set_price};

/// An administrator adds (or removes, with a negative amount) money, with a reason.
pub async fn adjust_balance(
    svc: &Services,
    actor: &Actor,
    user_id: i64,
    amount: &str,
    reason: &str,
) -> Result<Credits, Error> {
    actor.require_admin()?;
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
    let balance = Credits::from_units(balance);
    let before = Credits::from_units(balance.units() - amount.units());
    crate::audit::record(
        svc,
        actor,
        "balance.adjust",
        format!("user:{user_id}"),
        snapshot(&serde_json::json!({ "balance": before.to_usd_string() })),
        snapshot(&serde_json::json!({
            "balance": balance.to_usd_string(),
            "amount": amount.to_usd_string(),
            "reason": reason,
        })),
    )
    .await;
    Ok(balance)
}

/// Every group with a multiplier: those set through the API, then the config's (which the
/// API's override).
pub fn groups(svc: &Services, actor: &Actor) -> Result<Vec<types::GroupView>, Error> {
    actor.require_admin()?;
    let book = svc.prices();
    let mut out: Vec<types::GroupView> = book
        .multipliers
        .iter()
        .map(|(name, milli)| types::GroupView {
            name: name.clone(),
            multiplier: multiplier_text(*milli),
            source: if book.from_database.contains(name) {
                "database".into()
            } else {
                "config".into()
            },
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A multiplier in thousandths as a decimal string: 1500 -> "1.5".
pub fn multiplier_text(milli: i64) -> String {
    let t = Credits::from_units(milli.saturating_mul(1000)).to_usd_string();
    match t.strip_suffix(".00") {
        Some(whole) => whole.to_string(),
        None => t.trim_end_matches('0').to_string(),
    }
}

/// A group name: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn check_group(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::invalid(
            "group",
            "must be 1 to 64 letters, digits, -, _ or .",
        ));
    }
    Ok(())
}

/// Sets a group's multiplier (a decimal string, at most 3 decimals, at most 1000); the next
/// request of a user in the group is charged with it, on every instance.
pub async fn set_group(
    svc: &Services,
    actor: &Actor,
    name: &str,
    multiplier: &str,
) -> Result<types::GroupView, Error> {
    actor.require_admin()?;
    check_group(name)?;
    let milli = parse_multiplier("multiplier", multiplier)
        .map_err(|e| Error::invalid("multiplier", e.message))?;
    if milli > 1_000_000 {
        return Err(Error::invalid("multiplier", "must be at most 1000"));
    }
    let before = svc
        .prices()
        .multipliers
        .get(name)
        .map(|m| multiplier_text(*m));
    repo::set_group_multiplier(&svc.db, name, milli).await?;
    crate::catalog::reload(svc).await?;
    crate::audit::record(
        svc,
        actor,
        "group.set",
        format!("group:{name}"),
        before.map(|m| serde_json::json!({ "multiplier": m }).to_string()),
        snapshot(&serde_json::json!({ "multiplier": multiplier_text(milli) })),
    )
    .await;
    tracing::info!(
        group = name,
        multiplier_milli = milli,
        "group multiplier set"
    );
    Ok(types::GroupView {
        name: name.to_string(),
        multiplier: multiplier_text(milli),
        source: "database".into(),
    })
}

/// Removes a group's multiplier set through the API (the config's, if any, applies again).
pub async fn delete_group(svc: &Services, actor: &Actor, name: &str) -> Result<(), Error> {
    actor.require_admin()?;
    let before = svc
        .prices()
        .multipliers
        .get(name)
        .map(|m| multiplier_text(*m));
    if !repo::delete_group_multiplier(&svc.db, name).await? {
        return Err(Error::NotFound("group"));
    }
    crate::catalog::reload(svc).await?;
    crate::audit::record(
        svc,
        actor,
        "group.delete",
        format!("group:{name}"),
        before.map(|m| serde_json::json!({ "multiplier": m }).to_string()),
        None,
    )
    .await;
    tracing::info!(group = name, "group multiplier removed");
    Ok(())
}
