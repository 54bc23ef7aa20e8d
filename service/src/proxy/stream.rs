//! A stream relayed event by event: usage taken from the upstream (or counted), the model named
//! as the client asked, and the call settled once however it ends (complete, cut by the
//! upstream, left by the client, ended by the drain deadline).

use super::anthropic::{self, UsageSoFar};
use super::convert::{ChatChunk, ChatToMessages};
use super::request::quoted;
use super::responses::{ChatToResponses, Echo};
use super::settle::Call;
use super::sse::{self, UpstreamUsage};
use super::{Mode, ProxyBody, ProxyResponse};
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
    /// Ended by the gateway at the output bound the upstream ignored.
    AtBound,
}

/// How far past its bound a stream may run by the gateway's own count before it is ended: an
/// eighth, since the gateway's tokenizer and the provider's differ (an honest stream that ends at
/// its bound is never cut). Only the bound is charged either way.
fn bound_slack(bound: u64) -> u64 {
    bound / 8
}

/// The text's length at which its tokens are first counted against `limit`: twice the limit in
/// bytes and a little more, which text of a usual density (about four bytes a token) reaches only
/// past half its limit, so a stream that ends within its bound is rarely counted at all (each
/// count is a trip to the token-counting thread).
fn first_check(limit: u64) -> usize {
    usize::try_from(limit.saturating_mul(2).saturating_add(64)).unwrap_or(usize::MAX)
}

/// The least growth of the text between two counts, in bytes.
const CHECK_STEP: u64 = 32;

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
    /// How the stream is relayed.
    mode: Mode,
    /// A Messages stream: its usage so far, and whether the upstream sent an error event.
    messages_usage: UsageSoFar,
    upstream_error: bool,
    /// A Messages call on a chat stream: the conversion.
    convert: Option<Box<ChatToMessages>>,
    /// A Responses call on a chat stream: the conversion.
    to_responses: Option<Box<ChatToResponses>>,
    /// The output bound the upstream was sent, and the length of `text` at which its tokens are
    /// next counted against it ([`first_check`], then the bytes the limit leaves, at least
    /// [`CHECK_STEP`]: a token is at least a byte, so text that grew less cannot have passed it
    /// by more).
    bound: u64,
    check_at: usize,
    /// A Messages stream: the content block open now. A Responses stream: its id and the next
    /// sequence number.
    open_block: Option<u64>,
    response_id: Option<String>,
    next_sequence: u64,
    /// The stream came to its end without the usage the client's answer reports (a chat
    /// client's `include_usage`, a converted stream's last event): the gateway counts it before
    /// that end is sent, and `counted` says the usage is its own.
    counting: bool,
    counted: bool,
    /// A chat stream's `id` and `created` (JSON text), for the usage chunk the gateway adds.
    chunk_id: Option<(String, String)>,
}

impl Relay {
    fn on_event(&mut self, event: sse::Event) {
        match self.mode {
            Mode::Chat => self.on_chat_event(event),
            Mode::Messages => self.on_messages_event(event),
            Mode::ChatToMessages | Mode::ChatToResponses => self.on_converted_event(event),
            Mode::Responses => self.on_responses_event(event),
        }
    }

    /// A Responses event, relayed as it came (the model renamed in the events that carry the
    /// response): the usage comes with `response.completed` (or `.incomplete`).
    fn on_responses_event(&mut self, event: sse::Event) {
        #[derive(serde::Deserialize)]
        struct ResponsesEvent<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
            #[serde(default, borrow)]
            delta: Option<std::borrow::Cow<'a, str>>,
            #[serde(default)]
            sequence_number: Option<u64>,
        }
        let Some(data) = sse::data_of(event.lines()) else {
            self.out.push_back(event.whole());
            return;
        };
        let Ok(ev) = serde_json::from_slice::<ResponsesEvent<'_>>(&data) else {
            self.out.push_back(event.whole());
            return;
        };
        if let Some(n) = ev.sequence_number {
            self.next_sequence = n + 1;
        }
        match &*ev.kind {
            "response.created"
            | "response.in_progress"
            | "response.completed"
            | "response.incomplete"
            | "response.failed" => {
                let Ok(mut v) = serde_json::from_slice::<Value>(&data) else {
                    self.out.push_back(event.whole());
                    return;
                };
                if self.response_id.is_none() {
                    self.response_id = v
                        .pointer("/response/id")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                match &*ev.kind {
                    "response.completed" | "response.incomplete" => {
                        self.usage = sse::usage_of(&v["response"]);
                        self.saw_done = true;
                    }
                    "response.failed" => self.upstream_error = true,
                    _ => {}
                }
                if self.rewrite
                    && let Some(m) = v.pointer_mut("/response/model")
                {
                    *m = Value::String(self.model.clone());
                    self.out.push_back(super::request::concat(&[
                        b"event: ",
                        ev.kind.as_bytes(),
                        b"\n",
                        &sse::frame(v.to_string().as_bytes()),
                    ]));
                    return;
                }
            }
            "response.output_text.delta"
            | "response.function_call_arguments.delta"
            | "response.reasoning_summary_text.delta"
            | "response.reasoning_text.delta"
            | "response.refusal.delta" => {
                self.first_token();
                if let Some(d) = &ev.delta {
                    self.text.push_str(d);
                }
            }
            "error" => self.upstream_error = true,
            _ => {}
        }
        self.out.push_back(event.whole());
    }

    /// A Messages event, relayed as it came (the model renamed in `message_start`): usage and
    /// generated text are read on the way.
    fn on_messages_event(&mut self, event: sse::Event) {
        let Some(data) = sse::data_of(event.lines()) else {
            self.out.push_back(event.whole());
            return;
        };
        let Ok(ev) = serde_json::from_slice::<anthropic::StreamEvent<'_>>(&data) else {
            self.out.push_back(event.whole());
            return;
        };
        match &*ev.kind {
            "message_start" => {
                let message = ev.message.as_ref();
                if let Some(u) = message.and_then(|m| m.usage.as_ref()) {
                    self.messages_usage.add(u);
                }
                let span = message
                    .and_then(|m| m.model)
                    .and_then(|m| sse::span_in(m.get(), &data));
                if self.rewrite
                    && let Some(span) = span
                {
                    let data = super::request::concat(&[
                        &data[..span.start],
                        self.model_json.as_bytes(),
                        &data[span.end..],
                    ]);
                    self.out.push_back(super::request::concat(&[
                        b"event: message_start\n",
                        &sse::frame(&data),
                    ]));
                    return;
                }
            }
            "content_block_start" => {
                self.first_token();
                self.open_block = ev.index;
            }
            "content_block_stop" => self.open_block = None,
            "content_block_delta" => {
                self.first_token();
                if let Some(d) = &ev.delta {
                    d.append_text(&mut self.text);
                }
            }
            "message_delta" => {
                if let Some(u) = &ev.usage {
                    self.messages_usage.add(u);
                }
            }
            "message_stop" => {
                self.saw_done = true;
                self.usage = self
                    .messages_usage
                    .usage()
                    .map(anthropic::MessagesUsage::to_upstream);
            }
            "error" => self.upstream_error = true,
            _ => {}
        }
        self.out.push_back(event.whole());
    }

    /// A chat chunk of a Messages call, converted.
    fn on_converted_event(&mut self, event: sse::Event) {
        let Some(data) = sse::data_of(event.lines()) else {
            return; // comments and keep-alives: the Messages stream has its own
        };
        if *data == *b"[DONE]" {
            self.saw_done = true;
            if self.usage.is_none() {
                self.counting = true; // the last events carry the usage: counted first
                return;
            }
            self.finish_converted();
            return;
        }
        match serde_json::from_slice::<ChatChunk<'_>>(&data) {
            Ok(chunk) => {
                if let Some(u) = chunk.usage() {
                    self.usage = Some(u);
                }
                if chunk.has_choices() && self.ttft.is_none() {
                    self.ttft = self.call.as_ref().map(|c| c.started.elapsed());
                }
                if let Some(c) = self.convert.as_mut() {
                    c.on_chunk(&chunk, &mut self.out, &mut self.text);
                }
                if let Some(c) = self.to_responses.as_mut() {
                    c.on_chunk(&chunk, &mut self.out, &mut self.text);
                }
            }
            Err(_) => {
                tracing::warn!(model = %self.model, "a chat chunk that could not be read was left out of a converted stream");
            }
        }
    }

    /// A converted stream's last events, with the usage.
    fn finish_converted(&mut self) {
        if let Some(c) = self.convert.as_mut() {
            c.finish(self.usage, &mut self.out);
        }
        if let Some(c) = self.to_responses.as_mut() {
            c.finish(self.usage, &mut self.out);
        }
    }

    /// The stream ended without the usage its client's answer reports: the gateway's own count
    /// (what the call is charged), then the end: a chat stream's usage chunk and `[DONE]`, a
    /// converted stream's last events.
    async fn end_with_counted_usage(&mut self) {
        self.counting = false;
        let Some(call) = self.call.as_ref() else {
            return;
        };
        let u = call.count(&self.text).await;
        self.usage = Some(u);
        self.counted = true;
        match self.mode {
            Mode::Chat => {
                let (id, created) = self.chunk_id.take().unwrap_or_else(|| {
                    (
                        r#""chatcmpl-tollgate""#.into(),
                        (crate::now_ms() / 1000).to_string(),
                    )
                });
                let chunk = format!(
                    r#"{{"id":{id},"object":"chat.completion.chunk","created":{created},"model":{},"choices":[],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}}"#,
                    self.model_json,
                    u.prompt,
                    u.completion,
                    u.prompt + u.completion
                );
                self.out.push_back(sse::frame(chunk.as_bytes()));
                self.out.push_back(sse::frame(b"[DONE]"));
            }
            Mode::ChatToMessages | Mode::ChatToResponses => self.finish_converted(),
            Mode::Messages | Mode::Responses => {}
        }
    }

    /// Tells the client the stream failed, in its protocol.
    fn fail(&mut self, why: &str) {
        let event = match self.mode {
            Mode::Chat => sse::error_event(why),
            // The upstream's own error event was relayed: it says more than ours would.
            Mode::Messages | Mode::Responses if self.upstream_error => return,
            Mode::Messages | Mode::ChatToMessages => anthropic::error_event(why),
            Mode::Responses => responses_error_event(why),
            Mode::ChatToResponses => {
                if let Some(c) = self.to_responses.as_mut() {
                    c.fail(why, &mut self.out);
                }
                return;
            }
        };
        self.out.push_back(event);
    }

    fn on_chat_event(&mut self, event: sse::Event) {
        let Some(data) = sse::data_of(event.lines()) else {
            self.out.push_back(event.whole());
            return;
        };
        if *data == *b"[DONE]" {
            self.saw_done = true;
            if self.client_wants_usage && self.usage.is_none() {
                self.counting = true; // the usage chunk and `[DONE]` follow the count
                return;
            }
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
        if self.client_wants_usage && self.chunk_id.is_none() {
            let (id, created) = chunk.id_and_created();
            self.chunk_id = Some((
                id.unwrap_or(r#""chatcmpl-tollgate""#).to_string(),
                created.unwrap_or("0").to_string(),
            ));
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
            if let Some(c) = self.convert.as_ref().filter(|c| c.dropped > 0) {
                tracing::warn!(model = %self.model, dropped = c.dropped, "tool-call pieces that came after their block closed were left out of a converted stream");
            }
            let class = match how {
                End::Complete => None,
                End::UpstreamCut => Some(ErrorClass::UpstreamCut),
                End::ClientGone => Some(ErrorClass::ClientCancelled),
                End::Halted => Some(ErrorClass::ServerShutdown),
                End::AtBound => Some(ErrorClass::UpstreamOverBound),
            };
            match self.usage {
                Some(u) if self.counted => call.settle_counted(u, class, self.ttft),
                usage => call.settle(
                    usage,
                    &self.text,
                    matches!(how, End::Complete | End::AtBound),
                    class,
                    self.ttft,
                ),
            }
        }
    }

    /// After an upstream read: whether the text so far has passed the bound, counted on the
    /// token-counting thread (only once the text is long enough that it could have).
    async fn past_bound(&mut self) -> bool {
        if self.text.len() <= self.check_at {
            return false;
        }
        let Some(call) = self.call.as_ref() else {
            return false;
        };
        let limit = self.bound + bound_slack(self.bound);
        let counted = call
            .svc
            .count_off_runtime(self.model.clone(), self.text.clone())
            .await;
        if counted > limit {
            return true;
        }
        self.check_at = self.text.len() + (limit - counted).max(CHECK_STEP) as usize;
        false
    }

    /// Ends the stream at its bound, as the upstream should have: the client's protocol's own
    /// end for a length stop, then the call is charged for the bound.
    fn end_at_bound(&mut self) {
        tracing::warn!(model = %self.model, bound = self.bound, "the upstream went past the output bound; the stream was ended there");
        let usage = Some(UpstreamUsage {
            completion: self.bound,
            ..UpstreamUsage::default()
        });
        match self.mode {
            Mode::Chat => {
                let chunk = serde_json::json!({"id": "chatcmpl-bound", "object": "chat.completion.chunk",
                    "model": self.model, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]});
                self.out.push_back(sse::frame(chunk.to_string().as_bytes()));
                self.out.push_back(sse::frame(b"[DONE]"));
            }
            Mode::ChatToMessages => {
                if let Some(c) = self.convert.as_mut() {
                    c.end_at_bound(usage, &mut self.out);
                }
            }
            Mode::ChatToResponses => {
                if let Some(c) = self.to_responses.as_mut() {
                    c.end_at_bound(usage, &mut self.out);
                }
            }
            Mode::Messages => {
                if let Some(index) = self.open_block.take() {
                    self.out.push_back(sse::named_event(
                        "content_block_stop",
                        &serde_json::json!({"type": "content_block_stop", "index": index}),
                    ));
                }
                self.out.push_back(sse::named_event(
                    "message_delta",
                    &serde_json::json!({"type": "message_delta",
                        "delta": {"stop_reason": "max_tokens", "stop_sequence": null},
                        "usage": {"output_tokens": self.bound}}),
                ));
                self.out.push_back(sse::named_event(
                    "message_stop",
                    &serde_json::json!({"type": "message_stop"}),
                ));
            }
            Mode::Responses => {
                let response = serde_json::json!({"id": self.response_id, "object": "response",
                    "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
                    "model": self.model, "output": [], "usage": null});
                self.out.push_back(sse::named_event(
                    "response.incomplete",
                    &serde_json::json!({"type": "response.incomplete",
                        "sequence_number": self.next_sequence, "response": response}),
                ));
            }
        }
        self.finished = true;
        self.end(End::AtBound);
    }

    fn cut(&mut self, why: &str) {
        tracing::warn!(model = %self.model, reason = why, "upstream stream ended early");
        self.fail(why);
        self.finished = true;
        self.end(End::UpstreamCut);
    }

    /// The drain deadline passed: end the stream with an error event, charging what was
    /// generated, so that the last credit report and usage write include it.
    fn halt(&mut self) {
        self.fail("the gateway is shutting down");
        self.finished = true;
        self.end(End::Halted);
    }
}

/// The `error` event of a Responses stream that failed.
fn responses_error_event(message: &str) -> Bytes {
    sse::named_event(
        "error",
        &serde_json::json!({"type": "error", "code": "server_error", "message": message, "param": null}),
    )
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

#[expect(
    clippy::too_many_arguments,
    reason = "what the relay reads of the call, the answer and the conversion"
)]
pub(super) fn stream_response(
    call: Call,
    resp: reqwest::Response,
    cand: &Candidate,
    model: &str,
    client_wants_usage: bool,
    upstream: Duration,
    mode: Mode,
    echo: Echo,
) -> ProxyResponse {
    let halt = call.svc.halt.watch();
    let bound = call.bound;
    let open = crate::metrics::GaugeGuard::new(&call.svc.metrics.open_streams);
    let relay = Relay {
        upstream: if cand.channel.kind == types::ChannelKind::Gemini {
            super::gemini::chat_stream(Box::pin(resp.bytes_stream()))
        } else {
            Box::pin(resp.bytes_stream())
        },
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
        mode,
        messages_usage: UsageSoFar::default(),
        upstream_error: false,
        convert: (mode == Mode::ChatToMessages).then(|| Box::new(ChatToMessages::new(model))),
        to_responses: (mode == Mode::ChatToResponses)
            .then(|| Box::new(ChatToResponses::new(model, echo, crate::now_ms() / 1000))),
        bound,
        check_at: first_check(bound + bound_slack(bound)),
        open_block: None,
        response_id: None,
        next_sequence: 0,
        counting: false,
        counted: false,
        chunk_id: None,
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
                next = super::wait::within(r.idle, r.upstream.next()) => next,
            };
            match next {
                None => r.cut("the upstream stream stalled"),
                Some(Some(Err(_))) => r.cut("the upstream stream was interrupted"),
                Some(None) if !r.saw_done => r.cut("the upstream stream ended without completing"),
                Some(None) => {
                    r.finished = true;
                    r.end(End::Complete);
                }
                Some(Some(Ok(chunk))) => {
                    r.framer.push(&chunk);
                    while let Some(ev) = r.framer.next_event() {
                        r.on_event(ev);
                        if r.counting {
                            r.end_with_counted_usage().await;
                            break;
                        }
                        if !r.saw_done && r.past_bound().await {
                            r.end_at_bound();
                            break;
                        }
                    }
                }
            }
        }
    });
    ProxyResponse {
        body: ProxyBody::Events(Box::pin(stream)),
        upstream,
        lowered: None,
    }
}
