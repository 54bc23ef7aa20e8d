//! `/v1/messages/count_tokens`: exact through an Anthropic channel of the model, otherwise
//! counted here and marked as an estimate. Free, as Anthropic's is; the key must still be
//! allowed the model, and each call is a request against its requests per minute.

use super::request::{MAX_DEPTH, nests_deeper_than};
use super::{CallContext, UpstreamFailure, upstream_message, without_url};
use crate::routing::{Endpoint, Plan, plan};
use crate::{Error, Services};
use bytes::Bytes;
use serde_json::{Value, json};
use std::time::Duration;

/// A token count: the answer's body, and whether an upstream counted it (or the gateway
/// estimated it).
pub struct TokenCount {
    pub body: Bytes,
    pub exact: bool,
}

pub async fn count_tokens(
    svc: &Services,
    ctx: &CallContext,
    raw: Bytes,
) -> Result<TokenCount, Error> {
    if nests_deeper_than(&raw, MAX_DEPTH) {
        return Err(Error::invalid(
            "body",
            format!("nests arrays and objects more than {MAX_DEPTH} levels deep"),
        ));
    }
    let body = match serde_json::from_slice::<Value>(&raw) {
        Ok(Value::Object(b)) => b,
        Ok(_) => return Err(Error::invalid("body", "must be a JSON object")),
        Err(e) => return Err(Error::invalid("body", format!("invalid JSON: {e}"))),
    };
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() && m.len() <= 256 => m.clone(),
        Some(_) => return Err(Error::invalid("model", "must be a non-empty model name")),
        None => return Err(Error::invalid("model", "is required")),
    };
    match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => {}
        Some(Value::Array(_)) => return Err(Error::invalid("messages", "must not be empty")),
        Some(_) => return Err(Error::invalid("messages", "must be a list")),
        None => return Err(Error::invalid("messages", "is required")),
    }
    tracing::Span::current().record("model", model.as_str());
    if !ctx.key.allows_model(&model) {
        return Err(Error::Forbidden("this API key may not use this model"));
    }
    let candidates = svc.routing.candidates(&model, &ctx.key.user_group)?;
    // A request against the key's requests per minute (no tokens): counting here takes the
    // token-counting thread, which settlements share, so a key cannot flood it.
    let hold = svc.quotas.admit(ctx.key.id, ctx.key.limits, 0).await?;
    let count = count_with(svc, ctx, &model, body, &candidates).await;
    if let Some(h) = hold {
        h.settle(0);
    }
    count
}

async fn count_with(
    svc: &Services,
    ctx: &CallContext,
    model: &str,
    mut body: serde_json::Map<String, Value>,
    candidates: &[crate::routing::Candidate],
) -> Result<TokenCount, Error> {
    let exact = candidates
        .iter()
        .filter(|c| plan(c.channel.kind, Endpoint::CountTokens) == Some(Plan::Native))
        .take(svc.config.gateway.max_attempts as usize);
    for cand in exact {
        let ch = &cand.channel;
        body.insert("model".into(), Value::String(cand.upstream_model.clone()));
        let payload = serde_json::to_vec(&body).map_err(anyhow::Error::from)?;
        let mut req = ch
            .upstream
            .post(
                &ch.client,
                Endpoint::CountTokens,
                &cand.upstream_model,
                false,
            )?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload);
        if !ctx.forward.is_empty() {
            req = req.headers(ctx.forward.clone());
        }
        let wait = ch.first_byte_timeout.min(Duration::from_secs(30));
        let answer = match tokio::time::timeout(wait, req.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(channel = %ch.name, error = %without_url(&e), "token count: upstream unreachable");
                continue;
            }
            Err(_) => {
                tracing::warn!(channel = %ch.name, "token count: upstream timed out");
                continue;
            }
        };
        let status = answer.status().as_u16();
        if (200..300).contains(&status) {
            let bytes = tokio::time::timeout(ch.idle_timeout, answer.bytes()).await;
            if let Ok(Ok(b)) = bytes
                && serde_json::from_slice::<Value>(&b)
                    .is_ok_and(|v| v.get("input_tokens").is_some_and(Value::is_u64))
            {
                return Ok(TokenCount {
                    body: b,
                    exact: true,
                });
            }
            tracing::warn!(channel = %ch.name, "token count: the upstream's answer was unreadable");
            continue;
        }
        if (400..500).contains(&status) && status != 429 && status != 401 && status != 403 {
            // The request itself is at fault: the client is told, as the upstream said it.
            return Err(Error::Upstream {
                failure: UpstreamFailure::Rejected(if status == 404 || status == 413 {
                    status
                } else {
                    400
                }),
                message: upstream_message(answer).await,
            });
        }
        tracing::warn!(channel = %ch.name, status, "token count: upstream failed; counting here");
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let document = Value::Object(body);
    let model = model.to_string();
    svc.settle_off_runtime(move |tokenizer| {
        let _ = tx.send(tokenizer.prompt_tokens(&model, &document));
    });
    let n = rx
        .await
        .map_err(|_| Error::Internal(anyhow::anyhow!("the token-counting thread is gone")))?;
    Ok(TokenCount {
        body: Bytes::from(json!({ "input_tokens": n }).to_string()),
        exact: false,
    })
}
