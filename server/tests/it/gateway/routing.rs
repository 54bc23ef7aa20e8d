//! Routing: weighted choice within a priority, session affinity, the circuit breaker's cycle (open after
//! `failure_threshold` failures in a row, half-open after the cooldown, closed on a success),
//! `/v1/completions` (plain and streamed) charged like chat, and channels kept to user groups.

use super::*;
use crate::both_backends;

both_backends!(
    weights_share_the_calls_within_a_priority,
    a_session_stays_on_one_channel_on_every_surface,
    the_circuit_opens_half_opens_and_closes,
    legacy_completions_are_relayed_and_charged,
    a_channel_serves_only_the_groups_it_names,
);

/// Which channel served each request the mock saw: its path prefix (the directives in its
/// base URL), in order.
async fn prefixes(mock: &Mock) -> Vec<String> {
    mock.requests()
        .await
        .iter()
        .map(|r| r["prefix"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn flat() -> Value {
    json!({ "model": "flat", "messages": [{ "role": "user", "content": "x" }], "max_tokens": 1 })
}

/// Two channels of one priority weighted 1 and 3 share the calls about 1:3; a channel of a
/// higher priority, while healthy, takes every call.
async fn weights_share_the_calls_within_a_priority(backend: Backend) {
    let gw = Gw::start(backend, "10", |c, mock| {
        c.channels = vec![
            channel("light", mock.url("delay_ms=0"), &["flat"], 0),
            channel("heavy", mock.url("delay_ms=1"), &["flat"], 0),
        ];
        c.channels[1].weight = 3;
    })
    .await;
    for _ in 0..400 {
        assert_eq!(gw.post("/v1/chat/completions", flat()).await.status(), 200);
    }
    let seen = prefixes(&gw.mock).await;
    let heavy = seen.iter().filter(|p| *p == "delay_ms=1").count();
    assert_eq!(seen.len(), 400);
    // 300 expected; 5 standard deviations (about 43) either side.
    assert!((257..=343).contains(&heavy), "heavy served {heavy} of 400");
    gw.stop().await;

    let gw = Gw::start(backend, "10", |c, mock| {
        c.channels = vec![
            channel("backup", mock.url("delay_ms=0"), &["flat"], 0),
            channel("first", mock.url("delay_ms=1"), &["flat"], 5),
        ];
        c.channels[0].weight = 100;
    })
    .await;
    for _ in 0..50 {
        assert_eq!(gw.post("/v1/chat/completions", flat()).await.status(), 200);
    }
    assert!(prefixes(&gw.mock).await.iter().all(|p| p == "delay_ms=1"));
    gw.stop().await;
}

/// Calls of one session (a chat `user`, a Messages `metadata.user_id`, a Responses
/// `prompt_cache_key`) go to one channel among equals, every time; sessions spread over them.
async fn a_session_stays_on_one_channel_on_every_surface(backend: Backend) {
    let gw = Gw::start(backend, "10", |c, mock| {
        c.channels = vec![
            channel("a", mock.url("delay_ms=0"), &["flat"], 0),
            channel("b", mock.url("delay_ms=1"), &["flat"], 0),
            channel("c", mock.url("delay_ms=2"), &["flat"], 0),
        ];
    })
    .await;
    let ask = json!([{ "role": "user", "content": "x" }]);
    for n in 0..12 {
        let session = format!("session-{n}");
        for (path, body) in [
            (
                "/v1/chat/completions",
                json!({ "model": "flat", "messages": ask, "max_tokens": 1, "user": session }),
            ),
            (
                "/v1/messages",
                json!({ "model": "flat", "messages": ask, "max_tokens": 1, "metadata": { "user_id": session } }),
            ),
            (
                "/v1/responses",
                json!({ "model": "flat", "input": "x", "max_output_tokens": 1, "prompt_cache_key": session }),
            ),
        ] {
            assert_eq!(gw.post(path, body).await.status(), 200, "{path}");
        }
    }
    let seen = prefixes(&gw.mock).await;
    assert_eq!(seen.len(), 36);
    let mut used = std::collections::HashSet::new();
    for calls in seen.chunks(3) {
        assert!(
            calls.iter().all(|p| *p == calls[0]),
            "one session, one channel: {calls:?}"
        );
        used.insert(calls[0].clone());
    }
    assert!(used.len() >= 2, "12 sessions on one channel: {used:?}");
    gw.stop().await;
}

/// A failing channel of the higher priority: after 2 failures in a row (the threshold) its
/// circuit opens and calls skip it; after the cooldown one call tries it again (half-open);
/// a success closes it, and it then takes 2 failures again to open.
async fn the_circuit_opens_half_opens_and_closes(backend: Backend) {
    let gw = Gw::start(backend, "10", |c, mock| {
        c.gateway.failure_threshold = 2;
        c.gateway.cooldown_seconds = 1;
        c.channels = vec![
            channel("flaky", mock.url("status=500"), &["flat"], 5),
            channel("steady", mock.url("delay_ms=0"), &["flat"], 0),
        ];
    })
    .await;
    let flaky = "status=500";
    let call = |body: Value| async { gw.post("/v1/chat/completions", body).await.status() };
    // Closed: each call tries the flaky channel first, then falls back.
    assert_eq!(call(flat()).await, 200);
    assert_eq!(call(flat()).await, 200);
    let seen = prefixes(&gw.mock).await;
    assert_eq!(seen, vec![flaky, "delay_ms=0", flaky, "delay_ms=0"]);
    // Open: the flaky channel is skipped.
    for _ in 0..3 {
        assert_eq!(call(flat()).await, 200);
    }
    let seen = prefixes(&gw.mock).await;
    assert_eq!(seen.iter().filter(|p| *p == flaky).count(), 2, "{seen:?}");
    // Half-open after the cooldown: the next call tries it; it succeeds (the request overrides
    // the channel's failure) and closes the circuit.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut healed = flat();
    healed["mock"] = json!({ "status": 0 });
    assert_eq!(call(healed).await, 200);
    let seen = prefixes(&gw.mock).await;
    assert_eq!(seen.last().map(String::as_str), Some(flaky), "{seen:?}");
    assert_eq!(seen.len(), 8);
    // Closed again: one failure does not open it, the second does.
    assert_eq!(call(flat()).await, 200);
    assert_eq!(call(flat()).await, 200);
    assert_eq!(call(flat()).await, 200);
    let seen = prefixes(&gw.mock).await;
    assert_eq!(
        seen[8..].to_vec(),
        vec![flaky, "delay_ms=0", flaky, "delay_ms=0", "delay_ms=0"],
        "{seen:?}"
    );
    gw.settled(9).await;
    gw.stop().await;
}

/// `/v1/completions`: the prompt relayed with the model swapped, the answer's usage charged,
/// and a stream relayed as events and charged from its usage.
async fn legacy_completions_are_relayed_and_charged(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, _| {
        c.model_mapping
            .insert("instruct".into(), vec!["gpt-4o-mini".into()]);
    })
    .await;
    let res = gw
        .post(
            "/v1/completions",
            json!({ "model": "instruct", "prompt": "one two three four", "max_tokens": 10 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"], "Hello from the mock upstream.");
    assert_eq!(body["usage"]["prompt_tokens"], 4);
    let sent = gw.mock.requests().await;
    assert_eq!(sent[0]["path"], "completions");
    assert_eq!(
        sent[0]["model"], "gpt-4o-mini",
        "the mapping's upstream name"
    );
    gw.settled(1).await;
    let (cost, source, _, prompt, completion) = gw.last_usage().await;
    assert_eq!((source.as_str(), prompt, completion), ("upstream", 4, 6));
    // 4 x 0.15 + 6 x 0.60 per 1M tokens, rounded up to a unit.
    assert_eq!(cost, 5);

    let res = gw
        .post(
            "/v1/completions",
            json!({ "model": "instruct", "prompt": "one two", "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text = res.text().await.expect("events");
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(text.contains("\"text\""), "{text}");
    gw.settled(2).await;
    let (cost, _, class, prompt, completion) = gw.last_usage().await;
    assert_eq!(class, None);
    assert_eq!((prompt, completion), (2, 6));
    assert!(cost > 0);
    gw.stop().await;
}

/// A channel naming groups serves only their users' keys: another group's calls go to the
/// channels open to every group, a model only such a channel serves is not found for them (nor
/// listed, nor priced), and the change of a user's group or of the channel's groups applies at
/// the next call. The admin API takes and shows `groups`, and refuses a bad name.
async fn a_channel_serves_only_the_groups_it_names(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, mock| {
        let mut line = channel("vip-line", mock.url("delay_ms=1"), &["gpt-4o-mini"], 5);
        line.groups = vec!["vip".into()];
        let mut only = channel("vip-only", mock.url("delay_ms=2"), &["premium"], 0);
        only.groups = vec!["vip".into(), "team".into()];
        c.channels.extend([line, only]);
        c.pricing.insert(
            "premium".into(),
            PriceConfig {
                input_per_1m: "1".into(),
                output_per_1m: "1".into(),
                ..Default::default()
            },
        );
    })
    .await;
    let chat = |model: &str| json!({ "model": model, "messages": [{ "role": "user", "content": "x" }], "max_tokens": 2 });

    // The user is in the default group: the vip channels are not theirs.
    let res = gw.post("/v1/chat/completions", chat("premium")).await;
    assert_eq!(
        res.status(),
        404,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert_eq!(
        gw.post("/v1/chat/completions", chat("gpt-4o-mini"))
            .await
            .status(),
        200
    );
    assert_eq!(
        prefixes(&gw.mock).await,
        [""],
        "the open channel, not vip-line"
    );
    assert!(!gw.model_ids().await.contains(&"premium".to_string()));
    assert!(gw.model_ids().await.contains(&"gpt-4o-mini".to_string()));
    let pricing = gw.get_json("/api/pricing").await;
    assert!(
        !pricing.to_string().contains("\"premium\""),
        "not priced for the default group: {pricing}"
    );

    // In the vip group: both vip channels serve them, the higher priority first.
    gw.set_group("vip").await;
    let res = gw.post("/v1/chat/completions", chat("premium")).await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert_eq!(
        gw.post("/v1/chat/completions", chat("gpt-4o-mini"))
            .await
            .status(),
        200
    );
    assert_eq!(
        prefixes(&gw.mock).await,
        ["", "delay_ms=2", "delay_ms=1"],
        "premium on vip-only, then gpt-4o-mini on vip-line"
    );
    assert!(gw.model_ids().await.contains(&"premium".to_string()));

    // The admin API shows the groups, takes new ones, and names a bad one.
    let only = gw.admin_channel("vip-only").await;
    assert_eq!(only["groups"], json!(["team", "vip"]));
    let line = gw.admin_channel("vip-line").await;
    let put = |id: &Value, body: Value| {
        let url = gw.app.url(&format!("/api/admin/channels/{id}"));
        async move {
            TestApp::bare_client()
                .put(url)
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("put")
        }
    };
    let mut body = json!({ "name": "vip-line", "base_url": line["base_url"], "models": ["gpt-4o-mini"], "priority": 5 });
    body["groups"] = json!(["vip", "not a group"]);
    let res = put(&line["id"], body.clone()).await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"]["param"], "groups", "{err}");
    body["groups"] = json!(["gold"]);
    assert_eq!(put(&line["id"], body).await.status(), 200);
    assert_eq!(
        gw.admin_channel("vip-line").await["groups"],
        json!(["gold"])
    );
    assert_eq!(
        gw.post("/v1/chat/completions", chat("gpt-4o-mini"))
            .await
            .status(),
        200
    );
    assert_eq!(
        prefixes(&gw.mock).await.last().map(String::as_str),
        Some(""),
        "vip-line is gold's now: the open channel serves vip"
    );
    // Four calls served, and the refused one logged.
    gw.settled(5).await;
    gw.stop().await;
}
