//! Channel health: a tiny live request through every enabled channel (its first model,
//! `max_tokens: 1`). A failure opens the channel's circuit for the cooldown, a success closes it;
//! the verdict is stored in `channel_probes`, from which every other instance applies it too
//! (`apply_probes`, polled with the catalog) and the admin console shows it. A channel that goes
//! down, or answers again, raises an alert (`channel.down`, `channel.up`).

use super::RunCtx;
use crate::routing::{Channel, Endpoint};
use crate::{Error, Services, now_ms};
use futures_util::StreamExt as _;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use types::{ChannelKind, ChannelProbe, ChannelTest};

/// Channels probed at once.
const AT_ONCE: usize = 8;

/// One live request through `ch` for `model`, in the protocol of the channel's kind (an
/// embedding for an embedding model); touches nothing but the channel's health figures.
pub async fn probe_channel(ch: &Channel, model: &str) -> ChannelTest {
    // The same small request in either protocol: a chat message, or a Messages call.
    let body = serde_json::json!({
        "model": model,
        "messages": [{ "role": "user", "content": "ping" }],
        "max_tokens": 1,
        "stream": false,
    });
    // An embedding model is probed with an embedding.
    let embedding =
        !matches!(ch.kind, ChannelKind::Anthropic | ChannelKind::Gemini) && model.contains("embed");
    let body = if embedding {
        serde_json::json!({ "model": model, "input": "ping" })
    } else {
        body
    };
    let endpoint = match ch.kind {
        ChannelKind::Anthropic => Endpoint::Messages,
        ChannelKind::Gemini => Endpoint::Chat,
        ChannelKind::OpenAi | ChannelKind::OpenAiCompatible | ChannelKind::Azure if embedding => {
            Endpoint::Embeddings
        }
        ChannelKind::OpenAi | ChannelKind::OpenAiCompatible | ChannelKind::Azure => Endpoint::Chat,
    };
    let wait = ch.first_byte_timeout.min(Duration::from_secs(30));
    let sent = Instant::now();
    // Gemini's protocol under the chat route: the probe's chat request converted.
    let body = match ch.kind {
        ChannelKind::Gemini => {
            crate::proxy::gemini::request(body.to_string().as_bytes()).map(|(b, _)| b)
        }
        _ => Ok(bytes::Bytes::from(body.to_string())),
    };
    let request = body.and_then(|body| {
        Ok(ch
            .upstream
            .post(&ch.client, endpoint, model, false)?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body))
    });
    let answer = match request {
        Ok(request) => tokio::time::timeout(wait, request.send()).await,
        Err(e) => {
            return ChannelTest {
                channel_id: ch.id,
                model: model.to_string(),
                ok: false,
                status: None,
                latency_ms: 0,
                error: Some(e.to_string()),
            };
        }
    };
    let took = sent.elapsed();
    let latency_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let (ok, status, error) = match answer {
        Err(_) => (
            false,
            None,
            Some(format!("no answer within {} ms", wait.as_millis())),
        ),
        Ok(Err(e)) => (false, None, Some(crate::proxy::without_url(&e))),
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                (true, Some(status), None)
            } else {
                // A refusal of the request itself (a model the channel does not know, a field it
                // does not take) comes from a channel that answers: it does not open the
                // circuit, and its text is shown.
                let answered = matches!(status, 400 | 404 | 413 | 422);
                let text = crate::proxy::upstream_message(resp).await;
                (answered, Some(status), Some(text))
            }
        }
    };
    ch.health.record(ok, took);
    ChannelTest {
        channel_id: ch.id,
        model: model.to_string(),
        ok,
        status,
        latency_ms,
        error,
    }
}

pub async fn run(ctx: &RunCtx) -> anyhow::Result<String> {
    let svc = &ctx.svc;
    let table = svc.routing.snapshot();
    let channels: Vec<Arc<Channel>> = table
        .channels
        .iter()
        .filter(|c| c.enabled && !c.models.is_empty())
        .cloned()
        .collect();
    let probes = channels.iter().cloned().map(|ch| async move {
        let model = ch.models[0].clone();
        probe_channel(&ch, &model).await
    });
    let results: Vec<ChannelTest> = futures_util::stream::iter(probes)
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    ctx.holding()?;
    let at = now_ms();
    let mut failing = Vec::new();
    for t in &results {
        crate::routing::repo::record_probe(&svc.db, t, at).await?;
        if let Some(ch) = channels.iter().find(|c| c.id == t.channel_id) {
            svc.routing.probed(ch, t.ok, at);
            if !t.ok {
                failing.push(ch.name.clone());
            }
            // Down, or up again: one alert per change (see `alerts`).
            crate::alerts::channel_probed(svc, ch.id, &ch.name, t.ok, t.error.as_deref()).await?;
        }
    }
    if failing.is_empty() {
        Ok(format!("probed {} channels, all answered", results.len()))
    } else {
        Ok(format!(
            "probed {} channels; failing: {}",
            results.len(),
            failing.join(", ")
        ))
    }
}

/// The latest probe of every channel.
pub async fn latest_probes(svc: &Services) -> Result<HashMap<i64, ChannelProbe>, Error> {
    Ok(crate::routing::repo::probes(&svc.db, i64::MIN)
        .await?
        .into_iter()
        .collect())
}

/// Applies the probes stored after `*seen` (by any instance) to this instance's circuits.
pub async fn apply_probes(svc: &Services, seen: &mut i64) -> Result<(), Error> {
    let probes = crate::routing::repo::probes(&svc.db, *seen).await?;
    if probes.is_empty() {
        return Ok(());
    }
    let table = svc.routing.snapshot();
    for (id, p) in probes {
        *seen = (*seen).max(p.at);
        if let Some(ch) = table.channels.iter().find(|c| c.id == id) {
            svc.routing.probed(ch, p.ok, p.at);
        }
    }
    Ok(())
}
