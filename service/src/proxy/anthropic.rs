//! Anthropic's Messages protocol as the gateway reads and writes it: usage in its terms (cache
//! reads and writes outside the input count), events in its SSE framing, its error shape, and
//! what a relayed Messages stream is inspected for.

use super::sse::{self, UpstreamUsage};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;

/// Usage as a Messages answer reports it: `input_tokens` counts neither cache reads nor cache
/// writes; the gateway's own count ([`UpstreamUsage`]) includes both in its prompt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessagesUsage {
    pub input: u64,
    /// Cache writes of both lifetimes (`cache_creation_input_tokens`); of them, those with the
    /// 1-hour lifetime (`cache_creation.ephemeral_1h_input_tokens`).
    pub cache_write: u64,
    pub cache_write_1h: u64,
    pub cache_read: u64,
    pub output: u64,
}

impl MessagesUsage {
    /// A chat usage (cached tokens included in the prompt) in Anthropic's terms.
    pub fn from_chat(u: UpstreamUsage) -> MessagesUsage {
        let cache_write = u.detail.cache_write();
        MessagesUsage {
            input: u
                .prompt
                .saturating_sub(u.cached)
                .saturating_sub(cache_write),
            cache_write,
            cache_write_1h: u.detail.cache_write_1h,
            cache_read: u.cached,
            output: u.completion,
        }
    }

    /// The gateway's count: the prompt includes cache reads and writes (writes are charged at
    /// the input price; reads at the cached price).
    pub fn to_upstream(self) -> UpstreamUsage {
        let cache_write_1h = self.cache_write_1h.min(self.cache_write);
        UpstreamUsage {
            prompt: self
                .input
                .saturating_add(self.cache_write)
                .saturating_add(self.cache_read),
            completion: self.output,
            cached: self.cache_read,
            detail: types::TokenDetail {
                cache_write_5m: self.cache_write - cache_write_1h,
                cache_write_1h,
                ..types::TokenDetail::default()
            },
        }
    }

    pub fn json(self) -> Value {
        json!({
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": self.output,
        })
    }
}

/// The usage fields of a Messages answer or event (any may be absent or null).
#[derive(Deserialize, Default, Clone, Copy, Debug)]
pub struct UsageFields {
    input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    /// The cache writes by lifetime (newer API versions).
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize, Default, Clone, Copy, Debug)]
pub struct CacheCreation {
    ephemeral_1h_input_tokens: Option<u64>,
}

/// Usage gathered over a stream: `message_start` gives the input side, `message_delta` the
/// output (and, from newer APIs, the input side again); the latest value of each field wins.
#[derive(Clone, Copy, Debug, Default)]
pub struct UsageSoFar {
    fields: UsageFields,
}

impl UsageSoFar {
    pub fn add(&mut self, u: &UsageFields) {
        let f = &mut self.fields;
        f.input_tokens = u.input_tokens.or(f.input_tokens);
        f.cache_creation_input_tokens = u
            .cache_creation_input_tokens
            .or(f.cache_creation_input_tokens);
        f.cache_read_input_tokens = u.cache_read_input_tokens.or(f.cache_read_input_tokens);
        f.output_tokens = u.output_tokens.or(f.output_tokens);
        f.cache_creation = u.cache_creation.or(f.cache_creation);
    }

    /// The usage, when the input count was reported.
    pub fn usage(&self) -> Option<MessagesUsage> {
        let f = &self.fields;
        Some(MessagesUsage {
            input: f.input_tokens?,
            cache_write: f.cache_creation_input_tokens.unwrap_or(0),
            cache_write_1h: f
                .cache_creation
                .and_then(|c| c.ephemeral_1h_input_tokens)
                .unwrap_or(0),
            cache_read: f.cache_read_input_tokens.unwrap_or(0),
            output: f.output_tokens.unwrap_or(0),
        })
    }
}

/// Anthropic's error type for an error kind (its status codes are the same).
pub fn error_type(kind: types::ErrorKind) -> &'static str {
    use types::ErrorKind as K;
    match kind {
        K::Invalid | K::Conflict | K::Unprocessable => "invalid_request_error",
        K::Unauthorized => "authentication_error",
        K::InsufficientQuota => "billing_error",
        K::Forbidden => "permission_error",
        K::NotFound => "not_found_error",
        K::PayloadTooLarge => "request_too_large",
        K::RateLimited => "rate_limit_error",
        K::Unavailable => "overloaded_error",
        K::GatewayTimeout => "timeout_error",
        K::BadGateway | K::Internal | K::Transport => "api_error",
    }
}

/// An error in Anthropic's shape: `{"type":"error","error":{"type","message"}}`.
pub fn error_body(kind: types::ErrorKind, message: &str, request_id: Option<&str>) -> Value {
    let mut v = json!({"type": "error", "error": {"type": error_type(kind), "message": message}});
    if let Some(id) = request_id {
        v["request_id"] = Value::String(id.to_string());
    }
    v
}

/// The event that ends a Messages stream the upstream cut or the gateway stopped.
pub fn error_event(message: &str) -> Bytes {
    sse::named_event(
        "error",
        &error_body(types::ErrorKind::BadGateway, message, None),
    )
}

/// What the gateway reads of a relayed Messages event.
#[derive(Deserialize)]
pub struct StreamEvent<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub message: Option<StartMessage<'a>>,
    #[serde(default)]
    pub usage: Option<UsageFields>,
    #[serde(default, borrow)]
    pub delta: Option<Delta<'a>>,
    /// A content block's index.
    #[serde(default)]
    pub index: Option<u64>,
}

#[derive(Deserialize)]
pub struct StartMessage<'a> {
    #[serde(default, borrow)]
    pub model: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    pub usage: Option<UsageFields>,
}

#[derive(Deserialize)]
pub struct Delta<'a> {
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub partial_json: Option<Cow<'a, str>>,
}

impl Delta<'_> {
    /// Text generated in it (kept to count when usage never comes).
    pub fn append_text(&self, out: &mut String) {
        for s in [&self.text, &self.thinking, &self.partial_json]
            .into_iter()
            .flatten()
        {
            out.push_str(s);
        }
    }
}

/// A whole Messages answer: its usage, the text generated (to count when it reports none), and
/// the body naming `model` (only the model's bytes replaced).
pub fn read_answer(bytes: &Bytes, model: &str) -> Option<(Option<UpstreamUsage>, String, Bytes)> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(default, borrow)]
        model: Option<&'a serde_json::value::RawValue>,
        #[serde(default)]
        usage: Option<UsageFields>,
        #[serde(default, borrow)]
        content: Vec<Block<'a>>,
    }
    #[derive(Deserialize)]
    struct Block<'a> {
        #[serde(default, borrow)]
        text: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        thinking: Option<Cow<'a, str>>,
    }
    let answer: Answer<'_> = serde_json::from_slice(bytes).ok()?;
    let mut so_far = UsageSoFar::default();
    if let Some(u) = &answer.usage {
        so_far.add(u);
    }
    let usage = so_far.usage().map(MessagesUsage::to_upstream);
    let mut text = String::new();
    if usage.is_none() {
        for b in &answer.content {
            for s in [&b.text, &b.thinking].into_iter().flatten() {
                text.push_str(s);
            }
        }
    }
    let name = super::request::quoted(model);
    let body = match answer.model.and_then(|m| sse::span_in(m.get(), bytes)) {
        Some(span) if bytes[span.clone()] != *name.as_bytes() => {
            super::request::concat(&[&bytes[..span.start], name.as_bytes(), &bytes[span.end..]])
        }
        _ => bytes.clone(),
    };
    Some((usage, text, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_in_anthropic_terms_and_charged_in_ours() {
        let answer = Bytes::from_static(
            br#"{"id":"msg_1","type":"message","model":"claude-up","content":[{"type":"text","text":"Hi"}],"usage":{"input_tokens":3,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":7}}"#,
        );
        let (usage, text, body) = read_answer(&answer, "claude").expect("an answer");
        assert_eq!(
            usage,
            Some(UpstreamUsage {
                prompt: 1103,
                completion: 7,
                cached: 1000,
                detail: types::TokenDetail {
                    cache_write_5m: 100,
                    ..Default::default()
                }
            })
        );
        assert!(text.is_empty());
        assert_eq!(
            &body[..],
            &br#"{"id":"msg_1","type":"message","model":"claude","content":[{"type":"text","text":"Hi"}],"usage":{"input_tokens":3,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":7}}"#[..]
        );
        // No usage: the text is kept to count.
        let (usage, text, _) = read_answer(
            &Bytes::from_static(br#"{"model":"claude","content":[{"type":"text","text":"Hi"},{"type":"tool_use","input":{"a":1}}]}"#),
            "claude",
        )
        .expect("an answer");
        assert_eq!((usage, text.as_str()), (None, "Hi"));
        // The stream's two halves: the input from message_start, the output from message_delta.
        let mut so_far = UsageSoFar::default();
        let start: StreamEvent<'_> = serde_json::from_str(
            r#"{"type":"message_start","message":{"model":"m","usage":{"input_tokens":5,"cache_read_input_tokens":2,"output_tokens":1}}}"#,
        )
        .expect("event");
        so_far.add(&start.message.and_then(|m| m.usage).expect("usage"));
        let delta: StreamEvent<'_> = serde_json::from_str(
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#,
        )
        .expect("event");
        so_far.add(&delta.usage.expect("usage"));
        // Newer versions split the cache writes by lifetime; the 1-hour part is kept apart.
        let mut split = UsageSoFar::default();
        let start: StreamEvent<'_> = serde_json::from_str(
            r#"{"type":"message_start","message":{"model":"m","usage":{"input_tokens":5,"cache_creation_input_tokens":30,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":20},"output_tokens":1}}}"#,
        )
        .expect("event");
        split.add(&start.message.and_then(|m| m.usage).expect("usage"));
        let u = split.usage().expect("usage").to_upstream();
        assert_eq!(
            (u.prompt, u.detail.cache_write_5m, u.detail.cache_write_1h),
            (35, 10, 20)
        );
        assert_eq!(MessagesUsage::from_chat(u).cache_write, 30);
        assert_eq!(
            so_far.usage(),
            Some(MessagesUsage {
                input: 5,
                cache_write: 0,
                cache_write_1h: 0,
                cache_read: 2,
                output: 9
            })
        );
    }

    #[test]
    fn errors_take_anthropics_shape() {
        assert_eq!(
            error_body(types::ErrorKind::InsufficientQuota, "no money", Some("r1")),
            json!({"type": "error", "error": {"type": "billing_error", "message": "no money"}, "request_id": "r1"})
        );
        assert_eq!(
            &error_event("cut")[..],
            &b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"cut\"}}\n\n"[..]
        );
    }
}
