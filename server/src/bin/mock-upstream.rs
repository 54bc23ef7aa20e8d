//! mock-upstream: a deterministic OpenAI-compatible upstream for tests and benchmarks.
//!
//! Behaviour is chosen per request by `x-mock-*` headers, by a `"mock": {…}` object in the JSON
//! body, or by a path prefix `/m/<directives>/v1/…` (so a channel's `base_url` can carry it), e.g.
//! `/m/status=503,retry_after=2/v1`. Directives: `delay_ms` (before the headers), `status`,
//! `retry_after`, `chunks` (stream length), `chunk_delay_ms`, `cut_after` (close the stream after
//! N chunks, without `[DONE]`), `stall_after` (stop sending after N chunks), `omit_usage`.
//!
//! `GET /_mock/requests` lists what it received (path, model, stream, include_usage, outcome);
//! `DELETE /_mock/requests` clears the list. Usage is deterministic: prompt tokens = words in the
//! input, completion tokens = chunks.
//!
//! `mock-upstream [--port N]` (default 0: a free port, printed as `listening on ADDR`).

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
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

const REPLY: [&str; 6] = ["Hello", " from", " the", " mock", " upstream", "."];

async fn handle(
    log: Log,
    prefix: String,
    kind: &'static str,
    headers: HeaderMap,
    body: Bytes,
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
    let prompt_tokens = match kind {
        "chat" => body.get("messages").map_or(0, words),
        "completions" => body.get("prompt").map_or(0, words),
        _ => body.get("input").map_or(0, words),
    };
    let chunks = d.num("chunks").unwrap_or(REPLY.len() as u64).max(1);
    let omit_usage = d.flag("omit_usage");
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": chunks, "total_tokens": prompt_tokens + chunks});
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
            json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage})
        } else {
            json!({"id": "cmpl-mock", "object": "text_completion", "created": 1, "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}], "usage": usage})
        };
        if omit_usage {
            out.as_object_mut().expect("object").remove("usage");
        }
        return Json(out).into_response();
    }

    let cut_after = d.num("cut_after");
    let stall_after = d.num("stall_after");
    let chunk_delay = Duration::from_millis(d.num("chunk_delay_ms").unwrap_or(0));
    let guard = Outcome {
        log: log.clone(),
        idx,
        done: false,
    };
    let stream = async_stream(
        kind == "chat",
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

impl Outcome {
    /// Records how the stream ended; the request no longer counts as cancelled.
    fn finish(&mut self, outcome: &str) {
        self.log.set(self.idx, "outcome", json!(outcome));
        self.done = true;
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
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
        for i in 0..chunks {
            if cut_after == Some(i) {
                // Let what was sent reach the client first, as a real cut would.
                tokio::time::sleep(Duration::from_millis(100)).await;
                guard.finish("cut");
                let _ = tx
                    .send(Err(std::io::Error::other("mock cut the stream")))
                    .await;
                return;
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
        let finish = if chat {
            json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
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

fn router(log: Log) -> Router {
    let chat = |prefix: String, log: Log, headers: HeaderMap, body: Bytes| {
        handle(log, prefix, "chat", headers, body)
    };
    let comp = |prefix: String, log: Log, headers: HeaderMap, body: Bytes| {
        handle(log, prefix, "completions", headers, body)
    };
    let emb = |prefix: String, log: Log, headers: HeaderMap, body: Bytes| {
        handle(log, prefix, "embeddings", headers, body)
    };
    Router::new()
        .route("/v1/chat/completions", post(move |State(l): State<Log>, h: HeaderMap, b: Bytes| chat(String::new(), l, h, b)))
        .route("/v1/completions", post(move |State(l): State<Log>, h: HeaderMap, b: Bytes| comp(String::new(), l, h, b)))
        .route("/v1/embeddings", post(move |State(l): State<Log>, h: HeaderMap, b: Bytes| emb(String::new(), l, h, b)))
        .route("/m/{spec}/v1/chat/completions", post(move |Path(p): Path<String>, State(l): State<Log>, h: HeaderMap, b: Bytes| chat(p, l, h, b)))
        .route("/m/{spec}/v1/completions", post(move |Path(p): Path<String>, State(l): State<Log>, h: HeaderMap, b: Bytes| comp(p, l, h, b)))
        .route("/m/{spec}/v1/embeddings", post(move |Path(p): Path<String>, State(l): State<Log>, h: HeaderMap, b: Bytes| emb(p, l, h, b)))
        .route("/v1/models", get(|| async { Json(json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "owned_by": "mock"}]})) }))
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
