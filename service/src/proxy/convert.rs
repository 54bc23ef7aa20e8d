//! Anthropic Messages over an OpenAI chat route: the request converted once, the answer (a
//! document, or a stream through [`ChatToMessages`]) converted back. What the chat protocol
//! cannot hold is dropped and named in the call's log line, never silently.

use super::anthropic::MessagesUsage;
use super::sse::UpstreamUsage;
use crate::Error;
use bytes::{BufMut as _, Bytes, BytesMut};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;

/// A Messages request as a chat request, ready to be sent with any chat channel's model.
#[derive(Debug)]
pub(super) struct ChatRequest {
    body: Map<String, Value>,
    max_tokens: u64,
    /// What the chat protocol cannot carry, dropped (for the log).
    pub(super) dropped: Vec<&'static str>,
}

impl ChatRequest {
    pub(super) fn new(
        body: Map<String, Value>,
        max_tokens: u64,
        dropped: Vec<&'static str>,
    ) -> ChatRequest {
        ChatRequest {
            body,
            max_tokens,
            dropped,
        }
    }

    /// Sends at most `bound` output tokens: what the balance covers.
    pub(super) fn lower(&mut self, bound: u64) {
        self.max_tokens = self.max_tokens.min(bound);
    }

    /// The body for a channel of `wire` serving `model`: the bound in the field it takes
    /// (OpenAI itself and Azure take `max_completion_tokens`, which reasoning models require;
    /// compatible servers `max_tokens`), without `stream_options` where it refuses them.
    pub(super) fn body(&self, model: &str, wire: crate::routing::Wire) -> Result<Bytes, Error> {
        let mut body = self.body.clone();
        body.insert("model".into(), Value::String(model.to_string()));
        let field = wire.chat_bound;
        if !wire.stream_usage {
            body.shift_remove("stream_options");
        }
        body.insert(field.into(), Value::from(self.max_tokens));
        let mut out = BytesMut::with_capacity(256).writer();
        serde_json::to_writer(&mut out, &body).map_err(anyhow::Error::from)?;
        Ok(out.into_inner().freeze())
    }
}

#[cfg(test)]
impl ChatRequest {
    /// The body a channel gets, as a document.
    pub(super) fn json(&self, model: &str, kind: types::ChannelKind) -> Value {
        let body = self
            .body(model, crate::routing::Wire::of(kind))
            .expect("a body");
        serde_json::from_slice(&body).expect("JSON")
    }
}

/// A refusal of the request, naming its field.
pub(super) fn bad(field: &'static str, reason: impl Into<String>) -> Error {
    Error::invalid(field, reason)
}

/// The text of a `system` value: a string, or text blocks (joined by a blank line).
fn system_text(v: &Value) -> Result<String, Error> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for b in blocks {
                match (
                    b.get("type").and_then(Value::as_str),
                    b.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => parts.push(t),
                    _ => return Err(bad("system", "must be a string or a list of text blocks")),
                }
            }
            Ok(parts.join("\n\n"))
        }
        _ => Err(bad("system", "must be a string or a list of text blocks")),
    }
}

/// An image block as a chat image part (a data URL, or the URL itself).
fn image_part(block: &Value, at: &str) -> Result<Value, Error> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let (Some(media), Some(data)) = (
                source.get("media_type").and_then(Value::as_str),
                source.get("data").and_then(Value::as_str),
            ) else {
                return Err(bad(
                    "messages",
                    format!("{at}: a base64 image needs source.media_type and source.data"),
                ));
            };
            format!("data:{media};base64,{data}")
        }
        Some("url") => match source.get("url").and_then(Value::as_str) {
            Some(u) => u.to_string(),
            None => return Err(bad("messages", format!("{at}: source.url is required"))),
        },
        _ => {
            return Err(bad(
                "messages",
                format!("{at}: an image's source must be base64 or url for this model"),
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// The text of a tool result's `content` (a string, or text blocks; images are dropped).
fn tool_result_text(
    content: Option<&Value>,
    at: &str,
    dropped: &mut Vec<&'static str>,
) -> Result<String, Error> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => {
            let mut text = String::new();
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(b.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    Some("image") => dropped.push("tool_result image"),
                    other => {
                        return Err(bad(
                            "messages",
                            format!(
                                "{at}: a tool_result block of type {} cannot be sent to this model",
                                other.unwrap_or("(none)")
                            ),
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(bad(
            "messages",
            format!("{at}: content must be a string or a list of blocks"),
        )),
    }
}

/// One Messages message as chat messages (a user turn's tool results become `tool` messages
/// before it, as the chat protocol orders them).
fn convert_message(
    i: usize,
    m: &Value,
    out: &mut Vec<Value>,
    dropped: &mut Vec<&'static str>,
) -> Result<(), Error> {
    let role = match m.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant")) => r,
        _ => {
            return Err(bad(
                "messages",
                format!("messages[{i}].role must be \"user\" or \"assistant\""),
            ));
        }
    };
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(b)) => b,
        _ => {
            return Err(bad(
                "messages",
                format!("messages[{i}].content must be a string or a list of blocks"),
            ));
        }
    };
    let mut parts: Vec<Value> = Vec::new();
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls: Vec<Value> = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
        match (role, kind) {
            (_, "text") => {
                let t = b
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("messages", format!("{at}.text must be a string")))?;
                if role == "user" {
                    parts.push(json!({"type": "text", "text": t}));
                } else {
                    text.push_str(t);
                }
            }
            ("user", "image") => parts.push(image_part(b, &at)?),
            ("user", "tool_result") => {
                let id = b
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("messages", format!("{at}.tool_use_id is required")))?;
                let content = tool_result_text(b.get("content"), &at, dropped)?;
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            ("assistant", "tool_use") => {
                let (Some(id), Some(name)) = (
                    b.get("id").and_then(Value::as_str),
                    b.get("name").and_then(Value::as_str),
                ) else {
                    return Err(bad(
                        "messages",
                        format!("{at}: a tool_use block needs an id and a name"),
                    ));
                };
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
            ("assistant", "thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""));
            }
            ("assistant", "redacted_thinking") => dropped.push("redacted_thinking"),
            _ => {
                return Err(bad(
                    "messages",
                    format!(
                        "{at}: a {role} block of type \"{kind}\" cannot be sent to this model's channels"
                    ),
                ));
            }
        }
    }
    if role == "user" {
        if parts.is_empty() {
            return Ok(()); // tool results only
        }
        // Text alone goes as a string, which every compatible server reads.
        let content = if parts.iter().all(|p| p["type"] == "text") {
            Value::String(
                parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        } else {
            Value::Array(parts)
        };
        out.push(json!({"role": "user", "content": content}));
    } else {
        let mut msg = Map::new();
        msg.insert("role".into(), json!("assistant"));
        msg.insert(
            "content".into(),
            if text.is_empty() && !calls.is_empty() {
                Value::Null
            } else {
                Value::String(text)
            },
        );
        if !reasoning.is_empty() {
            msg.insert("reasoning_content".into(), Value::String(reasoning));
        }
        if !calls.is_empty() {
            msg.insert("tool_calls".into(), Value::Array(calls));
        }
        out.push(Value::Object(msg));
    }
    Ok(())
}

/// Converts a Messages request (already checked for `model`, `messages` and `max_tokens`).
pub(super) fn messages_to_chat(
    req: &Map<String, Value>,
    stream: bool,
    max_tokens: u64,
) -> Result<ChatRequest, Error> {
    let mut dropped = Vec::new();
    let mut messages = Vec::new();
    if let Some(system) = req.get("system").filter(|v| !v.is_null()) {
        let text = system_text(system)?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let Some(Value::Array(input)) = req.get("messages") else {
        return Err(bad("messages", "must be a list"));
    };
    for (i, m) in input.iter().enumerate() {
        convert_message(i, m, &mut messages, &mut dropped)?;
    }
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if stream {
        body.insert("stream".into(), Value::Bool(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop_sequences", "stop"),
    ] {
        if let Some(v) = req.get(from).filter(|v| !v.is_null()) {
            body.insert(to.into(), v.clone());
        }
    }
    if let Some(user) = req
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        body.insert("user".into(), Value::String(user.to_string()));
    }
    if let Some(tools) = req.get("tools").filter(|v| !v.is_null()) {
        let Value::Array(tools) = tools else {
            return Err(bad("tools", "must be a list"));
        };
        let mut out = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            match t.get("type").and_then(Value::as_str) {
                None | Some("custom") => {}
                Some(other) => {
                    return Err(bad(
                        "tools",
                        format!(
                            "tools[{i}]: the server tool \"{other}\" cannot be sent to this model's channels"
                        ),
                    ));
                }
            }
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tools", format!("tools[{i}].name is required")))?;
            let mut function = Map::new();
            function.insert("name".into(), Value::String(name.to_string()));
            if let Some(d) = t.get("description").and_then(Value::as_str) {
                function.insert("description".into(), Value::String(d.to_string()));
            }
            function.insert(
                "parameters".into(),
                t.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            );
            out.push(json!({"type": "function", "function": function}));
        }
        if !out.is_empty() {
            body.insert("tools".into(), Value::Array(out));
        }
    }
    if let Some(choice) = req.get("tool_choice").filter(|v| !v.is_null()) {
        let mapped = match choice.get("type").and_then(Value::as_str) {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => match choice.get("name").and_then(Value::as_str) {
                Some(n) => json!({"type": "function", "function": {"name": n}}),
                None => return Err(bad("tool_choice", "a tool choice needs a name")),
            },
            _ => {
                return Err(bad(
                    "tool_choice",
                    "must be of type auto, any, tool or none",
                ));
            }
        };
        body.insert("tool_choice".into(), mapped);
        if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            body.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    for (field, what) in [
        ("thinking", "thinking"),
        ("top_k", "top_k"),
        ("service_tier", "service_tier"),
    ] {
        if req.get(field).is_some_and(|v| !v.is_null()) {
            dropped.push(what);
        }
    }
    Ok(ChatRequest::new(body, max_tokens, dropped))
}

/// A chat `finish_reason` as a Messages `stop_reason`.
fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// A tool call's arguments as the `input` object of a `tool_use` block (arguments that are
/// not a JSON object are kept whole under `"arguments"`, never lost).
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ if arguments.trim().is_empty() => json!({}),
        _ => json!({ "arguments": arguments }),
    }
}

/// What a chat completion answered, read from its first choice.
pub(super) struct ChatAnswer<'a> {
    pub(super) id: Option<&'a str>,
    pub(super) finish_reason: Option<&'a str>,
    pub(super) reasoning: Option<&'a str>,
    pub(super) text: String,
    /// Each tool call's id (when given), name and arguments.
    pub(super) calls: Vec<(Option<&'a str>, &'a str, &'a str)>,
}

impl ChatAnswer<'_> {
    pub(super) fn read(chat: &Value) -> ChatAnswer<'_> {
        let choice = chat
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        let message = choice.and_then(|c| c.get("message"));
        let text = match message.and_then(|m| m.get("content")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
            _ => String::new(),
        };
        let calls = message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|call| {
                let f = call.get("function");
                let field = |k: &str| f.and_then(|f| f.get(k)).and_then(Value::as_str);
                (
                    call.get("id").and_then(Value::as_str),
                    field("name").unwrap_or(""),
                    field("arguments").unwrap_or(""),
                )
            })
            .collect();
        ChatAnswer {
            id: chat.get("id").and_then(Value::as_str),
            finish_reason: choice
                .and_then(|c| c.get("finish_reason"))
                .and_then(Value::as_str),
            reasoning: message
                .and_then(|m| m.get("reasoning_content").or_else(|| m.get("reasoning")))
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty()),
            text,
            calls,
        }
    }
}

/// A chat completion (the whole answer) as a Messages answer naming `model`.
pub(super) fn chat_answer_to_message(chat: &Value, model: &str) -> Value {
    let answer = ChatAnswer::read(chat);
    let mut content = Vec::new();
    if let Some(r) = answer.reasoning {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    if !answer.text.is_empty() {
        content.push(json!({"type": "text", "text": answer.text}));
    }
    for (i, (id, name, arguments)) in answer.calls.iter().enumerate() {
        content.push(json!({
            "type": "tool_use",
            "id": id.map_or_else(|| format!("toolu_{i}"), str::to_string),
            "name": name,
            "input": tool_input(arguments),
        }));
    }
    let usage = super::sse::usage_of(chat).map(MessagesUsage::from_chat);
    json!({
        "id": message_id(answer.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(answer.finish_reason),
        "stop_sequence": null,
        "usage": usage.unwrap_or_default().json(),
    })
}

fn message_id(upstream: Option<&str>) -> String {
    match upstream {
        Some(id) if !id.is_empty() => format!("msg_{id}"),
        _ => "msg_tollgate".to_string(),
    }
}

/// The content block a converted stream has open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A tool call: the chat `index` it has in the upstream's deltas.
    Tool(u64),
}

/// A chat stream turned into Messages events, chunk by chunk: every block opened is closed,
/// tool calls keep their own ids and indices (whatever text came before them), and the stream
/// always ends with `message_delta` (the stop reason and the usage) and `message_stop`.
#[derive(Debug)]
pub(super) struct ChatToMessages {
    model: String,
    started: bool,
    open: Option<Block>,
    /// The next content block's index.
    next: u64,
    /// Tool calls (by chat index) already given a block.
    tools_seen: Vec<u64>,
    finish: Option<String>,
    /// Deltas that could not be placed (a tool call continued after another block began).
    pub(super) dropped: u32,
}

/// What the converted stream reads of a chat chunk.
#[derive(serde::Deserialize)]
pub(super) struct ChatChunk<'a> {
    #[serde(default, borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    usage: Option<super::sse::UsageFields>,
}

impl ChatChunk<'_> {
    pub(super) fn usage(&self) -> Option<UpstreamUsage> {
        self.usage.as_ref()?.usage()
    }

    pub(super) fn has_choices(&self) -> bool {
        !self.choices.is_empty()
    }

    pub(super) fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    fn first(&self) -> Option<&ChunkChoice<'_>> {
        self.choices.iter().find(|c| c.index == 0)
    }

    /// The first choice's delta (the only one a Messages or Responses call asks for).
    pub(super) fn first_delta(&self) -> Option<&ChunkDelta<'_>> {
        self.first()?.delta.as_ref()
    }

    pub(super) fn finish_reason(&self) -> Option<&str> {
        self.first()?.finish_reason.as_deref()
    }
}

impl ChunkDelta<'_> {
    pub(super) fn content(&self) -> Option<&str> {
        self.content.as_deref()
    }

    /// Reasoning, as DeepSeek (`reasoning_content`) or others (`reasoning`) send it.
    pub(super) fn reasoning(&self) -> Option<&str> {
        self.reasoning_content
            .as_deref()
            .or(self.reasoning.as_deref())
    }

    pub(super) fn tool_calls(&self) -> impl Iterator<Item = &ChunkTool<'_>> {
        self.tool_calls.iter().flatten()
    }
}

impl ChunkTool<'_> {
    pub(super) fn index(&self) -> u64 {
        self.index
    }

    pub(super) fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub(super) fn name(&self) -> Option<&str> {
        self.function.as_ref()?.name.as_deref()
    }

    pub(super) fn arguments(&self) -> Option<&str> {
        self.function.as_ref()?.arguments.as_deref()
    }
}

#[derive(serde::Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(default, borrow)]
    delta: Option<ChunkDelta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
pub(super) struct ChunkDelta<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ChunkTool<'a>>>,
}

#[derive(serde::Deserialize)]
pub(super) struct ChunkTool<'a> {
    #[serde(default)]
    index: u64,
    #[serde(default, borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<ChunkFunction<'a>>,
}

#[derive(serde::Deserialize)]
struct ChunkFunction<'a> {
    #[serde(default, borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<std::borrow::Cow<'a, str>>,
}

impl ChatToMessages {
    pub(super) fn new(model: &str) -> ChatToMessages {
        ChatToMessages {
            model: model.to_string(),
            started: false,
            open: None,
            next: 0,
            tools_seen: Vec::new(),
            finish: None,
            dropped: 0,
        }
    }

    fn start(&mut self, id: Option<&str>, out: &mut VecDeque<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push_back(super::sse::named_event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(id), "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": MessagesUsage::default().json(),
            }}),
        ));
    }

    fn close(&mut self, out: &mut VecDeque<Bytes>) {
        if self.open.take().is_some() {
            out.push_back(super::sse::named_event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.next - 1}),
            ));
        }
    }

    /// Opens a block (closing the one open) unless it is open already.
    fn open(&mut self, block: Block, start: Value, out: &mut VecDeque<Bytes>) {
        if self.open == Some(block) {
            return;
        }
        self.close(out);
        out.push_back(super::sse::named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.next, "content_block": start}),
        ));
        self.next += 1;
        self.open = Some(block);
    }

    fn delta(&self, delta: Value, out: &mut VecDeque<Bytes>) {
        out.push_back(super::sse::named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.next - 1, "delta": delta}),
        ));
    }

    /// One chat chunk's events; the text it generated is added to `text` (counted when the
    /// upstream reports no usage).
    pub(super) fn on_chunk(
        &mut self,
        chunk: &ChatChunk<'_>,
        out: &mut VecDeque<Bytes>,
        text: &mut String,
    ) {
        self.start(chunk.id(), out);
        if let Some(d) = chunk.first_delta() {
            if let Some(r) = d.reasoning().filter(|r| !r.is_empty()) {
                text.push_str(r);
                self.open(
                    Block::Thinking,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    out,
                );
                self.delta(json!({"type": "thinking_delta", "thinking": r}), out);
            }
            if let Some(t) = d.content().filter(|t| !t.is_empty()) {
                text.push_str(t);
                self.open(Block::Text, json!({"type": "text", "text": ""}), out);
                self.delta(json!({"type": "text_delta", "text": t}), out);
            }
            for call in d.tool_calls() {
                let block = Block::Tool(call.index());
                if self.open != Some(block) {
                    if self.tools_seen.contains(&call.index()) {
                        // Its block was closed when another began: Messages cannot reopen it.
                        self.dropped += 1;
                        continue;
                    }
                    self.tools_seen.push(call.index());
                    let id = match call.id() {
                        Some(id) if !id.is_empty() => id.to_string(),
                        _ => format!("toolu_{}", call.index()),
                    };
                    self.open(
                        block,
                        json!({"type": "tool_use", "id": id, "name": call.name().unwrap_or(""), "input": {}}),
                        out,
                    );
                }
                if let Some(a) = call.arguments().filter(|a| !a.is_empty()) {
                    text.push_str(a);
                    self.delta(json!({"type": "input_json_delta", "partial_json": a}), out);
                }
            }
        }
        if let Some(f) = chunk.finish_reason() {
            self.finish = Some(f.to_string());
        }
    }

    /// The end of a stream the gateway ended at its output bound: as a stream the upstream ended
    /// there (`stop_reason: "max_tokens"`).
    pub(super) fn end_at_bound(&mut self, usage: Option<UpstreamUsage>, out: &mut VecDeque<Bytes>) {
        self.finish = Some("length".into());
        self.finish(usage, out);
    }

    /// The end of a complete upstream stream: the open block closed, the stop reason and the
    /// usage, and `message_stop`.
    pub(super) fn finish(&mut self, usage: Option<UpstreamUsage>, out: &mut VecDeque<Bytes>) {
        self.start(None, out);
        self.close(out);
        let usage = usage.map(MessagesUsage::from_chat).unwrap_or_default();
        out.push_back(super::sse::named_event(
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
                "usage": usage.json()}),
        ));
        out.push_back(super::sse::named_event(
            "message_stop",
            &json!({"type": "message_stop"}),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(out: &VecDeque<Bytes>) -> String {
        out.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// The request conversion, golden: system blocks, images, tool results before the user's
    /// text, assistant thinking and tool calls, tools and tool choice; dropped fields named.
    #[test]
    fn a_messages_request_becomes_the_chat_request() {
        let req: Value = serde_json::from_str(
            r#"{"model":"claude","max_tokens":100,"stream":true,
            "system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Be kind."}],
            "messages":[
              {"role":"user","content":[{"type":"text","text":"Look:"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAA"}}]},
              {"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"sig"},{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_1","name":"ls","input":{"path":"/"}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"a b"}]},{"type":"text","text":"and?"}]}
            ],
            "tools":[{"name":"ls","description":"List","input_schema":{"type":"object","properties":{"path":{"type":"string"}}}}],
            "tool_choice":{"type":"any","disable_parallel_tool_use":true},
            "stop_sequences":["END"],"temperature":0.5,"top_k":3,"metadata":{"user_id":"u-1"},
            "thinking":{"type":"enabled","budget_tokens":2048}}"#,
        )
        .expect("json");
        let chat = messages_to_chat(req.as_object().expect("object"), true, 100).expect("converts");
        assert_eq!(chat.dropped, vec!["thinking", "top_k"]);
        let body = chat.json("up", types::ChannelKind::OpenAiCompatible);
        assert_eq!(
            body,
            serde_json::from_str::<Value>(
                r#"{"model":"up","max_tokens":100,"stream":true,"stream_options":{"include_usage":true},
                "messages":[
                  {"role":"system","content":"Be brief.\n\nBe kind."},
                  {"role":"user","content":[{"type":"text","text":"Look:"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAA"}}]},
                  {"role":"assistant","content":"Let me check.","reasoning_content":"hmm","tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"ls","arguments":"{\"path\":\"/\"}"}}]},
                  {"role":"tool","tool_call_id":"toolu_1","content":"a b"},
                  {"role":"user","content":"and?"}
                ],
                "tools":[{"type":"function","function":{"name":"ls","description":"List","parameters":{"type":"object","properties":{"path":{"type":"string"}}}}}],
                "tool_choice":"required","parallel_tool_calls":false,
                "stop":["END"],"temperature":0.5,"user":"u-1"}"#
            )
            .expect("json")
        );
        // OpenAI itself is sent max_completion_tokens.
        let openai = chat.json("up", types::ChannelKind::OpenAi);
        assert_eq!(openai["max_completion_tokens"], 100);
        assert!(openai.get("max_tokens").is_none());
    }

    #[test]
    fn what_chat_cannot_carry_is_refused_by_name() {
        for (body, field, says) in [
            (
                r#"{"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}"#,
                "messages",
                "messages[0].content[0]: a user block of type \"document\"",
            ),
            (
                r#"{"messages":[{"role":"system","content":"x"}]}"#,
                "messages",
                "messages[0].role",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#,
                "tools",
                "web_search_20250305",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"system":7}"#,
                "system",
                "text blocks",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"tool"}}"#,
                "tool_choice",
                "name",
            ),
        ] {
            let req: Value = serde_json::from_str(body).expect("json");
            let err = messages_to_chat(req.as_object().expect("object"), false, 1).expect_err(body);
            let Error::Invalid { field: f, reason } = &err else {
                panic!("{err:?}");
            };
            assert_eq!(*f, field, "{body}");
            assert!(reason.contains(says), "{reason} / {body}");
        }
    }

    /// The stream conversion, golden: text before a tool call keeps the call, the call's
    /// arguments in pieces arrive in order in its own block, thinking first; the end carries the
    /// stop reason and the usage (cached tokens out of the input count, as Anthropic counts).
    #[test]
    fn a_chat_stream_becomes_a_complete_messages_stream() {
        let chunks = [
            r#"{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"think"}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"ls","arguments":"{\"pa"}}]}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\":1}"}}]}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","function":{"name":"cat","arguments":"{}"}}]}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ];
        let mut m = ChatToMessages::new("claude-x");
        let mut out = VecDeque::new();
        let mut text = String::new();
        for c in chunks {
            let chunk: ChatChunk<'_> = serde_json::from_str(c).expect("chunk");
            m.on_chunk(&chunk, &mut out, &mut text);
        }
        assert_eq!(text, "thinkHi{\"path\":1}{}");
        m.finish(
            Some(UpstreamUsage {
                prompt: 10,
                completion: 5,
                cached: 4,
                ..Default::default()
            }),
            &mut out,
        );
        let want = concat!(
            "event: message_start\ndata: ",
            r#"{"type":"message_start","message":{"id":"msg_c1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}"#,
            "\n\n",
            "event: content_block_start\ndata: ",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
            "\n\n",
            "event: content_block_delta\ndata: ",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"think"}}"#,
            "\n\n",
            "event: content_block_stop\ndata: ",
            r#"{"type":"content_block_stop","index":0}"#,
            "\n\n",
            "event: content_block_start\ndata: ",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            "\n\n",
            "event: content_block_delta\ndata: ",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}"#,
            "\n\n",
            "event: content_block_stop\ndata: ",
            r#"{"type":"content_block_stop","index":1}"#,
            "\n\n",
            "event: content_block_start\ndata: ",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_a","name":"ls","input":{}}}"#,
            "\n\n",
            "event: content_block_delta\ndata: ",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"pa"}}"#,
            "\n\n",
            "event: content_block_delta\ndata: ",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"th\":1}"}}"#,
            "\n\n",
            "event: content_block_stop\ndata: ",
            r#"{"type":"content_block_stop","index":2}"#,
            "\n\n",
            "event: content_block_start\ndata: ",
            r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"call_b","name":"cat","input":{}}}"#,
            "\n\n",
            "event: content_block_delta\ndata: ",
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            "\n\n",
            "event: content_block_stop\ndata: ",
            r#"{"type":"content_block_stop","index":3}"#,
            "\n\n",
            "event: message_delta\ndata: ",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":6,"cache_creation_input_tokens":0,"cache_read_input_tokens":4,"output_tokens":5}}"#,
            "\n\n",
            "event: message_stop\ndata: ",
            r#"{"type":"message_stop"}"#,
            "\n\n",
        );
        assert_eq!(events(&out), want);
        assert_eq!(m.dropped, 0);
    }

    #[test]
    fn a_chat_answer_becomes_a_message() {
        let chat: Value = serde_json::from_str(
            r#"{"id":"c9","model":"up","choices":[{"index":0,"message":{"role":"assistant","content":"Sure.","reasoning_content":"r","tool_calls":[{"id":"call_1","type":"function","function":{"name":"ls","arguments":"{\"a\":1}"}},{"id":"call_2","type":"function","function":{"name":"x","arguments":"not json"}}]},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":12,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}}}"#,
        )
        .expect("json");
        assert_eq!(
            chat_answer_to_message(&chat, "claude-x"),
            serde_json::from_str::<Value>(
                r#"{"id":"msg_c9","type":"message","role":"assistant","model":"claude-x",
                "content":[{"type":"thinking","thinking":"r","signature":""},{"type":"text","text":"Sure."},
                  {"type":"tool_use","id":"call_1","name":"ls","input":{"a":1}},
                  {"type":"tool_use","id":"call_2","name":"x","input":{"arguments":"not json"}}],
                "stop_reason":"tool_use","stop_sequence":null,
                "usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":2,"output_tokens":3}}"#
            )
            .expect("json")
        );
    }
}
