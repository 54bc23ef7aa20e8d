//! OpenAI's Responses API (Codex) over an OpenAI chat route: the request converted once, the
//! answer (a document, or a stream through [`ChatToResponses`]) converted back with every event
//! of the Responses stream. Nothing is stored (a request that continues a stored response was
//! refused when it was read). What chat cannot carry is dropped and named in the log.

use super::convert::{ChatAnswer, ChatChunk, ChatRequest, bad};
use super::sse::UpstreamUsage;
use crate::Error;
use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;

/// The text of a message's content: a string, or its text parts.
fn parts_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        _ => None,
    }
}

/// A user (or system) message's content as chat content: text alone as a string, with images as
/// parts.
fn user_content(content: &Value, at: &str) -> Result<Value, Error> {
    let Value::Array(parts) = content else {
        return match content {
            Value::String(s) => Ok(Value::String(s.clone())),
            _ => Err(bad(
                "input",
                format!("{at}.content must be a string or a list of parts"),
            )),
        };
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        match p.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => out.push(json!({
                "type": "text",
                "text": p.get("text").and_then(Value::as_str).unwrap_or(""),
            })),
            Some("input_image") => {
                let Some(url) = p.get("image_url").and_then(Value::as_str) else {
                    return Err(bad(
                        "input",
                        format!("{at}.content[{j}]: an image needs an image_url for this model"),
                    ));
                };
                let mut image = Map::new();
                image.insert("url".into(), Value::String(url.to_string()));
                if let Some(d) = p.get("detail").and_then(Value::as_str) {
                    image.insert("detail".into(), Value::String(d.to_string()));
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            other => {
                return Err(bad(
                    "input",
                    format!(
                        "{at}.content[{j}]: a part of type {} cannot be sent to this model's channels",
                        other.unwrap_or("(none)")
                    ),
                ));
            }
        }
    }
    if out.iter().all(|p| p["type"] == "text") {
        return Ok(Value::String(
            out.iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    Ok(Value::Array(out))
}

/// A custom (freeform) tool as a chat function of one string argument, `input`, whose
/// description carries the tool's grammar when it has one.
fn custom_tool(t: &Value, i: usize) -> Result<Value, Error> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("tools", format!("tools[{i}].name is required")))?;
    let mut description = t
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(format) = t.get("format").filter(|f| f["type"] == "grammar") {
        description.push_str(&format!(
            "\n\nThe input follows this {} grammar:\n{}",
            format.get("syntax").and_then(Value::as_str).unwrap_or(""),
            format
                .get("definition")
                .and_then(Value::as_str)
                .unwrap_or(""),
        ));
    }
    Ok(json!({"type": "function", "function": {
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": {"input": {"type": "string",
            "description": "The tool's whole input, as raw text"}},
            "required": ["input"], "additionalProperties": false},
    }}))
}

/// A custom tool's raw input, from the arguments of the chat call that stood for it (the
/// arguments themselves when they are not the expected object).
fn custom_input(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| arguments.to_string())
}

/// Converts a Responses request (already checked for `model`, `input` and the bound).
pub(super) fn responses_to_chat(
    req: &Map<String, Value>,
    stream: bool,
    max_tokens: u64,
) -> Result<ChatRequest, Error> {
    let mut dropped = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    if let Some(i) = req.get("instructions").filter(|v| !v.is_null()) {
        let Some(text) = i.as_str() else {
            return Err(bad("instructions", "must be a string"));
        };
        messages.push(json!({"role": "system", "content": text}));
    }
    match req.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("input[{i}]");
                let kind = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                match kind {
                    "message" => {
                        let role = item.get("role").and_then(Value::as_str).unwrap_or("");
                        let content = item.get("content").unwrap_or(&Value::Null);
                        match role {
                            "user" => messages.push(
                                json!({"role": "user", "content": user_content(content, &at)?}),
                            ),
                            "system" | "developer" => messages.push(json!({
                                "role": "system",
                                "content": parts_text(content).ok_or_else(|| bad("input", format!("{at}.content must be text")))?,
                            })),
                            "assistant" => {
                                let text = parts_text(content).ok_or_else(|| {
                                    bad("input", format!("{at}.content must be text"))
                                })?;
                                // Consecutive assistant texts make one message (before its calls).
                                match messages.last_mut() {
                                    Some(Value::Object(m))
                                        if m.get("role").and_then(Value::as_str)
                                            == Some("assistant")
                                            && !m.contains_key("tool_calls") =>
                                    {
                                        let before = m
                                            .get("content")
                                            .and_then(Value::as_str)
                                            .unwrap_or("")
                                            .to_string();
                                        m.insert("content".into(), Value::String(before + &text));
                                    }
                                    _ => messages
                                        .push(json!({"role": "assistant", "content": text})),
                                }
                            }
                            _ => {
                                return Err(bad(
                                    "input",
                                    format!("{at}.role must be user, assistant, system or developer"),
                                ));
                            }
                        }
                    }
                    "function_call" | "custom_tool_call" => {
                        let (Some(call_id), Some(name)) = (
                            item.get("call_id").and_then(Value::as_str),
                            item.get("name").and_then(Value::as_str),
                        ) else {
                            return Err(bad(
                                "input",
                                format!("{at}: a {kind} needs a call_id and a name"),
                            ));
                        };
                        // A custom tool's raw input travels as the one argument of a function.
                        let arguments = if kind == "custom_tool_call" {
                            json!({ "input": item.get("input").and_then(Value::as_str).unwrap_or("") })
                                .to_string()
                        } else {
                            item.get("arguments")
                                .and_then(Value::as_str)
                                .unwrap_or("{}")
                                .to_string()
                        };
                        let call = json!({"id": call_id, "type": "function",
                            "function": {"name": name, "arguments": arguments}});
                        // Calls follow the assistant's text, in the same message.
                        let last_is_assistant =
                            messages.last().is_some_and(|m| m["role"] == "assistant");
                        if !last_is_assistant {
                            messages.push(json!({"role": "assistant", "content": null}));
                        }
                        if let Some(Value::Object(m)) = messages.last_mut() {
                            match m.get_mut("tool_calls") {
                                Some(Value::Array(calls)) => calls.push(call),
                                _ => {
                                    m.insert("tool_calls".into(), json!([call]));
                                }
                            }
                        }
                    }
                    "function_call_output" | "custom_tool_call_output" => {
                        let Some(call_id) = item.get("call_id").and_then(Value::as_str) else {
                            return Err(bad("input", format!("{at}: a {kind} needs a call_id")));
                        };
                        let output = match item.get("output") {
                            Some(Value::String(s)) => s.clone(),
                            Some(v @ Value::Array(_)) => parts_text(v).unwrap_or_default(),
                            _ => String::new(),
                        };
                        messages.push(
                            json!({"role": "tool", "tool_call_id": call_id, "content": output}),
                        );
                    }
                    "reasoning" => dropped.push("reasoning item"),
                    other => {
                        return Err(bad(
                            "input",
                            format!(
                                "{at}: an item of type {other} cannot be sent to this model's channels"
                            ),
                        ));
                    }
                }
            }
        }
        Some(_) => return Err(bad("input", "must be a string or a list of items")),
        None => return Err(bad("input", "is required")),
    }
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if stream {
        body.insert("stream".into(), Value::Bool(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for key in ["temperature", "top_p", "parallel_tool_calls", "user"] {
        if let Some(v) = req.get(key).filter(|v| !v.is_null()) {
            body.insert(key.into(), v.clone());
        }
    }
    if let Some(effort) = req
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
    {
        body.insert("reasoning_effort".into(), Value::String(effort.to_string()));
    }
    if let Some(format) = req
        .get("text")
        .and_then(|t| t.get("format"))
        .filter(|v| !v.is_null())
    {
        match format.get("type").and_then(Value::as_str) {
            Some("text") | None => {}
            Some("json_object") => {
                body.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let mut schema = format.clone();
                if let Some(o) = schema.as_object_mut() {
                    o.remove("type");
                }
                body.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            Some(other) => {
                return Err(bad(
                    "text",
                    format!("text.format.type {other} is not known"),
                ));
            }
        }
    }
    if let Some(tools) = req.get("tools").filter(|v| !v.is_null()) {
        let Value::Array(tools) = tools else {
            return Err(bad("tools", "must be a list"));
        };
        let mut out = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            if t.get("type").and_then(Value::as_str) == Some("custom") {
                out.push(custom_tool(t, i)?);
                continue;
            }
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(bad(
                    "tools",
                    format!(
                        "tools[{i}]: the tool type {} cannot be sent to this model's channels (function and custom tools can)",
                        t.get("type").and_then(Value::as_str).unwrap_or("(none)")
                    ),
                ));
            }
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tools", format!("tools[{i}].name is required")))?;
            let mut function = Map::new();
            function.insert("name".into(), Value::String(name.to_string()));
            for key in ["description", "parameters", "strict"] {
                if let Some(v) = t.get(key).filter(|v| !v.is_null()) {
                    function.insert(key.into(), v.clone());
                }
            }
            out.push(json!({"type": "function", "function": function}));
        }
        if !out.is_empty() {
            body.insert("tools".into(), Value::Array(out));
        }
    }
    if let Some(choice) = req.get("tool_choice").filter(|v| !v.is_null()) {
        let mapped = match choice {
            Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
                choice.clone()
            }
            Value::Object(o)
                if matches!(
                    o.get("type").and_then(Value::as_str),
                    Some("function" | "custom")
                ) =>
            {
                match o.get("name").and_then(Value::as_str) {
                    Some(n) => json!({"type": "function", "function": {"name": n}}),
                    None => return Err(bad("tool_choice", "a function choice needs a name")),
                }
            }
            _ => {
                return Err(bad(
                    "tool_choice",
                    "must be auto, none, required or a function by name",
                ));
            }
        };
        body.insert("tool_choice".into(), mapped);
    }
    for (field, what) in [
        ("include", "include"),
        ("truncation", "truncation"),
        ("service_tier", "service_tier"),
    ] {
        if req.get(field).is_some_and(|v| !v.is_null()) {
            dropped.push(what);
        }
    }
    Ok(ChatRequest::new(body, max_tokens, dropped))
}

/// What a Responses answer echoes of its request.
#[derive(Clone, Debug, Default)]
pub(super) struct Echo {
    fields: Map<String, Value>,
    /// The request's custom tools: their calls go back as `custom_tool_call` items.
    custom: Vec<String>,
}

impl Echo {
    pub(super) fn of(req: &Map<String, Value>, max_tokens: Option<u64>) -> Echo {
        let mut fields = Map::new();
        for key in [
            "instructions",
            "temperature",
            "top_p",
            "tool_choice",
            "tools",
            "parallel_tool_calls",
            "reasoning",
            "text",
            "metadata",
            "user",
            "prompt_cache_key",
        ] {
            if let Some(v) = req.get(key) {
                fields.insert(key.into(), v.clone());
            }
        }
        fields.insert(
            "max_output_tokens".into(),
            max_tokens.map_or(Value::Null, Value::from),
        );
        let custom = req
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| t["type"] == "custom")
            .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        Echo { fields, custom }
    }

    /// The response names the bound the upstream was sent when the balance lowered it.
    pub(super) fn lower(&mut self, bound: u64) {
        self.fields
            .insert("max_output_tokens".into(), Value::from(bound));
    }

    fn is_custom(&self, name: &str) -> bool {
        self.custom.iter().any(|c| c == name)
    }
}

/// Usage in the Responses API's terms (its input count includes cached tokens, like chat).
fn usage_json(u: Option<UpstreamUsage>) -> Value {
    let u = u.unwrap_or_default();
    json!({
        "input_tokens": u.prompt,
        "input_tokens_details": {"cached_tokens": u.cached},
        "output_tokens": u.completion,
        "output_tokens_details": {"reasoning_tokens": u.detail.reasoning},
        "total_tokens": u.prompt + u.completion,
    })
}

/// The response object: `status`, the output items, usage, and what the request set.
#[expect(
    clippy::too_many_arguments,
    reason = "the fields of the object, named where it is built"
)]
fn response_object(
    id: &str,
    created: i64,
    model: &str,
    status: &str,
    output: Vec<Value>,
    usage: Option<Value>,
    incomplete: Option<&str>,
    echo: &Echo,
) -> Value {
    let mut r = Map::new();
    r.insert("id".into(), Value::String(id.to_string()));
    r.insert("object".into(), json!("response"));
    r.insert("created_at".into(), json!(created));
    r.insert("status".into(), json!(status));
    r.insert("error".into(), Value::Null);
    r.insert(
        "incomplete_details".into(),
        incomplete.map_or(Value::Null, |reason| json!({ "reason": reason })),
    );
    r.insert("model".into(), json!(model));
    r.insert("output".into(), Value::Array(output));
    r.insert("previous_response_id".into(), Value::Null);
    for (k, v) in &echo.fields {
        r.insert(k.clone(), v.clone());
    }
    for (k, default) in [
        ("tools", json!([])),
        ("tool_choice", json!("auto")),
        ("parallel_tool_calls", json!(true)),
        ("store", json!(false)),
        ("metadata", json!({})),
    ] {
        r.entry(k).or_insert(default);
    }
    if let Some(u) = usage {
        r.insert("usage".into(), u);
    }
    Value::Object(r)
}

fn response_id(upstream: Option<&str>) -> String {
    match upstream {
        Some(id) if !id.is_empty() => format!("resp_{id}"),
        _ => "resp_tollgate".to_string(),
    }
}

/// A chat completion (the whole answer) as a Responses answer naming `model`.
pub(super) fn chat_answer_to_response(
    chat: &Value,
    model: &str,
    echo: &Echo,
    created: i64,
) -> Value {
    let answer = ChatAnswer::read(chat);
    let id = response_id(answer.id);
    let mut output = Vec::new();
    if let Some(r) = answer.reasoning {
        output.push(json!({"type": "reasoning", "id": format!("rs_{id}"),
            "summary": [{"type": "summary_text", "text": r}]}));
    }
    if !answer.text.is_empty() {
        output.push(
            json!({"type": "message", "id": format!("msg_{id}"), "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": answer.text, "annotations": []}]}),
        );
    }
    for (i, (call_id, name, arguments)) in answer.calls.iter().enumerate() {
        let call_id = call_id.map_or_else(|| format!("call_{i}"), str::to_string);
        output.push(call_item(&call_id, name, arguments, echo.is_custom(name)));
    }
    let length = answer.finish_reason == Some("length");
    let usage = super::sse::usage_of(chat);
    response_object(
        &id,
        created,
        model,
        if length { "incomplete" } else { "completed" },
        output,
        Some(usage_json(usage)),
        length.then_some("max_output_tokens"),
        echo,
    )
}

/// A tool call as an output item: a function call, or a custom tool's call with its raw input.
fn call_item(call_id: &str, name: &str, arguments: &str, custom: bool) -> Value {
    if custom {
        json!({"type": "custom_tool_call", "id": format!("ctc_{call_id}"), "status": "completed",
            "call_id": call_id, "name": name, "input": custom_input(arguments)})
    } else {
        json!({"type": "function_call", "id": format!("fc_{call_id}"), "status": "completed",
            "call_id": call_id, "name": name, "arguments": arguments})
    }
}

/// One item of the output as a stream builds it.
#[derive(Debug)]
enum Item {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        chat_index: u64,
        /// A custom tool's call: its input is sent whole when the call ends.
        custom: bool,
    },
}

impl Item {
    /// The item as `response.output_item.done` and the final response show it.
    fn done(&self) -> Value {
        match self {
            Item::Reasoning { id, text } => json!({"type": "reasoning", "id": id,
                "summary": [{"type": "summary_text", "text": text}]}),
            Item::Message { id, text } => {
                json!({"type": "message", "id": id, "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]})
            }
            Item::Call {
                call_id,
                name,
                arguments,
                custom,
                ..
            } => call_item(call_id, name, arguments, *custom),
        }
    }
}

/// A chat stream turned into the Responses API's events: `response.created` and
/// `response.in_progress`, each output item added, streamed and done in order (reasoning
/// summaries, output text, function calls with their arguments whole in `.done`), and
/// `response.completed` (or `response.incomplete`) with the usage.
#[derive(Debug)]
pub(super) struct ChatToResponses {
    model: String,
    echo: Echo,
    created: i64,
    id: String,
    started: bool,
    /// Items done, and the one open.
    items: Vec<Item>,
    open: bool,
    sequence: u64,
    finish: Option<String>,
    /// Tool calls (by chat index) already given an item.
    tools_seen: Vec<u64>,
    pub(super) dropped: u32,
}

impl ChatToResponses {
    pub(super) fn new(model: &str, echo: Echo, created: i64) -> ChatToResponses {
        ChatToResponses {
            model: model.to_string(),
            echo,
            created,
            id: response_id(None),
            started: false,
            items: Vec::new(),
            open: false,
            sequence: 0,
            finish: None,
            tools_seen: Vec::new(),
            dropped: 0,
        }
    }

    fn emit(&mut self, kind: &str, mut data: Value, out: &mut VecDeque<Bytes>) {
        if let Value::Object(o) = &mut data {
            o.insert("type".into(), Value::String(kind.to_string()));
            o.insert("sequence_number".into(), Value::from(self.sequence));
        }
        self.sequence += 1;
        out.push_back(super::sse::named_event(kind, &data));
    }

    /// A delta of the open item, written straight to bytes (one per chunk: the hot path of a
    /// converted stream): the same bytes as [`Self::emit`] makes of
    /// `{"item_id", "output_index", <middle>, "delta", <tail>}`.
    fn emit_delta(
        &mut self,
        kind: &str,
        (middle, tail): (&str, &str),
        delta: &str,
        out: &mut VecDeque<Bytes>,
    ) {
        use bytes::BufMut as _;
        use std::io::Write as _;
        let index = self.items.len().saturating_sub(1);
        let Some(Item::Reasoning { id, .. } | Item::Message { id, .. } | Item::Call { id, .. }) =
            self.items.last()
        else {
            return;
        };
        let mut b = BytesMut::with_capacity(160 + kind.len() * 2 + id.len() + delta.len()).writer();
        // Writing to memory cannot fail.
        let _ = write!(b, "event: {kind}\ndata: {{\"item_id\":");
        let _ = serde_json::to_writer(&mut b, id);
        let _ = write!(b, ",\"output_index\":{index}{middle},\"delta\":");
        let _ = serde_json::to_writer(&mut b, delta);
        let _ = write!(
            b,
            "{tail},\"type\":\"{kind}\",\"sequence_number\":{}}}\n\n",
            self.sequence
        );
        self.sequence += 1;
        out.push_back(b.into_inner().freeze());
    }

    fn response(&self, status: &str, usage: Option<Value>, incomplete: Option<&str>) -> Value {
        let output = self.items.iter().map(Item::done).collect();
        response_object(
            &self.id,
            self.created,
            &self.model,
            status,
            output,
            usage,
            incomplete,
            &self.echo,
        )
    }

    fn start(&mut self, id: Option<&str>, out: &mut VecDeque<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = response_id(id);
        let r = self.response("in_progress", None, None);
        self.emit("response.created", json!({ "response": r.clone() }), out);
        self.emit("response.in_progress", json!({ "response": r }), out);
    }

    /// Ends the open item: its text or arguments whole, then the item.
    fn close(&mut self, out: &mut VecDeque<Bytes>) {
        if !self.open {
            return;
        }
        self.open = false;
        let index = self.items.len() - 1;
        let item = &self.items[index];
        let done = item.done();
        match item {
            Item::Reasoning { id, text } => {
                let (id, text) = (id.clone(), text.clone());
                self.emit(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                    out,
                );
                self.emit("response.reasoning_summary_part.done", json!({"item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": text}}), out);
            }
            Item::Message { id, text } => {
                let (id, text) = (id.clone(), text.clone());
                self.emit("response.output_text.done", json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}), out);
                self.emit("response.content_part.done", json!({"item_id": id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": []}}), out);
            }
            Item::Call {
                id,
                arguments,
                custom: true,
                ..
            } => {
                let (id, input) = (id.clone(), custom_input(arguments));
                self.emit(
                    "response.custom_tool_call_input.delta",
                    json!({"item_id": id, "output_index": index, "delta": input}),
                    out,
                );
                self.emit(
                    "response.custom_tool_call_input.done",
                    json!({"item_id": id, "output_index": index, "input": input}),
                    out,
                );
            }
            Item::Call { id, arguments, .. } => {
                let (id, arguments) = (id.clone(), arguments.clone());
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": arguments}),
                    out,
                );
            }
        }
        self.emit(
            "response.output_item.done",
            json!({"output_index": index, "item": done}),
            out,
        );
    }

    /// Opens `item` (closing the open one), announcing it.
    fn open_item(&mut self, item: Item, out: &mut VecDeque<Bytes>) {
        self.close(out);
        let index = self.items.len();
        let added = match &item {
            Item::Reasoning { id, .. } => json!({"type": "reasoning", "id": id, "summary": []}),
            Item::Message { id, .. } => {
                json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []})
            }
            Item::Call {
                id,
                call_id,
                name,
                custom: true,
                ..
            } => {
                json!({"type": "custom_tool_call", "id": id, "status": "in_progress", "call_id": call_id, "name": name, "input": ""})
            }
            Item::Call {
                id, call_id, name, ..
            } => {
                json!({"type": "function_call", "id": id, "status": "in_progress", "call_id": call_id, "name": name, "arguments": ""})
            }
        };
        self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
            out,
        );
        match &item {
            Item::Reasoning { id, .. } => {
                let id = id.clone();
                self.emit("response.reasoning_summary_part.added", json!({"item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}), out);
            }
            Item::Message { id, .. } => {
                let id = id.clone();
                self.emit("response.content_part.added", json!({"item_id": id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}), out);
            }
            Item::Call { .. } => {}
        }
        self.items.push(item);
        self.open = true;
    }

    fn open_kind(&self) -> Option<&Item> {
        if self.open { self.items.last() } else { None }
    }

    /// One chat chunk's events; the text it generated is added to `text`.
    pub(super) fn on_chunk(
        &mut self,
        chunk: &ChatChunk<'_>,
        out: &mut VecDeque<Bytes>,
        text: &mut String,
    ) {
        self.start(chunk.id(), out);
        let Some(d) = chunk.first_delta() else {
            if let Some(f) = chunk.finish_reason() {
                self.finish = Some(f.to_string());
            }
            return;
        };
        if let Some(r) = d.reasoning().filter(|r| !r.is_empty()) {
            text.push_str(r);
            if !matches!(self.open_kind(), Some(Item::Reasoning { .. })) {
                let id = format!("rs_{}", self.items.len());
                self.open_item(
                    Item::Reasoning {
                        id,
                        text: String::new(),
                    },
                    out,
                );
            }
            match self.items.last_mut() {
                Some(Item::Reasoning { text, .. }) => text.push_str(r),
                _ => return,
            }
            self.emit_delta(
                "response.reasoning_summary_text.delta",
                (",\"summary_index\":0", ""),
                r,
                out,
            );
        }
        if let Some(t) = d.content().filter(|t| !t.is_empty()) {
            text.push_str(t);
            if !matches!(self.open_kind(), Some(Item::Message { .. })) {
                let id = format!("msg_{}", self.items.len());
                self.open_item(
                    Item::Message {
                        id,
                        text: String::new(),
                    },
                    out,
                );
            }
            match self.items.last_mut() {
                Some(Item::Message { text, .. }) => text.push_str(t),
                _ => return,
            }
            self.emit_delta(
                "response.output_text.delta",
                (",\"content_index\":0", ",\"logprobs\":[]"),
                t,
                out,
            );
        }
        for call in d.tool_calls() {
            let current = matches!(self.open_kind(), Some(Item::Call { chat_index, .. }) if *chat_index == call.index());
            if !current {
                if self.tools_seen.contains(&call.index()) {
                    self.dropped += 1;
                    continue;
                }
                self.tools_seen.push(call.index());
                let call_id = call
                    .id()
                    .filter(|i| !i.is_empty())
                    .map_or_else(|| format!("call_{}", call.index()), str::to_string);
                let name = call.name().unwrap_or("").to_string();
                let custom = self.echo.is_custom(&name);
                let item = Item::Call {
                    id: format!("{}_{call_id}", if custom { "ctc" } else { "fc" }),
                    call_id,
                    name,
                    arguments: String::new(),
                    chat_index: call.index(),
                    custom,
                };
                self.open_item(item, out);
            }
            if let Some(a) = call.arguments().filter(|a| !a.is_empty()) {
                text.push_str(a);
                match self.items.last_mut() {
                    Some(Item::Call {
                        custom: true,
                        arguments,
                        ..
                    }) => {
                        // Held: the raw input is known once the arguments are whole.
                        arguments.push_str(a);
                        continue;
                    }
                    Some(Item::Call { arguments, .. }) => arguments.push_str(a),
                    _ => continue,
                }
                self.emit_delta("response.function_call_arguments.delta", ("", ""), a, out);
            }
        }
        if let Some(f) = chunk.finish_reason() {
            self.finish = Some(f.to_string());
        }
    }

    /// The end of a stream the gateway ended at its output bound: `response.incomplete`
    /// (`max_output_tokens`), as when the upstream ends there.
    pub(super) fn end_at_bound(&mut self, usage: Option<UpstreamUsage>, out: &mut VecDeque<Bytes>) {
        self.finish = Some("length".into());
        self.finish(usage, out);
    }

    /// The end of a complete upstream stream: the open item done, and the whole response.
    pub(super) fn finish(&mut self, usage: Option<UpstreamUsage>, out: &mut VecDeque<Bytes>) {
        self.start(None, out);
        self.close(out);
        let length = self.finish.as_deref() == Some("length");
        let r = self.response(
            if length { "incomplete" } else { "completed" },
            Some(usage_json(usage)),
            length.then_some("max_output_tokens"),
        );
        let kind = if length {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(kind, json!({ "response": r }), out);
    }

    /// The end of a stream that failed: `response.failed` with the reason.
    pub(super) fn fail(&mut self, message: &str, out: &mut VecDeque<Bytes>) {
        self.start(None, out);
        let mut r = self.response("failed", None, None);
        r["error"] = json!({"code": "server_error", "message": message});
        self.emit("response.failed", json!({ "response": r }), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use types::ChannelKind;

    /// The request conversion, golden: instructions, text and image input, an assistant turn
    /// with its call, the call's output, tools, tool choice, reasoning effort and a JSON schema;
    /// what chat cannot carry named.
    #[test]
    fn a_responses_request_becomes_the_chat_request() {
        let req: Value = serde_json::from_str(
            r#"{"model":"codex","instructions":"Be brief.","stream":true,"max_output_tokens":64,
            "input":[
              {"role":"developer","content":"Use tools."},
              {"role":"user","content":[{"type":"input_text","text":"Look:"},{"type":"input_image","image_url":"https://x/i.png","detail":"low"}]},
              {"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"e"},
              {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
              {"type":"function_call","call_id":"call_1","name":"ls","arguments":"{\"path\":\"/\"}"},
              {"type":"function_call","call_id":"call_2","name":"pwd","arguments":"{}"},
              {"type":"function_call_output","call_id":"call_1","output":"a b"},
              {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"/"}]}
            ],
            "tools":[{"type":"function","name":"ls","description":"List","parameters":{"type":"object"},"strict":true}],
            "tool_choice":{"type":"function","name":"ls"},"parallel_tool_calls":false,
            "reasoning":{"effort":"high","summary":"auto"},"include":["reasoning.encrypted_content"],
            "text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}},
            "store":false,"prompt_cache_key":"k"}"#,
        )
        .expect("json");
        let chat = responses_to_chat(req.as_object().expect("object"), true, 64).expect("converts");
        assert_eq!(chat.dropped, vec!["reasoning item", "include"]);
        let body = chat.json("up", ChannelKind::OpenAiCompatible);
        assert_eq!(
            body,
            serde_json::from_str::<Value>(
                r#"{"model":"up","max_tokens":64,"stream":true,"stream_options":{"include_usage":true},
                "messages":[
                  {"role":"system","content":"Be brief."},
                  {"role":"system","content":"Use tools."},
                  {"role":"user","content":[{"type":"text","text":"Look:"},{"type":"image_url","image_url":{"url":"https://x/i.png","detail":"low"}}]},
                  {"role":"assistant","content":"Checking.","tool_calls":[
                    {"id":"call_1","type":"function","function":{"name":"ls","arguments":"{\"path\":\"/\"}"}},
                    {"id":"call_2","type":"function","function":{"name":"pwd","arguments":"{}"}}]},
                  {"role":"tool","tool_call_id":"call_1","content":"a b"},
                  {"role":"tool","tool_call_id":"call_2","content":"/"}
                ],
                "parallel_tool_calls":false,"reasoning_effort":"high",
                "response_format":{"type":"json_schema","json_schema":{"name":"out","schema":{"type":"object"},"strict":true}},
                "tools":[{"type":"function","function":{"name":"ls","description":"List","parameters":{"type":"object"},"strict":true}}],
                "tool_choice":{"type":"function","function":{"name":"ls"}}}"#
            )
            .expect("json")
        );
    }

    /// The stream conversion, golden: every event in order with its sequence number, text
    /// before a call keeps the call, the arguments whole in `.done` and in the final response.
    #[test]
    fn a_chat_stream_becomes_a_complete_responses_stream() {
        let chunks = [
            r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"name":"ls","arguments":"{\"p\""}}]}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ];
        let mut m = ChatToResponses::new("codex", Echo::default(), 7);
        let mut out = VecDeque::new();
        let mut text = String::new();
        for c in chunks {
            let chunk: ChatChunk<'_> = serde_json::from_str(c).expect("chunk");
            m.on_chunk(&chunk, &mut out, &mut text);
        }
        m.finish(
            Some(UpstreamUsage {
                prompt: 10,
                completion: 5,
                cached: 4,
                ..Default::default()
            }),
            &mut out,
        );
        assert_eq!(text, "Hi{\"p\":1}");
        let events: Vec<(String, Value)> = out
            .iter()
            .map(|b| {
                let s = std::str::from_utf8(b).expect("utf-8");
                let (head, data) = s.split_once("\ndata: ").expect("an event");
                (
                    head.trim_start_matches("event: ").to_string(),
                    serde_json::from_str(data.trim_end()).expect("json"),
                )
            })
            .collect();
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, (name, data)) in events.iter().enumerate() {
            assert_eq!(data["type"], *name);
            assert_eq!(data["sequence_number"], i);
        }
        assert_eq!(
            events[4].1,
            json!({"item_id": "msg_0", "output_index": 0, "content_index": 0, "delta": "Hi",
                "logprobs": [], "type": "response.output_text.delta", "sequence_number": 4})
        );
        assert_eq!(events[11].1["arguments"], "{\"p\":1}");
        let done = &events[13].1["response"];
        assert_eq!(done["id"], "resp_c1");
        assert_eq!(done["created_at"], 7);
        assert_eq!(done["status"], "completed");
        assert_eq!(
            done["output"],
            json!([
                {"type": "message", "id": "msg_0", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Hi", "annotations": []}]},
                {"type": "function_call", "id": "fc_call_a", "status": "completed",
                 "call_id": "call_a", "name": "ls", "arguments": "{\"p\":1}"}
            ])
        );
        assert_eq!(
            done["usage"],
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15})
        );
        // A cut: the response fails, with the reason.
        let mut cut = ChatToResponses::new("codex", Echo::default(), 7);
        let mut out = VecDeque::new();
        cut.fail("the upstream stream was interrupted", &mut out);
        let last = String::from_utf8_lossy(out.back().expect("an event")).into_owned();
        assert!(last.starts_with("event: response.failed\n"), "{last}");
        assert!(last.contains("\"status\":\"failed\""), "{last}");
    }

    /// Codex's freeform tools: declared as functions of one string, their calls and outputs
    /// sent back as chat's, and the model's call streamed back as a custom tool call whose raw
    /// input arrives whole.
    #[test]
    fn custom_tools_travel_as_functions_of_one_string() {
        let req: Value = serde_json::from_str(
            r#"{"model":"codex","input":[
              {"type":"custom_tool_call","call_id":"c1","name":"apply_patch","input":"*** Begin Patch"},
              {"type":"custom_tool_call_output","call_id":"c1","output":"done"}],
            "tools":[{"type":"custom","name":"apply_patch","description":"Patch","format":{"type":"grammar","syntax":"lark","definition":"start: x"}}],
            "tool_choice":{"type":"custom","name":"apply_patch"}}"#,
        )
        .expect("json");
        let req = req.as_object().expect("object");
        let chat = responses_to_chat(req, false, 8).expect("converts");
        let body = chat.json("up", ChannelKind::OpenAiCompatible);
        assert_eq!(
            body["messages"],
            json!([
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "done"}
            ])
        );
        assert_eq!(
            body["tools"][0]["function"]["description"],
            "Patch\n\nThe input follows this lark grammar:\nstart: x"
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "function": {"name": "apply_patch"}})
        );
        let mut m = ChatToResponses::new("codex", Echo::of(req, None), 7);
        let mut out = VecDeque::new();
        let mut text = String::new();
        for c in [
            r#"{"id":"c2","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_p","function":{"name":"apply_patch","arguments":"{\"input\":\"*** Be"}}]}}]}"#,
            r#"{"id":"c2","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"gin\\nx\"}"}}]}}]}"#,
        ] {
            let chunk: ChatChunk<'_> = serde_json::from_str(c).expect("chunk");
            m.on_chunk(&chunk, &mut out, &mut text);
        }
        m.finish(None, &mut out);
        let events: Vec<String> = out
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        let names: Vec<&str> = events
            .iter()
            .filter_map(|e| e.strip_prefix("event: ")?.split('\n').next())
            .collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.custom_tool_call_input.delta",
                "response.custom_tool_call_input.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        assert!(
            events[4].contains(r#""input":"*** Begin\nx""#),
            "{}",
            events[4]
        );
        assert!(
            events[5].contains(r#""type":"custom_tool_call""#)
                && events[5].contains(r#""call_id":"call_p""#),
            "{}",
            events[5]
        );
    }
}
