//! The OpenAI-compatible relay: validate, route, reserve credit, call the upstream with fallback
//! before the first byte, relay (SSE event by event), count tokens, settle the exact cost, log.
//! Every `/v1` entry point calls [`relay`]; nothing here knows about axum.

pub mod sse;
pub mod tokens;

use crate::billing::{self, Price, Reservation, Usage};
use crate::keys::KeyAuth;
use crate::routing::Candidate;
use crate::usage::UsageRecord;
use crate::{Error, Services, now_ms};
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use serde::Serialize;
use serde_json::Value;
use sse::UpstreamUsage;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::routing::Endpoint;

/// Who is calling and since when.
pub struct CallContext {
    pub key: Arc<KeyAuth>,
    pub request_id: String,
    pub client_ip: Option<IpAddr>,
    pub started: Instant,
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
}

/// Why an upstream call failed, for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The upstream refused the request itself (400/404/413/422): the client's to fix.
    Rejected(u16),
    /// The upstream answered with something unusable, or refused our credentials.
    BadGateway,
    /// No upstream could serve the request.
    Unavailable,
    /// The upstream did not answer in time.
    Timeout,
}

struct Parsed {
    out: Outgoing,
    model: String,
    stream: bool,
    completion_bound: u64,
    client_wants_usage: bool,
}

/// The body a request goes upstream with: the client's, with `model` naming the upstream's model
/// and, for a stream, usage asked for (`stream_options.include_usage`).
enum Outgoing {
    /// The usual request: the client's bytes, edited where they stand.
    Spliced {
        raw: Bytes,
        /// Where the top-level object opens.
        brace: usize,
        /// The `model` value.
        model: std::ops::Range<usize>,
        /// Add `"stream_options":{"include_usage":true}` (a stream whose body has no
        /// `stream_options`).
        ask_usage: bool,
    },
    /// Any other request, read as a document and written again.
    Document(serde_json::Map<String, Value>),
}

/// Asks for usage in a stream whose body has no `stream_options`.
const ASK_USAGE: &[u8] = br#""stream_options":{"include_usage":true},"#;

impl Outgoing {
    /// The body for a candidate serving `upstream_model`.
    fn body(&mut self, upstream_model: &str) -> Result<Bytes, Error> {
        let name = quoted(upstream_model);
        match self {
            Outgoing::Spliced {
                raw,
                brace,
                model,
                ask_usage,
            } => {
                if !*ask_usage && raw[model.clone()] == *name.as_bytes() {
                    return Ok(raw.clone());
                }
                let insert = if *ask_usage { ASK_USAGE } else { b"" };
                Ok(concat(&[
                    &raw[..=*brace],
                    insert,
                    &raw[*brace + 1..model.start],
                    name.as_bytes(),
                    &raw[model.end..],
                ]))
            }
            Outgoing::Document(body) => {
                body.insert("model".into(), Value::String(upstream_model.to_string()));
                Ok(Bytes::from(
                    serde_json::to_vec(body).map_err(anyhow::Error::from)?,
                ))
            }
        }
    }
}

/// A model name as a JSON string, quotes and escapes included: what is spliced into a body.
fn quoted(name: &str) -> String {
    Value::String(name.to_string()).to_string()
}

/// A requested model name the gateway takes: not blank, at most 256 bytes.
fn model_name_ok(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= 256
}

/// The model a request names, for the log of a request that failed: only that field is read
/// (the body may be large, and it was already read once).
pub fn requested_model(raw: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        model: Option<String>,
    }
    let model = serde_json::from_slice::<Named>(raw).ok()?.model?;
    Some(model.chars().take(256).collect())
}

/// The parts, one after the other, in one buffer: how a body is edited in place.
fn concat(parts: &[&[u8]]) -> Bytes {
    let mut b = bytes::BytesMut::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        b.extend_from_slice(p);
    }
    b.freeze()
}

/// The fields of a request the gateway reads, borrowed from its body: reading this instead of a
/// whole `Value` skips building a map of every message. A field of another type, or a request
/// that would be refused, is left to the `Value` reading, which gives the errors.
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(default, borrow)]
    model: Option<&'a serde_json::value::RawValue>,
    stream: Option<bool>,
    messages: Option<Vec<serde::de::IgnoredAny>>,
    prompt: Option<serde::de::IgnoredAny>,
    input: Option<serde::de::IgnoredAny>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    n: Option<u64>,
    /// Present, whatever its value (`null` too).
    #[serde(default, borrow, deserialize_with = "present")]
    stream_options: Option<&'a serde_json::value::RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<&'de serde_json::value::RawValue>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

#[derive(serde::Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// The usual request, read without building a document; `None` sends it to [`parse`]'s full
/// reading (which refuses what is wrong with it, or handles its unusual shape).
fn parse_fast(endpoint: Endpoint, raw: &Bytes, default_max_tokens: u64) -> Option<Parsed> {
    let brace = raw.iter().position(|b| !b.is_ascii_whitespace())?;
    if raw[brace] != b'{' {
        return None;
    }
    let head: Head<'_> = serde_json::from_slice(raw).ok()?;
    let model_raw = head.model?;
    let model: String = serde_json::from_str(model_raw.get()).ok()?;
    if !model_name_ok(&model) {
        return None;
    }
    let model_span = sse::span_in(model_raw.get(), raw)?;
    let stream = head.stream.unwrap_or(false);
    let present = match endpoint {
        Endpoint::Chat => head.messages.is_some_and(|m| !m.is_empty()),
        Endpoint::Completions => head.prompt.is_some(),
        Endpoint::Embeddings => head.input.is_some() && !stream,
    };
    let n = head.n.unwrap_or(1);
    if !present || n == 0 || n > 128 {
        return None;
    }
    let client_wants_usage = match head.stream_options {
        None => false,
        Some(o) => {
            serde_json::from_str::<Option<StreamOptions>>(o.get())
                .ok()?
                .and_then(|o| o.include_usage)
                == Some(true)
        }
    };
    // A stream_options that needs include_usage set inside it is left to the document reading.
    if stream && !client_wants_usage && head.stream_options.is_some() {
        return None;
    }
    let completion_bound = match endpoint {
        Endpoint::Embeddings => 0,
        _ => head
            .max_completion_tokens
            .or(head.max_tokens)
            .unwrap_or(default_max_tokens)
            .saturating_mul(n),
    };
    Some(Parsed {
        out: Outgoing::Spliced {
            raw: raw.clone(),
            brace,
            model: model_span,
            ask_usage: stream && head.stream_options.is_none(),
        },
        model,
        stream,
        completion_bound,
        client_wants_usage,
    })
}

fn field_u64(
    body: &serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, Error> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| Error::invalid(name, "must be a non-negative integer")),
    }
}

/// How deeply a request's JSON may nest: serde_json's own limit for documents, applied to the
/// fast reading too (which skips what it does not read without counting levels). Deeper
/// requests are refused before any upstream sees them.
const MAX_DEPTH: usize = 128;

/// True when `raw` nests arrays and objects deeper than `max` (strings are skipped; the scan
/// does not judge whether the JSON is valid, the reading after it does).
fn nests_deeper_than(raw: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn parse(endpoint: Endpoint, raw: &Bytes, default_max_tokens: u64) -> Result<Parsed, Error> {
    if nests_deeper_than(raw, MAX_DEPTH) {
        return Err(Error::invalid(
            "body",
            format!("nests arrays and objects more than {MAX_DEPTH} levels deep"),
        ));
    }
    if let Some(p) = parse_fast(endpoint, raw, default_max_tokens) {
        return Ok(p);
    }
    parse_document(endpoint, raw, default_max_tokens)
}

/// The full reading of a request, as a document: the reference for [`parse_fast`], and where
/// every refusal comes from.
fn parse_document(
    endpoint: Endpoint,
    raw: &[u8],
    default_max_tokens: u64,
) -> Result<Parsed, Error> {
    let body: Value = serde_json::from_slice(raw)
        .map_err(|e| Error::invalid("body", format!("invalid JSON: {e}")))?;
    let Value::Object(mut body) = body else {
        return Err(Error::invalid("body", "must be a JSON object"));
    };
    let model = match body.get("model") {
        Some(Value::String(m)) if model_name_ok(m) => m.clone(),
        Some(Value::String(_)) => {
            return Err(Error::invalid("model", "must be a non-empty model name"));
        }
        Some(_) => return Err(Error::invalid("model", "must be a string")),
        None => return Err(Error::invalid("model", "is required")),
    };
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::invalid("stream", "must be a boolean")),
    };
    if stream && endpoint == Endpoint::Embeddings {
        return Err(Error::invalid("stream", "embeddings cannot be streamed"));
    }
    match endpoint {
        Endpoint::Chat => match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => {}
            Some(Value::Array(_)) => return Err(Error::invalid("messages", "must not be empty")),
            Some(_) => return Err(Error::invalid("messages", "must be an array")),
            None => return Err(Error::invalid("messages", "is required")),
        },
        Endpoint::Completions => {
            if body.get("prompt").is_none() {
                return Err(Error::invalid("prompt", "is required"));
            }
        }
        Endpoint::Embeddings => {
            if body.get("input").is_none() {
                return Err(Error::invalid("input", "is required"));
            }
        }
    }
    let max = field_u64(&body, "max_completion_tokens")?.or(field_u64(&body, "max_tokens")?);
    let n = field_u64(&body, "n")?.unwrap_or(1);
    if n == 0 || n > 128 {
        return Err(Error::invalid("n", "must be between 1 and 128"));
    }
    let completion_bound = match endpoint {
        Endpoint::Embeddings => 0,
        _ => max.unwrap_or(default_max_tokens).saturating_mul(n),
    };
    let client_wants_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        == Some(true);
    if stream {
        let opts = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), Value::Bool(true));
        } else {
            *opts = serde_json::json!({"include_usage": true});
        }
    }
    Ok(Parsed {
        out: Outgoing::Document(body),
        model,
        stream,
        completion_bound,
        client_wants_usage,
    })
}

/// A call that got no usable answer (nothing was charged), with how far it went.
pub struct Failed {
    pub error: Error,
    pub trace: Trace,
}

/// How far a call went: what its failure row records.
#[derive(Debug, Default)]
pub struct Trace {
    /// The model the request named, when it could be read.
    pub model: Option<String>,
    /// Upstream attempts made, and the last one's channel and upstream model.
    pub attempts: u32,
    pub channel_id: Option<i64>,
    pub served_model: Option<String>,
}

/// Relays one `/v1` call. On `Err`, nothing was charged; the caller records the failure
/// ([`record_failure`]) with the status it answers.
pub async fn relay(
    svc: &Services,
    ctx: &CallContext,
    endpoint: Endpoint,
    raw: Bytes,
) -> Result<ProxyResponse, Failed> {
    let mut trace = Trace::default();
    match relay_traced(svc, ctx, endpoint, raw.clone(), &mut trace).await {
        Ok(res) => Ok(res),
        Err(error) => {
            if trace.model.is_none() {
                trace.model = requested_model(&raw);
            }
            Err(Failed { error, trace })
        }
    }
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
        completion_bound,
        client_wants_usage,
    } = parse(
        endpoint,
        &raw,
        u64::from(svc.config.billing.default_max_tokens),
    )?;
    trace.model = Some(model.clone());
    if !ctx.key.allows_model(&model) {
        return Err(Error::Forbidden("this API key may not use this model"));
    }
    let candidates = svc.routing.candidates(&model)?;
    let book = svc.prices();
    let price = book
        .price(&model)
        .or_else(|| {
            candidates
                .iter()
                .find_map(|c| book.price(&c.upstream_model))
        })
        .ok_or(Error::Forbidden("no price is set for this model"))?;
    let multiplier = book.multiplier(&ctx.key.user_group);
    // Worst case: every byte of the body a prompt token (BPE never yields more tokens than bytes
    // of text), plus every allowed output token.
    let bound = Usage {
        prompt: raw.len() as u64 + 16,
        completion: completion_bound,
        cached: 0,
    };
    let reservation = svc
        .credit
        .reserve(
            billing::account_for(&ctx.key),
            price.cost(&bound, multiplier),
        )
        .await?;

    let gw = &svc.config.gateway;
    let deadline = ctx.started + Duration::from_secs(gw.max_total_seconds);
    let mut last = UpstreamFailure::Unavailable;
    let mut attempts = 0u32;
    let mut upstream = Duration::ZERO;
    for cand in candidates.iter().take(gw.max_attempts as usize) {
        let now = Instant::now();
        if now >= deadline {
            last = UpstreamFailure::Timeout;
            break;
        }
        attempts += 1;
        trace.attempts = attempts;
        trace.channel_id = Some(cand.channel.id);
        trace.served_model = Some(cand.upstream_model.clone());
        let payload = out.body(&cand.upstream_model)?;
        let ch = &cand.channel;
        let mut request = ch
            .client
            .post(ch.upstream.url(endpoint))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload);
        if let Some(auth) = ch.upstream.auth() {
            request = request.header(reqwest::header::AUTHORIZATION, auth.clone());
        }
        let wait = ch.first_byte_timeout.min(deadline - now);
        let sent = Instant::now();
        let answer = tokio::time::timeout(wait, request.send()).await;
        upstream += sent.elapsed();
        let resp = match answer {
            Err(_) => {
                tracing::warn!(channel = %ch.name, attempt = attempts, "upstream timed out before the headers");
                svc.routing.failed(ch, None);
                last = UpstreamFailure::Timeout;
                continue;
            }
            Ok(Err(e)) => {
                tracing::warn!(channel = %ch.name, attempt = attempts, error = %without_url(&e), "upstream unreachable");
                svc.routing.failed(ch, None);
                last = if e.is_timeout() {
                    UpstreamFailure::Timeout
                } else {
                    UpstreamFailure::Unavailable
                };
                continue;
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            svc.routing.succeeded(ch);
            let call = Call {
                svc: svc.clone(),
                reservation,
                price,
                multiplier,
                request: raw.clone(),
                log: base_log(ctx, &model, cand, attempts, stream),
                started: ctx.started,
            };
            return if stream {
                Ok(stream_response(
                    call,
                    resp,
                    cand,
                    &model,
                    client_wants_usage,
                    upstream,
                ))
            } else {
                complete_response(call, resp, cand, endpoint, &model, upstream).await
            };
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
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<upstream>");
    }
    s
}

/// The upstream's error message, bounded, with anything key-like masked.
async fn upstream_message(resp: reqwest::Response) -> String {
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
        usage_source: "none",
        status: 200,
        client_ip: ctx.client_ip.map(|ip| ip.to_string()),
        created_at: now_ms(),
        ..UsageRecord::default()
    }
}

/// The failure row of a call that got no usable answer (nothing charged): what it asked for,
/// how many upstream attempts it made and the last one's channel, the status it was answered.
pub fn record_failure(svc: &Services, ctx: &CallContext, failed: Trace, status: u16, class: &str) {
    svc.usage.record(UsageRecord {
        request_id: ctx.request_id.clone(),
        user_id: ctx.key.user_id,
        key_id: Some(ctx.key.id),
        key_prefix: Some(ctx.key.prefix.clone()),
        model: failed.model.unwrap_or_default(),
        served_model: failed.served_model,
        channel_id: failed.channel_id,
        attempts: failed.attempts,
        usage_source: "none",
        status,
        error_class: Some(class.to_string()),
        latency_ms: ctx.started.elapsed().as_millis() as u64,
        client_ip: ctx.client_ip.map(|ip| ip.to_string()),
        created_at: now_ms(),
        ..UsageRecord::default()
    });
}

/// What settling a served request needs.
struct Call {
    svc: Services,
    reservation: Reservation,
    price: Price,
    multiplier: i64,
    /// The client's body, read again only when its prompt must be counted.
    request: Bytes,
    log: UsageRecord,
    started: Instant,
}

impl Call {
    /// Charges the exact cost, once, and queues the usage row. Without upstream usage the
    /// tokens are counted on the token-counting thread: loading a tokenizer table or counting a
    /// long prompt never stalls the runtime.
    fn settle(
        self,
        usage: Option<UpstreamUsage>,
        generated: &str,
        complete: bool,
        error_class: Option<&str>,
        ttft: Option<Duration>,
    ) {
        let error_class = error_class.map(str::to_string);
        match usage {
            Some(u) => {
                let u = Usage {
                    prompt: u.prompt,
                    completion: u.completion,
                    cached: u.cached,
                };
                self.finish(u, "upstream", error_class, ttft);
            }
            None => {
                let generated = generated.to_string();
                let svc = self.svc.clone();
                svc.settle_off_runtime(move |tokenizer| {
                    let model = &self.log.model;
                    let u = Usage {
                        prompt: tokenizer.prompt_tokens(
                            model,
                            &serde_json::from_slice(&self.request).unwrap_or(Value::Null),
                        ),
                        completion: tokenizer.count(model, &generated),
                        cached: 0,
                    };
                    let source = if complete { "estimated" } else { "partial" };
                    self.finish(u, source, error_class, ttft);
                });
            }
        }
    }

    fn finish(
        self,
        u: Usage,
        source: &'static str,
        error_class: Option<String>,
        ttft: Option<Duration>,
    ) {
        let cost = self.price.cost(&u, self.multiplier);
        self.reservation.settle(cost);
        let mut log = self.log;
        log.prompt_tokens = u.prompt;
        log.completion_tokens = u.completion;
        log.cached_tokens = u.cached;
        log.cost = cost;
        log.price_version = Some(self.price.version);
        log.usage_source = source;
        log.error_class = error_class;
        log.latency_ms = self.started.elapsed().as_millis() as u64;
        log.ttft_ms = ttft.map(|d| d.as_millis() as u64);
        self.svc.usage.record(log);
    }
}

async fn complete_response(
    call: Call,
    resp: reqwest::Response,
    cand: &Candidate,
    endpoint: Endpoint,
    model: &str,
    mut upstream: Duration,
) -> Result<ProxyResponse, Error> {
    let reading = Instant::now();
    let body = tokio::time::timeout(cand.channel.idle_timeout, resp.bytes()).await;
    upstream += reading.elapsed();
    let bytes = match body {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::warn!(channel = %cand.channel.name, error = %without_url(&e), "upstream body failed");
            return Err(Error::Upstream {
                failure: UpstreamFailure::BadGateway,
                message: "the upstream response was cut".into(),
            });
        }
        Err(_) => {
            return Err(Error::Upstream {
                failure: UpstreamFailure::Timeout,
                message: "the upstream did not answer in time".into(),
            });
        }
    };
    let (usage, text, body) = read_response(&bytes, model)?;
    let usage = usage.map(|u| {
        if endpoint == Endpoint::Embeddings {
            UpstreamUsage { completion: 0, ..u }
        } else {
            u
        }
    });
    let ttft = call.started.elapsed();
    call.settle(usage, &text, true, None, Some(ttft));
    Ok(ProxyResponse {
        body: ProxyBody::Json(body),
        upstream,
    })
}

/// An upstream's answer to a non-stream call: its usage, the text it generated when it reports
/// no usage (to count), and the body for the client, naming the model the client asked for. The
/// usual answer is read without building a document and goes out as it came, or with only its
/// model's name replaced (an embedding's thousands of numbers are neither parsed nor written
/// again); any other shape is read as a `Value`.
fn read_response(
    bytes: &Bytes,
    model: &str,
) -> Result<(Option<UpstreamUsage>, String, Bytes), Error> {
    let mut text = String::new();
    if let Ok(chunk) = serde_json::from_slice::<sse::Chunk<'_>>(bytes) {
        let usage = chunk.usage();
        if usage.is_none() {
            chunk.append_text(&mut text);
        }
        let name = quoted(model);
        let body = match chunk.model_span(bytes) {
            Some(span) if bytes[span.clone()] != *name.as_bytes() => {
                concat(&[&bytes[..span.start], name.as_bytes(), &bytes[span.end..]])
            }
            _ => bytes.clone(),
        };
        return Ok((usage, text, body));
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(bytes) else {
        return Err(Error::Upstream {
            failure: UpstreamFailure::BadGateway,
            message: "the upstream sent an invalid response".into(),
        });
    };
    let usage = sse::usage_of(&v);
    sse::append_text(&v, &mut text);
    if let Some(m) = v.get_mut("model") {
        *m = Value::String(model.to_string());
    }
    let body = Bytes::from(serde_json::to_vec(&v).map_err(anyhow::Error::from)?);
    Ok((usage, text, body))
}

/// How a stream ended, for billing and the log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Complete,
    UpstreamCut,
    ClientGone,
    Halted,
}

struct Relay {
    upstream: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    framer: sse::Framer,
    idle: Duration,
    model: String,
    /// The model's name as a JSON string, spliced into chunks that name another.
    model_json: String,
    rewrite: bool,
    client_wants_usage: bool,
    text: String,
    usage: Option<UpstreamUsage>,
    saw_done: bool,
    finished: bool,
    out: VecDeque<Bytes>,
    ttft: Option<Duration>,
    call: Option<Call>,
}

impl Relay {
    fn on_event(&mut self, event: sse::Event) {
        let Some(data) = sse::data_of(event.lines()) else {
            self.out.push_back(event.whole());
            return;
        };
        if *data == *b"[DONE]" {
            self.saw_done = true;
            self.out.push_back(event.whole());
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<sse::Chunk<'_>>(&data) else {
            // Not JSON, or fields of other types than usual: read it as a `Value`.
            let out = self.on_value(&data);
            self.emit(out, &event);
            return;
        };
        if chunk.has_choices() {
            self.first_token();
        }
        chunk.append_text(&mut self.text);
        if let Some(u) = chunk.usage() {
            self.usage = Some(u);
            if !self.client_wants_usage {
                if !chunk.has_choices() {
                    return; // usage alone, which the client did not ask for
                }
                // Usage riding on a chunk with content: taking the field out needs the document.
                let out = self.edit(&data);
                self.emit(out, &event);
                return;
            }
        }
        if self.rewrite {
            let out = match chunk.model_span(&data) {
                Some(span) => Some(sse::frame_parts(&[
                    &data[..span.start],
                    self.model_json.as_bytes(),
                    &data[span.end..],
                ])),
                None => self.edit(&data),
            };
            self.emit(out, &event);
            return;
        }
        self.out.push_back(event.whole());
    }

    /// Queues `out`, or the event as it came when there is nothing else to send (`None`). A
    /// replacement empty of bytes drops the event.
    fn emit(&mut self, out: Option<Bytes>, event: &sse::Event) {
        match out {
            Some(b) if b.is_empty() => {}
            Some(b) => self.out.push_back(b),
            None => self.out.push_back(event.whole()),
        }
    }

    fn first_token(&mut self) {
        if self.ttft.is_none() {
            self.ttft = self.call.as_ref().map(|c| c.started.elapsed());
        }
    }

    /// The reading of a chunk of unusual shape through a `Value`: what [`Relay::on_event`] does
    /// with a typed chunk, for any JSON. `None` relays the event as it came; empty bytes drop it.
    fn on_value(&mut self, data: &[u8]) -> Option<Bytes> {
        let v = serde_json::from_slice::<Value>(data).ok()?;
        let has_choices = v
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty());
        if has_choices {
            self.first_token();
        }
        sse::append_text(&v, &mut self.text);
        let mut edit = self.rewrite;
        if let Some(u) = sse::usage_of(&v) {
            self.usage = Some(u);
            if !self.client_wants_usage {
                if !has_choices {
                    return Some(Bytes::new());
                }
                edit = true;
            }
        }
        if edit { self.edit_value(v) } else { None }
    }

    /// The chunk with its usage taken out (unless the client asked for it) and its model named
    /// as the client asked.
    fn edit(&self, data: &[u8]) -> Option<Bytes> {
        serde_json::from_slice::<Value>(data)
            .ok()
            .and_then(|v| self.edit_value(v))
    }

    fn edit_value(&self, mut v: Value) -> Option<Bytes> {
        let mut changed = false;
        if !self.client_wants_usage
            && sse::usage_of(&v).is_some()
            && let Some(o) = v.as_object_mut()
        {
            o.remove("usage");
            changed = true;
        }
        if self.rewrite
            && let Some(m) = v.get_mut("model")
        {
            *m = Value::String(self.model.clone());
            changed = true;
        }
        changed.then(|| sse::frame(v.to_string().as_bytes()))
    }

    fn end(&mut self, how: End) {
        if let Some(call) = self.call.take() {
            let class = match how {
                End::Complete => None,
                End::UpstreamCut => Some("upstream_cut"),
                End::ClientGone => Some("client_cancelled"),
                End::Halted => Some("server_shutdown"),
            };
            call.settle(
                self.usage,
                &self.text,
                how == End::Complete,
                class,
                self.ttft,
            );
        }
    }

    fn cut(&mut self, why: &str) {
        tracing::warn!(model = %self.model, reason = why, "upstream stream ended early");
        self.out.push_back(sse::error_event(why));
        self.finished = true;
        self.end(End::UpstreamCut);
    }

    /// The drain deadline passed: end the stream with an error event, charging what was
    /// generated, so that the last credit report and usage write include it.
    fn halt(&mut self) {
        self.out
            .push_back(sse::error_event("the gateway is shutting down"));
        self.finished = true;
        self.end(End::Halted);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // The client went away before the end: the upstream request is dropped with us (so it
        // is cancelled at once), and what was generated so far is charged, once. A client that
        // leaves once `[DONE]` came got the whole answer.
        self.end(if self.saw_done {
            End::Complete
        } else {
            End::ClientGone
        });
    }
}

fn stream_response(
    call: Call,
    resp: reqwest::Response,
    cand: &Candidate,
    model: &str,
    client_wants_usage: bool,
    upstream: Duration,
) -> ProxyResponse {
    let halt = call.svc.halt.watch();
    let relay = Relay {
        upstream: Box::pin(resp.bytes_stream()),
        framer: sse::Framer::default(),
        idle: cand.channel.idle_timeout,
        model: model.to_string(),
        model_json: quoted(model),
        rewrite: cand.upstream_model != model,
        client_wants_usage,
        text: String::new(),
        usage: None,
        saw_done: false,
        finished: false,
        out: VecDeque::new(),
        ttft: None,
        call: Some(call),
    };
    let stream = futures_util::stream::unfold((relay, halt), |(mut r, mut halt)| async move {
        loop {
            if let Some(b) = r.out.pop_front() {
                return Some((Ok(b), (r, halt)));
            }
            if r.finished {
                return None;
            }
            let next = tokio::select! {
                biased;
                _ = halt.wait_for(|v| *v) => {
                    r.halt();
                    continue;
                }
                next = tokio::time::timeout(r.idle, r.upstream.next()) => next,
            };
            match next {
                Err(_) => r.cut("the upstream stream stalled"),
                Ok(Some(Err(_))) => r.cut("the upstream stream was interrupted"),
                Ok(None) if !r.saw_done => r.cut("the upstream stream ended without completing"),
                Ok(None) => {
                    r.finished = true;
                    r.end(End::Complete);
                }
                Ok(Some(Ok(chunk))) => {
                    r.framer.push(&chunk);
                    while let Some(ev) = r.framer.next_event() {
                        r.on_event(ev);
                    }
                }
            }
        }
    });
    ProxyResponse {
        body: ProxyBody::Events(Box::pin(stream)),
        upstream,
    }
}

/// A model as `/v1/models` lists it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ModelInfo {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub owned_by: &'static str,
}

/// The models this key may use.
pub fn models(svc: &Services, key: &KeyAuth) -> Vec<ModelInfo> {
    svc.routing
        .public_models()
        .into_iter()
        .filter(|m| key.allows_model(m))
        .map(|id| ModelInfo {
            id,
            object: "model",
            created: 0,
            owned_by: "tollgate",
        })
        .collect()
}

pub fn model(svc: &Services, key: &KeyAuth, id: &str) -> Result<ModelInfo, Error> {
    models(svc, key)
        .into_iter()
        .find(|m| m.id == id)
        .ok_or(Error::NotFound("model"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(p: &mut Parsed, upstream_model: &str) -> Value {
        let body = p.out.body(upstream_model).expect("a body");
        serde_json::from_slice(&body).expect("the body is JSON")
    }

    /// The edits made in place give the same request as the document reading, for the usual
    /// shapes; the rest is left to the document reading.
    #[test]
    fn the_usual_request_is_edited_in_place_as_the_document_would_be() {
        let cases = [
            (
                Endpoint::Chat,
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            ),
            (
                Endpoint::Chat,
                " \n{ \"messages\" : [{\"role\":\"user\",\"content\":\"a \\\"q\\\" \\u00e9\"}],\n \"model\" : \"m\\u0031\", \"max_tokens\": 7, \"n\": 2, \"stream\": true }",
            ),
            (
                Endpoint::Chat,
                r#"{"model":"m","messages":[1],"stream":true,"stream_options":{"include_usage":true}}"#,
            ),
            (
                Endpoint::Chat,
                r#"{"model":"m","messages":[1],"stream":false,"stream_options":null}"#,
            ),
            (
                Endpoint::Chat,
                r#"{"model":"m","messages":[1],"max_completion_tokens":3,"max_tokens":9,"stream":null}"#,
            ),
            (
                Endpoint::Completions,
                r#"{"prompt":["a","b"],"model":"m","stream":true}"#,
            ),
            (Endpoint::Embeddings, r#"{"input":"x","model":"m"}"#),
        ];
        for (endpoint, body) in cases {
            let raw = Bytes::from(body);
            let mut fast =
                parse_fast(endpoint, &raw, 100).unwrap_or_else(|| panic!("fast: {body}"));
            assert!(matches!(fast.out, Outgoing::Spliced { .. }));
            let mut doc = parse_document(endpoint, &raw, 100).expect(body);
            assert_eq!(
                (
                    &fast.model,
                    fast.stream,
                    fast.completion_bound,
                    fast.client_wants_usage
                ),
                (
                    &doc.model,
                    doc.stream,
                    doc.completion_bound,
                    doc.client_wants_usage
                ),
                "{body}"
            );
            for upstream in ["m", "other-\"model\""] {
                assert_eq!(
                    outgoing(&mut fast, upstream),
                    outgoing(&mut doc, upstream),
                    "{body}"
                );
            }
        }
        // Unchanged: the client's bytes themselves.
        let raw = Bytes::from(r#"{"model":"m","messages":[1]}"#);
        let mut p = parse_fast(Endpoint::Chat, &raw, 1).expect("usual");
        assert_eq!(p.out.body("m").expect("body"), raw);
    }

    #[test]
    fn unusual_or_wrong_requests_get_the_document_reading() {
        for (endpoint, body) in [
            (Endpoint::Chat, r#"["m"]"#),
            (Endpoint::Chat, r#"{"model":"m","messages":[]}"#),
            (Endpoint::Chat, r#"{"model":null,"messages":[1]}"#),
            (
                Endpoint::Chat,
                r#"{"model":"m","model":"n","messages":[1]}"#,
            ),
            (Endpoint::Chat, r#"{"model":" ","messages":[1]}"#),
            (
                Endpoint::Chat,
                r#"{"model":"m","messages":[1],"max_tokens":-1}"#,
            ),
            (Endpoint::Chat, r#"{"model":"m","messages":[1],"n":0}"#),
            (
                Endpoint::Chat,
                r#"{"model":"m","messages":[1],"stream":true,"stream_options":{}}"#,
            ),
            (
                Endpoint::Chat,
                r#"{"model":"m","messages":[1],"stream":true,"stream_options":null}"#,
            ),
            (
                Endpoint::Chat,
                r#"{"model":"m","messages":[1],"stream_options":{"include_usage":"yes"}}"#,
            ),
            (Endpoint::Completions, r#"{"model":"m","prompt":null}"#),
            (
                Endpoint::Embeddings,
                r#"{"model":"m","input":"x","stream":true}"#,
            ),
        ] {
            assert!(
                parse_fast(endpoint, &Bytes::from(body), 1).is_none(),
                "{body}"
            );
        }
        // The document reading still takes what is valid among them.
        let raw =
            Bytes::from(r#"{"model":"m","messages":[1],"stream":true,"stream_options":null}"#);
        let mut p = parse(Endpoint::Chat, &raw, 1).expect("valid");
        assert_eq!(
            outgoing(&mut p, "u")["stream_options"]["include_usage"],
            true
        );
        assert!(
            parse(
                Endpoint::Completions,
                &Bytes::from(r#"{"model":"m","prompt":null}"#),
                1
            )
            .is_ok()
        );
        assert!(
            parse(
                Endpoint::Chat,
                &Bytes::from(r#"{"model":"m","messages":[]}"#),
                1
            )
            .is_err()
        );
    }

    #[test]
    fn an_answer_goes_out_as_it_came_with_only_the_model_renamed() {
        let answer = br#"{"id":"c","model":"up-model","choices":[{"message":{"content":"Hi \"x\""}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
        let (usage, text, body) =
            read_response(&Bytes::from_static(answer), "pub").expect("an answer");
        assert_eq!(usage.map(|u| (u.prompt, u.completion)), Some((3, 2)));
        assert!(text.is_empty(), "text is only gathered to count it");
        assert_eq!(
            &body[..],
            &br#"{"id":"c","model":"pub","choices":[{"message":{"content":"Hi \"x\""}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#[..]
        );
        // Numbers stay as written: nothing is parsed into floats and written again.
        let embedding = Bytes::from_static(
            br#"{"object":"list","data":[{"embedding":[0.10000000000000001,1e-7,-0.0]}],"model":"pub","usage":{"prompt_tokens":1,"total_tokens":1}}"#,
        );
        let (_, _, body) = read_response(&embedding, "pub").expect("an answer");
        assert_eq!(body, embedding);
        // No usage: the text is gathered for counting.
        let (usage, text, _) = read_response(
            &Bytes::from_static(br#"{"choices":[{"text":"a"},{"message":{"content":"b"}}]}"#),
            "pub",
        )
        .expect("an answer");
        assert_eq!((usage, text.as_str()), (None, "ab"));
        // Another shape is read as a document, and still renamed.
        let (_, _, body) = read_response(
            &Bytes::from_static(br#"{"model":"up","choices":[{"message":{"content":[{"type":"text","text":"a"}]}}]}"#),
            "pub",
        )
        .expect("an answer");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["model"], "pub");
        assert!(read_response(&Bytes::from_static(b"{not json"), "pub").is_err());
    }
}
