//! A stream relayed event by event: usage taken from the upstream (or counted), the model named
//! as the client asked, and the call settled once however it ends (complete, cut by the
//! upstream, left by the client, ended by the drain deadline).

use super::request::quoted;
use super::settle::Call;
use super::sse::{self, UpstreamUsage};
use super::{ProxyBody, ProxyResponse};
use crate::routing::Candidate;
use crate::usage::ErrorClass;
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use serde_json::Value;
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

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
    /// Counts the stream in `open_streams` while it lives.
    _open: crate::metrics::GaugeGuard,
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
                End::UpstreamCut => Some(ErrorClass::UpstreamCut),
                End::ClientGone => Some(ErrorClass::ClientCancelled),
                End::Halted => Some(ErrorClass::ServerShutdown),
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

pub(super) fn stream_response(
    call: Call,
    resp: reqwest::Response,
    cand: &Candidate,
    model: &str,
    client_wants_usage: bool,
    upstream: Duration,
) -> ProxyResponse {
    let halt = call.svc.halt.watch();
    let open = crate::metrics::GaugeGuard::new(&call.svc.metrics.open_streams);
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
        _open: open,
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
