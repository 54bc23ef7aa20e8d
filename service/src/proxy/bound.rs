//! An answer that went past the output bound its upstream was sent, cut back to the bound as the
//! upstream should have ended it: text kept up to the bound (by the gateway's count), what does
//! not fit whole (a tool call's arguments, a thinking block whose signature covers all of it, a
//! reasoning item) left out, and the protocol's own length stop. Pure: the caller runs it on the
//! token-counting thread.

use serde_json::Value;

/// Which protocol's answer a body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Protocol {
    /// Chat completions and completions (`choices`).
    Chat,
    /// Anthropic Messages (`content` blocks).
    Messages,
    /// The Responses API (`output` items).
    Responses,
}

/// The tokens left, and whether anything was cut.
struct Budget<'a> {
    left: u64,
    count: &'a dyn Fn(&str) -> u64,
    cut: bool,
}

impl Budget<'_> {
    /// Keeps what fits of `s` (the longest prefix within the budget).
    fn text(&mut self, s: &mut String) {
        let n = (self.count)(s);
        if n <= self.left {
            self.left -= n;
            return;
        }
        self.cut = true;
        let boundaries: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
        // The most characters whose prefix fits: fits(0) holds, fits(all) does not.
        let (mut lo, mut hi) = (0, boundaries.len());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if (self.count)(&s[..boundaries[mid]]) <= self.left {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        s.truncate(boundaries[lo]);
        self.left = 0;
    }

    /// Whether `s` fits whole (then it is counted); what does not fit ends the budget.
    fn whole(&mut self, s: &str) -> bool {
        let n = (self.count)(s);
        if n <= self.left {
            self.left -= n;
            return true;
        }
        self.cut = true;
        self.left = 0;
        false
    }
}

fn text_at(v: &mut Value, key: &str, budget: &mut Budget<'_>) {
    if let Some(Value::String(s)) = v.get_mut(key) {
        budget.text(s);
    }
}

/// Cuts `answer` to `bound` output tokens (counted by `count`); true when it changed.
pub(super) fn cut_answer(
    answer: &mut Value,
    protocol: Protocol,
    bound: u64,
    count: &dyn Fn(&str) -> u64,
) -> bool {
    let mut budget = Budget {
        left: bound,
        count,
        cut: false,
    };
    match protocol {
        Protocol::Chat => {
            let Some(choices) = answer.get_mut("choices").and_then(Value::as_array_mut) else {
                return false;
            };
            // Each choice has its share of the bound (`n` choices were asked for with one each).
            let share = bound / (choices.len().max(1) as u64);
            for choice in choices {
                budget.left = share;
                let before = budget.cut;
                budget.cut = false;
                text_at(choice, "text", &mut budget);
                if let Some(m) = choice.get_mut("message") {
                    text_at(m, "reasoning_content", &mut budget);
                    text_at(m, "content", &mut budget);
                    if let Some(calls) = m.get_mut("tool_calls").and_then(Value::as_array_mut) {
                        calls.retain(|c| {
                            budget.whole(c["function"]["arguments"].as_str().unwrap_or(""))
                        });
                        if calls.is_empty() {
                            m.as_object_mut().map(|o| o.shift_remove("tool_calls"));
                        }
                    }
                }
                if budget.cut {
                    choice["finish_reason"] = Value::from("length");
                }
                budget.cut |= before;
            }
        }
        Protocol::Messages => {
            let Some(blocks) = answer.get_mut("content").and_then(Value::as_array_mut) else {
                return false;
            };
            blocks.retain_mut(|b| match b["type"].as_str() {
                Some("text") => {
                    text_at(b, "text", &mut budget);
                    b["text"].as_str().is_some_and(|t| !t.is_empty())
                }
                Some("thinking") => budget.whole(b["thinking"].as_str().unwrap_or("")),
                Some("tool_use") => budget.whole(&b["input"].to_string()),
                _ => true,
            });
            if budget.cut {
                answer["stop_reason"] = Value::from("max_tokens");
                answer["stop_sequence"] = Value::Null;
            }
        }
        Protocol::Responses => {
            let Some(items) = answer.get_mut("output").and_then(Value::as_array_mut) else {
                return false;
            };
            items.retain_mut(|item| match item["type"].as_str() {
                Some("message") => {
                    if let Some(parts) = item.get_mut("content").and_then(Value::as_array_mut) {
                        for p in parts.iter_mut() {
                            text_at(p, "text", &mut budget);
                        }
                    }
                    true
                }
                Some("reasoning") => budget.whole(&item["summary"].to_string()),
                Some("function_call") => budget.whole(item["arguments"].as_str().unwrap_or("")),
                Some("custom_tool_call") => budget.whole(item["input"].as_str().unwrap_or("")),
                _ => true,
            });
            if budget.cut {
                answer["status"] = Value::from("incomplete");
                answer["incomplete_details"] = serde_json::json!({"reason": "max_output_tokens"});
            }
        }
    }
    budget.cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A word a token, as the tests count.
    fn words(s: &str) -> u64 {
        s.split_whitespace().count() as u64
    }

    #[test]
    fn a_chat_answer_is_cut_to_its_bound_and_stops_for_length() {
        let mut a = json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "reasoning_content": "think a b",
            "content": "one two three four five six",
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]}}]});
        assert!(cut_answer(&mut a, Protocol::Chat, 6, &words));
        let m = &a["choices"][0]["message"];
        assert_eq!(m["reasoning_content"], "think a b");
        assert_eq!(
            m["content"], "one two three ",
            "the longest prefix that fits"
        );
        assert!(
            m.get("tool_calls").is_none(),
            "a call that does not fit whole is left out"
        );
        assert_eq!(a["choices"][0]["finish_reason"], "length");
        // An answer within its bound is left as it is.
        let mut small =
            json!({"choices": [{"message": {"content": "a b"}, "finish_reason": "stop"}]});
        let before = small.clone();
        assert!(!cut_answer(&mut small, Protocol::Chat, 6, &words));
        assert_eq!(small, before);
        // Completions, two choices: a share of the bound each.
        let mut two = json!({"choices": [{"text": "a b c d"}, {"text": "e f"}]});
        assert!(cut_answer(&mut two, Protocol::Chat, 4, &words));
        assert_eq!(two["choices"][0]["text"], "a b ");
        assert_eq!(two["choices"][1]["text"], "e f");
        assert_eq!(two["choices"][0]["finish_reason"], "length");
        assert!(two["choices"][1].get("finish_reason").is_none());
    }

    #[test]
    fn a_messages_answer_keeps_whole_blocks_and_stops_at_max_tokens() {
        let mut a = json!({"type": "message", "stop_reason": "end_turn", "content": [
            {"type": "thinking", "thinking": "t u", "signature": "s"},
            {"type": "text", "text": "one two three four"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"x": 1}}]});
        assert!(cut_answer(&mut a, Protocol::Messages, 4, &words));
        assert_eq!(
            a["content"],
            json!([{"type": "thinking", "thinking": "t u", "signature": "s"},
                   {"type": "text", "text": "one two "}])
        );
        assert_eq!(a["stop_reason"], "max_tokens");
        // Nothing of the text fits: the block goes.
        let mut b = json!({"content": [{"type": "thinking", "thinking": "a b c", "signature": "s"},
            {"type": "text", "text": "x y"}]});
        assert!(cut_answer(&mut b, Protocol::Messages, 2, &words));
        assert_eq!(b["content"], json!([]));
    }

    #[test]
    fn a_responses_answer_is_cut_and_incomplete() {
        let mut a = json!({"status": "completed", "output": [
            {"type": "message", "content": [{"type": "output_text", "text": "one two three"}]},
            {"type": "function_call", "call_id": "c", "arguments": "{\"a\": 1}"}]});
        assert!(cut_answer(&mut a, Protocol::Responses, 2, &words));
        assert_eq!(a["output"][0]["content"][0]["text"], "one two ");
        assert_eq!(a["output"].as_array().map(Vec::len), Some(1));
        assert_eq!(a["status"], "incomplete");
        assert_eq!(a["incomplete_details"]["reason"], "max_output_tokens");
    }

    #[test]
    fn a_cut_falls_on_a_character_boundary() {
        let mut s = json!({"choices": [{"message": {"content": "日本語のテキスト"}}]});
        let chars = |t: &str| t.chars().count() as u64;
        assert!(cut_answer(&mut s, Protocol::Chat, 3, &chars));
        assert_eq!(s["choices"][0]["message"]["content"], "日本語");
    }
}
