//! Codex's protocol: the Responses API passed through to `openai` channels and converted over
//! OpenAI-compatible chat channels; what cannot be bounded or carried refused by name.

use super::agents::{AGENT, CLAUDE, agents, cut_chat};
use super::*;
use crate::both_backends;

both_backends!(
    responses_are_converted_over_a_chat_channel,
    responses_pass_through_to_an_openai_channel,
    responses_refuse_what_cannot_be_bounded_or_carried,
    cut_responses_streams_end_failed_and_are_charged_once,
    stored_responses_are_continued_where_they_are_stored,
);

/// The model Codex asks for, mapped to an `openai` channel's model.
pub const CODEX: &str = "codex";
const CODEX_UP: &str = "gpt-up";

/// [`agents`], and an `openai` channel (`directives` on its URL) serving [`CODEX`].
pub fn codex(c: &mut Config, mock: &Mock, directives: &str) {
    agents(c, mock, "");
    let mut openai = channel("openai", mock.url(directives), &[CODEX_UP], 0);
    openai.kind = types::ChannelKind::OpenAi;
    c.channels.push(openai);
    c.model_mapping.insert(CODEX.into(), vec![CODEX_UP.into()]);
    c.pricing.insert(
        CODEX_UP.into(),
        PriceConfig {
            input_per_1m: "1".into(),
            output_per_1m: "10".into(),
            cached_input_per_1m: Some("0.10".into()),
            per_request: None,
            ..Default::default()
        },
    );
}

/// The events of a Responses stream: (event name, data), each event's `type` its name and its
/// sequence numbers counting up from 0.
async fn events(res: reqwest::Response) -> Vec<(String, Value)> {
    let text = res.text().await.expect("stream");
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("an event name: {e}"));
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("data: {e}"));
            let data: Value = serde_json::from_str(data).expect("json data");
            assert_eq!(data["type"], name, "{e}");
            (name.to_string(), data)
        })
        .collect();
    for (i, (_, d)) in events.iter().enumerate() {
        if d.get("sequence_number").is_some() {
            assert_eq!(d["sequence_number"], i, "{d}");
        }
    }
    events
}

fn weather_tool() -> Value {
    json!([{ "type": "function", "name": "get_weather", "description": "Weather",
             "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } }])
}

async fn responses_are_converted_over_a_chat_channel(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| agents(c, m, "")).await;
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": AGENT, "instructions": "Be brief.", "input": "hello there world",
                    "tools": weather_tool(), "max_output_tokens": 40, "store": false,
                    "reasoning": { "effort": "low" }, "prompt_cache_key": "session-1" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], AGENT);
    assert_eq!(body["max_output_tokens"], 40);
    assert_eq!(body["instructions"], "Be brief.");
    assert_eq!(
        body["output"],
        json!([
            { "type": "reasoning", "id": "rs_resp_chatcmpl-mock", "summary": [{ "type": "summary_text", "text": "Thinking it over." }] },
            { "type": "message", "id": "msg_resp_chatcmpl-mock", "status": "completed", "role": "assistant",
              "content": [{ "type": "output_text", "text": "Hello from the mock upstream.", "annotations": [] }] },
            { "type": "function_call", "id": "fc_call_mock_1", "status": "completed", "call_id": "call_mock_1",
              "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" }
        ])
    );
    // Chat's usage, in the Responses API's terms (cached tokens inside the input count).
    assert_eq!(body["usage"]["input_tokens"], 5);
    assert_eq!(body["usage"]["input_tokens_details"]["cached_tokens"], 2);
    assert_eq!(body["usage"]["output_tokens"], 6);
    let up = gw.mock.requests().await;
    let sent = &up[0]["body"];
    assert_eq!(up[0]["path"], "chat");
    assert_eq!(sent["max_tokens"], 40, "the bound goes upstream");
    assert_eq!(sent["reasoning_effort"], "low");
    assert_eq!(
        sent["messages"],
        json!([{ "role": "system", "content": "Be brief." }, { "role": "user", "content": "hello there world" }])
    );
    assert_eq!(
        sent["tools"],
        json!([{ "type": "function", "function": { "name": "get_weather", "description": "Weather",
                 "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } }])
    );

    // The second turn, streamed: the call and its output go back as chat's tool messages.
    let input = json!([
        { "role": "user", "content": [{ "type": "input_text", "text": "weather?" }] },
        { "type": "reasoning", "id": "rs_1", "summary": [] },
        { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": "Checking." }] },
        { "type": "function_call", "call_id": "call_mock_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" },
        { "type": "function_call_output", "call_id": "call_mock_1", "output": "sunny" }
    ]);
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": AGENT, "input": input, "tools": weather_tool(), "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let events = events(res).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let done = &events[23].1;
    assert_eq!(
        done["arguments"], "{\"city\":\"Paris\"}",
        "the arguments whole"
    );
    let completed = &events[25].1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        completed["output"][1]["content"][0]["text"],
        "Hello from the mock upstream."
    );
    assert_eq!(completed["usage"]["output_tokens"], 6);
    let up = gw.mock.requests().await;
    assert_eq!(
        up[1]["body"]["messages"],
        json!([
            { "role": "user", "content": "weather?" },
            { "role": "assistant", "content": "Checking.", "tool_calls": [{ "id": "call_mock_1", "type": "function",
                "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } }] },
            { "role": "tool", "tool_call_id": "call_mock_1", "content": "sunny" }
        ])
    );
    // Without max_output_tokens the configured default bounds the call, upstream too.
    assert_eq!(up[1]["body"]["max_tokens"], 4096);

    // A custom (freeform) tool, as Codex declares apply_patch: a function of one string
    // upstream, its call a custom_tool_call with the raw input back (here the mock's arguments,
    // which are not the expected object, kept whole).
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": AGENT, "input": "patch it", "store": true, "tools": [{ "type": "custom", "name": "get_weather",
                    "description": "Edit files", "format": { "type": "grammar", "syntax": "lark", "definition": "start: /.+/" } }] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["store"], false,
        "nothing is stored, whatever was asked"
    );
    assert_eq!(
        body["output"][2],
        json!({ "type": "custom_tool_call", "id": "ctc_call_mock_1", "status": "completed",
                "call_id": "call_mock_1", "name": "get_weather", "input": "{\"city\":\"Paris\"}" })
    );
    let up = gw.mock.requests().await;
    let tool = &up[2]["body"]["tools"][0]["function"];
    assert_eq!(tool["parameters"]["required"], json!(["input"]));
    assert!(
        tool["description"]
            .as_str()
            .is_some_and(|d| d.contains("lark") && d.contains("start: /.+/")),
        "{tool}"
    );
    gw.settled(3).await;
    let charged: i64 = gw
        .scalar("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_logs WHERE user_id = $1")
        .await;
    assert!(charged > 0);
    assert_eq!(gw.balance().await, 1_000_000 - charged);
    gw.stop().await;
}

async fn responses_pass_through_to_an_openai_channel(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| codex(c, m, "cached=2")).await;
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": CODEX, "input": "hello there world", "max_output_tokens": 16 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["model"], CODEX, "named as the client asked");
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "Hello from the mock upstream."
    );
    let up = gw.mock.requests().await;
    assert_eq!(up[0]["path"], "responses");
    assert_eq!(up[0]["model"], CODEX_UP);
    assert_eq!(up[0]["authorization"], "Bearer upstream-secret-key");
    assert_eq!(up[0]["body"]["max_output_tokens"], 16, "passed as it came");
    gw.settled(1).await;
    // Input 3 (2 of them cached) and output 6: 1 × $1 + 2 × $0.10 + 6 × $10 per 1M = 61.2
    // units, charged as 62.
    let (cost, source, _, prompt, completion) = gw.last_usage().await;
    assert_eq!(
        (cost, source.as_str(), prompt, completion),
        (62, "upstream", 3, 6)
    );

    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": CODEX, "input": "hello there world", "stream": true,
                    "mock": { "reasoning_tokens": 4 } }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let events = events(res).await;
    assert_eq!(events[0].0, "response.created");
    assert_eq!(
        events[0].1["response"]["model"], CODEX,
        "renamed in the stream too"
    );
    let (last, data) = events.last().expect("events");
    assert_eq!(last, "response.completed");
    assert_eq!(data["response"]["model"], CODEX);
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().expect("a delta"))
        .collect();
    assert_eq!(text, "Hello from the mock upstream.");
    gw.settled(2).await;
    // Output 6 + 4 reasoning at $10 per 1M: 1 + 0.2 + 100 = 101.2 units, charged as 102; the
    // reasoning is on the row apart.
    let call = gw.last_call().await;
    for (field, value) in [
        ("completion_tokens", json!(10)),
        ("reasoning_tokens", json!(4)),
        ("cached_tokens", json!(2)),
        ("surface", json!("responses")),
        ("upstream_kind", json!("openai")),
        ("cost", json!("0.000102")),
    ] {
        assert_eq!(call[field], value, "{field}: {call}");
    }
    assert_eq!(gw.balance().await, 1_000_000 - 62 - 102);
    gw.stop().await;
}

async fn responses_refuse_what_cannot_be_bounded_or_carried(backend: Backend) {
    // A body limit of 64 KiB stands for the default 10 MiB (see the Anthropic surface's test).
    let gw = Gw::start(backend, "1", |c, m| {
        codex(c, m, "");
        c.server.max_body_bytes = 64 * 1024;
    })
    .await;
    for (body, param, says) in [
        (
            json!({ "model": AGENT, "input": "hi", "previous_response_id": "resp_1" }),
            "previous_response_id",
            "stores responses",
        ),
        (
            json!({ "model": CODEX, "input": "hi", "previous_response_id": 7 }),
            "previous_response_id",
            "response id",
        ),
        (
            json!({ "model": AGENT, "input": "hi", "conversation": "conv_1" }),
            "conversation",
            "whole conversation",
        ),
        (json!({ "model": AGENT }), "input", "required"),
        (
            json!({ "model": AGENT, "input": "hi", "max_output_tokens": 0 }),
            "max_output_tokens",
            "at least 1",
        ),
        (
            json!({ "model": AGENT, "input": "hi", "tools": [{ "type": "web_search" }] }),
            "tools",
            "web_search",
        ),
        (
            json!({ "model": AGENT, "input": [{ "type": "computer_call_output", "call_id": "c" }] }),
            "input",
            "computer_call_output",
        ),
        (
            json!({ "model": CLAUDE, "input": "hi" }),
            "model",
            "/v1/responses",
        ),
    ] {
        let res = gw.post("/v1/responses", body.clone()).await;
        assert_eq!(res.status(), 400, "{body}");
        let err: Value = res.json().await.expect("json");
        assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
        assert_eq!(err["error"]["param"], param, "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{err}"
        );
    }
    // Deep JSON, and a function call's output larger than the body limit: OpenAI's shape.
    let deep = format!(
        r#"{{"model":"{AGENT}","input":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let res = TestApp::bare_client()
        .post(gw.app.url("/v1/responses"))
        .bearer_auth(&gw.key)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
    let huge = "x".repeat(100 * 1024);
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": AGENT, "input": [
                { "type": "function_call_output", "call_id": "c", "output": huge }] }),
        )
        .await;
    assert_eq!(res.status(), 413);
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"]["code"], "payload_too_large", "{err}");
    assert!(gw.mock.requests().await.is_empty(), "nothing went upstream");
    gw.settled(9).await;
    assert_eq!(gw.balance().await, 1_000_000, "nothing charged");
    gw.stop().await;
}

async fn cut_responses_streams_end_failed_and_are_charged_once(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        codex(c, m, "cut_after=3");
        cut_chat(c, m);
    })
    .await;
    for (model, last) in [(CODEX, "error"), ("cut-chat", "response.failed")] {
        let res = gw
            .post(
                "/v1/responses",
                json!({ "model": model, "input": "hello there world", "stream": true }),
            )
            .await;
        assert_eq!(res.status(), 200);
        let events = events(res).await;
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"response.created"), "{names:?}");
        assert_eq!(names.last(), Some(&last), "{names:?}");
        assert!(!names.contains(&"response.completed"));
    }
    gw.settled(2).await;
    let partial = gw
        .scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND usage_source = 'partial' AND error_class = 'upstream_cut' AND cost > 0")
        .await;
    assert_eq!(partial, 2);
    gw.stop().await;
}

/// A request that continues a response stored upstream (`previous_response_id`) goes only to a
/// channel that stores responses, even where a chat channel comes first; its stored input, which
/// the body does not show, is charged as the upstream reports it, and held for beforehand
/// (`billing.stored_input_hold_tokens`).
async fn stored_responses_are_continued_where_they_are_stored(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        codex(c, m, "");
        // A chat channel first, then the one that stores responses.
        c.model_mapping
            .insert("mixed".into(), vec![AGENT.into(), CODEX_UP.into()]);
    })
    .await;
    let first: Value = gw
        .post(
            "/v1/responses",
            json!({ "model": CODEX, "input": "hello there world", "max_output_tokens": 20 }),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = first["id"].as_str().expect("an id").to_string();
    let stored = 3 + first["usage"]["output_tokens"].as_u64().expect("output");
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": "mixed", "input": "and then?", "previous_response_id": id,
                    "max_output_tokens": 20 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.expect("json");
    assert_eq!(second["usage"]["input_tokens"], stored + 2, "{second}");
    let up = gw.mock.requests().await;
    assert_eq!(up.len(), 2);
    assert_eq!(up[1]["path"], "responses", "not converted to chat");
    assert_eq!(up[1]["model"], CODEX_UP);
    assert_eq!(up[1]["body"]["previous_response_id"], id.as_str());
    gw.settled(2).await;
    let call = gw.last_call().await;
    assert_eq!(call["prompt_tokens"], stored + 2, "{call}");
    assert_eq!(call["upstream_kind"], "openai", "{call}");
    // $1 per 1M input tokens and $10 per 1M output: a unit (US$0.000001) a token and ten.
    let out = second["usage"]["output_tokens"].as_u64().expect("output");
    assert_eq!(
        call["cost"],
        format!("0.{:06}", stored + 2 + 10 * out),
        "the stored input charged: {call}"
    );
    // The same model without a stored response: its first channel, over chat.
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": "mixed", "input": "and then?", "max_output_tokens": 20 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(gw.mock.requests().await[2]["path"], "chat");
    gw.settled(3).await;
    gw.stop().await;

    // A hold for the stored input larger than the balance: refused before anything is sent,
    // while the same request that continues nothing is served.
    let gw = Gw::start(backend, "0.01", |c, m| {
        codex(c, m, "");
        c.billing.stored_input_hold_tokens = 20_000; // $0.02 at $1 per 1M input tokens
    })
    .await;
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": CODEX, "input": "hi", "previous_response_id": id,
                    "max_output_tokens": 20 }),
        )
        .await;
    assert_eq!(res.status(), 402);
    assert!(gw.mock.requests().await.is_empty(), "nothing went upstream");
    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": CODEX, "input": "hi", "max_output_tokens": 20 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    gw.settled(2).await;
    gw.stop().await;
}
