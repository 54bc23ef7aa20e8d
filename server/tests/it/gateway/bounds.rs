//! The output bound goes upstream with every call, in the field the channel takes; the
//! switches for what OpenAI-compatible servers get wrong (the bound's field, usage in streams).

use super::*;
use crate::both_backends;

both_backends!(
    every_call_goes_upstream_bounded,
    a_strict_server_is_served_through_its_switches,
    the_switches_are_for_chat_channels_only,
);

async fn every_call_goes_upstream_bounded(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, _| c.billing.default_max_tokens = 300).await;
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true }),
        ),
        (
            "/v1/completions",
            json!({ "model": "gpt-4o-mini", "prompt": "hello there" }),
        ),
    ] {
        let res = gw.post(path, body).await;
        assert_eq!(res.status(), 200, "{path}");
        let _ = res.bytes().await;
    }
    let up = gw.mock.requests().await;
    // Unbounded by the client: the reservation's bound is what the upstream is sent.
    assert_eq!(up[0]["body"]["max_tokens"], 300);
    assert_eq!(up[0]["body"]["stream_options"]["include_usage"], true);
    assert_eq!(up[1]["body"]["max_tokens"], 300);
    // The client's own bound goes as it came.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "max_completion_tokens": 9 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let up = gw.mock.requests().await;
    assert_eq!(
        (
            &up[2]["body"]["max_tokens"],
            up[2]["body"].get("max_completion_tokens")
        ),
        (&json!(9), None),
        "moved to the field a compatible channel takes"
    );
    gw.stop().await;
}

/// A server that refuses `stream_options` and `max_tokens` (as some compatible servers do) fails
/// every stream with its kind's defaults, and serves them with the channel's switches; the
/// gateway then counts the stream's tokens itself.
async fn a_strict_server_is_served_through_its_switches(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        let strict = m.url("refuse_stream_options=1,refuse_max_tokens=1");
        let mut switched = channel("switched", strict.clone(), &["strict"], 0);
        switched.stream_usage = false;
        switched.max_tokens_field = Some(types::BoundField::MaxCompletionTokens);
        c.channels.push(switched);
        c.channels
            .push(channel("defaults", strict, &["strict-defaults"], 0));
        for model in ["strict", "strict-defaults"] {
            c.pricing.insert(
                model.into(),
                PriceConfig {
                    input_per_1m: "1".into(),
                    output_per_1m: "2".into(),
                    cached_input_per_1m: None,
                    per_request: None,
                    ..Default::default()
                },
            );
        }
    })
    .await;
    let ask = |model: &str| {
        json!({ "model": model, "messages": hello(), "stream": true, "max_tokens": 5,
                "stream_options": { "include_usage": true } })
    };
    let res = gw
        .post("/v1/chat/completions", ask("strict-defaults"))
        .await;
    assert_eq!(res.status(), 400, "the server refuses the kind's defaults");
    let res = gw.post("/v1/chat/completions", ask("strict")).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("stream");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    // The client asked for usage, which the channel cannot stream: the gateway's own count, in
    // the usage chunk before `[DONE]`, as OpenAI sends it.
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .collect();
    let usage_chunk: Value = serde_json::from_str(events[events.len() - 2]).expect("json");
    assert_eq!(usage_chunk["choices"], json!([]), "{usage_chunk}");
    assert_eq!(usage_chunk["object"], "chat.completion.chunk");
    assert_eq!(usage_chunk["model"], "strict");
    let first: Value = serde_json::from_str(events[0]).expect("json");
    assert_eq!(usage_chunk["id"], first["id"], "the stream's own id");
    let up = gw.mock.requests().await;
    let sent = &up[1]["body"];
    assert_eq!(sent["max_completion_tokens"], 5);
    assert_eq!(
        (sent.get("max_tokens"), sent.get("stream_options")),
        (None, None)
    );
    gw.settled(2).await;
    let call = gw.last_call().await;
    assert_eq!(
        (&call["usage_source"], &call["status"]),
        (&json!("estimated"), &json!(200)),
        "{call}"
    );
    assert!(
        call["completion_tokens"].as_u64().is_some_and(|n| n > 0),
        "{call}"
    );
    let told = &usage_chunk["usage"];
    assert_eq!(
        (&told["prompt_tokens"], &told["completion_tokens"]),
        (&call["prompt_tokens"], &call["completion_tokens"]),
        "the usage told is the usage charged: {told} {call}"
    );
    let tokens = |v: &Value| v.as_u64().expect("a count");
    assert_eq!(
        tokens(&told["total_tokens"]),
        tokens(&call["prompt_tokens"]) + tokens(&call["completion_tokens"])
    );

    // Messages and Responses streams converted over that channel end with the counted usage
    // (the count charged), not zeros.
    let res = gw
        .post(
            "/v1/messages",
            json!({ "model": "strict", "max_tokens": 5, "stream": true,
                    "messages": [{ "role": "user", "content": "hello there" }] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("stream");
    let delta: Value = text
        .split("\n\n")
        .find(|e| e.starts_with("event: message_delta"))
        .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).expect("json"))
        .unwrap_or_else(|| panic!("a message_delta: {text}"));
    assert!(
        text.trim_end()
            .ends_with(r#"data: {"type":"message_stop"}"#),
        "{text}"
    );
    gw.settled(3).await;
    let call = gw.last_call().await;
    assert_eq!(call["usage_source"], "estimated", "{call}");
    assert_eq!(
        delta["usage"]["output_tokens"], call["completion_tokens"],
        "{delta}"
    );
    assert_eq!(
        delta["usage"]["input_tokens"], call["prompt_tokens"],
        "{delta}"
    );
    assert!(
        call["prompt_tokens"].as_u64().is_some_and(|n| n > 0),
        "{call}"
    );

    let res = gw
        .post(
            "/v1/responses",
            json!({ "model": "strict", "input": "hello there", "instructions": "Be brief.",
                    "max_output_tokens": 50, "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("stream");
    let completed: Value = text
        .split("\n\n")
        .find(|e| e.starts_with("event: response.completed"))
        .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).expect("json"))
        .unwrap_or_else(|| panic!("a response.completed: {text}"));
    gw.settled(4).await;
    let call = gw.last_call().await;
    assert_eq!(call["usage_source"], "estimated", "{call}");
    let usage = &completed["response"]["usage"];
    assert_eq!(usage["output_tokens"], call["completion_tokens"], "{usage}");
    assert_eq!(usage["input_tokens"], call["prompt_tokens"], "{usage}");
    gw.stop().await;
}

async fn the_switches_are_for_chat_channels_only(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    for (kind, field, value) in [
        ("anthropic", "stream_usage", json!(false)),
        ("gemini", "max_tokens_field", json!("max_tokens")),
        ("openai-compatible", "max_tokens_field", json!("max_output")),
    ] {
        let mut body = json!({ "name": format!("c-{kind}"), "kind": kind,
                               "base_url": gw.mock.url(""), "models": ["m"] });
        body[field] = value;
        let res = TestApp::bare_client()
            .post(gw.app.url("/api/admin/channels"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("create");
        let status = res.status().as_u16();
        let err: Value = res.json().await.expect("json");
        if kind == "openai-compatible" {
            // Not one of the closed set: refused by the JSON reading, which names the field in
            // its message.
            assert_eq!(status, 400, "{err}");
            assert!(
                err["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("max_tokens_field")),
                "{err}"
            );
        } else {
            assert_eq!(
                (status, &err["error"]["param"]),
                (400, &json!(field)),
                "{err}"
            );
        }
    }
    gw.stop().await;
}
