//! What the gateway sells and where it sends it: channels, model mappings and prices. Declared in
//! the config (applied at every start), editable by administrators at runtime; every change
//! swaps the in-memory routing table or price book at once.

mod channels;
mod prices;

pub use channels::{channel_health, delete_channel, list_channels, save_channel, test_channel};
pub use prices::{
    delete_group, delete_mapping, delete_price, groups, list_mappings, list_prices, price_history,
    set_group, set_mapping, set_price,
};
pub use types::{Mapping, PriceView};

use crate::billing::price::PriceBook;
use crate::config::Config;
use crate::db::Db;
use crate::routing::repo;
use crate::state::Background;
use crate::{Error, Services};

/// Applies the config's channels, mappings and prices to the database, then loads them.
pub async fn sync_from_config(svc: &Services) -> Result<(), Error> {
    let cfg = &svc.config;
    for ch in &cfg.channels {
        repo::upsert(&svc.db, None, ch).await?;
    }
    for (model, targets) in &cfg.model_mapping {
        repo::set_mapping(&svc.db, model, targets).await?;
    }
    let prices = cfg
        .prices()
        .map_err(|e| Error::invalid("pricing", e.to_string()))?;
    for (model, parsed) in prices {
        // Several instances starting at once may race to add the same version: retry once.
        if crate::billing::repo::set_price(&svc.db, model, parsed)
            .await
            .is_err()
        {
            crate::billing::repo::set_price(&svc.db, model, parsed).await?;
        }
    }
    reload(svc).await
}

/// Keeps this instance's routing table and prices in step with changes other instances made:
/// polls the fingerprint every `every` and reloads when it moved. Runs until shutdown.
///
/// The fingerprint is read before the reload it triggers, so a change landing during a reload
/// moves it again for the next poll. There is no baseline at start: the first poll reloads, since
/// a fingerprint read now could already include a change that the table loaded at startup
/// missed, and that change would never be picked up.
async fn follow_changes(svc: Services, every: std::time::Duration) {
    let mut last: Option<Vec<i64>> = None;
    // Channel probes by any instance, applied here too (those still within a cooldown at start).
    let cooldown_ms = i64::try_from(svc.config.gateway.cooldown_seconds)
        .unwrap_or(0)
        .saturating_mul(1000);
    let mut probes_seen = crate::now_ms() - cooldown_ms;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {},
            () = svc.shutdown.wait() => return,
        }
        if let Err(e) = crate::jobs::probe::apply_probes(&svc, &mut probes_seen).await {
            tracing::warn!(error = %e, "reading channel probes failed");
        }
        match repo::fingerprint(&svc.db).await {
            Ok(now) if last.as_ref() != Some(&now) => {
                if let Err(e) = reload(&svc).await {
                    tracing::warn!(error = %e, "reloading channels and prices failed");
                    continue;
                }
                tracing::info!("channels, mappings or prices changed: reloaded");
                last = Some(now);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "checking for catalog changes failed"),
        }
    }
}

/// Reloads the routing table and the price book from the database.
pub async fn reload(svc: &Services) -> Result<(), Error> {
    repo::load(&svc.db, &svc.routing).await?;
    let book: PriceBook = load_prices(&svc.db, &svc.config).await?;
    svc.set_prices(book);
    Ok(())
}

/// Loads the active prices and the group multipliers (the database's, then the config's).
async fn load_prices(db: &Db, config: &Config) -> Result<PriceBook, Error> {
    let mut book = PriceBook::default();
    book.prices
        .extend(crate::billing::repo::active_prices(db).await?);
    for (group, milli) in crate::billing::repo::group_multipliers(db).await? {
        book.from_database.insert(group.clone());
        book.multipliers.insert(group, milli);
    }
    for (group, m) in &config.billing.group_multipliers {
        book.multipliers.entry(group.clone()).or_insert(m.milli());
    }
    Ok(book)
}

/// Starts following other instances' catalog changes (see [`follow_changes`]).
pub fn start(svc: &Services, bg: &mut Background) {
    bg.spawn(follow_changes(svc.clone(), crate::state::CATALOG_POLL));
}
