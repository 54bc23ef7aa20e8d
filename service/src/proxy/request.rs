//! Reading a `/v1` request: the fields the gateway needs, read in place for the usual shape and
//! as a document otherwise (which gives every refusal), and the body each upstream gets.

use super::Endpoint;
use super::sse;
use crate::Error;
use bytes::Bytes;
use serde_json::Value;

pub(super) struct Parsed {
    pub(super) out: Outgoing,
    pub(super) model: String,
    pub(super) stream: bool,
    pub(super) completion_bound: u64,
    pub(super) client_wants_usage: bool,
    /// The call's session, for channel affinity: a Responses `prompt_cache_key`, a Messages
    /// `metadata.user_id`, or a `user`.
    pub(super) affinity: Option<String>,
    /// A Responses request that continues one stored upstream: the field that names it
    /// (`previous_response_id` or `conversation`). Only a channel that stores responses itself
    /// can serve it, and the stored input it brings is held for apart.
    pub(super) stored: Option<&'static str>,
}

/// The body a request goes upstream with: the client's, with `model` naming the upstream's model,
/// the output bound in the field the channel takes (the default bound added when the client
/// named none: an upstream is never sent an unbounded call), and, for a stream, usage asked for
/// (`stream_options.include_usage`) where the channel takes it.
pub(super) enum Outgoing {
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
        /// The body has `stream_options` (a channel that refuses them gets a body without).
        has_stream_options: bool,
        /// The bound fields the client named.
        given: Given,
        /// The bound added when the client named none (per choice).
        missing: u64,
    },
    /// Any other request, read as a document and written again.
    Document {
        body: serde_json::Map<String, Value>,
        missing: u64,
    },
}

/// Which of the output bound's fields a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Given {
    None,
    One(&'static str),
    /// Both `max_tokens` and `max_completion_tokens`.
    Both,
}

impl Given {
    fn of(max_tokens: Option<u64>, max_completion_tokens: Option<u64>) -> Given {
        match (max_tokens, max_completion_tokens) {
            (None, None) => Given::None,
            (Some(_), None) => Given::One("max_tokens"),
            (None, Some(_)) => Given::One("max_completion_tokens"),
            (Some(_), Some(_)) => Given::Both,
        }
    }
}

/// What a channel takes in a body besides the model (routing's [`crate::routing::Wire`] for
/// the route called).
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    /// The field the output bound goes in; none where the route has no bound to add (Messages
    /// requires one, embeddings have none).
    pub(super) bound: Option<&'static str>,
    /// Streams may ask for usage.
    pub(super) stream_usage: bool,
}

impl Shape {
    pub(super) fn of(endpoint: Endpoint, wire: crate::routing::Wire) -> Shape {
        Shape {
            bound: match endpoint {
                Endpoint::Chat => Some(wire.chat_bound),
                Endpoint::Completions => Some("max_tokens"),
                Endpoint::Responses => Some("max_output_tokens"),
                Endpoint::Embeddings | Endpoint::Messages | Endpoint::CountTokens => None,
            },
            stream_usage: wire.stream_usage,
        }
    }
}

/// Asks for usage in a stream whose body has no `stream_options`.
const ASK_USAGE: &[u8] = br#""stream_options":{"include_usage":true},"#;

/// The bound's field as a chat body may name it: `max_tokens` and `max_completion_tokens` are
/// one bound under two names.
fn bound_names(field: &'static str) -> &'static [&'static str] {
    match field {
        "max_tokens" | "max_completion_tokens" => &["max_completion_tokens", "max_tokens"],
        "max_output_tokens" => &["max_output_tokens"],
        _ => &[],
    }
}

impl Outgoing {
    /// The body for a candidate serving `upstream_model` through a channel of this `shape`.
    pub(super) fn body(&self, upstream_model: &str, shape: Shape) -> Result<Bytes, Error> {
        let name = quoted(upstream_model);
        match self {
            Outgoing::Spliced {
                raw,
                brace,
                model,
                ask_usage,
                has_stream_options,
                given,
                missing,
            } => {
                let renamed = match (*given, shape.bound) {
                    (Given::Both, Some(_)) => true,
                    (Given::One(g), Some(f)) => g != f,
                    _ => false,
                };
                if renamed || (*has_stream_options && !shape.stream_usage) {
                    // Rare: edited as a document.
                    let Ok(Value::Object(body)) = serde_json::from_slice(raw) else {
                        return Err(Error::invalid("body", "must be a JSON object"));
                    };
                    return edited(body, upstream_model, shape, *missing, *ask_usage);
                }
                let ask = *ask_usage && shape.stream_usage;
                let bound = match (shape.bound, given) {
                    (Some(field), Given::None) => format!("\"{field}\":{missing},"),
                    _ => String::new(),
                };
                if !ask && bound.is_empty() && raw[model.clone()] == *name.as_bytes() {
                    return Ok(raw.clone());
                }
                Ok(concat(&[
                    &raw[..=*brace],
                    if ask { ASK_USAGE } else { b"" },
                    bound.as_bytes(),
                    &raw[*brace + 1..model.start],
                    name.as_bytes(),
                    &raw[model.end..],
                ]))
            }
            Outgoing::Document { body, missing } => {
                edited(body.clone(), upstream_model, shape, *missing, false)
            }
        }
    }
}

impl Outgoing {
    /// Sends at most `total` output tokens (over all of a chat request's `n` choices) in place
    /// of the client's bound: what the balance covers. Returns the bound now sent (per choice
    /// times `n`), 0 when not one token per choice fits.
    pub(super) fn lower(&mut self, endpoint: Endpoint, total: u64) -> Result<u64, Error> {
        let mut body = match self {
            Outgoing::Spliced { raw, ask_usage, .. } => {
                let Ok(Value::Object(mut body)) = serde_json::from_slice(raw) else {
                    return Err(Error::invalid("body", "must be a JSON object"));
                };
                if *ask_usage {
                    body.insert(
                        "stream_options".into(),
                        serde_json::json!({"include_usage": true}),
                    );
                }
                body
            }
            Outgoing::Document { body, .. } => std::mem::take(body),
        };
        let n = match endpoint {
            Endpoint::Chat | Endpoint::Completions => {
                body.get("n").and_then(Value::as_u64).unwrap_or(1).max(1)
            }
            _ => 1,
        };
        let each = total / n;
        for name in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
            body.shift_remove(name);
        }
        if endpoint == Endpoint::Messages {
            body.insert("max_tokens".into(), each.into());
        }
        *self = Outgoing::Document {
            body,
            missing: each,
        };
        Ok(each * n)
    }
}

/// A document's body for a channel of `shape`: the model named, the bound in the channel's
/// field (the client's value, else `missing`), `stream_options` asked for (`ask_usage`) or left
/// out where the channel refuses them.
fn edited(
    mut body: serde_json::Map<String, Value>,
    upstream_model: &str,
    shape: Shape,
    missing: u64,
    ask_usage: bool,
) -> Result<Bytes, Error> {
    body.insert("model".into(), Value::String(upstream_model.to_string()));
    if let Some(field) = shape.bound {
        let mut value = None;
        for name in bound_names(field) {
            if let Some(v) = body.shift_remove(*name).filter(|v| !v.is_null()) {
                value = value.or(Some(v));
            }
        }
        body.insert(field.into(), value.unwrap_or_else(|| missing.into()));
    }
    if !shape.stream_usage {
        body.shift_remove("stream_options");
    } else if ask_usage {
        body.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
    }
    Ok(Bytes::from(
        serde_json::to_vec(&body).map_err(anyhow::Error::from)?,
    ))
}

/// A model name as a JSON string, quotes and escapes included: what is spliced into a body.
pub(super) fn quoted(name: &str) -> String {
    Value::String(name.to_string()).to_string()
}

/// A requested model name the gateway takes: not blank, at most 256 bytes.
fn model_name_ok(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= 256
}

/// The model a request names, for the log of a request that failed: only that field is read
/// (the body may be large, and it was already read once).
pub(super) fn requested_model(raw: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        model: Option<String>,
    }
    let model = serde_json::from_slice::<Named>(raw).ok()?.model?;
    Some(model.chars().take(256).collect())
}

/// The parts, one after the other, in one buffer: how a body is edited in place.
pub(super) fn concat(parts: &[&[u8]]) -> Bytes {
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
    max_output_tokens: Option<u64>,
    n: Option<u64>,
    /// A Responses request that continues a stored one (read as a document: see [`parse_responses`]).
    previous_response_id: Option<serde::de::IgnoredAny>,
    conversation: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    prompt_cache_key: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    metadata: Option<Metadata<'a>>,
    #[serde(default, borrow)]
    user: Option<std::borrow::Cow<'a, str>>,
    /// Present, whatever its value (`null` too).
    #[serde(default, borrow, deserialize_with = "present")]
    stream_options: Option<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize)]
struct Metadata<'a> {
    #[serde(default, borrow)]
    user_id: Option<std::borrow::Cow<'a, str>>,
}

/// A session key, as [`Parsed::affinity`] names it.
fn session(
    prompt_cache_key: Option<&str>,
    user_id: Option<&str>,
    user: Option<&str>,
) -> Option<String> {
    prompt_cache_key
        .or(user_id)
        .or(user)
        .filter(|k| !k.is_empty())
        .map(|k| k.chars().take(256).collect())
}

/// [`session`] read from a document.
fn session_of(body: &serde_json::Map<String, Value>) -> Option<String> {
    session(
        body.get("prompt_cache_key").and_then(Value::as_str),
        body.get("metadata")
            .and_then(|m| m.get("user_id"))
            .and_then(Value::as_str),
        body.get("user").and_then(Value::as_str),
    )
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
fn parse_fast(endpoint: Endpoint, raw: &Bytes, unbounded: &dyn Fn(&str) -> u64) -> Option<Parsed> {
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
    // The bound of a request that names none, looked up only then.
    let names_bound = match endpoint {
        Endpoint::Messages | Endpoint::Embeddings | Endpoint::CountTokens => true,
        Endpoint::Responses => head.max_output_tokens.is_some(),
        Endpoint::Chat | Endpoint::Completions => {
            head.max_tokens.is_some() || head.max_completion_tokens.is_some()
        }
    };
    let default_max_tokens = if names_bound { 0 } else { unbounded(&model) };
    let stream = head.stream.unwrap_or(false);
    let present = match endpoint {
        Endpoint::Chat => head.messages.is_some_and(|m| !m.is_empty()),
        Endpoint::Completions => head.prompt.is_some(),
        Endpoint::Embeddings => head.input.is_some() && !stream,
        Endpoint::Messages => {
            head.messages.is_some_and(|m| !m.is_empty())
                && head.max_tokens.is_some_and(|m| m > 0)
                && head.n.is_none()
                && head.stream_options.is_none()
        }
        Endpoint::Responses => {
            head.input.is_some()
                && head.n.is_none()
                && head.stream_options.is_none()
                && head.previous_response_id.is_none()
                && head.conversation.is_none()
                && head.max_output_tokens != Some(0)
        }
        Endpoint::CountTokens => false,
    };
    let n = head.n.unwrap_or(1);
    if !present || n == 0 || n > 128 {
        return None;
    }
    let affinity = session(
        head.prompt_cache_key.as_deref(),
        head.metadata.as_ref().and_then(|m| m.user_id.as_deref()),
        head.user.as_deref(),
    );
    if matches!(endpoint, Endpoint::Messages | Endpoint::Responses) {
        let completion_bound = match endpoint {
            Endpoint::Messages => head.max_tokens.unwrap_or(0),
            _ => head.max_output_tokens.unwrap_or(default_max_tokens),
        };
        return Some(Parsed {
            out: Outgoing::Spliced {
                raw: raw.clone(),
                brace,
                model: model_span,
                ask_usage: false,
                has_stream_options: false,
                given: match endpoint {
                    Endpoint::Messages => Given::One("max_tokens"),
                    _ => head
                        .max_output_tokens
                        .map_or(Given::None, |_| Given::One("max_output_tokens")),
                },
                missing: default_max_tokens,
            },
            model,
            stream,
            completion_bound,
            client_wants_usage: false,
            affinity,
            stored: None,
        });
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
        Endpoint::Embeddings | Endpoint::Messages | Endpoint::CountTokens | Endpoint::Responses => {
            0
        }
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
            has_stream_options: head.stream_options.is_some(),
            given: Given::of(head.max_tokens, head.max_completion_tokens),
            missing: default_max_tokens,
        },
        model,
        stream,
        completion_bound,
        client_wants_usage,
        affinity,
        stored: None,
    })
}

pub(super) fn field_u64(
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
pub(super) const MAX_DEPTH: usize = 128;

/// True when `raw` nests arrays and objects deeper than `max` (strings are skipped; the scan
/// does not judge whether the JSON is valid, the reading after it does).
pub(super) fn nests_deeper_than(raw: &[u8], max: usize) -> bool {
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

/// Reads a request. `unbounded` names the output bound of a request of a model that sets none
/// (the model's most output tokens, else `billing.default_max_tokens`).
pub(super) fn parse(
    endpoint: Endpoint,
    raw: &Bytes,
    unbounded: &dyn Fn(&str) -> u64,
) -> Result<Parsed, Error> {
    if nests_deeper_than(raw, MAX_DEPTH) {
        return Err(Error::invalid(
            "body",
            format!("nests arrays and objects more than {MAX_DEPTH} levels deep"),
        ));
    }
    if let Some(p) = parse_fast(endpoint, raw, unbounded) {
        return Ok(p);
    }
    parse_document(endpoint, raw, unbounded)
}

/// The full reading of a request, as a document: the reference for [`parse_fast`], and where
/// every refusal comes from.
fn parse_document(
    endpoint: Endpoint,
    raw: &[u8],
    unbounded: &dyn Fn(&str) -> u64,
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
    let default_max_tokens = unbounded(&model);
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::invalid("stream", "must be a boolean")),
    };
    if stream && endpoint == Endpoint::Embeddings {
        return Err(Error::invalid("stream", "embeddings cannot be streamed"));
    }
    if endpoint == Endpoint::Messages {
        return parse_messages(body, model, stream);
    }
    if endpoint == Endpoint::Responses {
        return parse_responses(body, model, stream, default_max_tokens);
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
        Endpoint::Messages | Endpoint::CountTokens | Endpoint::Responses => {
            return Err(Error::Internal(anyhow::anyhow!(
                "{} is not read as a relayed request",
                endpoint.route()
            )));
        }
    }
    let max = field_u64(&body, "max_completion_tokens")?.or(field_u64(&body, "max_tokens")?);
    let n = field_u64(&body, "n")?.unwrap_or(1);
    if n == 0 || n > 128 {
        return Err(Error::invalid("n", "must be between 1 and 128"));
    }
    let completion_bound = match endpoint {
        Endpoint::Embeddings | Endpoint::Messages | Endpoint::CountTokens | Endpoint::Responses => {
            0
        }
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
        affinity: session_of(&body),
        stored: None,
        out: Outgoing::Document {
            body,
            missing: default_max_tokens,
        },
        model,
        stream,
        completion_bound,
        client_wants_usage,
    })
}

/// Checks what an Anthropic Messages request must have (the upstream, or the conversion,
/// judges the rest): `messages`, a list that is not empty, and `max_tokens`, which bounds what
/// the call is charged.
fn parse_messages(
    body: serde_json::Map<String, Value>,
    model: String,
    stream: bool,
) -> Result<Parsed, Error> {
    match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => {}
        Some(Value::Array(_)) => return Err(Error::invalid("messages", "must not be empty")),
        Some(_) => return Err(Error::invalid("messages", "must be a list")),
        None => return Err(Error::invalid("messages", "is required")),
    }
    let max_tokens = match field_u64(&body, "max_tokens")? {
        Some(0) => return Err(Error::invalid("max_tokens", "must be at least 1")),
        Some(n) => n,
        None => return Err(Error::invalid("max_tokens", "is required")),
    };
    Ok(Parsed {
        affinity: session_of(&body),
        stored: None,
        out: Outgoing::Document { body, missing: 0 },
        model,
        stream,
        completion_bound: max_tokens,
        client_wants_usage: false,
    })
}

/// Checks what a Responses request must have: `input` (text or a list of items), and
/// `max_output_tokens` when given (else `billing.default_max_tokens` bounds the reservation). A
/// request that continues a stored response or conversation is marked: the relay serves it only
/// through a channel that stores responses, and holds for the stored input apart.
fn parse_responses(
    body: serde_json::Map<String, Value>,
    model: String,
    stream: bool,
    default_max_tokens: u64,
) -> Result<Parsed, Error> {
    let mut stored = None;
    for field in ["previous_response_id", "conversation"] {
        match body.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if !s.is_empty() => stored = Some(field),
            Some(Value::Object(o))
                if field == "conversation" && o.get("id").is_some_and(Value::is_string) =>
            {
                stored = Some(field)
            }
            Some(_) => {
                return Err(Error::invalid(
                    field,
                    if field == "conversation" {
                        "must be a conversation id or an object with its `id`"
                    } else {
                        "must be a response id"
                    },
                ));
            }
        }
    }
    match body.get("input") {
        Some(Value::String(_) | Value::Array(_)) => {}
        Some(_) => {
            return Err(Error::invalid(
                "input",
                "must be a string or a list of items",
            ));
        }
        None => return Err(Error::invalid("input", "is required")),
    }
    let completion_bound = match field_u64(&body, "max_output_tokens")? {
        Some(0) => return Err(Error::invalid("max_output_tokens", "must be at least 1")),
        Some(n) => n,
        None => default_max_tokens,
    };
    Ok(Parsed {
        affinity: session_of(&body),
        stored,
        out: Outgoing::Document {
            body,
            missing: default_max_tokens,
        },
        model,
        stream,
        completion_bound,
        client_wants_usage: false,
    })
}

/// A request body as a document, for a conversion: the fast reading kept the client's bytes.
pub(super) fn document(out: &Outgoing) -> Result<serde_json::Map<String, Value>, Error> {
    match out {
        Outgoing::Document { body, .. } => Ok(body.clone()),
        Outgoing::Spliced { raw, .. } => match serde_json::from_slice(raw) {
            Ok(Value::Object(body)) => Ok(body),
            _ => Err(Error::invalid("body", "must be a JSON object")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(p: &Parsed, upstream_model: &str, shape: Shape) -> Value {
        let body = p.out.body(upstream_model, shape).expect("a body");
        serde_json::from_slice(&body).expect("the body is JSON")
    }

    /// The shapes of the chat kinds' defaults and of a server that refuses streams' usage.
    fn shapes(endpoint: Endpoint) -> Vec<Shape> {
        use crate::routing::Wire;
        use types::ChannelKind;
        let refusing = Wire {
            stream_usage: false,
            ..Wire::of(ChannelKind::OpenAiCompatible)
        };
        [
            Wire::of(ChannelKind::OpenAiCompatible),
            Wire::of(ChannelKind::OpenAi),
            refusing,
        ]
        .into_iter()
        .map(|w| Shape::of(endpoint, w))
        .collect()
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
            (
                Endpoint::Chat,
                r#"{"model":"m","messages":[1],"user":"u-\u0031"}"#,
            ),
            (
                Endpoint::Messages,
                r#"{"model":"m","max_tokens":5,"messages":[1],"metadata":{"user_id":"s1"},"stream":true}"#,
            ),
            (
                Endpoint::Responses,
                r#"{"model":"m","input":"hi","prompt_cache_key":"k","user":"u"}"#,
            ),
            (Endpoint::Embeddings, r#"{"input":"x","model":"m"}"#),
        ];
        for (endpoint, body) in cases {
            let raw = Bytes::from(body);
            let fast = parse_fast(endpoint, &raw, &|_: &str| 100)
                .unwrap_or_else(|| panic!("fast: {body}"));
            assert!(matches!(fast.out, Outgoing::Spliced { .. }));
            let doc = parse_document(endpoint, &raw, &|_: &str| 100).expect(body);
            assert_eq!(
                (
                    &fast.model,
                    fast.stream,
                    fast.completion_bound,
                    fast.client_wants_usage,
                    &fast.affinity
                ),
                (
                    &doc.model,
                    doc.stream,
                    doc.completion_bound,
                    doc.client_wants_usage,
                    &doc.affinity
                ),
                "{body}"
            );
            for upstream in ["m", "other-\"model\""] {
                for shape in shapes(endpoint) {
                    assert_eq!(
                        outgoing(&fast, upstream, shape),
                        outgoing(&doc, upstream, shape),
                        "{body} {shape:?}"
                    );
                }
            }
        }
        // Unchanged: the client's bytes themselves.
        let raw = Bytes::from(r#"{"model":"m","messages":[1],"max_tokens":3}"#);
        let p = parse_fast(Endpoint::Chat, &raw, &|_: &str| 1).expect("usual");
        let compatible = shapes(Endpoint::Chat)[0];
        assert_eq!(p.out.body("m", compatible).expect("body"), raw);
    }

    /// No call goes upstream unbounded: the default bound is added where the client named none,
    /// in the field the channel takes (the client's value moved there when it named the other);
    /// a channel that refuses `stream_options` gets none.
    #[test]
    fn the_bound_goes_upstream_in_the_channels_field() {
        let [compatible, openai, refusing] = shapes(Endpoint::Chat)[..] else {
            unreachable!("three shapes")
        };
        let unbounded = Bytes::from(r#"{"model":"m","messages":[1],"stream":true}"#);
        let p = parse_fast(Endpoint::Chat, &unbounded, &|_: &str| 4096).expect("usual");
        let body = outgoing(&p, "up", compatible);
        assert_eq!(body["max_tokens"], 4096);
        assert_eq!(body["stream_options"]["include_usage"], true);
        let body = outgoing(&p, "up", openai);
        assert_eq!(
            (&body["max_completion_tokens"], body.get("max_tokens")),
            (&serde_json::json!(4096), None)
        );
        let body = outgoing(&p, "up", refusing);
        assert_eq!(body.get("stream_options"), None);
        assert_eq!(body["max_tokens"], 4096);
        // The client's bound, moved to the field the channel takes.
        let named = Bytes::from(
            r#"{"model":"m","messages":[1],"max_tokens":7,"stream":true,"stream_options":{"include_usage":true}}"#,
        );
        let p = parse_fast(Endpoint::Chat, &named, &|_: &str| 4096).expect("usual");
        let body = outgoing(&p, "up", openai);
        assert_eq!(
            (&body["max_completion_tokens"], body.get("max_tokens")),
            (&serde_json::json!(7), None)
        );
        assert_eq!(outgoing(&p, "up", refusing).get("stream_options"), None);
        // A Responses call gets `max_output_tokens`; a Messages call keeps its own.
        let responses = Bytes::from(r#"{"model":"m","input":"hi"}"#);
        let p = parse_fast(Endpoint::Responses, &responses, &|_: &str| 900).expect("usual");
        let shape = shapes(Endpoint::Responses)[1];
        assert_eq!(outgoing(&p, "up", shape)["max_output_tokens"], 900);
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
                parse_fast(endpoint, &Bytes::from(body), &|_: &str| 1).is_none(),
                "{body}"
            );
        }
        // The document reading still takes what is valid among them.
        let raw =
            Bytes::from(r#"{"model":"m","messages":[1],"stream":true,"stream_options":null}"#);
        let p = parse(Endpoint::Chat, &raw, &|_: &str| 1).expect("valid");
        assert_eq!(
            outgoing(&p, "u", shapes(Endpoint::Chat)[0])["stream_options"]["include_usage"],
            true
        );
        assert!(
            parse(
                Endpoint::Completions,
                &Bytes::from(r#"{"model":"m","prompt":null}"#),
                &|_: &str| 1
            )
            .is_ok()
        );
        assert!(
            parse(
                Endpoint::Chat,
                &Bytes::from(r#"{"model":"m","messages":[]}"#),
                &|_: &str| 1
            )
            .is_err()
        );
    }
}
