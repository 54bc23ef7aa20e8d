//! mock-upstream: a deterministic OpenAI-compatible upstream for tests and benchmarks.
//!
//! Behaviour is chosen per request by `x-mock-*` headers, by a `"mock": {…}` object in the JSON
//! body, or by a path prefix `/m/<directives>/v1/…` (so a channel's `base_url` can carry it), e.g.
//! `/m/status=503,retry_after=2/v1`. Directives: `delay_ms` (before the headers), `status`,
//! `retry_after`, `chunks` (stream length), `chunk_delay_ms`, `cut_after` (close the stream after
//! N chunks, without `[DONE]`), `stall_after` (stop sending after N chunks), `omit_usage`,
//! `tool` (after the text, a call of the tool `get_weather`, its arguments in three pieces),
//! `reasoning` (reasoning before the text), `cached=N` (N of the prompt's tokens read from a
//! cache), `cache_write=N` and `cache_write_1h=N` (Anthropic: N tokens written to the cache
//! with the 5-minute and the 1-hour lifetime), `reasoning_tokens=N` (OpenAI chat and Responses:
//! N reasoning tokens more in the output count, reported in its details), `error_after=N`
//! (Anthropic: an `overloaded_error` event after N text deltas), `refuse_stream_options`,
//! `refuse_max_tokens`, `refuse_max_completion_tokens` (chat: a 400 for a body with that field,
//! as some compatible servers answer), `trickle_ms=N` (chat and completions, not
//! streamed: the answer's body in four pieces N ms apart), `prompt_tokens=N` (chat and completions: N prompt tokens
//! reported, as a prompt with images costs more than its text), `ignore_bound` (the reply's length ignores the output
//! bound the request names, which the mock otherwise honours as the providers do).
//!
//! Google's Gemini API is served at `/v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`, Azure OpenAI at `/openai/…` (see [`gemini`], [`azure`]).
//!
//! OpenAI's Responses API is served at `/v1/responses` (text output and with `tool` a function
//! call after it, the stream's events in order, usage with cached tokens; responses stored and
//! continued by `previous_response_id`, their context billed as input again). Anthropic's Messages API is served at `/v1/messages` and `/v1/messages/count_tokens` as its
//! reference documents it: `x-api-key` and `anthropic-version` required, `max_tokens` required,
//! block types checked, the event lifecycle (`message_start` … `message_stop`) with usage in
//! Anthropic's terms (input tokens exclude cache reads and writes).
//!
//! `GET /_mock/requests` lists what it received (path, model, stream, include_usage, outcome);
//! `DELETE /_mock/requests` clears the list; `GET /_mock/peak` tells the streams being sent now
//! and the most there were at once. Usage is deterministic: prompt tokens = words in the
//! input, completion tokens = chunks.
//!
//! `mock-upstream [--port N]` (default 0: a free port, printed as `listening on ADDR`).

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Value>>>);

impl Log {
    fn push(&self, v: Value) -> usize {
        let mut l = self.0.lock().expect("log lock");
        l.push(v);
        l.len() - 1
    }
    fn set(&self, i: usize, key: &str, v: Value) {
        if let Some(entry) = self.0.lock().expect("log lock").get_mut(i) {
            entry[key] = v;
        }
    }
}

#[derive(Default, Clone, Debug)]
struct Directives(HashMap<String, String>);

impl Directives {
    fn num(&self, k: &str) -> Option<u64> {
        self.0.get(k).and_then(|v| v.parse().ok())
    }
    fn flag(&self, k: &str) -> bool {
        self.0.get(k).is_some_and(|v| v == "1" || v == "true")
    }
    fn merge_path(&mut self, spec: &str) {
        for pair in spec.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, "1"));
            self.0.insert(k.to_string(), v.to_string());
        }
    }
    fn merge_body(&mut self, body: &Value) {
        if let Some(obj) = body.get("mock").and_then(Value::as_object) {
            for (k, v) in obj {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    other => other.to_string(),
                };
                self.0.insert(k.clone(), v);
            }
        }
    }
    fn merge_headers(&mut self, headers: &HeaderMap) {
        for (name, value) in headers {
            if let (Some(k), Ok(v)) = (name.as_str().strip_prefix("x-mock-"), value.to_str()) {
                self.0.insert(k.replace('-', "_"), v.to_string());
            }
        }
    }
}

fn words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(a) => a.iter().map(words).sum(),
        Value::Object(o) => o.get("content").or_else(|| o.get("text")).map_or(0, words),
        _ => 0,
    }
}

/// How many pieces of the reply a request gets: `chunks` (default all six), no more than the
/// output bound it names less the reasoning it reports, as the providers honour their bounds;
/// with `ignore_bound`, as an upstream that does not.
fn chunks_for(d: &Directives, bound: Option<u64>, reasoning: u64) -> u64 {
    let chunks = d.num("chunks").unwrap_or(REPLY.len() as u64).max(1);
    match bound {
        Some(b) if !d.flag("ignore_bound") => chunks.min(b.saturating_sub(reasoning).max(1)),
        _ => chunks,
    }
}

const REPLY: [&str; 6] = ["Hello", " from", " the", " mock", " upstream", "."];
const REASONING: &str = "Thinking it over.";
const TOOL_ID: &str = "call_mock_1";
/// A tool call's arguments, streamed in these pieces.
const TOOL_ARGS: [&str; 3] = ["{\"city\"", ":\"Par", "is\"}"];

async fn handle(
    log: Log,
    prefix: String,
    kind: &'static str,
    headers: HeaderMap,
    body: Bytes,
    extra: Value,
) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": format!("bad json: {e}"), "type": "invalid_request_error"}})))
                .into_response();
        }
    };
    let mut d = Directives::default();
    d.merge_path(&prefix);
    d.merge_body(&body);
    d.merge_headers(&headers);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let idx = log.push(json!({
        "path": kind, "prefix": prefix, "model": model, "stream": stream,
        "include_usage": include_usage, "authorization": auth, "outcome": "started", "body": body,
        "azure": extra,
    }));
    if let Some(ms) = d.num("delay_ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(status) = d
        .num("status")
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
    {
        log.set(idx, "outcome", json!(format!("status {}", status.as_u16())));
        let mut res = (status, Json(json!({"error": {"message": format!("mock failure {}", status.as_u16()), "type": "mock_error", "code": null}}))).into_response();
        if let Some(ra) = d.num("retry_after") {
            res.headers_mut().insert("retry-after", ra.into());
        }
        return res;
    }
    // What some OpenAI-compatible servers refuse.
    for field in ["stream_options", "max_tokens", "max_completion_tokens"] {
        if d.flag(&format!("refuse_{field}")) && body.get(field).is_some() {
            log.set(idx, "outcome", json!("status 400"));
            return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": format!("Unrecognized request argument supplied: {field}"), "type": "invalid_request_error"}}))).into_response();
        }
    }
    let prompt_tokens = d.num("prompt_tokens").unwrap_or(match kind {
        "chat" => body.get("messages").map_or(0, words),
        "completions" => body.get("prompt").map_or(0, words),
        _ => body.get("input").map_or(0, words),
    });
    let reasoning_tokens = d.num("reasoning_tokens");
    let bound = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|f| body.get(*f).and_then(Value::as_u64));
    let chunks = chunks_for(&d, bound, reasoning_tokens.unwrap_or(0));
    let omit_usage = d.flag("omit_usage");
    let completion_tokens = chunks + reasoning_tokens.unwrap_or(0);
    let mut usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens});
    if let Some(cached) = d.num("cached") {
        usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
    }
    if let Some(n) = reasoning_tokens {
        usage["completion_tokens_details"] = json!({"reasoning_tokens": n});
    }
    let text: String = (0..chunks)
        .map(|i| REPLY[(i as usize) % REPLY.len()])
        .collect();

    if kind == "embeddings" {
        let inputs = match body.get("input") {
            Some(Value::Array(a)) => a.len().max(1),
            _ => 1,
        };
        let data: Vec<Value> = (0..inputs)
            .map(|i| json!({"object": "embedding", "index": i, "embedding": (0..8).map(|j| (i + j) as f64 / 8.0).collect::<Vec<_>>()}))
            .collect();
        log.set(idx, "outcome", json!("completed"));
        let mut out = json!({"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}});
        if omit_usage {
            out.as_object_mut().expect("object").remove("usage");
        }
        return Json(out).into_response();
    }
    if !stream {
        log.set(idx, "outcome", json!("completed"));
        let mut out = if kind == "chat" {
            let mut message = json!({"role": "assistant", "content": text});
            if d.flag("reasoning") {
                message["reasoning_content"] = json!(REASONING);
            }
            let mut finish = "stop";
            if d.flag("tool") {
                message["tool_calls"] = json!([{"id": TOOL_ID, "type": "function",
                    "function": {"name": "get_weather", "arguments": TOOL_ARGS.concat()}}]);
                finish = "tool_calls";
            }
            json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage})
        } else {
            json!({"id": "cmpl-mock", "object": "text_completion", "created": 1, "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}], "usage": usage})
        };
        if omit_usage {
            out.as_object_mut().expect("object").remove("usage");
        }
        if let Some(ms) = d.num("trickle_ms") {
            return trickle(out.to_string(), Duration::from_millis(ms));
        }
        return Json(out).into_response();
    }

    let cut_after = d.num("cut_after");
    let stall_after = d.num("stall_after");
    let chunk_delay = Duration::from_millis(d.num("chunk_delay_ms").unwrap_or(0));
    let guard = Outcome::new(log.clone(), idx);
    let stream = async_stream(
        kind == "chat",
        (d.flag("reasoning"), d.flag("tool")),
        model,
        chunks,
        cut_after,
        stall_after,
        chunk_delay,
        include_usage && !omit_usage,
        usage,
        guard,
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .expect("response")
}

/// Marks the request cancelled if its stream is dropped before it finished.
struct Outcome {
    log: Log,
    idx: usize,
    done: bool,
}

/// Streams being sent now, and the most there were at once (`GET /_mock/peak`).
static IN_FLIGHT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static PEAK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Outcome {
    /// A stream that starts now: counted in flight until it is dropped.
    fn new(log: Log, idx: usize) -> Outcome {
        use std::sync::atomic::Ordering;
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        Outcome {
            log,
            idx,
            done: false,
        }
    }

    /// Records how the stream ended; the request no longer counts as cancelled.
    fn finish(&mut self, outcome: &str) {
        self.log.set(self.idx, "outcome", json!(outcome));
        self.done = true;
    }
}

/// Cuts a stream as a broken connection would, after what was sent has reached the client.
async fn cut(guard: &mut Outcome, tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    guard.finish("cut");
    let _ = tx
        .send(Err(std::io::Error::other("mock cut the stream")))
        .await;
}

impl Drop for Outcome {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if !self.done {
            self.log.set(self.idx, "outcome", json!("cancelled"));
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one flat list of stream directives"
)]
fn async_stream(
    chat: bool,
    (reasoning, tool): (bool, bool),
    model: String,
    chunks: u64,
    cut_after: Option<u64>,
    stall_after: Option<u64>,
    chunk_delay: Duration,
    send_usage: bool,
    usage: Value,
    mut guard: Outcome,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let chunk = |delta: Value, finish: Value| {
            let event = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            Ok(Bytes::from(format!("data: {event}\n\n")))
        };
        if chat && reasoning {
            let _ = tx
                .send(chunk(
                    json!({"role": "assistant", "reasoning_content": REASONING}),
                    Value::Null,
                ))
                .await;
        }
        for i in 0..chunks {
            if cut_after == Some(i) {
                return cut(&mut guard, &tx).await;
            }
            if stall_after == Some(i) {
                guard.log.set(guard.idx, "outcome", json!("stalled"));
                tx.closed().await;
                guard.finish("cancelled");
                return;
            }
            if !chunk_delay.is_zero() {
                tokio::time::sleep(chunk_delay).await;
            }
            let piece = REPLY[(i as usize) % REPLY.len()];
            let event = if chat {
                json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]})
            } else {
                json!({"id": "cmpl-mock", "object": "text_completion", "created": 1, "model": model,
                    "choices": [{"index": 0, "text": piece, "finish_reason": null}]})
            };
            if tx
                .send(Ok(Bytes::from(format!("data: {event}\n\n"))))
                .await
                .is_err()
            {
                return; // the client went away: the guard records the cancellation
            }
        }
        if chat && tool {
            for (i, piece) in TOOL_ARGS.iter().enumerate() {
                let call = if i == 0 {
                    json!({"index": 0, "id": TOOL_ID, "type": "function", "function": {"name": "get_weather", "arguments": piece}})
                } else {
                    json!({"index": 0, "function": {"arguments": piece}})
                };
                let _ = tx
                    .send(chunk(json!({"tool_calls": [call]}), Value::Null))
                    .await;
            }
        }
        let finish = if chat {
            json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": if tool { "tool_calls" } else { "stop" }}]})
        } else {
            json!({"id": "cmpl-mock", "object": "text_completion", "created": 1, "model": model,
                "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})
        };
        let mut tail = format!("data: {finish}\n\n");
        if send_usage {
            let u = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [], "usage": usage});
            tail.push_str(&format!("data: {u}\n\n"));
        }
        tail.push_str("data: [DONE]\n\n");
        if tx.send(Ok(Bytes::from(tail))).await.is_ok() {
            guard.finish("completed");
        }
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// An error in Anthropic's shape.
fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

/// The block types a Messages request may hold, by role (as the API reference lists them).
fn block_ok(role: &str, kind: &str) -> bool {
    match role {
        "user" => matches!(
            kind,
            "text" | "image" | "document" | "tool_result" | "search_result"
        ),
        "assistant" => matches!(
            kind,
            "text" | "tool_use" | "thinking" | "redacted_thinking" | "server_tool_use"
        ),
        _ => false,
    }
}

/// Anthropic's Messages API (`count` for `/messages/count_tokens`).
async fn anthropic(
    log: Log,
    prefix: String,
    count: bool,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return anthropic_error(StatusCode::BAD_REQUEST, "invalid_request_error", "bad json");
    };
    let mut d = Directives::default();
    d.merge_path(&prefix);
    d.merge_body(&body);
    d.merge_headers(&headers);
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let idx = log.push(json!({
        "path": if count { "count_tokens" } else { "messages" }, "prefix": prefix, "model": model,
        "stream": stream, "x_api_key": header("x-api-key"), "authorization": header("authorization"),
        "anthropic_version": header("anthropic-version"), "anthropic_beta": header("anthropic-beta"),
        "outcome": "started", "body": body,
    }));
    if header("x-api-key").is_empty() {
        return anthropic_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        );
    }
    if header("anthropic-version").is_empty() {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    if let Some(ms) = d.num("delay_ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(status) = d
        .num("status")
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
    {
        log.set(idx, "outcome", json!(format!("status {}", status.as_u16())));
        let kind = if status.as_u16() == 529 {
            "overloaded_error"
        } else {
            "api_error"
        };
        return anthropic_error(status, kind, &format!("mock failure {}", status.as_u16()));
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "messages: Field required",
        );
    };
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        for (j, b) in m
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
            if !block_ok(role, kind) {
                return anthropic_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!(
                        "messages.{i}.content.{j}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags"
                    ),
                );
            }
        }
    }
    let input = messages.iter().map(words).sum::<u64>() + body.get("system").map_or(0, words);
    if count {
        log.set(idx, "outcome", json!("completed"));
        return Json(json!({"input_tokens": input})).into_response();
    }
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Field required",
        );
    }
    let chunks = chunks_for(&d, body.get("max_tokens").and_then(Value::as_u64), 0);
    let cache_read = d.num("cached").unwrap_or(0);
    let cache_write_5m = d.num("cache_write").unwrap_or(0);
    let cache_write_1h = d.num("cache_write_1h").unwrap_or(0);
    let cache_write = cache_write_5m + cache_write_1h;
    let cache_creation = json!({"ephemeral_5m_input_tokens": cache_write_5m,
        "ephemeral_1h_input_tokens": cache_write_1h});
    let (reasoning, tool) = (d.flag("reasoning"), d.flag("tool"));
    let text: String = (0..chunks)
        .map(|i| REPLY[(i as usize) % REPLY.len()])
        .collect();
    let stop = if tool { "tool_use" } else { "end_turn" };
    let usage = json!({"input_tokens": input, "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read, "cache_creation": cache_creation.clone(),
        "output_tokens": chunks});
    if !stream {
        log.set(idx, "outcome", json!("completed"));
        let mut content = Vec::new();
        if reasoning {
            content
                .push(json!({"type": "thinking", "thinking": REASONING, "signature": "sig-mock"}));
        }
        content.push(json!({"type": "text", "text": text}));
        if tool {
            content.push(json!({"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {"city": "Paris"}}));
        }
        return Json(
            json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage}),
        )
        .into_response();
    }
    let cut_after = d.num("cut_after");
    let error_after = d.num("error_after");
    let chunk_delay = Duration::from_millis(d.num("chunk_delay_ms").unwrap_or(0));
    let mut guard = Outcome::new(log.clone(), idx);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let ev =
            |kind: &str, data: Value| Ok(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")));
        let mut events = vec![ev(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "cache_creation_input_tokens": cache_write,
                "cache_read_input_tokens": cache_read, "cache_creation": cache_creation,
                "output_tokens": 1}}}),
        )];
        let mut index = 0;
        if reasoning {
            events.push(ev("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
            events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": REASONING}})));
            events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": "sig-mock"}})));
            events.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
            index += 1;
        }
        events.push(ev("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
        events.push(ev("ping", json!({"type": "ping"})));
        for send in events {
            if tx.send(send).await.is_err() {
                return;
            }
        }
        for i in 0..chunks {
            if cut_after == Some(i) {
                return cut(&mut guard, &tx).await;
            }
            if error_after == Some(i) {
                guard.finish("error");
                let _ = tx.send(ev("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))).await;
                return;
            }
            if !chunk_delay.is_zero() {
                tokio::time::sleep(chunk_delay).await;
            }
            let piece = REPLY[(i as usize) % REPLY.len()];
            if tx.send(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}))).await.is_err() {
                return;
            }
        }
        let mut tail = vec![ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )];
        if tool {
            index += 1;
            tail.push(ev("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {}}})));
            for piece in TOOL_ARGS {
                tail.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})));
            }
            tail.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
        tail.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": chunks}})));
        tail.push(ev("message_stop", json!({"type": "message_stop"})));
        for send in tail {
            if tx.send(send).await.is_err() {
                return;
            }
        }
        guard.finish("completed");
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(tokio_stream_from(rx)))
        .expect("response")
}

/// A non-stream answer sent in four pieces, `gap` apart: a long answer that keeps coming.
fn trickle(body: String, gap: Duration) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let bytes = body.into_bytes();
        let step = bytes.len().div_ceil(4);
        for (i, piece) in bytes.chunks(step).enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            if tx.send(Ok(Bytes::copy_from_slice(piece))).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(tokio_stream_from(rx)))
        .expect("response")
}

/// The Responses API's stored responses: id -> the tokens of their whole context (input and
/// output), which a request that names one as `previous_response_id` brings as input.
static STORED: std::sync::LazyLock<Mutex<HashMap<String, u64>>> =
    std::sync::LazyLock::new(Mutex::default);
static NEXT_RESPONSE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// OpenAI's Responses API, as an `openai` channel serves it: text output, usage with cached
/// tokens, the stream's events in order with their sequence numbers; responses stored (unless
/// `store: false`) and continued by `previous_response_id` (an unknown one is a 400).
async fn responses(
    log: Log,
    prefix: String,
    headers: HeaderMap,
    body: Bytes,
    extra: Value,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "bad json", "type": "invalid_request_error"}})),
        )
            .into_response();
    };
    let mut d = Directives::default();
    d.merge_path(&prefix);
    d.merge_body(&body);
    d.merge_headers(&headers);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let idx = log.push(
        json!({"path": "responses", "prefix": prefix, "model": model, "stream": stream,
        "authorization": auth, "outcome": "started", "body": body, "azure": extra}),
    );
    if let Some(status) = d
        .num("status")
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
    {
        log.set(idx, "outcome", json!(format!("status {}", status.as_u16())));
        return (status, Json(json!({"error": {"message": format!("mock failure {}", status.as_u16()), "type": "mock_error"}}))).into_response();
    }
    // A stored response continued: its whole context is input again, as OpenAI bills it.
    let before = match body.get("previous_response_id").and_then(Value::as_str) {
        None => 0,
        Some(id) => match STORED.lock().expect("store lock").get(id) {
            Some(tokens) => *tokens,
            None => {
                log.set(idx, "outcome", json!("status 400"));
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": {"message": format!("Previous response with id '{id}' not found."),
                        "type": "invalid_request_error", "param": "previous_response_id",
                        "code": "previous_response_not_found"}})),
                )
                    .into_response();
            }
        },
    };
    let input =
        before + body.get("input").map_or(0, words) + body.get("instructions").map_or(0, words);
    let reasoning_tokens = d.num("reasoning_tokens").unwrap_or(0);
    let chunks = chunks_for(
        &d,
        body.get("max_output_tokens").and_then(Value::as_u64),
        reasoning_tokens,
    );
    let id = format!(
        "resp_mock_{}",
        NEXT_RESPONSE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    // Stored unless the request says `store: false`, as OpenAI does.
    if body.get("store").and_then(Value::as_bool) != Some(false) {
        let mut stored = STORED.lock().expect("store lock");
        if stored.len() >= 100_000 {
            stored.clear(); // a load run's responses: nothing continues them
        }
        stored.insert(id.clone(), input + chunks + reasoning_tokens);
    }
    let cached = d.num("cached").unwrap_or(0);
    let text: String = (0..chunks)
        .map(|i| REPLY[(i as usize) % REPLY.len()])
        .collect();
    let output = chunks + reasoning_tokens;
    let usage = json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input + output});
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": id, "object": "response",
        "created_at": 1, "status": status, "error": null, "incomplete_details": null, "model": model,
        "output": output, "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "usage": usage})
    };
    let message = json!({"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]});
    let tool = d.flag("tool");
    let call = json!({"type": "function_call", "id": "fc_mock_1", "call_id": "call_mock_1",
        "name": "get_weather", "arguments": TOOL_ARGS.concat(), "status": "completed"});
    let output = if tool {
        json!([message, call])
    } else {
        json!([message])
    };
    if !stream {
        log.set(idx, "outcome", json!("completed"));
        return Json(response("completed", output, usage)).into_response();
    }
    let cut_after = d.num("cut_after");
    let chunk_delay = Duration::from_millis(d.num("chunk_delay_ms").unwrap_or(0));
    let mut guard = Outcome::new(log.clone(), idx);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let created = response("in_progress", json!([]), Value::Null);
    let completed = response("completed", output, usage);
    tokio::spawn(async move {
        let mut seq = 0u64;
        let mut ev = |kind: &str, mut data: Value| {
            data["type"] = json!(kind);
            data["sequence_number"] = json!(seq);
            seq += 1;
            Ok(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")))
        };
        let head = vec![
            ev("response.created", json!({"response": created})),
            ev(
                "response.output_item.added",
                json!({"output_index": 0, "item": {"type": "message", "id": "msg_mock", "status": "in_progress", "role": "assistant", "content": []}}),
            ),
            ev(
                "response.content_part.added",
                json!({"item_id": "msg_mock", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
            ),
        ];
        for e in head {
            if tx.send(e).await.is_err() {
                return;
            }
        }
        for i in 0..chunks {
            if cut_after == Some(i) {
                return cut(&mut guard, &tx).await;
            }
            if !chunk_delay.is_zero() {
                tokio::time::sleep(chunk_delay).await;
            }
            let piece = REPLY[(i as usize) % REPLY.len()];
            let e = ev(
                "response.output_text.delta",
                json!({"item_id": "msg_mock", "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}),
            );
            if tx.send(e).await.is_err() {
                return;
            }
        }
        let mut tail = vec![
            ev(
                "response.output_text.done",
                json!({"item_id": "msg_mock", "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
            ),
            ev(
                "response.content_part.done",
                json!({"item_id": "msg_mock", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": []}}),
            ),
            ev(
                "response.output_item.done",
                json!({"output_index": 0, "item": message}),
            ),
        ];
        if tool {
            let mut added = call.clone();
            added["arguments"] = json!("");
            added["status"] = json!("in_progress");
            tail.push(ev(
                "response.output_item.added",
                json!({"output_index": 1, "item": added}),
            ));
            for piece in TOOL_ARGS {
                tail.push(ev(
                    "response.function_call_arguments.delta",
                    json!({"item_id": "fc_mock_1", "output_index": 1, "delta": piece}),
                ));
            }
            tail.push(ev(
                "response.function_call_arguments.done",
                json!({"item_id": "fc_mock_1", "output_index": 1, "arguments": TOOL_ARGS.concat()}),
            ));
            tail.push(ev(
                "response.output_item.done",
                json!({"output_index": 1, "item": call}),
            ));
        }
        tail.push(ev("response.completed", json!({"response": completed})));
        for e in tail {
            if tx.send(e).await.is_err() {
                return;
            }
        }
        guard.finish("completed");
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(tokio_stream_from(rx)))
        .expect("response")
}

/// Azure OpenAI as its reference documents it: the `api-key` header; the v1 API
/// (`/openai/v1/chat/completions`, `…/completions`, `…/embeddings`, `…/responses`, the
/// deployment named as the model) and the deployment URLs
/// (`/openai/deployments/{deployment}/chat/completions?api-version=…`, `/openai/responses?…`),
/// which need an `api-version`. What it was called with is logged under `azure`.
async fn azure(
    log: Log,
    prefix: String,
    rest: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let azure_error = |status: StatusCode, message: &str| {
        (
            status,
            Json(json!({"error": {"code": status.as_u16().to_string(), "message": message}})),
        )
            .into_response()
    };
    let key = headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if key.is_empty() {
        return azure_error(
            StatusCode::UNAUTHORIZED,
            "Access denied due to invalid subscription key or wrong API endpoint.",
        );
    }
    let version = query.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("api-version="))
            .map(str::to_string)
    });
    let parts: Vec<&str> = rest.split('/').collect();
    let (kind, deployment) = match parts.as_slice() {
        ["v1", "chat", "completions"] => ("chat", None),
        ["v1", "completions"] => ("completions", None),
        ["v1", "embeddings"] => ("embeddings", None),
        ["v1", "responses"] => ("responses", None),
        ["responses"] => ("responses", Some("")),
        ["deployments", d, "chat", "completions"] => ("chat", Some(*d)),
        ["deployments", d, "completions"] => ("completions", Some(*d)),
        ["deployments", d, "embeddings"] => ("embeddings", Some(*d)),
        _ => return azure_error(StatusCode::NOT_FOUND, "Resource not found"),
    };
    if deployment.is_some() && version.is_none() {
        return azure_error(StatusCode::NOT_FOUND, "Resource not found");
    }
    let extra = json!({"api_key": key, "api_version": version,
        "deployment": deployment.filter(|d| !d.is_empty())});
    match kind {
        "responses" => responses(log, prefix, headers, body, extra).await,
        _ => handle(log, prefix, kind, headers, body, extra).await,
    }
}

/// An error in Google's shape.
fn google_error(status: StatusCode, google_status: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message, "status": google_status}})),
    )
        .into_response()
}

/// Google's Gemini API as its reference documents it: `x-goog-api-key` required;
/// `models/{model}:generateContent` answers a `GenerateContentResponse`, and
/// `models/{model}:streamGenerateContent?alt=sse` one per event, each with the usage so far, the
/// last with its `finishReason`. `contents` must alternate nothing but `user` and `model` turns
/// of non-empty parts. Prompt tokens = words of the contents and the system instruction;
/// `reasoning` puts a thought part first (3 thought tokens, outside `candidatesTokenCount`),
/// `tool` a `functionCall` last, `cached=N` reports N cached tokens; `maxOutputTokens` is
/// honoured (the answer ends at it with `MAX_TOKENS`); `cut_after=N` ends the stream after N
/// text events without a finish reason.
async fn gemini(
    log: Log,
    prefix: String,
    action: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if key.is_empty() {
        return google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers. Please use API Key.",
        );
    }
    let Some((model, method)) = action.split_once(':') else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such method");
    };
    let (model, method) = (model.to_string(), method.to_string());
    let stream = match method.as_str() {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such method"),
    };
    if stream && query.as_deref() != Some("alt=sse") {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "the mock streams with alt=sse only",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "bad json");
    };
    let mut d = Directives::default();
    d.merge_path(&prefix);
    d.merge_headers(&headers);
    let idx = log.push(json!({
        "path": "gemini", "prefix": prefix, "model": model, "stream": stream,
        "x_goog_api_key": key, "outcome": "started", "body": body,
    }));
    if let Some(status) = d
        .num("status")
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
    {
        log.set(idx, "outcome", json!(format!("status {}", status.as_u16())));
        return google_error(
            status,
            "UNAVAILABLE",
            &format!("mock failure {}", status.as_u16()),
        );
    }
    let contents = body.get("contents").and_then(Value::as_array);
    let well_formed = contents.is_some_and(|c| {
        !c.is_empty()
            && c.iter().all(|t| {
                matches!(t["role"].as_str(), Some("user" | "model"))
                    && t["parts"].as_array().is_some_and(|p| !p.is_empty())
            })
    });
    if !well_formed {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "contents must be user and model turns of non-empty parts",
        );
    }
    let prompt: u64 = contents
        .into_iter()
        .flatten()
        .map(|t| words(&t["parts"]))
        .sum::<u64>()
        + body.pointer("/systemInstruction/parts").map_or(0, words);
    let mut chunks = d.num("chunks").unwrap_or(REPLY.len() as u64).max(1);
    let mut finish = "STOP";
    if let Some(max) = body
        .pointer("/generationConfig/maxOutputTokens")
        .and_then(Value::as_u64)
        && max < chunks
        && !d.flag("ignore_bound")
    {
        chunks = max;
        finish = "MAX_TOKENS";
    }
    let (reasoning, tool) = (d.flag("reasoning"), d.flag("tool"));
    let cached = d.num("cached");
    let usage = move |candidates: u64| {
        let mut u = json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates + if reasoning { 3 } else { 0 }});
        if reasoning {
            u["thoughtsTokenCount"] = json!(3);
        }
        if let Some(c) = cached {
            u["cachedContentTokenCount"] = json!(c);
        }
        u
    };
    let answer = move |parts: Vec<Value>, finish: Option<&str>, candidates: u64| {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        json!({"candidates": [candidate], "usageMetadata": usage(candidates),
            "modelVersion": model, "responseId": "gemini-mock"})
    };
    let call = json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}});
    if !stream {
        log.set(idx, "outcome", json!("completed"));
        let mut parts = Vec::new();
        if reasoning {
            parts.push(json!({"text": REASONING, "thought": true}));
        }
        let text: String = (0..chunks)
            .map(|i| REPLY[(i as usize) % REPLY.len()])
            .collect();
        parts.push(json!({"text": text}));
        if tool {
            parts.push(call);
        }
        return Json(answer(parts, Some(finish), chunks)).into_response();
    }
    let cut_after = d.num("cut_after");
    let chunk_delay = Duration::from_millis(d.num("chunk_delay_ms").unwrap_or(0));
    let mut guard = Outcome::new(log.clone(), idx);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let ev = |v: Value| Ok(Bytes::from(format!("data: {v}\r\n\r\n")));
        if reasoning
            && tx
                .send(ev(answer(
                    vec![json!({"text": REASONING, "thought": true})],
                    None,
                    0,
                )))
                .await
                .is_err()
        {
            return;
        }
        for i in 0..chunks {
            if cut_after == Some(i) {
                return cut(&mut guard, &tx).await;
            }
            if !chunk_delay.is_zero() {
                tokio::time::sleep(chunk_delay).await;
            }
            let mut parts = vec![json!({"text": REPLY[(i as usize) % REPLY.len()]})];
            let last = i + 1 == chunks;
            if last && tool {
                parts.push(call.clone());
            }
            if tx
                .send(ev(answer(parts, last.then_some(finish), i + 1)))
                .await
                .is_err()
            {
                return;
            }
        }
        guard.finish("completed");
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(tokio_stream_from(rx)))
        .expect("response")
}

fn router(log: Log) -> Router {
    let chat = |prefix: String, log: Log, headers: HeaderMap, body: Bytes| {
        handle(log, prefix, "chat", headers, body, Value::Null)
    };
    let comp = |prefix: String, log: Log, headers: HeaderMap, body: Bytes| {
        handle(log, prefix, "completions", headers, body, Value::Null)
    };
    let emb = |prefix: String, log: Log, headers: HeaderMap, body: Bytes| {
        handle(log, prefix, "embeddings", headers, body, Value::Null)
    };
    Router::new()
        .route("/v1/chat/completions", post(move |State(l): State<Log>, h: HeaderMap, b: Bytes| chat(String::new(), l, h, b)))
        .route("/v1/completions", post(move |State(l): State<Log>, h: HeaderMap, b: Bytes| comp(String::new(), l, h, b)))
        .route("/v1/embeddings", post(move |State(l): State<Log>, h: HeaderMap, b: Bytes| emb(String::new(), l, h, b)))
        .route("/m/{spec}/v1/chat/completions", post(move |Path(p): Path<String>, State(l): State<Log>, h: HeaderMap, b: Bytes| chat(p, l, h, b)))
        .route("/m/{spec}/v1/completions", post(move |Path(p): Path<String>, State(l): State<Log>, h: HeaderMap, b: Bytes| comp(p, l, h, b)))
        .route("/m/{spec}/v1/embeddings", post(move |Path(p): Path<String>, State(l): State<Log>, h: HeaderMap, b: Bytes| emb(p, l, h, b)))
        .route("/v1/responses", post(|State(l): State<Log>, h: HeaderMap, b: Bytes| responses(l, String::new(), h, b, Value::Null)))
        .route("/m/{spec}/v1/responses", post(|Path(p): Path<String>, State(l): State<Log>, h: HeaderMap, b: Bytes| responses(l, p, h, b, Value::Null)))
        .route("/v1beta/models/{action}", post(|Path(a): Path<String>, RawQuery(q): RawQuery, State(l): State<Log>, h: HeaderMap, b: Bytes| gemini(l, String::new(), a, q, h, b)))
        .route("/m/{spec}/v1beta/models/{action}", post(|Path((p, a)): Path<(String, String)>, RawQuery(q): RawQuery, State(l): State<Log>, h: HeaderMap, b: Bytes| gemini(l, p, a, q, h, b)))
        .route("/openai/{*rest}", post(|Path(r): Path<String>, RawQuery(q): RawQuery, State(l): State<Log>, h: HeaderMap, b: Bytes| azure(l, String::new(), r, q, h, b)))
        .route("/m/{spec}/openai/{*rest}", post(|Path((p, r)): Path<(String, String)>, RawQuery(q): RawQuery, State(l): State<Log>, h: HeaderMap, b: Bytes| azure(l, p, r, q, h, b)))
        .route("/v1/messages", post(|State(l): State<Log>, h: HeaderMap, b: Bytes| anthropic(l, String::new(), false, h, b)))
        .route("/v1/messages/count_tokens", post(|State(l): State<Log>, h: HeaderMap, b: Bytes| anthropic(l, String::new(), true, h, b)))
        .route("/m/{spec}/v1/messages", post(|Path(p): Path<String>, State(l): State<Log>, h: HeaderMap, b: Bytes| anthropic(l, p, false, h, b)))
        .route("/m/{spec}/v1/messages/count_tokens", post(|Path(p): Path<String>, State(l): State<Log>, h: HeaderMap, b: Bytes| anthropic(l, p, true, h, b)))
        .route("/v1/models", get(|| async { Json(json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "owned_by": "mock"}]})) }))
        .route(
            "/_mock/peak",
            get(|| async {
                use std::sync::atomic::Ordering;
                Json(json!({"in_flight": IN_FLIGHT.load(Ordering::SeqCst), "peak": PEAK.load(Ordering::SeqCst)}))
            }),
        )
        .route(
            "/_mock/requests",
            get(|State(l): State<Log>| async move { Json(Value::Array(l.0.lock().expect("log lock").clone())) })
                .delete(|State(l): State<Log>| async move {
                    l.0.lock().expect("log lock").clear();
                    StatusCode::NO_CONTENT
                }),
        )
        .with_state(log)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--port" {
            port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(Log::default())).await
}
