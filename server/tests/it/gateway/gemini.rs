//! Gemini channels: Google's own protocol (`generateContent`, `streamGenerateContent` with
//! `x-goog-api-key`) under the chat route, so chat, Messages and Responses calls all reach it;
//! usage in the gateway's terms (thinking added to the output, cached content apart); a cut
//! stream charged once for what was served.

use super::agents::{events, lifecycle};
use super::*;
use crate::both_backends;

both_backends!(
    chat_messages_and_responses_reach_a_gemini_channel,
    a_cut_gemini_stream_is_charged_once_for_what_was_served,
);

const GEMINI_UP: &str = "gemini-2.5-up";

/// A Gemini channel (`directives` on its URL) serving `model` as [`GEMINI_UP`], priced.
pub fn gemini(c: &mut Config, mock: &Mock, name: &str, model: &str, directives: &str) {
    let base = mock.url(directives);
    let base = format!("{}/v1beta", base.trim_end_matches("/v1"));
    let mut ch = channel(name, base, &[&format!("{GEMINI_UP}-{name}")], 0);
    ch.kind = types::ChannelKind::Gemini;
    c.channels.push(ch);
    c.model_mapping
        .insert(model.into(), vec![format!("{GEMINI_UP}-{name}")]);
    c.pricing.insert(
        format!("{GEMINI_UP}-{name}"),
        PriceConfig {
            input_per_1m: "1".into(),
            output_per_1m: "10".into(),
            cached_input_per_1m: Some("0.25".into()),
            per_request: None,
            ..Default::default()
        },
    );
}

fn tools() -> Value {
    json!([{ "type": "function", "function": { "name": "get_weather", "description": "Weather",
             "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } }])
}

async fn chat_messages_and_responses_reach_a_gemini_channel(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        gemini(c, m, "g", "gem", "reasoning=1,tool=1,cached=2")
    })
    .await;
    let up_model = format!("{GEMINI_UP}-g");
    // Chat, not streamed: thinking, text and the call back as chat; usage in chat's terms.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gem", "messages": hello(), "max_tokens": 20, "tools": tools(),
                    "tool_choice": "auto" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["model"], "gem");
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], "Hello from the mock upstream.");
    assert_eq!(message["reasoning_content"], "Thinking it over.");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Paris"}"#
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    // Prompt 3 (2 of them cached); output 6 + 3 of thinking.
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    assert_eq!(body["usage"]["completion_tokens"], 9);
    let up = gw.mock.requests().await;
    assert_eq!(up[0]["path"], "gemini");
    assert_eq!(up[0]["model"], up_model);
    assert_eq!(up[0]["stream"], false);
    assert_eq!(up[0]["x_goog_api_key"], "upstream-secret-key");
    let sent = &up[0]["body"];
    assert_eq!(
        sent["contents"],
        json!([{ "role": "user", "parts": [{ "text": "hello there world" }] }])
    );
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 20);
    assert_eq!(
        sent["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
    assert_eq!(
        sent["toolConfig"],
        json!({ "functionCallingConfig": { "mode": "AUTO" } })
    );
    gw.settled(1).await;
    let call = gw.last_call().await;
    for (field, value) in [
        ("prompt_tokens", json!(3)),
        ("completion_tokens", json!(9)),
        ("cached_tokens", json!(2)),
        ("reasoning_tokens", json!(3)),
        ("surface", json!("chat")),
        ("upstream_kind", json!("gemini")),
        ("usage_source", json!("upstream")),
    ] {
        assert_eq!(call[field], value, "{field}: {call}");
    }

    // Chat streamed: the text whole, the call with its index, the usage, [DONE].
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gem", "messages": hello(), "stream": true, "tools": tools(),
                    "stream_options": { "include_usage": true } }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("stream");
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("a chunk"))
        .collect();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello from the mock upstream.");
    assert!(chunks.iter().all(|c| c["model"] == "gem"), "{text}");
    let call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .expect("a tool call");
    assert_eq!(
        (&call["index"], &call["function"]["name"]),
        (&json!(0), &json!("get_weather"))
    );
    let last = chunks.last().expect("chunks");
    assert_eq!(last["usage"]["completion_tokens"], 9, "{last}");
    assert_eq!(gw.mock.requests().await[1]["stream"], true);

    // Claude Code's Messages over Gemini: the whole lifecycle, thinking, text and tool use.
    let res = gw
        .messages(
            "/v1/messages",
            json!({ "model": "gem", "max_tokens": 30, "stream": true,
                    "messages": [{ "role": "user", "content": "hello there world" }] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let events = events(res).await;
    lifecycle(&events);
    let blocks: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .filter_map(|(_, d)| d["content_block"]["type"].as_str())
        .collect();
    assert_eq!(blocks, ["thinking", "text", "tool_use"]);
    let end = &events[events.len() - 2].1;
    assert_eq!(end["delta"]["stop_reason"], "tool_use");
    assert_eq!(end["usage"]["output_tokens"], 9);

    // Codex's Responses over Gemini.
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": "gem", "input": "hello there world", "max_output_tokens": 40 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "completed");
    let kinds: Vec<&str> = body["output"]
        .as_array()
        .expect("output")
        .iter()
        .filter_map(|o| o["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"message") && kinds.contains(&"function_call"),
        "{body}"
    );
    assert_eq!(
        gw.mock.requests().await[3]["body"]["generationConfig"]["maxOutputTokens"],
        40
    );

    // The bound reaches Gemini, which stops at it.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gem", "messages": hello(), "max_tokens": 2 }),
        )
        .await;
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 2 + 3);

    // What Gemini cannot take is a 400 naming it, nothing sent.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gem", "messages": [{ "role": "user", "content": [
                { "type": "image_url", "image_url": { "url": "https://example.com/cat.png" } }] }] }),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["param"], "messages", "{body}");
    assert_eq!(gw.mock.requests().await.len(), 5);

    // Embeddings are not a Gemini route: refused on the route.
    let res = gw
        .post("/v1/embeddings", json!({ "model": "gem", "input": "x" }))
        .await;
    assert_eq!(res.status(), 400);

    gw.settled(7).await;
    let charged: i64 = gw
        .scalar("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_logs WHERE user_id = $1")
        .await;
    assert!(charged > 0);
    assert_eq!(gw.balance().await, 1_000_000 - charged);

    // The channel's test speaks Gemini.
    let probe = gw.test_channel("g", &up_model).await;
    assert_eq!(
        (&probe["ok"], &probe["status"]),
        (&json!(true), &json!(200)),
        "{probe}"
    );
    assert_eq!(gw.mock.requests().await[5]["path"], "gemini");
    gw.stop().await;
}

async fn a_cut_gemini_stream_is_charged_once_for_what_was_served(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        gemini(c, m, "cut", "gem-cut", "cut_after=2")
    })
    .await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gem-cut", "messages": hello(), "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap_or_default();
    assert!(
        !text.contains("[DONE]"),
        "a cut stream never ends as whole: {text}"
    );
    assert!(text.contains("Hello"), "{text}");
    gw.settled(1).await;
    let call = gw.last_call().await;
    assert_eq!(
        (&call["error_class"], &call["usage_source"]),
        (&json!("upstream_cut"), &json!("partial")),
        "{call}"
    );
    let charged: i64 = gw
        .scalar("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_logs WHERE user_id = $1")
        .await;
    assert!(charged > 0, "what was served is charged");
    assert_eq!(gw.balance().await, 1_000_000 - charged);
    assert_eq!(
        gw.scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1")
            .await,
        1
    );
    gw.stop().await;
}
