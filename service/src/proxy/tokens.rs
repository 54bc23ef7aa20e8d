//! Token counting for requests whose upstream reported no usage (tiktoken, cl100k/o200k).

use serde_json::Value;

fn bpe(model: &str) -> &'static tiktoken_rs::CoreBPE {
    let m = model.to_ascii_lowercase();
    if m.starts_with("gpt-4o")
        || m.starts_with("gpt-4.1")
        || m.starts_with("o1")
        || m.starts_with("o3")
        || m.starts_with("o4")
        || m.starts_with("gpt-5")
    {
        tiktoken_rs::o200k_base_singleton()
    } else {
        tiktoken_rs::cl100k_base_singleton()
    }
}

pub fn count(model: &str, text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    bpe(model).encode_ordinary(text).len() as u64
}

/// All text of a value: strings, `content`/`text` parts, arrays of them.
fn push_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
        Value::Array(a) => a.iter().for_each(|x| push_text(x, out)),
        Value::Object(o) => {
            for k in ["content", "text", "arguments", "name"] {
                if let Some(x) = o.get(k) {
                    push_text(x, out);
                }
            }
            if let Some(calls) = o.get("tool_calls") {
                push_text(calls, out);
            }
            if let Some(f) = o.get("function") {
                push_text(f, out);
            }
        }
        _ => {}
    }
}

/// Prompt tokens of a request body, counted locally: chat messages (plus OpenAI's per-message
/// framing: 3 tokens a message and 3 for the reply), a completion prompt, or embedding input.
pub fn prompt_tokens(model: &str, body: &Value) -> u64 {
    let mut text = String::new();
    let mut framing = 0;
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for m in messages {
            push_text(m, &mut text);
        }
        framing = 3 * messages.len() as u64 + 3;
    } else if let Some(p) = body.get("prompt") {
        push_text(p, &mut text);
    } else if let Some(i) = body.get("input") {
        push_text(i, &mut text);
    }
    count(model, &text) + framing
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_chat_prompts_with_framing() {
        let body = json!({"messages": [{"role": "user", "content": "Hello world"}]});
        assert_eq!(prompt_tokens("gpt-3.5-turbo", &body), 2 + 3 + 3);
        let parts = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello world"}]}]});
        assert_eq!(prompt_tokens("gpt-3.5-turbo", &parts), 2 + 3 + 3);
        assert_eq!(count("gpt-4o-mini", ""), 0);
        assert!(count("gpt-4o-mini", "The quick brown fox") >= 4);
    }
}
