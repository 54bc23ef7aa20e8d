//! Model mappings, prices and group multipliers, as administrators read and write them.

use super::reload;
use crate::actor::Actor;
use crate::audit::snapshot;
use crate::billing::price::Price;
use crate::config::{ParsedPrice, PriceConfig, parse_multiplier};
use crate::routing::repo;
use crate::{Error, Services};
use std::collections::BTreeMap;
use types::{Mapping, PriceView};

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
        &svc.db,
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
        &svc.db,
        actor,
        "mapping.delete",
        format!("mapping:{model}"),
        before.as_ref().and_then(snapshot),
        None,
    )
    .await;
    Ok(())
}

/// The prices in force, for administrators (`/api/pricing` is the public table).
pub async fn list_prices(svc: &Services, actor: &Actor) -> Result<Vec<PriceView>, Error> {
    actor.require_admin()?;
    Ok(prices_now(svc))
}

fn prices_now(svc: &Services) -> Vec<PriceView> {
    let book = svc.prices();
    let sorted: BTreeMap<&String, &Price> = book.prices.iter().collect();
    sorted.into_iter().map(|(m, p)| p.view(m)).collect()
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
    let rows = crate::billing::repo::price_history(&svc.db, model, PRICE_HISTORY).await?;
    if rows.is_empty() {
        return Err(Error::NotFound("price"));
    }
    Ok(rows
        .into_iter()
        .map(|(p, active, created_at)| types::PriceVersion {
            price: p.view(model),
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
        // The key names the field within the price (`tiers[0].input_per_1m`): a field of the
        // price itself is named as the field; one within a tier as `tiers`, the reason saying
        // where.
        let at = format!("pricing.{model}.");
        let within = e.key.strip_prefix(&at).unwrap_or_default();
        let own = types::PriceRates::default()
            .named()
            .map(|(name, _)| name)
            .into_iter()
            .chain(["per_request", "max_output_tokens", "above_tokens", "tiers"])
            .find(|name| *name == within);
        match own {
            Some(field) => Error::invalid(field, e.message),
            None => Error::invalid("tiers", format!("{within}: {}", e.message)),
        }
    })?;
    let before = price_of(svc, model);
    crate::billing::repo::set_price(&svc.db, model, &parsed).await?;
    reload(svc).await?;
    let after = price_of(svc, model).ok_or(Error::NotFound("price"))?;
    crate::audit::record(
        &svc.db,
        actor,
        "price.set",
        format!("price:{model}"),
        before.as_ref().and_then(snapshot),
        snapshot(&after),
    )
    .await;
    Ok(after)
}

fn price_of(svc: &Services, model: &str) -> Option<PriceView> {
    prices_now(svc).into_iter().find(|p| p.model == model)
}

pub async fn delete_price(svc: &Services, actor: &Actor, model: &str) -> Result<(), Error> {
    actor.require_admin()?;
    let before = price_of(svc, model);
    if !crate::billing::repo::deactivate_price(&svc.db, model).await? {
        return Err(Error::NotFound("price"));
    }
    reload(svc).await?;
    crate::audit::record(
        &svc.db,
        actor,
        "price.delete",
        format!("price:{model}"),
        before.as_ref().and_then(snapshot),
        None,
    )
    .await;
    Ok(())
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
            multiplier: crate::billing::price::multiplier_text(*milli),
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

/// Sets a group's multiplier (a decimal string, at most 3 decimals, at most 1000); the next
/// request of a user in the group is charged with it, on every instance.
pub async fn set_group(
    svc: &Services,
    actor: &Actor,
    name: &str,
    multiplier: &str,
) -> Result<types::GroupView, Error> {
    actor.require_admin()?;
    crate::billing::price::check_group(name)?;
    let milli = parse_multiplier("multiplier", multiplier)
        .map_err(|e| Error::invalid("multiplier", e.message))?;
    if milli > 1_000_000 {
        return Err(Error::invalid("multiplier", "must be at most 1000"));
    }
    let before = svc
        .prices()
        .multipliers
        .get(name)
        .map(|m| crate::billing::price::multiplier_text(*m));
    crate::billing::repo::set_group_multiplier(&svc.db, name, milli).await?;
    reload(svc).await?;
    crate::audit::record(
        &svc.db,
        actor,
        "group.set",
        format!("group:{name}"),
        before.map(|m| serde_json::json!({ "multiplier": m }).to_string()),
        snapshot(
            &serde_json::json!({ "multiplier": crate::billing::price::multiplier_text(milli) }),
        ),
    )
    .await;
    tracing::info!(
        group = name,
        multiplier_milli = milli,
        "group multiplier set"
    );
    Ok(types::GroupView {
        name: name.to_string(),
        multiplier: crate::billing::price::multiplier_text(milli),
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
        .map(|m| crate::billing::price::multiplier_text(*m));
    if !crate::billing::repo::delete_group_multiplier(&svc.db, name).await? {
        return Err(Error::NotFound("group"));
    }
    reload(svc).await?;
    crate::audit::record(
        &svc.db,
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
