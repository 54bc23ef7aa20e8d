//! Channels: the upstreams, as administrators list, write, delete, watch and test them.

use super::reload;
use crate::actor::Actor;
use crate::audit::snapshot;
use crate::routing::{ChannelInput, ChannelView, repo};
use crate::{Error, Services};

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
        &svc.db,
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
        &svc.db,
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
    let probes = crate::jobs::probe::latest_probes(svc).await?;
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

/// Sends a tiny live request through a channel in its protocol (see `jobs::probe`) for its first
/// model, or `model` when given, with `max_tokens: 1`, and tells what happened; the answer
/// counts toward the channel's health and circuit like any other. Nothing is charged or logged
/// as a call.
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
    let test = crate::jobs::probe::probe_channel(ch, &model).await;
    if test.ok {
        svc.routing.succeeded(ch);
    } else {
        svc.routing.failed(ch, None);
    }
    tracing::info!(channel.id = id, model = %model, ok = test.ok, status = ?test.status, latency_ms = test.latency_ms, "channel tested");
    Ok(test)
}
