//! What the gateway sells and where it sends it: channels, model mappings and prices. Declared in
//! the config (applied at every start), editable by administrators at runtime; every change
//! swaps the in-memory routing table or price book at once.

use crate::accounts::Actor;
use crate::audit::snapshot;
use crate::billing::{self, PriceBook};
use crate::config::{ParsedPrice, PriceConfig};
use crate::routing::{ChannelInput, ChannelView, repo};
use crate::{Error, Services};
use std::collections::BTreeMap;
use types::Credits;

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
        if billing::set_price(&svc.db, model, parsed).await.is_err() {
            billing::set_price(&svc.db, model, parsed).await?;
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
pub async fn follow_changes(svc: Services, every: std::time::Duration) {
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
        if let Err(e) = crate::jobs::apply_probes(&svc, &mut probes_seen).await {
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
    let book: PriceBook = billing::load_prices(&svc.db, &svc.config).await?;
    svc.set_prices(book);
    Ok(())
}

pub async fn list_channels(svc: &Services, actor: &Actor) -> Result<Vec<ChannelView>, Error> {
    actor.require_admin()?;
    repo::list(&svc.db).await
}

pub async fn save_channel(
    svc: &Services,
    actor: &Actor,
    id: Option<i64>,
    input: ChannelInput,
) -> Result<ChannelView, Error> {
    actor.require_admin()?;
    input.validate(svc.config.gateway.allow_metadata_upstreams)?;
    let before = match id {
        Some(id) => repo::get(&svc.db, id).await?,
        None => None,
    };
    let id = repo::upsert(&svc.db, id, &input).await?;
    reload(svc).await?;
    tracing::info!(channel.id = id, channel = %input.name, "channel saved");
    let after = repo::get(&svc.db, id)
        .await?
        .ok_or(Error::NotFound("channel"))?;
    let action = if before.is_some() {
        "channel.update"
    } else {
        "channel.create"
    };
    crate::audit::record(
        svc,
        actor,
        action,
        format!("channel:{id}"),
        before.as_ref().and_then(snapshot),
        snapshot(&after),
    )
    .await;
    Ok(after)
}

pub async fn delete_channel(svc: &Services, actor: &Actor, id: i64) -> Result<(), Error> {
    actor.require_admin()?;
    let before = repo::get(&svc.db, id).await?;
    if !repo::delete(&svc.db, id).await? {
        return Err(Error::NotFound("channel"));
    }
    reload(svc).await?;
    crate::audit::record(
        svc,
        actor,
        "channel.delete",
        format!("channel:{id}"),
        before.as_ref().and_then(snapshot),
        None,
    )
    .await;
    Ok(())
}

/// Each channel's health as this instance has seen it (the last hour, and its circuit).
pub async fn channel_health(
    svc: &Services,
    actor: &Actor,
) -> Result<Vec<types::ChannelHealth>, Error> {
    actor.require_admin()?;
    let probes = crate::jobs::latest_probes(svc).await?;
    Ok(svc
        .routing
        .snapshot()
        .channels
        .iter()
        .map(|c| {
            let mut view = c.health.view(c.id);
            view.last_probe = probes.get(&c.id).cloned();
            view
        })
        .collect())
}

/// Sends a tiny live request through a channel (a chat completion of its first model, or
/// `model` when given, with `max_tokens: 1`) and tells what happened; the answer counts toward
/// the channel's health and circuit like any other. Nothing is charged or logged as a call.
pub async fn test_channel(
    svc: &Services,
    actor: &Actor,
    id: i64,
    model: Option<&str>,
) -> Result<types::ChannelTest, Error> {
    actor.require_admin()?;
    let table = svc.routing.snapshot();
    let ch = table
        .channels
        .iter()
        .find(|c| c.id == id)
        .ok_or(Error::NotFound("channel"))?;
    let model = match model.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => ch.models.first().cloned().ok_or(Error::invalid(
            "model",
            "the channel serves no model: name one to test",
        ))?,
    };
    Error::check_text("model", &model, 256)?;
    let test = crate::jobs::probe_channel(ch, &model).await;
    if test.ok {
        svc.routing.succeeded(ch);
    } else {
        svc.routing.failed(ch, None);
    }
    tracing::info!(channel.id = id, model = %model, ok = test.ok, status = ?test.status, latency_ms = test.latency_ms, "channel tested");
    Ok(test)
}

pub use types::{Mapping, PriceView};

pub async fn list_mappings(svc: &Services, actor: &Actor) -> Result<Vec<Mapping>, Error> {
    actor.require_admin()?;
    Ok(repo::mappings(&svc.db)
        .await?
        .into_iter()
        .map(|(model, targets)| Mapping { model, targets })
        .collect())
}

pub async fn set_mapping(
    svc: &Services,
    actor: &Actor,
    model: &str,
    targets: Vec<String>,
) -> Result<Mapping, Error> {
    actor.require_admin()?;
    Error::check_text("model", model, 256)?;
    if targets.is_empty() {
        return Err(Error::invalid(
            "targets",
            "must list at least one upstream model name",
        ));
    }
    for t in &targets {
        Error::check_text("targets", t, 256)?;
    }
    let before = repo::mappings(&svc.db)
        .await?
        .into_iter()
        .find(|(m, _)| m == model)
        .map(|(model, targets)| Mapping { model, targets });
    repo::set_mapping(&svc.db, model, &targets).await?;
    reload(svc).await?;
    let after = Mapping {
        model: model.to_string(),
        targets,
    };
    crate::audit::record(
        svc,
        actor,
        "mapping.set",
        format!("mapping:{model}"),
        before.as_ref().and_then(snapshot),
        snapshot(&after),
    )
    .await;
    Ok(after)
}

pub async fn delete_mapping(svc: &Services, actor: &Actor, model: &str) -> Result<(), Error> {
    actor.require_admin()?;
    let before = repo::mappings(&svc.db)
        .await?
        .into_iter()
        .find(|(m, _)| m == model)
        .map(|(model, targets)| Mapping { model, targets });
    if !repo::delete_mapping(&svc.db, model).await? {
        return Err(Error::NotFound("mapping"));
    }
    reload(svc).await?;
    crate::audit::record(
        svc,
        actor,
        "mapping.delete",
        format!("mapping:{model}"),
        before.as_ref().and_then(snapshot),
        None,
    )
    .await;
    Ok(())
}

pub async fn list_prices(svc: &Services) -> Result<Vec<PriceView>, Error> {
    let book = svc.prices();
    let sorted: BTreeMap<&String, &billing::Price> = book.prices.iter().collect();
    Ok(sorted
        .into_iter()
        .map(|(m, p)| PriceView {
            model: m.clone(),
            version: p.version,
            input_per_1m: Credits::from_units(p.input_per_1m),
            output_per_1m: Credits::from_units(p.output_per_1m),
            cached_input_per_1m: Credits::from_units(p.cached_input_per_1m),
            per_request: Credits::from_units(p.per_request),
        })
        .collect())
}

/// How many versions of a price the history shows.
const PRICE_HISTORY: i64 = 100;

/// A model's price versions, newest first (the last [`PRICE_HISTORY`]), for administrators.
pub async fn price_history(
    svc: &Services,
    actor: &Actor,
    model: &str,
) -> Result<Vec<types::PriceVersion>, Error> {
    actor.require_admin()?;
    Error::check_text("model", model, 256)?;
    let rows = billing::price_history(&svc.db, model, PRICE_HISTORY).await?;
    if rows.is_empty() {
        return Err(Error::NotFound("price"));
    }
    Ok(rows
        .into_iter()
        .map(|(version, p, active, created_at)| types::PriceVersion {
            price: PriceView {
                model: model.to_string(),
                version,
                input_per_1m: Credits::from_units(p.input_per_1m),
                output_per_1m: Credits::from_units(p.output_per_1m),
                cached_input_per_1m: Credits::from_units(p.cached_input_per_1m),
                per_request: Credits::from_units(p.per_request),
            },
            active,
            created_at,
        })
        .collect())
}

pub async fn set_price(
    svc: &Services,
    actor: &Actor,
    model: &str,
    price: PriceConfig,
) -> Result<PriceView, Error> {
    actor.require_admin()?;
    Error::check_text("model", model, 256)?;
    let parsed: ParsedPrice = price.parse(model).map_err(|e| {
        let field = [
            "input_per_1m",
            "output_per_1m",
            "cached_input_per_1m",
            "per_request",
        ]
        .into_iter()
        .find(|f| e.key.ends_with(f))
        .unwrap_or("price");
        Error::invalid(field, e.message)
    })?;
    let before = price_of(svc, model).await?;
    billing::set_price(&svc.db, model, &parsed).await?;
    reload(svc).await?;
    let after = price_of(svc, model)
        .await?
        .ok_or(Error::NotFound("price"))?;
    crate::audit::record(
        svc,
        actor,
        "price.set",
        format!("price:{model}"),
        before.as_ref().and_then(snapshot),
        snapshot(&after),
    )
    .await;
    Ok(after)
}

async fn price_of(svc: &Services, model: &str) -> Result<Option<PriceView>, Error> {
    Ok(list_prices(svc)
        .await?
        .into_iter()
        .find(|p| p.model == model))
}

pub async fn delete_price(svc: &Services, actor: &Actor, model: &str) -> Result<(), Error> {
    actor.require_admin()?;
    let before = price_of(svc, model).await?;
    if !billing::repo::deactivate_price(&svc.db, model).await? {
        return Err(Error::NotFound("price"));
    }
    reload(svc).await?;
    crate::audit::record(
        svc,
        actor,
        "price.delete",
        format!("price:{model}"),
        before.as_ref().and_then(snapshot),
        None,
    )
    .await;
    Ok(())
}
