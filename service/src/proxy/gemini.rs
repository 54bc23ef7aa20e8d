//! Google's Gemini API (`models/{model}:generateContent`, `:streamGenerateContent?alt=sse`) as
//! a chat route: a chat request becomes a Gemini request, and the answer or the stream becomes
//! chat again, so every surface that goes over chat (chat itself, Messages, Responses) reaches a
//! Gemini channel through the converters it already has.
//!
//! Usage in the gateway's terms, resolved here once: Gemini's `promptTokenCount` includes the
//! cached content (`cachedContentTokenCount`); its `candidatesTokenCount` leaves out the
//! thinking (`thoughtsTokenCount`), which is output all the same and is added to it; tool-use
//! prompt tokens are input. Image and audio counts come from the modality details.

use crate::Error;
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;

/// What of a chat request a Gemini request carries; every other field is left out and named in
/// the log.
const CARRIED: [&str; 17] = [
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "n",
    "response_format",
    "reasoning_effort",
    "tools",
    "tool_choice",
];

/// The Gemini request for a chat request (`chat`, the JSON the relay would send a chat route),
/// and the names of what it left out.
pub(crate) fn request(chat: &[u8]) -> Result<(Bytes, Vec<String>), Error> {
    let chat: Map<String, Value> = serde_json::from_slice(chat)
        .map_err(|_| Error::invalid("body", "must be a JSON object"))?;
    let mut out = Map::new();
    let mut dropped = Vec::new();
    let mut system: Vec<Value> = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // A tool result names its call by id; Gemini names the function.
    let mut call_names: HashMap<String, String> = HashMap::new();
    let messages = chat
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid("messages", "must be an array"))?;
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        match role {
            "system" | "developer" => system.extend(parts_of(m.get("content"))?),
            "user" => push(&mut contents, "user", parts_of(m.get("content"))?),
            "assistant" => {
                let mut parts = parts_of(m.get("content"))?;
                if m.get("reasoning_content").is_some_and(|r| !r.is_null()) {
                    dropped.push("reasoning_content".to_string());
                }
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| Error::invalid("messages", "a tool call has no name"))?;
                    let arguments = call
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}");
                    let args = match serde_json::from_str::<Value>(arguments) {
                        Ok(v @ Value::Object(_)) => v,
                        _ if arguments.trim().is_empty() => json!({}),
                        _ => {
                            return Err(Error::invalid(
                                "messages",
                                "a tool call's arguments must be a JSON object",
                            ));
                        }
                    };
                    if let Some(id) = call.get("id").and_then(Value::as_str) {
                        call_names.insert(id.to_string(), name.to_string());
                    }
                    parts.push(json!({ "functionCall": { "name": name, "args": args } }));
                }
                push(&mut contents, "model", parts);
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let name = call_names.get(id).ok_or_else(|| {
                    Error::invalid("messages", "a tool result names no earlier tool call")
                })?;
                let text = text_of(m.get("content"));
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({ "result": text }),
                };
                push(
                    &mut contents,
                    "user",
                    vec![json!({ "functionResponse": { "name": name, "response": response } })],
                );
            }
            other => {
                return Err(Error::invalid(
                    "messages",
                    format!(
                        "a message's role {other:?} is not one of system, developer, user, assistant, tool"
                    ),
                ));
            }
        }
    }
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    if let Some(tools) = chat.get("tools").and_then(Value::as_array) {
        let mut declarations = Vec::with_capacity(tools.len());
        for t in tools {
            let f = t
                .get("function")
                .filter(|_| t.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(|| Error::invalid("tools", "a Gemini channel takes function tools"))?;
            let mut d = Map::new();
            for (from, to) in [
                ("name", "name"),
                ("description", "description"),
                ("parameters", "parametersJsonSchema"),
            ] {
                if let Some(v) = f.get(from).filter(|v| !v.is_null()) {
                    d.insert(to.into(), v.clone());
                }
            }
            declarations.push(Value::Object(d));
        }
        if !declarations.is_empty() {
            out.insert(
                "tools".into(),
                json!([{ "functionDeclarations": declarations }]),
            );
        }
    }
    if let Some(choice) = chat.get("tool_choice") {
        let config = match choice {
            Value::String(s) if s == "auto" => json!({ "mode": "AUTO" }),
            Value::String(s) if s == "none" => json!({ "mode": "NONE" }),
            Value::String(s) if s == "required" => json!({ "mode": "ANY" }),
            Value::Object(o) => {
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::invalid("tool_choice", "names no function"))?;
                json!({ "mode": "ANY", "allowedFunctionNames": [name] })
            }
            _ => return Err(Error::invalid("tool_choice", "is not a known choice")),
        };
        out.insert(
            "toolConfig".into(),
            json!({ "functionCallingConfig": config }),
        );
    }
    out.insert("generationConfig".into(), Value::Object(generation(&chat)?));
    for (key, _) in &chat {
        if !CARRIED.contains(&key.as_str()) {
            dropped.push(key.clone());
        }
    }
    let body = serde_json::to_vec(&out).map_err(anyhow::Error::from)?;
    Ok((Bytes::from(body), dropped))
}

/// The sampling and output settings.
fn generation(chat: &Map<String, Value>) -> Result<Map<String, Value>, Error> {
    let mut g = Map::new();
    if let Some(n) = chat
        .get("max_completion_tokens")
        .or_else(|| chat.get("max_tokens"))
        .and_then(Value::as_u64)
    {
        g.insert("maxOutputTokens".into(), n.into());
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = chat.get(from).filter(|v| !v.is_null()) {
            g.insert(to.into(), v.clone());
        }
    }
    match chat.get("stop") {
        Some(Value::String(s)) => {
            g.insert("stopSequences".into(), json!([s]));
        }
        Some(v @ Value::Array(_)) => {
            g.insert("stopSequences".into(), v.clone());
        }
        _ => {}
    }
    if chat.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(Error::invalid(
            "n",
            "a Gemini channel answers with one choice",
        ));
    }
    match chat
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_object") => {
            g.insert("responseMimeType".into(), "application/json".into());
        }
        Some("json_schema") => {
            g.insert("responseMimeType".into(), "application/json".into());
            if let Some(schema) = chat
                .get("response_format")
                .and_then(|f| f.pointer("/json_schema/schema"))
            {
                g.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        _ => {}
    }
    if let Some(effort) = chat.get("reasoning_effort").and_then(Value::as_str) {
        let budget = match effort {
            "minimal" | "none" => 0,
            "low" => 1024,
            "medium" => 8192,
            "high" => 24_576,
            _ => {
                return Err(Error::invalid(
                    "reasoning_effort",
                    "must be minimal, low, medium or high",
                ));
            }
        };
        g.insert(
            "thinkingConfig".into(),
            json!({ "thinkingBudget": budget, "includeThoughts": budget > 0 }),
        );
    }
    Ok(g)
}

/// Appends parts to the conversation: to the last content when it has the same role (Gemini
/// takes the turns alternating), else as a new content. Empty parts are left out.
fn push(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut()
        && last["role"] == role
        && let Some(p) = last.get_mut("parts").and_then(Value::as_array_mut)
    {
        p.extend(parts);
        return;
    }
    contents.push(json!({ "role": role, "parts": parts }));
}

/// A chat message's content as Gemini parts: text, and images and audio given inline.
fn parts_of(content: Option<&Value>) -> Result<Vec<Value>, Error> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![json!({ "text": s })]),
        Some(Value::Array(items)) => {
            let mut parts = Vec::with_capacity(items.len());
            for p in items {
                match p.get("type").and_then(Value::as_str).unwrap_or_default() {
                    "text" => {
                        if let Some(t) = p.get("text").and_then(Value::as_str)
                            && !t.is_empty()
                        {
                            parts.push(json!({ "text": t }));
                        }
                    }
                    "image_url" => {
                        let url = p
                            .pointer("/image_url/url")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let (mime, data) = url
                            .strip_prefix("data:")
                            .and_then(|rest| rest.split_once(";base64,"))
                            .ok_or_else(|| {
                                Error::invalid(
                                    "messages",
                                    "a Gemini channel takes images as data: URLs (base64)",
                                )
                            })?;
                        parts.push(json!({ "inlineData": { "mimeType": mime, "data": data } }));
                    }
                    "input_audio" => {
                        let format = p
                            .pointer("/input_audio/format")
                            .and_then(Value::as_str)
                            .unwrap_or("wav");
                        let data = p
                            .pointer("/input_audio/data")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        parts.push(json!({ "inlineData": { "mimeType": format!("audio/{format}"), "data": data } }));
                    }
                    other => {
                        return Err(Error::invalid(
                            "messages",
                            format!(
                                "a content part of type {other:?} cannot go to a Gemini channel"
                            ),
                        ));
                    }
                }
            }
            Ok(parts)
        }
        Some(_) => Err(Error::invalid(
            "messages",
            "a message's content must be text or parts",
        )),
    }
}

/// A content's text: the string, or its text parts joined.
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Gemini's usage in chat's names, each detail a part of the count it details.
fn usage(meta: &Value) -> Option<Value> {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = meta.get("promptTokenCount")?.as_u64()? + n("toolUsePromptTokenCount");
    let thoughts = n("thoughtsTokenCount");
    let completion = n("candidatesTokenCount") + thoughts;
    let modality = |list: &str, m: &str| {
        meta.get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|d| d["modality"] == m)
            .filter_map(|d| d.get("tokenCount").and_then(Value::as_u64))
            .sum::<u64>()
    };
    Some(json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": n("cachedContentTokenCount"),
            "image_tokens": modality("promptTokensDetails", "IMAGE"),
            "audio_tokens": modality("promptTokensDetails", "AUDIO"),
        },
        "completion_tokens_details": {
            "reasoning_tokens": thoughts,
            "image_tokens": modality("candidatesTokensDetails", "IMAGE"),
            "audio_tokens": modality("candidatesTokensDetails", "AUDIO"),
        },
    }))
}

/// Chat's finish reason for Gemini's.
fn finish_reason(reason: &str, called: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if called => "tool_calls",
        _ => "stop",
    }
}

/// A candidate's parts: the answer's text, the thinking's text, and the function calls as chat
/// tool calls (numbered from `first`).
fn read_parts(parts: Option<&Value>, first: usize) -> (String, String, Vec<Value>) {
    let (mut text, mut thought, mut calls) = (String::new(), String::new(), Vec::new());
    for p in parts.and_then(Value::as_array).into_iter().flatten() {
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                thought.push_str(t);
            } else {
                text.push_str(t);
            }
        }
        if let Some(f) = p.get("functionCall") {
            let index = first + calls.len();
            let id = f
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_gemini_{index}"), str::to_string);
            let arguments = f
                .get("args")
                .map_or_else(|| "{}".to_string(), Value::to_string);
            calls.push(json!({
                "index": index, "id": id, "type": "function",
                "function": { "name": f.get("name").cloned().unwrap_or(Value::Null), "arguments": arguments },
            }));
        }
    }
    (text, thought, calls)
}

/// A `generateContent` answer as a chat completion.
pub(super) fn answer(bytes: &[u8]) -> Option<Bytes> {
    let g: Value = serde_json::from_slice(bytes).ok()?;
    let candidate = g.pointer("/candidates/0");
    let (text, thought, calls) = read_parts(candidate.and_then(|c| c.pointer("/content/parts")), 0);
    let reason = candidate
        .and_then(|c| c.get("finishReason"))
        .and_then(Value::as_str)
        .or_else(|| {
            // No candidate: the prompt itself was blocked.
            g.pointer("/promptFeedback/blockReason").map(|_| "SAFETY")
        })
        .unwrap_or("STOP");
    let mut message = json!({ "role": "assistant", "content": text });
    if !thought.is_empty() {
        message["reasoning_content"] = thought.into();
    }
    if !calls.is_empty() {
        let calls: Vec<Value> = calls
            .into_iter()
            .map(|mut c| {
                c.as_object_mut().map(|o| o.shift_remove("index"));
                c
            })
            .collect();
        message["tool_calls"] = calls.into();
        if message["content"] == "" {
            message["content"] = Value::Null;
        }
    }
    let mut out = json!({
        "id": chat_id(&g),
        "object": "chat.completion",
        "created": crate::now_ms() / 1000,
        "model": g.get("modelVersion").cloned().unwrap_or_else(|| "".into()),
        "choices": [{ "index": 0, "message": message,
                      "finish_reason": finish_reason(reason, message.get("tool_calls").is_some()) }],
    });
    if let Some(u) = g.get("usageMetadata").and_then(usage) {
        out["usage"] = u;
    }
    serde_json::to_vec(&out).ok().map(Bytes::from)
}

fn chat_id(g: &Value) -> String {
    g.get("responseId").and_then(Value::as_str).map_or_else(
        || "chatcmpl-gemini".to_string(),
        |id| format!("chatcmpl-{id}"),
    )
}

pub(super) type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A `streamGenerateContent?alt=sse` stream as a chat stream: one chunk per Gemini event (the
/// role first, text, thinking as `reasoning_content`, each function call whole with its own
/// index), the finish reason when Gemini gives it, then the usage chunk and `[DONE]`. A stream
/// that ends without a finish reason (or with an error event) ends without `[DONE]`: the relay
/// sees the cut.
pub(super) fn chat_stream(upstream: ByteStream) -> ByteStream {
    struct State {
        upstream: ByteStream,
        framer: super::sse::Framer,
        convert: StreamToChat,
        out: VecDeque<Bytes>,
        ended: bool,
    }
    let state = State {
        upstream,
        framer: super::sse::Framer::default(),
        convert: StreamToChat::default(),
        out: VecDeque::new(),
        ended: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(b) = s.out.pop_front() {
                return Some((Ok(b), s));
            }
            if s.ended {
                return None;
            }
            match s.upstream.next().await {
                Some(Ok(chunk)) => {
                    s.framer.push(&chunk);
                    while let Some(ev) = s.framer.next_event() {
                        if let Some(data) = super::sse::data_of(ev.lines()) {
                            s.convert.on_event(&data, &mut s.out);
                        }
                    }
                }
                Some(Err(e)) => {
                    s.ended = true;
                    return Some((Err(e), s));
                }
                None => {
                    s.ended = true;
                    s.convert.finish(&mut s.out);
                }
            }
        }
    }))
}

/// The state of one converted stream.
#[derive(Default)]
struct StreamToChat {
    /// The role went out (with the first chunk).
    started: bool,
    /// Tool calls so far (the next one's index).
    calls: usize,
    /// Gemini gave a finish reason: the answer is whole.
    finished: bool,
    /// An error event came: the stream is cut, whatever follows.
    failed: bool,
    /// The latest usage (each event carries the counts so far).
    usage: Option<Value>,
    id: String,
    model: String,
}

impl StreamToChat {
    fn on_event(&mut self, data: &[u8], out: &mut VecDeque<Bytes>) {
        if self.failed || self.finished {
            return;
        }
        let Ok(g) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if g.get("error").is_some() {
            self.failed = true;
            return;
        }
        if self.id.is_empty() {
            self.id = chat_id(&g);
            self.model = g
                .get("modelVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
        }
        if let Some(u) = g.get("usageMetadata").and_then(usage) {
            self.usage = Some(u);
        }
        let candidate = g.pointer("/candidates/0");
        let (text, thought, calls) = read_parts(
            candidate.and_then(|c| c.pointer("/content/parts")),
            self.calls,
        );
        self.calls += calls.len();
        let reason = candidate
            .and_then(|c| c.get("finishReason"))
            .and_then(Value::as_str)
            .or_else(|| g.pointer("/promptFeedback/blockReason").map(|_| "SAFETY"));
        let mut delta = Map::new();
        if !self.started {
            delta.insert("role".into(), "assistant".into());
            self.started = true;
        }
        if !thought.is_empty() {
            delta.insert("reasoning_content".into(), thought.into());
        }
        if !text.is_empty() {
            delta.insert("content".into(), text.into());
        }
        if !calls.is_empty() {
            delta.insert("tool_calls".into(), calls.into());
        }
        let finish = reason.map(|r| finish_reason(r, self.calls > 0));
        if delta.is_empty() && finish.is_none() {
            return;
        }
        self.finished = finish.is_some();
        out.push_back(self.chunk(
            json!([{ "index": 0, "delta": delta, "finish_reason": finish }]),
            None,
        ));
    }

    /// The upstream ended: the usage and `[DONE]` when the answer was whole.
    fn finish(&mut self, out: &mut VecDeque<Bytes>) {
        if !self.finished || self.failed {
            return;
        }
        if let Some(u) = self.usage.take() {
            out.push_back(self.chunk(json!([]), Some(u)));
        }
        out.push_back(super::sse::frame(b"[DONE]"));
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> Bytes {
        let mut c = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": crate::now_ms() / 1000,
            "model": self.model, "choices": choices,
        });
        if let Some(u) = usage {
            c["usage"] = u;
        }
        super::sse::frame(c.to_string().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chat request in, the Gemini request out, byte for byte (keys in serde_json's order).
    #[test]
    fn a_chat_request_becomes_a_gemini_request() {
        let chat = json!({
            "model": "gemini-up", "max_tokens": 50, "temperature": 0.2, "stop": "END",
            "stream": true, "stream_options": { "include_usage": true }, "user": "u1",
            "reasoning_effort": "low",
            "messages": [
                { "role": "system", "content": "Be brief." },
                { "role": "user", "content": [
                    { "type": "text", "text": "What is here?" },
                    { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } } ] },
                { "role": "assistant", "content": "Checking.", "reasoning_content": "hm",
                  "tool_calls": [{ "id": "call_1", "type": "function",
                                   "function": { "name": "look", "arguments": "{\"at\":\"x\"}" } }] },
                { "role": "tool", "tool_call_id": "call_1", "content": "a cat" },
                { "role": "user", "content": "Thanks" }
            ],
            "tools": [{ "type": "function", "function": { "name": "look", "description": "Looks",
                        "parameters": { "type": "object", "properties": { "at": { "type": "string" } } } } }],
            "tool_choice": "required"
        });
        let (body, dropped) = request(chat.to_string().as_bytes()).expect("a request");
        assert_eq!(
            serde_json::from_slice::<Value>(&body).expect("json"),
            json!({
                "contents": [
                    { "role": "user", "parts": [
                        { "text": "What is here?" },
                        { "inlineData": { "mimeType": "image/png", "data": "AAAA" } } ] },
                    { "role": "model", "parts": [
                        { "text": "Checking." },
                        { "functionCall": { "name": "look", "args": { "at": "x" } } } ] },
                    { "role": "user", "parts": [
                        { "functionResponse": { "name": "look", "response": { "result": "a cat" } } },
                        { "text": "Thanks" } ] }
                ],
                "systemInstruction": { "parts": [{ "text": "Be brief." }] },
                "tools": [{ "functionDeclarations": [{ "name": "look", "description": "Looks",
                    "parametersJsonSchema": { "type": "object", "properties": { "at": { "type": "string" } } } }] }],
                "toolConfig": { "functionCallingConfig": { "mode": "ANY" } },
                "generationConfig": { "maxOutputTokens": 50, "temperature": 0.2,
                    "stopSequences": ["END"],
                    "thinkingConfig": { "thinkingBudget": 1024, "includeThoughts": true } }
            })
        );
        assert_eq!(dropped, ["reasoning_content", "user"]);
    }

    #[test]
    fn what_gemini_cannot_take_is_refused_by_name() {
        for (chat, field) in [
            (
                json!({ "messages": [{ "role": "user", "content": [
                    { "type": "image_url", "image_url": { "url": "https://x/cat.png" } } ] }] }),
                "messages",
            ),
            (
                json!({ "messages": [{ "role": "tool", "tool_call_id": "nope", "content": "x" }] }),
                "messages",
            ),
            (json!({ "messages": [], "n": 2 }), "n"),
            (
                json!({ "messages": [], "tools": [{ "type": "web_search" }] }),
                "tools",
            ),
        ] {
            let e = request(chat.to_string().as_bytes()).expect_err("refused");
            assert!(
                matches!(&e, Error::Invalid { field: f, .. } if *f == field),
                "{chat}: {e:?}"
            );
        }
    }

    #[test]
    fn an_answer_becomes_a_chat_completion_with_the_usage_in_chat_terms() {
        let g = json!({
            "candidates": [{ "content": { "role": "model", "parts": [
                { "text": "Let me think.", "thought": true },
                { "text": "Sunny." },
                { "functionCall": { "name": "look", "args": { "at": "sky" } } } ] },
                "finishReason": "STOP", "index": 0 }],
            "usageMetadata": { "promptTokenCount": 100, "cachedContentTokenCount": 60,
                "candidatesTokenCount": 7, "thoughtsTokenCount": 5, "totalTokenCount": 112,
                "promptTokensDetails": [{ "modality": "TEXT", "tokenCount": 90 },
                                        { "modality": "IMAGE", "tokenCount": 10 }] },
            "modelVersion": "gemini-2.5-flash", "responseId": "r1"
        });
        let chat: Value =
            serde_json::from_slice(&answer(g.to_string().as_bytes()).expect("an answer"))
                .expect("json");
        assert_eq!(chat["id"], "chatcmpl-r1");
        assert_eq!(
            chat["choices"][0],
            json!({ "index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Sunny.", "reasoning_content": "Let me think.",
                "tool_calls": [{ "id": "call_gemini_0", "type": "function",
                    "function": { "name": "look", "arguments": "{\"at\":\"sky\"}" } }] } })
        );
        let u = super::super::sse::usage_of(&chat).expect("usage");
        assert_eq!((u.prompt, u.completion, u.cached), (100, 12, 60));
        assert_eq!((u.detail.reasoning, u.detail.image_input), (5, 10));
    }

    fn converted(events: &[Value]) -> Vec<String> {
        let mut c = StreamToChat::default();
        let mut out = VecDeque::new();
        for e in events {
            c.on_event(e.to_string().as_bytes(), &mut out);
        }
        c.finish(&mut out);
        out.iter()
            .map(|b| {
                let s = std::str::from_utf8(b).expect("utf-8");
                let data = s.strip_prefix("data: ").expect("data").trim_end();
                // The time is the converter's own: left out of the comparison.
                match serde_json::from_str::<Value>(data) {
                    Ok(mut v) => {
                        v.as_object_mut().map(|o| o.shift_remove("created"));
                        v.to_string()
                    }
                    Err(_) => data.to_string(),
                }
            })
            .collect()
    }

    #[test]
    fn a_stream_becomes_a_chat_stream_and_a_cut_stays_a_cut() {
        let meta = |c: u64| json!({ "promptTokenCount": 4, "candidatesTokenCount": c, "thoughtsTokenCount": 2 });
        let events = [
            json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": "Hm.", "thought": true }] } }],
                    "usageMetadata": meta(0), "modelVersion": "g", "responseId": "r" }),
            json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": "Hel" }] } }],
                    "usageMetadata": meta(1), "modelVersion": "g", "responseId": "r" }),
            json!({ "candidates": [{ "content": { "role": "model", "parts": [
                        { "text": "lo" }, { "functionCall": { "name": "f", "args": {} } }] },
                    "finishReason": "STOP" }],
                    "usageMetadata": meta(3), "modelVersion": "g", "responseId": "r" }),
        ];
        assert_eq!(
            converted(&events),
            [
                r#"{"id":"chatcmpl-r","object":"chat.completion.chunk","model":"g","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"Hm."},"finish_reason":null}]}"#,
                r#"{"id":"chatcmpl-r","object":"chat.completion.chunk","model":"g","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
                r#"{"id":"chatcmpl-r","object":"chat.completion.chunk","model":"g","choices":[{"index":0,"delta":{"content":"lo","tool_calls":[{"index":0,"id":"call_gemini_0","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
                r#"{"id":"chatcmpl-r","object":"chat.completion.chunk","model":"g","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":5,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":0,"image_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2,"image_tokens":0,"audio_tokens":0}}}"#,
                "[DONE]",
            ]
        );
        // Without a finish reason (the upstream cut it), no usage and no [DONE].
        assert_eq!(converted(&events[..2]).len(), 2);
        // An error event ends it too.
        let failed = [
            events[0].clone(),
            json!({ "error": { "code": 503, "message": "overloaded" } }),
            events[2].clone(),
        ];
        assert_eq!(converted(&failed).len(), 1);
    }
}
