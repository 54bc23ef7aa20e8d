//! The OpenAI-compatible relay: validate, route, reserve credit, call the upstream with fallback
//! before the first byte, relay (SSE event by event), count tokens, settle the exact cost, log.
//! Every `/v1` entry point calls [`relay`]; nothing here knows about axum.

mod answer;
pub mod anthropic;
mod bound;
mod convert;
mod count;
pub(crate) mod gemini;
mod request;
mod responses;
mod settle;
pub mod sse;
mod stream;
pub mod tokens;
mod wait;

use crate::billing::{self, Quote, Usage};
use crate::keys::auth::KeyAuth;
use crate::routing::{Candidate, Plan, plan};
use crate::usage::{ErrorClass, UsageRecord, UsageSource};
use crate::{Error, Services, now_ms};
use bytes::Bytes;
use futures_util::Stream;
use request::{Parsed, parse, requested_model};
use serde::Serialize;
use serde_json::Value;
use settle::Call;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::routing::Endpoint;
pub use count::count_tokens;

/// Who is calling and since when.
pub struct CallContext {
    pub key: Arc<KeyAuth>,
    pub request_id: String,
    pub client_ip: Option<IpAddr>,
    pub started: Instant,
    /// Headers of the client's passed on to an upstream that speaks its protocol
    /// (`anthropic-version`, `anthropic-beta` to an Anthropic channel).
    pub forward: reqwest::header::HeaderMap,
}

/// How an answer is relayed to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// OpenAI's protocol at both ends.
    Chat,
    /// Anthropic's Messages protocol at both ends.
    Messages,
    /// A Messages call served by a chat route, its answer converted.
    ChatToMessages,
    /// OpenAI's Responses API at both ends.
    Responses,
    /// A Responses call served by a chat route, its answer converted.
    ChatToResponses,
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

pub enum ProxyBody {
    Json(Bytes),
    Events(EventStream),
}

pub struct ProxyResponse {
    pub body: ProxyBody,
    /// Time spent waiting on upstreams, every attempt included (for a stream: until its
    /// headers). The rest of the request's time, until the response head, is the gateway's own.
    pub upstream: Duration,
    /// The output bound sent upstream when it is lower than the request's own: all that the
    /// balance (or the key's cap) covers.
    pub lowered: Option<u64>,
}

pub use crate::error::UpstreamFailure;

/// How far a call went: what its failure row records.
#[derive(Debug, Default)]
struct Trace {
    /// The model the request named, when it could be read.
    model: Option<String>,
    /// Upstream attempts made, and the last one's channel and upstream model.
    attempts: u32,
    channel_id: Option<i64>,
    kind: Option<types::ChannelKind>,
    served_model: Option<String>,
}

/// Relays one `/v1` call. On `Err`, nothing was charged, and the call's usage row (with the
/// attempts it made and the status it is answered with) is already queued.
pub async fn relay(
    svc: &Services,
    ctx: &CallContext,
    endpoint: Endpoint,
    raw: Bytes,
) -> Result<ProxyResponse, Error> {
    let mut trace = Trace::default();
    let result = relay_traced(svc, ctx, endpoint, raw.clone(), &mut trace).await;
    if let Err(e) = &result {
        if trace.model.is_none() {
            trace.model = requested_model(&raw);
        }
        record_failure(svc, ctx, endpoint, trace, e.kind());
    }
    result
}

async fn relay_traced(
    svc: &Services,
    ctx: &CallContext,
    endpoint: Endpoint,
    raw: Bytes,
    trace: &mut Trace,
) -> Result<ProxyResponse, Error> {
    let Parsed {
        mut out,
        model,
        stream,
        mut completion_bound,
        client_wants_usage,
        affinity,
        stored,
    } = parse(endpoint, &raw, &|model| {
        unbounded(svc, model, &ctx.key.user_group)
    })?;
    trace.model = Some(model.clone());
    tracing::Span::current().record("model", model.as_str());
    if !ctx.key.allows_model(&model) {
        return Err(Error::Forbidden("this API key may not use this model"));
    }
    // The channels that can serve this route, each with how (the kind decides).
    let mut candidates: Vec<(Candidate, Plan)> = svc
        .routing
        .candidates_for(&model, &ctx.key.user_group, affinity.as_deref())?
        .into_iter()
        .filter_map(|c| plan(c.channel.kind, endpoint).map(|p| (c, p)))
        .collect();
    if candidates.is_empty() {
        return Err(Error::invalid(
            "model",
            format!(
                "the model {model:?} is not served on {} by any of its channels",
                endpoint.route()
            ),
        ));
    }
    // A Responses request that continues a stored one: only a channel that stores responses
    // (one that serves the Responses API natively) has what it names.
    if let Some(field) = stored {
        candidates.retain(|(_, how)| *how == Plan::Native);
        if candidates.is_empty() {
            return Err(Error::invalid(
                field,
                format!(
                    "continues a response stored upstream, and none of the channels of the model \
                     {model:?} stores responses (those of kinds openai and azure do); send the \
                     whole conversation in `input`"
                ),
            ));
        }
    }
    // A Messages or Responses call some chat channel may serve: converted once, before
    // anything is held.
    let mut echo = None;
    let mut converted = match candidates.iter().find(|(_, p)| *p != Plan::Native) {
        Some((_, how)) => {
            let document = request::document(&out)?;
            let chat = match how {
                Plan::MessagesViaChat => {
                    convert::messages_to_chat(&document, stream, completion_bound)?
                }
                _ => {
                    echo = Some(responses::Echo::of(
                        &document,
                        request::field_u64(&document, "max_output_tokens")?,
                    ));
                    responses::responses_to_chat(&document, stream, completion_bound)?
                }
            };
            if !chat.dropped.is_empty() {
                tracing::info!(dropped = ?chat.dropped, "what a chat channel cannot carry is left out");
            }
            Some(chat)
        }
        None => None,
    };
    // The key's calls in flight: a place among them, held until the call is settled.
    let slot = svc
        .concurrency
        .acquire(ctx.key.id, ctx.key.limits.concurrent)
        .await?;
    // The key's limits: one request, and tokens estimated as OpenAI does (a quarter of the
    // request's bytes, plus every allowed output token), settled to the real count.
    let tokens = svc
        .quotas
        .admit(
            ctx.key.id,
            ctx.key.limits,
            (raw.len() as u64).div_ceil(4) + completion_bound,
        )
        .await?;
    let quote = svc
        .prices()
        .quote(
            std::iter::once(model.as_str())
                .chain(candidates.iter().map(|(c, _)| c.upstream_model.as_str())),
            &ctx.key.user_group,
        )
        .ok_or(Error::Forbidden("no price is set for this model"))?;
    // Worst case: every byte of the body a prompt token (BPE never yields more tokens than bytes
    // of text), plus every allowed output token.
    // A request that continues a stored response brings its stored input too, which its body
    // does not show: `billing.stored_input_hold_tokens` more are held for it.
    let stored_hold = match stored {
        Some(_) => u64::from(svc.config.billing.stored_input_hold_tokens),
        None => 0,
    };
    let bound = Usage {
        prompt: raw.len() as u64 + 16 + stored_hold,
        completion: completion_bound,
        ..Usage::default()
    };
    // What the balance cannot cover is not asked of the upstream: the bound is lowered to what
    // it covers, down to `billing.min_lowered_max_tokens`.
    let want = quote.hold(&bound);
    let least = quote.hold(&Usage {
        completion: completion_bound.min(u64::from(svc.config.billing.min_lowered_max_tokens)),
        ..bound
    });
    let reservation = svc
        .credit
        .reserve_within(billing::account_for(&ctx.key), want, least)
        .await?;
    let mut lowered = None;
    if reservation.amount() < want {
        let covered = quote.most_completion(&bound, reservation.amount());
        let sent = out.lower(endpoint, covered)?;
        if sent == 0 {
            return Err(Error::InsufficientBalance);
        }
        if let Some(chat) = converted.as_mut() {
            chat.lower(sent);
        }
        if let Some(e) = echo.as_mut() {
            e.lower(sent);
        }
        completion_bound = sent;
        lowered = Some(sent);
    }

    let gw = &svc.config.gateway;
    let deadline = ctx.started + Duration::from_secs(gw.max_total_seconds);
    let mut last = UpstreamFailure::Unavailable;
    let mut attempts = 0u32;
    let mut upstream = Duration::ZERO;
    // A Gemini request names no model (its URL does): made once for every Gemini candidate.
    let mut gemini_body: Option<Bytes> = None;
    for (cand, how) in candidates.iter().take(gw.max_attempts as usize) {
        let now = Instant::now();
        if now >= deadline {
            last = UpstreamFailure::Timeout;
            break;
        }
        let ch = &cand.channel;
        let (wire, payload, mode) = match (how, &converted) {
            (Plan::MessagesViaChat | Plan::ResponsesViaChat, Some(chat)) => (
                Endpoint::Chat,
                chat.body(&cand.upstream_model, ch.wire)?,
                if *how == Plan::MessagesViaChat {
                    Mode::ChatToMessages
                } else {
                    Mode::ChatToResponses
                },
            ),
            (Plan::MessagesViaChat | Plan::ResponsesViaChat, None) => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "a chat channel for a call that was not converted"
                )));
            }
            (Plan::Native, _) => (
                endpoint,
                out.body(&cand.upstream_model, request::Shape::of(endpoint, ch.wire))?,
                match endpoint {
                    Endpoint::Messages => Mode::Messages,
                    Endpoint::Responses => Mode::Responses,
                    _ => Mode::Chat,
                },
            ),
        };
        // A Gemini channel: the chat request in Gemini's protocol (its answer comes back as chat).
        let payload = match (ch.kind, &gemini_body) {
            (types::ChannelKind::Gemini, Some(body)) => body.clone(),
            (types::ChannelKind::Gemini, None) => {
                let (body, dropped) = gemini::request(&payload)?;
                if !dropped.is_empty() {
                    tracing::info!(dropped = ?dropped, "what a Gemini channel cannot carry is left out");
                }
                gemini_body.insert(body).clone()
            }
            _ => payload,
        };
        // The request is made: an upstream attempt (a refusal above sent nothing).
        attempts += 1;
        trace.attempts = attempts;
        trace.channel_id = Some(ch.id);
        trace.kind = Some(ch.kind);
        trace.served_model = Some(cand.upstream_model.clone());
        let mut request = ch
            .upstream
            .post(&ch.client, wire, &cand.upstream_model, stream)?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload);
        if mode == Mode::Messages && !ctx.forward.is_empty() {
            request = request.headers(ctx.forward.clone());
        }
        // A stream's first byte comes at once from a live upstream, and by the call's deadline;
        // a non-stream answer begins only once it is whole (minutes, for a model that reasons).
        let wait = if stream {
            ch.first_byte_timeout.min(deadline - now)
        } else {
            ch.answer_timeout
        };
        let sent = Instant::now();
        let answer = wait::within(wait, request.send()).await;
        let took = sent.elapsed();
        upstream += took;
        // Health: a 2xx or a client error (the client's fault, not the channel's) went well.
        let ok = matches!(&answer, Some(Ok(r)) if {
            let st = r.status().as_u16();
            (200..300).contains(&st) || ((400..500).contains(&st) && st != 429)
        });
        ch.health.record(ok, took);
        let attempted = |outcome: &str| {
            svc.metrics
                .upstream_attempts
                .with_label_values(&[ch.name.as_str(), outcome])
                .inc();
        };
        let resp = match answer {
            None => {
                tracing::warn!(channel = %ch.name, attempt = attempts, "upstream timed out before the headers");
                attempted("timeout");
                svc.routing.failed(ch, None);
                last = UpstreamFailure::Timeout;
                // The upstream has the request and may be generating (and billing) it: trying
                // another channel would pay for it twice, unless the operator asks to.
                if gw.retry_after_send {
                    continue;
                }
                break;
            }
            Some(Err(e)) => {
                // No connection: nothing was sent, and the next channel is safe to try.
                let unsent = e.is_connect();
                tracing::warn!(channel = %ch.name, attempt = attempts, error = %without_url(&e), sent = !unsent, "upstream unreachable");
                attempted(if unsent { "unreachable" } else { "broken" });
                svc.routing.failed(ch, None);
                last = if e.is_timeout() {
                    UpstreamFailure::Timeout
                } else {
                    UpstreamFailure::Unavailable
                };
                if unsent || gw.retry_after_send {
                    continue;
                }
                break;
            }
            Some(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        attempted(match status {
            200..=299 => "answered",
            429 => "failed",
            400..=499 => "refused",
            _ => "failed",
        });
        if (200..300).contains(&status) {
            svc.routing.succeeded(ch);
            let call = Call {
                svc: svc.clone(),
                reservation,
                tokens,
                quote,
                request: raw.clone(),
                log: base_log(ctx, endpoint, &model, cand, attempts, stream),
                started: ctx.started,
                bound: completion_bound,
                slot,
            };
            let answered = if stream {
                Ok(stream::stream_response(
                    call,
                    resp,
                    cand,
                    &model,
                    client_wants_usage,
                    upstream,
                    mode,
                    echo.clone().unwrap_or_default(),
                ))
            } else {
                answer::complete_response(
                    call,
                    resp,
                    cand,
                    endpoint,
                    &model,
                    upstream,
                    mode,
                    echo.as_ref(),
                )
                .await
            };
            return answered.map(|r| ProxyResponse { lowered, ..r });
        }
        if status == 429 || status >= 500 {
            let retry_after = (status == 429)
                .then(|| {
                    resp.headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .flatten()
                .map(Duration::from_secs)
                .or((status == 429).then_some(Duration::from_secs(1)));
            tracing::warn!(channel = %ch.name, attempt = attempts, status, "upstream failed; trying the next channel");
            svc.routing.failed(ch, retry_after);
            last = UpstreamFailure::Unavailable;
            continue;
        }
        if !(400..500).contains(&status) {
            // A redirect (never followed: that would be SSRF) or another status no OpenAI
            // upstream answers with: the upstream is at fault, and the client is told which.
            tracing::warn!(channel = %ch.name, status, "upstream answered with an unexpected status");
            return Err(Error::Upstream {
                failure: UpstreamFailure::BadGateway,
                message: format!("the upstream answered with HTTP status {status}"),
            });
        }
        // 4xx: the request itself is at fault (or our credentials are); never retried.
        let message = upstream_message(resp).await;
        return Err(match status {
            401 | 403 => {
                tracing::error!(channel = %ch.name, status, "upstream refused the channel's credentials");
                Error::Upstream {
                    failure: UpstreamFailure::BadGateway,
                    message: "the upstream refused the gateway's credentials".into(),
                }
            }
            400 | 404 | 413 | 422 => Error::Upstream {
                failure: UpstreamFailure::Rejected(status),
                message,
            },
            _ => Error::Upstream {
                failure: UpstreamFailure::Rejected(400),
                message,
            },
        });
    }
    drop(reservation);
    Err(match last {
        UpstreamFailure::Timeout => Error::Upstream {
            failure: last,
            message: "the upstream did not answer in time".into(),
        },
        _ => Error::Upstream {
            failure: UpstreamFailure::Unavailable,
            message: "no upstream is available for this model".into(),
        },
    })
}

/// A reqwest error's text without its URL (no upstream host reaches a client or a log line).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<upstream>");
    }
    s
}

/// The upstream's error message, bounded, with anything key-like masked.
pub(crate) async fn upstream_message(resp: reqwest::Response) -> String {
    let bytes = tokio::time::timeout(Duration::from_secs(5), resp.bytes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let text = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned());
    mask_secrets(&text.chars().take(500).collect::<String>())
}

/// Masks `sk-…` tokens and URLs in upstream text.
pub fn mask_secrets(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            if w.contains("sk-") || w.contains("://") {
                "[redacted]".to_string()
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn base_log(
    ctx: &CallContext,
    endpoint: Endpoint,
    model: &str,
    cand: &Candidate,
    attempts: u32,
    stream: bool,
) -> UsageRecord {
    UsageRecord {
        request_id: ctx.request_id.clone(),
        user_id: ctx.key.user_id,
        key_id: Some(ctx.key.id),
        key_prefix: Some(ctx.key.prefix.clone()),
        model: model.to_string(),
        served_model: Some(cand.upstream_model.clone()),
        channel_id: Some(cand.channel.id),
        attempts,
        stream,
        surface: endpoint.surface(),
        upstream_kind: Some(cand.channel.kind),
        usage_source: UsageSource::Absent,
        status: 200,
        client_ip: ctx.client_ip.map(|ip| ip.to_string()),
        created_at: now_ms(),
        ..UsageRecord::default()
    }
}

/// The failure row of a call that got no usable answer (nothing charged): what it asked for,
/// how many upstream attempts it made and the last one's channel, the status it is answered.
fn record_failure(
    svc: &Services,
    ctx: &CallContext,
    endpoint: Endpoint,
    trace: Trace,
    kind: types::ErrorKind,
) {
    crate::usage::log_call(
        svc,
        UsageRecord {
            request_id: ctx.request_id.clone(),
            user_id: ctx.key.user_id,
            key_id: Some(ctx.key.id),
            key_prefix: Some(ctx.key.prefix.clone()),
            model: trace.model.unwrap_or_default(),
            served_model: trace.served_model,
            channel_id: trace.channel_id,
            upstream_kind: trace.kind,
            surface: endpoint.surface(),
            attempts: trace.attempts,
            usage_source: UsageSource::Absent,
            status: kind.status(),
            error_class: Some(ErrorClass::Failed(kind)),
            latency_ms: ctx.started.elapsed().as_millis() as u64,
            client_ip: ctx.client_ip.map(|ip| ip.to_string()),
            created_at: now_ms(),
            ..UsageRecord::default()
        },
    );
}

/// A model as `/v1/models` lists it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ModelInfo {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub owned_by: &'static str,
}

/// The output bound of a request of `model` that sets none: the model's most output tokens when
/// its price names them (the public name's price, else the first upstream name's with a
/// price; the upstream names of `group`'s routes), else `billing.default_max_tokens`.
fn unbounded(svc: &Services, model: &str, group: &str) -> u64 {
    let book = svc.prices();
    let price = match book.price(model) {
        Some(p) => Some(p),
        None => svc.routing.candidates(model, group).ok().and_then(|cands| {
            cands
                .iter()
                .find_map(|c| book.price(c.upstream_model.as_str()))
        }),
    };
    price
        .and_then(|p| p.max_output_tokens())
        .unwrap_or(u64::from(svc.config.billing.default_max_tokens))
}

/// What a caller of `group` can actually be served, with its quote: a public model that routes
/// somewhere for the group and has a price (its own or an upstream name's), and that the key, when given, may use.
/// Sorted by name.
pub fn offer(svc: &Services, key: Option<&KeyAuth>, group: &str) -> Vec<(String, Quote)> {
    let book = svc.prices();
    svc.routing
        .public_models()
        .into_iter()
        .filter(|m| key.is_none_or(|k| k.allows_model(m)))
        .filter_map(|m| {
            let candidates = svc.routing.candidates(&m, group).ok()?;
            // A model is offered when some channel of it serves one route or another.
            let quote = book.quote(
                std::iter::once(m.as_str())
                    .chain(candidates.iter().map(|c| c.upstream_model.as_str())),
                group,
            )?;
            Some((m, quote))
        })
        .collect()
}

/// The models this key can call.
pub fn models(svc: &Services, key: &KeyAuth) -> Vec<ModelInfo> {
    offer(svc, Some(key), &key.user_group)
        .into_iter()
        .map(|(id, _)| ModelInfo {
            id,
            object: "model",
            created: 0,
            owned_by: "tollgate",
        })
        .collect()
}

/// `/api/pricing`: the price table, with the caller's group multiplier when a key is given.
pub fn pricing(svc: &Services, key: Option<&KeyAuth>) -> types::Pricing {
    price_table(svc, key, key.map_or("default", |k| k.user_group.as_str()))
}

/// The price table of every served model at `group`'s multiplier (the console's pricing page).
pub fn group_pricing(svc: &Services, group: &str) -> types::Pricing {
    price_table(svc, None, group)
}

fn price_table(svc: &Services, key: Option<&KeyAuth>, group: &str) -> types::Pricing {
    let data = offer(svc, key, group)
        .into_iter()
        .map(|(model, q)| q.table(model, u64::from(svc.config.billing.default_max_tokens)))
        .collect();
    types::Pricing {
        group: group.to_string(),
        multiplier: billing::multiplier_text(svc.prices().multiplier(group)),
        data,
    }
}

pub fn model(svc: &Services, key: &KeyAuth, id: &str) -> Result<ModelInfo, Error> {
    models(svc, key)
        .into_iter()
        .find(|m| m.id == id)
        .ok_or(Error::NotFound("model"))
}
