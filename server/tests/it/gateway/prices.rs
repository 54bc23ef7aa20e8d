//! A price for every kind of token and long-context tiers, end to end: set through the admin
//! API, shown by `/api/pricing`, charged exactly by the calls (each kind at its rate, the whole
//! request at a tier's rates above its threshold, the usage row naming the version), and a
//! model's most output tokens sent upstream as the bound of a request that sets none.

use super::agents::{CLAUDE, CLAUDE_UP, agents};
use super::*;
use crate::both_backends;

both_backends!(
    every_kind_is_charged_at_its_rate_and_a_tier_prices_the_whole_request,
    a_models_most_output_is_the_bound_of_a_request_that_sets_none,
);

async fn put_price(gw: &Gw, model: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/admin/prices/{model}");
    let res = gw.app.admin(Method::PUT, &path, Some(body)).await;
    let status = res.status().as_u16();
    (status, res.json().await.expect("json"))
}

async fn admin_get(gw: &Gw, path: &str) -> Value {
    gw.app
        .admin(Method::GET, path, None)
        .await
        .json()
        .await
        .expect("json")
}

/// The price of `model` in a list of prices (null when it has none).
fn of(list: &Value, model: &str) -> Value {
    list.as_array()
        .and_then(|a| a.iter().find(|p| p["model"] == model))
        .cloned()
        .unwrap_or_default()
}

/// Claude's rates ($3 input, $0.30 cache reads, $3.75 and $6 cache writes, $15 output), with a
/// tier above `above` that doubles each.
fn claude(above: u64) -> Value {
    json!({
        "input_per_1m": "3", "output_per_1m": "15", "cached_input_per_1m": "0.30",
        "cache_write_5m_per_1m": "3.75", "cache_write_1h_per_1m": "6",
        "tiers": [{ "above_tokens": above, "input_per_1m": "6", "output_per_1m": "30",
                    "cached_input_per_1m": "0.60", "cache_write_5m_per_1m": "7.50",
                    "cache_write_1h_per_1m": "12" }]
    })
}

async fn every_kind_is_charged_at_its_rate_and_a_tier_prices_the_whole_request(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        // Each Messages call: 3 input tokens, 1,000 cache reads, 60 + 40 cache writes (5 min,
        // 1 h): a context of 1,103 tokens; 6 output tokens.
        agents(c, m, "cached=1000,cache_write=60,cache_write_1h=40");
        c.channels.push(channel(
            "thinker",
            m.url("prompt_tokens=100,reasoning_tokens=30"),
            &["thinker"],
            0,
        ));
    })
    .await;
    let ask = || {
        json!({ "model": CLAUDE, "max_tokens": 64,
                "messages": [{ "role": "user", "content": "hello there world" }] })
    };
    let mut calls = 0;
    // Exactly at the threshold, then one above it, then one below: the base rates, the tier's
    // for the whole request, the base again. Each a new version the usage row names.
    for (above, cost) in [
        // 3 × 3 + 1,000 × 0.30 + 60 × 3.75 + 40 × 6 + 6 × 15 = 9 + 300 + 225 + 240 + 90.
        (1103, 864),
        (1102, 2 * 864),
        (1104, 864),
    ] {
        let (status, price) = put_price(&gw, CLAUDE_UP, claude(above)).await;
        assert_eq!(status, 200, "{price}");
        let res = gw.messages("/v1/messages", ask()).await;
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await;
        calls += 1;
        gw.settled(calls).await;
        let call = gw.last_call().await;
        assert_eq!(call["prompt_tokens"], 1103, "cache included: {call}");
        assert_eq!(
            (&call["cost"], &call["price_version"]),
            (&json!(format!("0.{cost:06}")), &price["version"]),
            "above {above}: {call}"
        );
    }
    assert_eq!(gw.balance().await, 1_000_000 - 4 * 864);

    // Reasoning at its own rate: 100 input at $1, 30 reasoning at $20 and the other 6 output
    // tokens at $2 (the answer's chunks): 100 + 600 + 12.
    let (status, _) = put_price(
        &gw,
        "thinker",
        json!({ "input_per_1m": "1", "output_per_1m": "2", "reasoning_per_1m": "20" }),
    )
    .await;
    assert_eq!(status, 200);
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "thinker", "messages": hello(), "max_tokens": 40 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        30
    );
    calls += 1;
    gw.settled(calls).await;
    let call = gw.last_call().await;
    assert_eq!(
        (&call["reasoning_tokens"], &call["completion_tokens"]),
        (&json!(30), &json!(36))
    );
    assert_eq!(call["cost"], "0.000712", "{call}");

    // The admin API shows the rates as set, `null` where one falls back; the public table
    // every rate as charged, tiers included.
    let admin = admin_get(&gw, "/api/admin/prices").await;
    let thinker = of(&admin, "thinker");
    assert_eq!(thinker["reasoning_per_1m"], "20.00");
    assert_eq!(thinker["cache_write_1h_per_1m"], Value::Null);
    assert_eq!(thinker["tiers"], json!([]));
    let table = gw.get_json("/api/pricing").await;
    let t = of(&table["data"], "thinker");
    assert_eq!(
        (
            &t["reasoning_per_1m"],
            &t["cache_write_1h_per_1m"],
            &t["audio_output_per_1m"],
            &t["max_output_tokens"]
        ),
        (
            &json!("20.00"),
            &json!("1.00"),
            &json!("2.00"),
            &json!(4096)
        )
    );
    let c = of(&table["data"], CLAUDE);
    assert_eq!(c["cache_write_1h_per_1m"], "6.00");
    assert_eq!(c["tiers"][0]["above_tokens"], 1104);
    assert_eq!(c["tiers"][0]["cache_write_1h_per_1m"], "12.00");
    assert_eq!(
        c["tiers"][0]["reasoning_per_1m"], "30.00",
        "falls back within the tier"
    );

    // Bad tiers are refused naming where; nothing changes.
    for (body, reason) in [
        (
            json!({ "input_per_1m": "1", "output_per_1m": "2",
                    "tiers": [{ "input_per_1m": "2", "output_per_1m": "4" }] }),
            "tiers[0].above_tokens",
        ),
        (
            json!({ "input_per_1m": "1", "output_per_1m": "2", "tiers": [
                { "above_tokens": 100, "input_per_1m": "2", "output_per_1m": "4" },
                { "above_tokens": 50, "input_per_1m": "3", "output_per_1m": "6" }] }),
            "tiers[1].above_tokens",
        ),
        (
            json!({ "input_per_1m": "1", "output_per_1m": "2", "tiers": [
                { "above_tokens": 100, "input_per_1m": "2", "output_per_1m": "4", "per_request": "1" }] }),
            "tiers[0].per_request",
        ),
    ] {
        let (status, e) = put_price(&gw, "thinker", body).await;
        assert_eq!(status, 400, "{e}");
        assert_eq!(e["error"]["param"], "tiers", "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(reason)),
            "{e}"
        );
    }
    let (status, e) = put_price(
        &gw,
        "thinker",
        json!({ "input_per_1m": "1", "output_per_1m": "2", "image_output_per_1m": "-1" }),
    )
    .await;
    assert_eq!(
        (status, &e["error"]["param"]),
        (400, &json!("image_output_per_1m"))
    );
    let history = admin_get(&gw, "/api/admin/prices/thinker").await;
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    gw.stop().await;
}

async fn a_models_most_output_is_the_bound_of_a_request_that_sets_none(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, _| c.billing.default_max_tokens = 300).await;
    let ask = |extra: Value| {
        let mut body = json!({ "model": "gpt-4o-mini", "messages": hello() });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    let res = gw.post("/v1/chat/completions", ask(json!({}))).await;
    assert_eq!(res.status(), 200);
    let _ = res.bytes().await;
    let (status, price) = put_price(
        &gw,
        "gpt-4o-mini",
        json!({ "input_per_1m": "0.15", "output_per_1m": "0.60", "max_output_tokens": 1200 }),
    )
    .await;
    assert_eq!(status, 200, "{price}");
    assert_eq!(price["max_output_tokens"], 1200);
    for extra in [
        json!({}),
        json!({ "stream": true }),
        json!({ "max_tokens": 7 }),
    ] {
        let res = gw.post("/v1/chat/completions", ask(extra)).await;
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await;
    }
    let up = gw.mock.requests().await;
    let sent: Vec<&Value> = up.iter().map(|r| &r["body"]["max_tokens"]).collect();
    // The config's default, then the model's own (streamed too), and the client's own bound.
    assert_eq!(sent, [&json!(300), &json!(1200), &json!(1200), &json!(7)]);
    gw.settled(4).await;
    let table = gw.get_json("/api/pricing").await;
    assert_eq!(of(&table["data"], "gpt-4o-mini")["max_output_tokens"], 1200);
    // Zero is no bound.
    let (status, e) = put_price(
        &gw,
        "gpt-4o-mini",
        json!({ "input_per_1m": "0.15", "output_per_1m": "0.60", "max_output_tokens": 0 }),
    )
    .await;
    assert_eq!(
        (status, &e["error"]["param"]),
        (400, &json!("max_output_tokens"))
    );
    gw.stop().await;
}
