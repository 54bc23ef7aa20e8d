//! Claude Code's protocol: Anthropic Messages passed through to Anthropic channels, converted
//! over OpenAI chat channels, token counting, Anthropic's error shape; money exact on each path.

use super::*;
use crate::both_backends;

both_backends!(
    messages_pass_through_to_an_anthropic_channel_and_charge_cache_reads,
    messages_are_converted_over_a_chat_channel,
    count_tokens_is_exact_through_anthropic_and_estimated_otherwise,
    the_anthropic_surface_answers_errors_in_its_shape,
    cut_messages_streams_end_with_an_error_event_and_are_charged_once,
    a_burst_of_agent_streams_left_by_their_clients_is_charged_exactly,
    probes_speak_each_channels_protocol,
    usage_is_one_normalized_count_on_every_surface,
);

/// The model Claude Code asks for, mapped to an Anthropic channel's model name.
pub const CLAUDE: &str = "claude-sonnet";
pub const CLAUDE_UP: &str = "claude-sonnet-4-5";
/// A model only an OpenAI-compatible channel serves, with tool calls, reasoning and cache reads.
pub const AGENT: &str = "agent-chat";

/// An Anthropic channel (`directives` on its URL) and a chat channel for [`AGENT`], priced.
pub fn agents(c: &mut Config, mock: &Mock, directives: &str) {
    let mut claude = channel("claude", mock.url(directives), &[CLAUDE_UP], 0);
    claude.kind = types::ChannelKind::Anthropic;
    c.channels.push(claude);
    c.channels.push(channel(
        "agent",
        mock.url("tool=1,reasoning=1,cached=2"),
        &[AGENT],
        0,
    ));
    c.model_mapping
        .insert(CLAUDE.into(), vec![CLAUDE_UP.into()]);
    for model in [CLAUDE_UP, AGENT] {
        c.pricing.insert(
            model.into(),
            PriceConfig {
                input_per_1m: "3".into(),
                output_per_1m: "15".into(),
                cached_input_per_1m: Some("0.30".into()),
                per_request: None,
                ..Default::default()
            },
        );
    }
}

/// A chat channel whose streams the upstream cuts after 3 chunks, serving the model `cut-chat`.
pub fn cut_chat(c: &mut Config, mock: &Mock) {
    c.channels.push(channel(
        "cut-chat",
        mock.url("cut_after=3"),
        &["cut-chat"],
        0,
    ));
    c.pricing.insert(
        "cut-chat".into(),
        PriceConfig {
            input_per_1m: "3".into(),
            output_per_1m: "15".into(),
            cached_input_per_1m: None,
            per_request: None,
            ..Default::default()
        },
    );
}

impl Gw {
    /// A Messages call as Claude Code makes it: the key in `x-api-key`, Anthropic's headers.
    pub async fn messages(&self, path: &str, body: Value) -> reqwest::Response {
        TestApp::bare_client()
            .post(self.app.url(path))
            .header("x-api-key", &self.key)
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", "prompt-caching-2024-07-31")
            .json(&body)
            .send()
            .await
            .expect("request")
    }
}

/// The events of an Anthropic stream: (event name, data).
pub async fn events(res: reqwest::Response) -> Vec<(String, Value)> {
    let text = res.text().await.expect("stream");
    text.split("\n\n")
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
            (
                name.to_string(),
                serde_json::from_str(data).expect("json data"),
            )
        })
        .collect()
}

/// The names in order, and the checks every Anthropic stream must pass: one `message_start`
/// first, every block started is stopped, `message_delta` then `message_stop` last.
pub fn lifecycle(events: &[(String, Value)]) -> Vec<&str> {
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(
        &names[names.len() - 2..],
        &["message_delta", "message_stop"],
        "{names:?}"
    );
    let mut open: Option<u64> = None;
    let mut next = 0;
    for (name, data) in events {
        match name.as_str() {
            "content_block_start" => {
                assert!(open.is_none(), "a block opened inside another");
                assert_eq!(data["index"], next);
                open = Some(next);
                next += 1;
            }
            "content_block_delta" => assert_eq!(data["index"].as_u64(), open),
            "content_block_stop" => {
                assert_eq!(data["index"].as_u64(), open);
                open = None;
            }
            _ => {}
        }
    }
    assert!(open.is_none(), "a block left open");
    names
}

fn ask() -> Value {
    json!([{ "role": "user", "content": [{ "type": "text", "text": "hello there world" }] }])
}

async fn messages_pass_through_to_an_anthropic_channel_and_charge_cache_reads(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        agents(c, m, "cached=1000,cache_write=60,cache_write_1h=40")
    })
    .await;
    let res = gw
        .messages(
            "/v1/messages",
            json!({ "model": CLAUDE, "max_tokens": 64, "messages": ask(), "system": "Be brief." }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["model"], CLAUDE, "named as the client asked");
    assert_eq!(body["content"][0]["text"], "Hello from the mock upstream.");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000,
               "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40},
               "output_tokens": 6})
    );
    // The upstream got the channel's key in Anthropic's header, the client's version and beta.
    let up = gw.mock.requests().await;
    assert_eq!(up[0]["path"], "messages");
    assert_eq!(up[0]["model"], CLAUDE_UP);
    assert_eq!(up[0]["x_api_key"], "upstream-secret-key");
    assert_eq!(up[0]["authorization"], "");
    assert_eq!(up[0]["anthropic_version"], "2023-06-01");
    assert_eq!(up[0]["anthropic_beta"], "prompt-caching-2024-07-31");
    assert_eq!(up[0]["body"]["system"], "Be brief.", "passed as it came");
    gw.settled(1).await;
    // Input 5 + cache writes 100 at $3/1M, cache reads 1,000 at $0.30, output 6 at $15:
    // 315 + 300 + 90 = 705 units.
    let (cost, source, class, prompt, completion) = gw.last_usage().await;
    assert_eq!(
        (cost, source.as_str(), class, prompt, completion),
        (705, "upstream", None, 1105, 6)
    );
    // The row as `/api/logs` gives it: every kind of token apart, the route and the kind.
    let call = gw.last_call().await;
    for (field, value) in [
        ("cached_tokens", json!(1000)),
        ("cache_write_5m_tokens", json!(60)),
        ("cache_write_1h_tokens", json!(40)),
        ("reasoning_tokens", json!(0)),
        ("surface", json!("messages")),
        ("upstream_kind", json!("anthropic")),
    ] {
        assert_eq!(call[field], value, "{field}: {call}");
    }
    assert_eq!(gw.balance().await, 1_000_000 - 705);

    // Streamed: the events as they came, the model renamed in message_start.
    let res = gw
        .messages(
            "/v1/messages",
            json!({ "model": CLAUDE, "max_tokens": 64, "messages": ask(), "stream": true,
                    "mock": { "reasoning": true, "tool": true } }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let events = events(res).await;
    let names = lifecycle(&events);
    assert!(names.contains(&"ping"), "{names:?}");
    assert_eq!(events[0].1["message"]["model"], CLAUDE);
    assert_eq!(
        events[0].1["message"]["usage"]["cache_read_input_tokens"],
        1000
    );
    let signature = events
        .iter()
        .find(|(_, d)| d["delta"]["type"] == "signature_delta")
        .map(|(_, d)| d["delta"]["signature"].clone());
    assert_eq!(
        signature,
        Some(json!("sig-mock")),
        "thinking keeps its signature"
    );
    gw.settled(2).await;
    // The same without the system prompt's 2 tokens: 699 units.
    assert_eq!(gw.balance().await, 1_000_000 - 705 - 699);
    gw.stop().await;
}

async fn messages_are_converted_over_a_chat_channel(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| agents(c, m, "")).await;
    let tools = json!([{ "name": "get_weather", "description": "Weather", "input_schema": {
        "type": "object", "properties": { "city": { "type": "string" } } } }]);
    let res = gw
        .messages(
            "/v1/messages",
            json!({ "model": AGENT, "max_tokens": 50, "messages": ask(), "tools": tools,
                    "system": [{ "type": "text", "text": "Be brief.", "cache_control": { "type": "ephemeral" } }],
                    "metadata": { "user_id": "session-1" } }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body,
        json!({
            "id": "msg_chatcmpl-mock", "type": "message", "role": "assistant", "model": AGENT,
            "content": [
                { "type": "thinking", "thinking": "Thinking it over.", "signature": "" },
                { "type": "text", "text": "Hello from the mock upstream." },
                { "type": "tool_use", "id": "call_mock_1", "name": "get_weather", "input": { "city": "Paris" } }
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": { "input_tokens": 3, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2, "output_tokens": 6 }
        })
    );
    // What the chat upstream got: a chat request.
    let up = gw.mock.requests().await;
    assert_eq!(up[0]["path"], "chat");
    let sent = &up[0]["body"];
    assert_eq!(sent["model"], AGENT);
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["user"], "session-1");
    assert_eq!(
        sent["messages"],
        json!([{ "role": "system", "content": "Be brief." }, { "role": "user", "content": "hello there world" }])
    );
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["tools"][0]["function"]["parameters"]["type"], "object");

    // The second turn: the tool's result goes back as a `tool` message after the call.
    let turn2 = json!([
        { "role": "user", "content": "weather?" },
        { "role": "assistant", "content": [
            { "type": "text", "text": "Checking." },
            { "type": "tool_use", "id": "call_mock_1", "name": "get_weather", "input": { "city": "Paris" } } ] },
        { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "call_mock_1", "content": "sunny" }] }
    ]);
    let res = gw
        .messages(
            "/v1/messages",
            json!({ "model": AGENT, "max_tokens": 50, "messages": turn2, "tools": tools, "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let events = events(res).await;
    let names = lifecycle(&events);
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[1].1["content_block"]["type"], "thinking");
    assert_eq!(events[4].1["content_block"]["type"], "text");
    assert_eq!(
        events[12].1["content_block"],
        json!({ "type": "tool_use", "id": "call_mock_1", "name": "get_weather", "input": {} })
    );
    let args: String = events[13..16]
        .iter()
        .map(|(_, d)| d["delta"]["partial_json"].as_str().expect("a piece"))
        .collect();
    assert_eq!(args, r#"{"city":"Paris"}"#, "the arguments arrive whole");
    let end = &events[events.len() - 2].1;
    assert_eq!(end["delta"]["stop_reason"], "tool_use");
    assert_eq!(end["usage"]["output_tokens"], 6);
    assert_eq!(end["usage"]["cache_read_input_tokens"], 2);
    let up = gw.mock.requests().await;
    let sent = &up[1]["body"];
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert_eq!(
        sent["messages"],
        json!([
            { "role": "user", "content": "weather?" },
            { "role": "assistant", "content": "Checking.", "tool_calls": [{ "id": "call_mock_1", "type": "function",
                "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } }] },
            { "role": "tool", "tool_call_id": "call_mock_1", "content": "sunny" }
        ])
    );
    gw.settled(2).await;
    let call = gw.last_call().await;
    assert_eq!(
        (
            &call["surface"],
            &call["upstream_kind"],
            &call["cached_tokens"]
        ),
        (&json!("messages"), &json!("openai-compatible"), &json!(2)),
        "{call}"
    );
    let charged: i64 = gw
        .scalar("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_logs WHERE user_id = $1")
        .await;
    assert!(charged > 0);
    assert_eq!(gw.balance().await, 1_000_000 - charged);
    gw.stop().await;
}

async fn count_tokens_is_exact_through_anthropic_and_estimated_otherwise(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| agents(c, m, "")).await;
    let res = gw
        .messages(
            "/v1/messages/count_tokens",
            json!({ "model": CLAUDE, "messages": ask(), "system": "one two" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-tollgate-token-count"], "exact");
    assert_eq!(
        res.json::<Value>().await.expect("json"),
        json!({ "input_tokens": 5 })
    );
    let up = gw.mock.requests().await;
    assert_eq!(up[0]["path"], "count_tokens");
    assert_eq!(up[0]["model"], CLAUDE_UP);
    // A model no Anthropic channel serves: counted here, and said to be an estimate.
    let res = gw
        .messages(
            "/v1/messages/count_tokens",
            json!({ "model": AGENT, "messages": ask(), "tools": [{ "name": "t", "input_schema": { "type": "object" } }] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-tollgate-token-count"], "estimate");
    let n = res.json::<Value>().await.expect("json")["input_tokens"]
        .as_u64()
        .expect("a count");
    assert!((8..40).contains(&n), "{n}");
    assert_eq!(gw.mock.requests().await.len(), 1, "no upstream call");
    // Free: no usage row, nothing charged.
    assert_eq!(
        gw.scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1")
            .await,
        0
    );
    assert_eq!(gw.balance().await, 1_000_000);
    let res = gw
        .messages(
            "/v1/messages/count_tokens",
            json!({ "model": CLAUDE, "messages": [] }),
        )
        .await;
    assert_eq!(res.status(), 400);
    // Each count is a request against the key's requests per minute.
    let limited = create_key(
        &gw.app,
        json!({ "user_id": gw.user_id, "name": "one a minute", "rpm": 1 }),
    )
    .await["key"]
        .as_str()
        .expect("key")
        .to_string();
    let count = || {
        TestApp::bare_client()
            .post(gw.app.url("/v1/messages/count_tokens"))
            .header("x-api-key", &limited)
            .json(&json!({ "model": AGENT, "messages": ask() }))
            .send()
    };
    assert_eq!(count().await.expect("count").status(), 200);
    let (status, err) = error_of(count().await.expect("count")).await;
    assert_eq!(
        (status, err["error"]["type"].as_str()),
        (429, Some("rate_limit_error"))
    );
    gw.stop().await;
}

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.expect("json error"))
}

async fn the_anthropic_surface_answers_errors_in_its_shape(backend: Backend) {
    // A body limit of 64 KiB stands for the default 10 MiB: a refused body is left unread and
    // its connection closed, which a client still writing megabytes may see before the answer.
    // Never lowered: a bound the balance cannot cover is refused (`gateway::grant` lowers).
    let gw = Gw::start(backend, "1", |c, m| {
        agents(c, m, "");
        c.server.max_body_bytes = 64 * 1024;
        c.billing.min_lowered_max_tokens = u32::MAX;
    })
    .await;
    // No key: Anthropic's authentication error.
    let res = TestApp::bare_client()
        .post(gw.app.url("/v1/messages"))
        .json(&json!({ "model": CLAUDE, "max_tokens": 5, "messages": ask() }))
        .send()
        .await
        .expect("request");
    let (status, body) = error_of(res).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(body["request_id"].is_string());
    // The key as a Bearer token is taken too.
    let res = gw
        .post(
            "/v1/messages",
            json!({ "model": CLAUDE, "max_tokens": 5, "messages": ask() }),
        )
        .await;
    assert_eq!(res.status(), 200);
    for (body, status, kind, says) in [
        (
            json!({ "model": CLAUDE, "messages": ask() }),
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            json!({ "model": CLAUDE, "max_tokens": 5, "messages": "hi" }),
            400,
            "invalid_request_error",
            "messages",
        ),
        (
            json!({ "model": AGENT, "max_tokens": 5, "messages": [{ "role": "user", "content": [{ "type": "video", "url": "x" }] }] }),
            400,
            "invalid_request_error",
            "\"video\"",
        ),
        // An unknown block on the Anthropic channel: the upstream's own refusal, passed on.
        (
            json!({ "model": CLAUDE, "max_tokens": 5, "messages": [{ "role": "user", "content": [{ "type": "video" }] }] }),
            400,
            "invalid_request_error",
            "video",
        ),
        (
            json!({ "model": "no-such-model", "max_tokens": 5, "messages": ask() }),
            404,
            "not_found_error",
            "model",
        ),
        // More than the balance could ever pay for.
        (
            json!({ "model": CLAUDE, "max_tokens": 100_000_000u64, "messages": ask() }),
            402,
            "billing_error",
            "",
        ),
    ] {
        let (got, err) = error_of(gw.messages("/v1/messages", body.clone()).await).await;
        assert_eq!(got, status, "{body} → {err}");
        assert_eq!(err["error"]["type"], kind, "{body} → {err}");
        let message = err["error"]["message"].as_str().expect("a message");
        assert!(message.contains(says), "{message}");
    }
    // Deep JSON, and a body over the limit (a tool result larger than it).
    let deep = format!(
        r#"{{"model":"{CLAUDE}","max_tokens":5,"messages":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let res = TestApp::bare_client()
        .post(gw.app.url("/v1/messages"))
        .header("x-api-key", &gw.key)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("request");
    let (status, err) = error_of(res).await;
    assert_eq!(
        (status, err["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let huge = "x".repeat(100 * 1024);
    let (status, err) = error_of(
        gw.messages(
            "/v1/messages",
            json!({ "model": AGENT, "max_tokens": 5, "messages": [{ "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "t", "content": huge }] }] }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, err["error"]["type"].as_str()),
        (413, Some("request_too_large"))
    );
    // The OpenAI routes keep OpenAI's shape, and refuse a model only Anthropic channels serve.
    let (status, err) = error_of(
        gw.post(
            "/v1/chat/completions",
            json!({ "model": CLAUDE, "messages": hello() }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["param"], "model");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/v1/chat/completions")),
        "{err}"
    );
    // Nothing was charged but the one call served. Every refusal past the key check left its
    // row (eight), the refusals before it (no key, the body limit) none.
    gw.settled(9).await;
    let charged: i64 = gw
        .scalar("SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) FROM usage_logs WHERE user_id = $1")
        .await;
    assert!(charged > 0);
    assert_eq!(gw.balance().await, 1_000_000 - charged);
    assert_eq!(
        gw.scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND cost > 0")
            .await,
        1
    );
    gw.stop().await;
}

async fn cut_messages_streams_end_with_an_error_event_and_are_charged_once(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        agents(c, m, "");
        cut_chat(c, m);
    })
    .await;
    // An Anthropic stream cut by the upstream: what came is relayed, then an error event.
    for (model, mock) in [
        (CLAUDE, json!({ "cut_after": 3 })),
        (CLAUDE, json!({ "error_after": 2 })),
        ("cut-chat", json!({})),
    ] {
        let res = gw
            .messages(
                "/v1/messages",
                json!({ "model": model, "max_tokens": 64, "messages": ask(), "stream": true, "mock": mock }),
            )
            .await;
        assert_eq!(res.status(), 200);
        let events = events(res).await;
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
        assert_eq!(names.last(), Some(&"error"), "{model} {mock}: {names:?}");
        assert_eq!(
            names.iter().filter(|n| **n == "error").count(),
            1,
            "one error event: {names:?}"
        );
        assert!(!names.contains(&"message_stop"));
    }
    gw.settled(3).await;
    let partial = gw
        .scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND usage_source = 'partial' AND error_class = 'upstream_cut' AND cost > 0")
        .await;
    assert_eq!(partial, 3);
    gw.stop().await;
}

/// Claude Code and Codex leave streams all the time (Esc, a new prompt): a burst of Messages
/// and Responses streams, passed through and converted, each left by its client after a few
/// reads. Every upstream call is cancelled, every call leaves one row charged for what it was
/// sent, and the money adds up with nothing held.
async fn a_burst_of_agent_streams_left_by_their_clients_is_charged_exactly(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        one_of_each_kind(
            c,
            m,
            "slow",
            "chunks=200,chunk_delay_ms=20",
            price("3", "15", None),
        );
    })
    .await;
    let calls = [
        ("/v1/messages", "slow-claude"),
        ("/v1/messages", "slow-chat"),
        ("/v1/responses", "slow-gpt"),
        ("/v1/responses", "slow-chat"),
    ];
    const EACH: usize = 6;
    let left = (0..EACH * calls.len()).map(|i| {
        let (path, model) = calls[i % calls.len()];
        let body = if path == "/v1/messages" {
            json!({ "model": model, "max_tokens": 400, "messages": ask(), "stream": true })
        } else {
            json!({ "model": model, "max_output_tokens": 400, "input": "hello there world", "stream": true })
        };
        let req = TestApp::bare_client()
            .post(gw.app.url(path))
            .header("x-api-key", &gw.key)
            .bearer_auth(&gw.key)
            .json(&body);
        async move {
            let res = req.send().await.expect("request");
            assert_eq!(res.status(), 200, "{path} {model}");
            let mut body = Box::pin(res.bytes_stream());
            // Leave after one to four reads.
            for _ in 0..=(i / calls.len()) % 4 {
                body.next().await.expect("a chunk").expect("bytes");
            }
        }
    });
    futures_util::future::join_all(left).await;
    let n = EACH * calls.len();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let up = gw.mock.requests().await;
        let cancelled = up.iter().filter(|r| r["outcome"] == "cancelled").count();
        if cancelled == n {
            assert_eq!(up.len(), n, "one upstream call each");
            break;
        }
        assert!(Instant::now() < deadline, "{cancelled} of {n} cancelled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.settled(n as i64).await;
    assert_eq!(
        gw.scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND error_class = 'client_cancelled' AND usage_source = 'partial' AND cost > 0")
            .await,
        n as i64,
        "each left call charged for what it was sent"
    );
    assert_eq!(
        gw.scalar("SELECT COUNT(DISTINCT surface) FROM usage_logs WHERE user_id = $1")
            .await,
        2
    );
    let charged = gw
        .scalar("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_logs WHERE user_id = $1")
        .await;
    assert_eq!(gw.balance().await, 1_000_000 - charged);
    gw.stop().await;
}

/// A channel's test (the probe's request) speaks its kind's protocol, an embedding model gets an
/// embedding, and a refusal of the request itself shows the channel answering: no circuit opens.
async fn probes_speak_each_channels_protocol(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        agents(c, m, "");
        c.channels
            .push(channel("refusing", m.url("status=400"), &["refused"], 0));
    })
    .await;
    assert_eq!(gw.admin_channel("claude").await["kind"], "anthropic");
    let refusing_id = gw.admin_channel("refusing").await["id"].clone();
    let claude = gw.test_channel("claude", CLAUDE_UP).await;
    assert_eq!(
        (claude["ok"].clone(), claude["status"].clone()),
        (json!(true), json!(200))
    );
    let embed = gw.test_channel("primary", "text-embedding-3-small").await;
    assert_eq!(embed["ok"], true);
    let refused = gw.test_channel("refusing", "refused").await;
    assert_eq!(
        (refused["ok"].clone(), refused["status"].clone()),
        (json!(true), json!(400)),
        "{refused}"
    );
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("mock failure 400"))
    );
    let up = gw.mock.requests().await;
    let paths: Vec<&str> = up.iter().filter_map(|r| r["path"].as_str()).collect();
    assert_eq!(paths, ["messages", "embeddings", "chat"]);
    assert_eq!(up[0]["x_api_key"], "upstream-secret-key");
    // The refusing channel's circuit stayed closed.
    let health: Value = TestApp::bare_client()
        .get(gw.app.url("/api/admin/channels/health"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    let refusing = health
        .as_array()
        .and_then(|a| a.iter().find(|h| h["channel_id"] == refusing_id))
        .expect("its health");
    assert_eq!(refusing["cooldown_ms"], 0, "{refusing}");
    assert_eq!(refusing["failures_in_a_row"], 0, "{refusing}");
    gw.stop().await;
}

/// Each provider's usage read once into the gateway's terms: reasoning (a part of the output)
/// from chat, cache writes of both lifetimes (a part of the input) from Messages; the sums in
/// the daily usage the dashboard draws and in the token metrics.
async fn usage_is_one_normalized_count_on_every_surface(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        agents(c, m, "cache_write=7,cache_write_1h=5")
    })
    .await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "mock": { "reasoning_tokens": 3 } }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["usage"]["completion_tokens"], 9,
        "reasoning is in the output"
    );
    gw.settled(1).await;
    let call = gw.last_call().await;
    for (field, value) in [
        ("completion_tokens", json!(9)),
        ("reasoning_tokens", json!(3)),
        ("cache_write_5m_tokens", json!(0)),
        ("surface", json!("chat")),
        ("upstream_kind", json!("openai-compatible")),
    ] {
        assert_eq!(call[field], value, "{field}: {call}");
    }
    let res = gw
        .messages(
            "/v1/messages",
            json!({ "model": CLAUDE, "max_tokens": 64, "messages": ask(), "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let events = events(res).await;
    lifecycle(&events);
    gw.settled(2).await;
    let call = gw.last_call().await;
    // Input 3 plus 12 written to the cache: 15 prompt tokens.
    for (field, value) in [
        ("prompt_tokens", json!(15)),
        ("cache_write_5m_tokens", json!(7)),
        ("cache_write_1h_tokens", json!(5)),
        ("surface", json!("messages")),
        ("upstream_kind", json!("anthropic")),
    ] {
        assert_eq!(call[field], value, "{field}: {call}");
    }
    // The day's sums, as the dashboard reads them.
    let days = gw.get_json("/api/usage").await;
    let of = |model: &str| {
        days.as_array()
            .expect("days")
            .iter()
            .find(|d| d["model"] == model)
            .unwrap_or_else(|| panic!("{model} in {days:?}"))
            .clone()
    };
    assert_eq!(of("gpt-4o-mini")["reasoning_tokens"], 3);
    assert_eq!(of(CLAUDE)["cache_write_tokens"], 12);
    assert_eq!(
        gw.metric("tollgate_tokens_total{kind=\"reasoning\",model=\"gpt-4o-mini\"}")
            .await,
        3.0
    );
    assert_eq!(
        gw.metric("tollgate_tokens_total{kind=\"cache_write\",model=\"claude-sonnet\"}")
            .await,
        12.0
    );
    gw.stop().await;
}
