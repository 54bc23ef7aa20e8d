//! Money: prices, credit grants, charges and balance adjustments. Charging happens here only
//! (called by `proxy`), never in an adapter.

mod account;
pub mod credit;
pub mod price;
pub mod repo;
pub mod statement;

pub use account::AccountId;
pub use credit::{CreditManager, Reservation};
pub use price::{Price, PriceBook, Quote, Usage, check_group, multiplier_text};

use crate::actor::Actor;
use crate::audit::snapshot;
use crate::keys::auth::KeyAuth;
use crate::state::Background;
use crate::{Error, Services};
use types::Credits;

/// The account a key spends from: the user's, held against the key too when it is capped.
pub fn account_for(key: &KeyAuth) -> AccountId {
    AccountId {
        user_id: key.user_id,
        capped_key: key.spend_cap.map(|_| key.id),
    }
}

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
        &svc.db,
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

/// Starts the credit reporter: it reports spend and renews grants every
/// `billing.report_interval_ms`, and at stop reports the last of it and closes the grants.
pub fn start(svc: &Services, bg: &mut Background) {
    let every = std::time::Duration::from_millis(svc.config.billing.report_interval_ms);
    let stop = bg.stopped();
    bg.spawn(svc.credit.clone().run(every, stop));
}
