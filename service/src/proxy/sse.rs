//! Server-sent events, relayed event by event: framing without any line-length cap, the model
//! name rewritten to the one the client asked for, usage captured (and hidden when the client did
//! not ask for it), generated text kept for estimation when usage never comes.

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Splits a byte stream into complete events (separated by a blank line).
#[derive(Default)]
pub struct Framer {
    buf: BytesMut,
}

/// One event as the upstream sent it.
pub struct Event {
    whole: Bytes,
    /// Where its lines end (the blank line that ends the event follows).
    end: usize,
}

impl Event {
    /// The event's lines, without the blank line that ends it.
    pub fn lines(&self) -> &[u8] {
        &self.whole[..self.end]
    }

    /// The event and its ending, byte for byte as it came: what goes out when it is relayed
    /// unchanged (a shared view, not a copy).
    pub fn whole(&self) -> Bytes {
        self.whole.clone()
    }
}

impl Framer {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event (a view of the buffer, not a copy).
    pub fn next_event(&mut self) -> Option<Event> {
        let b = &self.buf[..];
        let mut from = 0;
        while let Some(n) = b[from..].iter().position(|c| *c == b'\n') {
            let i = from + n;
            let ending = match &b[i + 1..] {
                [b'\n', ..] => 2,
                [b'\r', b'\n', ..] => 3,
                _ => 0,
            };
            if ending > 0 {
                let whole = self.buf.split_to(i + ending).freeze();
                return Some(Event { whole, end: i });
            }
            from = i + 1;
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.buf.iter().all(u8::is_ascii_whitespace)
    }
}

/// The `data:` payload of an event (multi-line data joined with `\n`); `None` for comments etc.
/// A single data line, the usual case, is borrowed.
pub fn data_of(event: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut out: Option<Cow<'_, [u8]>> = None;
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            match &mut out {
                Some(v) => {
                    let v = v.to_mut();
                    v.push(b'\n');
                    v.extend_from_slice(rest);
                }
                None => out = Some(Cow::Borrowed(rest)),
            }
        }
    }
    out
}

/// What the gateway reads of a streamed chunk, borrowed from its payload where it can be. Parsing
/// this instead of a whole `Value` skips building a map for every event. A chunk whose fields
/// have other types than these fails to parse and is read as a `Value` instead.
#[derive(Deserialize)]
pub struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<UsageFields>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    created: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default, borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

/// The usage fields of an OpenAI answer or chunk.
#[derive(Deserialize)]
pub struct UsageFields {
    prompt_tokens: Option<u64>,
    input_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    output_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<TokenDetails>,
    /// The Responses API's name for the same.
    #[serde(default)]
    input_tokens_details: Option<TokenDetails>,
    #[serde(default)]
    completion_tokens_details: Option<TokenDetails>,
    #[serde(default)]
    output_tokens_details: Option<TokenDetails>,
}

/// The details of an input or output count, as OpenAI reports them (chat, Responses, images).
#[derive(Deserialize, Default)]
struct TokenDetails {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    audio_tokens: Option<u64>,
    image_tokens: Option<u64>,
}

impl UsageFields {
    /// The usage, read as [`usage_of`] reads it.
    pub fn usage(&self) -> Option<UpstreamUsage> {
        let input = self
            .prompt_tokens_details
            .as_ref()
            .or(self.input_tokens_details.as_ref());
        let output = self
            .completion_tokens_details
            .as_ref()
            .or(self.output_tokens_details.as_ref());
        let of = |d: Option<&TokenDetails>, f: fn(&TokenDetails) -> Option<u64>| {
            d.and_then(f).unwrap_or(0)
        };
        Some(openai_usage(
            self.prompt_tokens.or(self.input_tokens)?,
            self.completion_tokens.or(self.output_tokens).unwrap_or(0),
            [
                of(input, |d| d.cached_tokens),
                of(input, |d| d.image_tokens),
                of(input, |d| d.audio_tokens),
            ],
            [
                of(output, |d| d.reasoning_tokens),
                of(output, |d| d.image_tokens),
                of(output, |d| d.audio_tokens),
            ],
        ))
    }
}

/// OpenAI's usage in the gateway's terms: its input count includes cached tokens (chat and
/// Responses alike), and each detail is a part of the count it details. `input` holds the
/// cached, image and audio parts of the input; `output` the reasoning, image and audio parts
/// of the output.
fn openai_usage(prompt: u64, completion: u64, input: [u64; 3], output: [u64; 3]) -> UpstreamUsage {
    let [cached, image_input, audio_input] = input.map(|n| n.min(prompt));
    let [reasoning, image_output, audio_output] = output.map(|n| n.min(completion));
    UpstreamUsage {
        prompt,
        completion,
        cached,
        detail: types::TokenDetail {
            reasoning,
            image_input,
            image_output,
            audio_input,
            audio_output,
            ..types::TokenDetail::default()
        },
    }
}

impl Chunk<'_> {
    /// Its `id` and `created`, as JSON text: what a chunk the gateway adds to the stream repeats.
    pub fn id_and_created(&self) -> (Option<&str>, Option<&str>) {
        (self.id.map(RawValue::get), self.created.map(RawValue::get))
    }

    pub fn has_choices(&self) -> bool {
        self.choices.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// The usage it reports, read as [`usage_of`] reads it.
    pub fn usage(&self) -> Option<UpstreamUsage> {
        self.usage.as_ref()?.usage()
    }

    /// Text generated in it, as [`append_text`] finds it in a `Value`.
    pub fn append_text(&self, out: &mut String) {
        for c in self.choices.iter().flatten() {
            let delta = c.delta.as_ref();
            for s in [
                delta.and_then(|d| d.content.as_deref()),
                c.text.as_deref(),
                c.message.as_ref().and_then(|m| m.content.as_deref()),
                delta.and_then(|d| d.reasoning_content.as_deref()),
            ]
            .into_iter()
            .flatten()
            {
                out.push_str(s);
            }
            for call in delta
                .and_then(|d| d.tool_calls.as_ref())
                .into_iter()
                .flatten()
            {
                if let Some(s) = call.function.as_ref().and_then(|f| f.arguments.as_deref()) {
                    out.push_str(s);
                }
            }
        }
    }

    /// Where in `payload` (the text this chunk was parsed from) the value of its `model` field
    /// lies; `None` when it has none.
    pub fn model_span(&self, payload: &[u8]) -> Option<std::ops::Range<usize>> {
        span_in(self.model?.get(), payload)
    }
}

/// Where `part`, a slice of `whole` (a raw value borrowed from the text it was parsed from), lies
/// in it; `None` when it is not inside.
pub fn span_in(part: &str, whole: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= whole.len()).then_some(start..end)
}

/// Usage as upstreams report it, normalized: the billing's own count.
pub use crate::billing::Usage as UpstreamUsage;

pub fn usage_of(v: &Value) -> Option<UpstreamUsage> {
    let u = v.get("usage")?.as_object()?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let detail = |names: [&str; 2], field: &str| {
        names
            .iter()
            .find_map(|d| u.get(*d).filter(|d| d.is_object()))
            .and_then(|d| d.get(field))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    const INPUT: [&str; 2] = ["prompt_tokens_details", "input_tokens_details"];
    const OUTPUT: [&str; 2] = ["completion_tokens_details", "output_tokens_details"];
    Some(openai_usage(
        n("prompt_tokens").or_else(|| n("input_tokens"))?,
        n("completion_tokens")
            .or_else(|| n("output_tokens"))
            .unwrap_or(0),
        [
            detail(INPUT, "cached_tokens"),
            detail(INPUT, "image_tokens"),
            detail(INPUT, "audio_tokens"),
        ],
        [
            detail(OUTPUT, "reasoning_tokens"),
            detail(OUTPUT, "image_tokens"),
            detail(OUTPUT, "audio_tokens"),
        ],
    ))
}

/// The value at a path of object keys. (`Value::pointer` allocates to unescape each step; this
/// runs for every streamed event.)
fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

/// Text generated in a chunk (chat deltas or completion text).
pub fn append_text(v: &Value, out: &mut String) {
    if let Some(choices) = v.get("choices").and_then(Value::as_array) {
        for c in choices {
            for p in [
                &["delta", "content"][..],
                &["text"],
                &["message", "content"],
                &["delta", "reasoning_content"],
            ] {
                if let Some(s) = at(c, p).and_then(Value::as_str) {
                    out.push_str(s);
                }
            }
            if let Some(calls) = at(c, &["delta", "tool_calls"]).and_then(Value::as_array) {
                for call in calls {
                    if let Some(s) = at(call, &["function", "arguments"]).and_then(Value::as_str) {
                        out.push_str(s);
                    }
                }
            }
        }
    }
}

/// One event's worth of output, in SSE framing: each line of the payload on a `data:` line of
/// its own (a multi-line payload, as [`data_of`] joins it, goes out as the same event).
pub fn frame(payload: &[u8]) -> Bytes {
    frame_parts(&[payload])
}

/// [`frame`] of the payload that the parts make together, written in one buffer.
pub fn frame_parts(parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut b = BytesMut::with_capacity(len + 16);
    b.extend_from_slice(b"data: ");
    for part in parts {
        let mut lines = part.split(|c| *c == b'\n');
        if let Some(first) = lines.next() {
            b.extend_from_slice(first);
        }
        for line in lines {
            b.extend_from_slice(b"\ndata: ");
            b.extend_from_slice(line);
        }
    }
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

/// An event with a name (`event: <kind>`) and a JSON payload: how Anthropic's and the Responses
/// API's streams frame theirs.
pub fn named_event(kind: &str, data: &Value) -> Bytes {
    use bytes::BufMut as _;
    let mut b = BytesMut::with_capacity(160).writer();
    let _ = std::io::Write::write_all(&mut b, b"event: ");
    let _ = std::io::Write::write_all(&mut b, kind.as_bytes());
    let _ = std::io::Write::write_all(&mut b, b"\ndata: ");
    // Writing a `Value` to memory cannot fail.
    let _ = serde_json::to_writer(&mut b, data);
    let _ = std::io::Write::write_all(&mut b, b"\n\n");
    b.into_inner().freeze()
}

/// The event that ends a stream the upstream cut: an error, never a fake `[DONE]`.
pub fn error_event(message: &str) -> Bytes {
    let v = serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": "upstream_stream_error"}});
    frame(v.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of(input: &[u8], piece: usize) -> (Vec<Event>, Framer) {
        let mut f = Framer::default();
        let mut events = Vec::new();
        for chunk in input.chunks(piece) {
            f.push(chunk);
            while let Some(e) = f.next_event() {
                events.push(e);
            }
        }
        (events, f)
    }

    #[test]
    fn frames_events_split_anywhere_and_of_any_length() {
        let long = "x".repeat(200_000);
        let input = format!("data: {{\"a\":\"{long}\"}}\n\ndata: [DONE]\r\n\r\n");
        let (events, f) = events_of(input.as_bytes(), 7);
        assert_eq!(events.len(), 2);
        assert_eq!(
            data_of(events[0].lines()).expect("data").len(),
            long.len() + 8
        );
        assert_eq!(&*data_of(events[1].lines()).expect("data"), b"[DONE]");
        assert!(f.is_empty());
    }

    #[test]
    fn an_event_relayed_as_it_is_keeps_every_byte() {
        let input: &[u8] =
            b"data: {\"a\":1}\r\n\r\n: keep-alive\n\nevent: x\ndata: 1\ndata: 2\n\ndata: [DONE]\n\n";
        for piece in [1, 3, input.len()] {
            let (events, f) = events_of(input, piece);
            let whole: Vec<u8> = events.iter().flat_map(Event::whole).collect();
            assert_eq!(whole, input, "in pieces of {piece}");
            assert!(f.is_empty());
        }
        let (events, _) = events_of(input, 5);
        assert_eq!(&*data_of(events[2].lines()).expect("data"), b"1\n2");
        assert!(matches!(data_of(events[0].lines()), Some(Cow::Borrowed(_))));
    }

    /// The typed reading of a chunk finds the same text and usage as the reading of a `Value`,
    /// including escaped strings (which cannot be borrowed) and absent or null fields.
    #[test]
    fn a_chunk_reads_as_its_value_does() {
        for payload in [
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":2}}}"#,
            r#"{"choices":[{"delta":{"content":"Hi \"there\"\n\u00e9"}}],"usage":null,"model":"m"}"#,
            r#"{"choices":[{"text":"a","delta":{"reasoning_content":"b","tool_calls":[{"function":{"arguments":"c"}},{"id":"x"}]}},{"message":{"content":"d"}}]}"#,
            r#"{"choices":[{"delta":{"content":null,"role":"assistant"},"finish_reason":null}]}"#,
            r#"{"usage":{"input_tokens":5,"output_tokens":6,"prompt_tokens_details":null}}"#,
            r#"{"usage":{"completion_tokens":6}}"#,
            r#"{"id":"x","object":"chat.completion.chunk"}"#,
        ] {
            let v: Value = serde_json::from_str(payload).expect("json");
            let chunk: Chunk<'_> = serde_json::from_str(payload).expect("a chunk");
            assert_eq!(chunk.usage(), usage_of(&v), "{payload}");
            let (mut typed, mut dynamic) = (String::new(), String::new());
            chunk.append_text(&mut typed);
            append_text(&v, &mut dynamic);
            assert_eq!(typed, dynamic, "{payload}");
            assert_eq!(
                chunk.has_choices(),
                v["choices"].as_array().is_some_and(|c| !c.is_empty())
            );
        }
        // Other shapes are left to the `Value` reading.
        for payload in [
            r#"{"choices":[{"delta":{"content":[{"type":"text","text":"a"}]}}]}"#,
            r#"{"usage":{"prompt_tokens":"9"}}"#,
            r#"{"model":"a","model":"b"}"#,
        ] {
            assert!(
                serde_json::from_str::<Chunk<'_>>(payload).is_err(),
                "{payload}"
            );
        }
    }

    #[test]
    fn the_model_is_replaced_in_place() {
        let payload = br#"{"id":"x","model" : "up\"stream","choices":[]}"#;
        let chunk: Chunk<'_> = serde_json::from_slice(payload).expect("a chunk");
        let span = chunk.model_span(payload).expect("a model");
        assert_eq!(&payload[span.clone()], br#""up\"stream""#);
        let out = frame_parts(&[&payload[..span.start], br#""pub""#, &payload[span.end..]]);
        assert_eq!(
            &out[..],
            &b"data: {\"id\":\"x\",\"model\" : \"pub\",\"choices\":[]}\n\n"[..]
        );
        let none: Chunk<'_> = serde_json::from_slice(br#"{"choices":[]}"#).expect("a chunk");
        assert!(none.model_span(payload).is_none());
    }

    #[test]
    fn reads_usage_and_text() {
        let v: Value = serde_json::from_str(
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":2}}}"#,
        )
        .expect("json");
        assert_eq!(
            usage_of(&v),
            Some(UpstreamUsage {
                prompt: 9,
                completion: 4,
                cached: 2,
                ..Default::default()
            })
        );
        let d: Value =
            serde_json::from_str(r#"{"choices":[{"delta":{"content":"Hi"}}]}"#).expect("json");
        let mut s = String::new();
        append_text(&d, &mut s);
        assert_eq!(s, "Hi");
        let more: Value = serde_json::from_str(
            r#"{"choices":[{"text":"a","delta":{"reasoning_content":"b","tool_calls":[{"function":{"arguments":"c"}}]}},{"message":{"content":"d"}}]}"#,
        )
        .expect("json");
        append_text(&more, &mut s);
        assert_eq!(s, "Hiabcd");
        assert!(data_of(b": keep-alive").is_none());
    }

    #[test]
    fn openai_details_are_parts_of_the_counts_they_detail() {
        let expected = UpstreamUsage {
            prompt: 20,
            completion: 10,
            cached: 4,
            detail: types::TokenDetail {
                reasoning: 6,
                audio_input: 3,
                audio_output: 2,
                image_input: 20,
                ..Default::default()
            },
        };
        // Chat's names; an image count beyond the input is clamped to it.
        let chat = r#"{"usage":{"prompt_tokens":20,"completion_tokens":10,
            "prompt_tokens_details":{"cached_tokens":4,"audio_tokens":3,"image_tokens":99},
            "completion_tokens_details":{"reasoning_tokens":6,"audio_tokens":2}}}"#;
        // The Responses API's names for the same.
        let responses = r#"{"usage":{"input_tokens":20,"output_tokens":10,
            "input_tokens_details":{"cached_tokens":4,"audio_tokens":3,"image_tokens":99},
            "output_tokens_details":{"reasoning_tokens":6,"audio_tokens":2}}}"#;
        for text in [chat, responses] {
            let v: Value = serde_json::from_str(text).expect("json");
            assert_eq!(usage_of(&v), Some(expected), "{text}");
            // The typed reader of stream chunks agrees with the untyped one.
            let chunk: Chunk<'_> = serde_json::from_str(text).expect("a chunk");
            assert_eq!(chunk.usage(), Some(expected), "{text}");
        }
    }

    #[test]
    fn a_multi_line_payload_goes_out_as_one_event() {
        let payload = b"{\n  \"a\": 1,\n\n  \"b\": 2\n}";
        let mut f = Framer::default();
        f.push(&frame(payload));
        f.push(&frame(b"[DONE]"));
        let first = f.next_event().expect("an event");
        assert_eq!(&*data_of(first.lines()).expect("data"), payload);
        let done = f.next_event().expect("[DONE]");
        assert_eq!(&*data_of(done.lines()).expect("data"), b"[DONE]");
        assert!(f.is_empty());
    }
}
