//! Server-sent events, relayed event by event: framing without any line-length cap, the model
//! name rewritten to the one the client asked for, usage captured (and hidden when the client did
//! not ask for it), generated text kept for estimation when usage never comes.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

/// Splits a byte stream into complete events (separated by a blank line).
#[derive(Default)]
pub struct Framer {
    buf: BytesMut,
}

impl Framer {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, without its terminating blank line.
    pub fn next_event(&mut self) -> Option<Bytes> {
        let b = &self.buf[..];
        let mut i = 0;
        while i + 1 < b.len() {
            if b[i] == b'\n' && b[i + 1] == b'\n' {
                let ev = self.buf.split_to(i).freeze();
                let _ = self.buf.split_to(2);
                return Some(ev);
            }
            if b[i] == b'\n' && b[i + 1] == b'\r' && i + 2 < b.len() && b[i + 2] == b'\n' {
                let ev = self.buf.split_to(i).freeze();
                let _ = self.buf.split_to(3);
                return Some(ev);
            }
            i += 1;
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.buf.iter().all(u8::is_ascii_whitespace)
    }
}

/// The `data:` payload of an event (multi-line data joined with `\n`); `None` for comments etc.
pub fn data_of(event: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            match &mut out {
                Some(v) => {
                    v.push(b'\n');
                    v.extend_from_slice(rest);
                }
                None => out = Some(rest.to_vec()),
            }
        }
    }
    out
}

/// Usage as upstreams report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpstreamUsage {
    pub prompt: u64,
    pub completion: u64,
    pub cached: u64,
}

pub fn usage_of(v: &Value) -> Option<UpstreamUsage> {
    let u = v.get("usage")?.as_object()?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let prompt = n("prompt_tokens").or_else(|| n("input_tokens"))?;
    Some(UpstreamUsage {
        prompt,
        completion: n("completion_tokens")
            .or_else(|| n("output_tokens"))
            .unwrap_or(0),
        cached: at(v, &["usage", "prompt_tokens_details", "cached_tokens"])
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
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
    let mut b = BytesMut::with_capacity(payload.len() + 8);
    for line in payload.split(|b| *b == b'\n') {
        b.extend_from_slice(b"data: ");
        b.extend_from_slice(line);
        b.extend_from_slice(b"\n");
    }
    b.extend_from_slice(b"\n");
    b.freeze()
}

/// The event that ends a stream the upstream cut: an error, never a fake `[DONE]`.
pub fn error_event(message: &str) -> Bytes {
    let v = serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": "upstream_stream_error"}});
    frame(v.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_events_split_anywhere_and_of_any_length() {
        let long = "x".repeat(200_000);
        let input = format!("data: {{\"a\":\"{long}\"}}\n\ndata: [DONE]\r\n\r\n");
        let mut f = Framer::default();
        let mut events = Vec::new();
        for chunk in input.as_bytes().chunks(7) {
            f.push(chunk);
            while let Some(e) = f.next_event() {
                events.push(e);
            }
        }
        assert_eq!(events.len(), 2);
        assert_eq!(data_of(&events[0]).expect("data").len(), long.len() + 8);
        assert_eq!(data_of(&events[1]).expect("data"), b"[DONE]");
        assert!(f.is_empty());
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
                cached: 2
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
    fn a_multi_line_payload_goes_out_as_one_event() {
        let payload = b"{\n  \"a\": 1,\n\n  \"b\": 2\n}";
        let mut f = Framer::default();
        f.push(&frame(payload));
        f.push(&frame(b"[DONE]"));
        let first = f.next_event().expect("an event");
        assert_eq!(data_of(&first).expect("data"), payload);
        assert_eq!(
            data_of(&f.next_event().expect("[DONE]")).expect("data"),
            b"[DONE]"
        );
        assert!(f.is_empty());
    }
}
