//! Business metrics on `/metrics`: calls, tokens, cost, latency, fallbacks, refusals, open
//! streams and grants, circuit state; labels bounded by the catalog whatever clients send.

use super::Gw;
use crate::common::*;
use serde_json::json;

async fn metrics_text(gw: &Gw) -> String {
    reqwest::get(gw.app.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

async fn calls_and_tokens_are_counted_with_bounded_labels(backend: Backend) {
    let gw = Gw::start(backend, "10", |_, _| {}).await;
    for _ in 0..3 {
        let res = gw
            .post(
                "/v1/chat/completions",
                json!({ "model": "gpt-4o-mini", "max_tokens": 5,
                        "messages": [{ "role": "user", "content": "one two three" }] }),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    // 1,000 calls naming models nobody serves, each name new.
    let junk: Vec<String> = (0..1000)
        .map(|i| format!("junk-{i}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    for chunk in junk.chunks(50) {
        let calls = chunk.iter().map(|m| {
            gw.post(
                "/v1/chat/completions",
                json!({ "model": m, "messages": [{ "role": "user", "content": "x" }] }),
            )
        });
        for res in futures_util::future::join_all(calls).await {
            assert_eq!(res.status(), 404);
        }
    }
    gw.settled(1003).await;
    let text = metrics_text(&gw).await;
    assert!(
        !text.contains("junk-"),
        "a client's model name became a label"
    );
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert!(series < 400, "{series} series");
    assert_eq!(
        gw.metric(
            "tollgate_calls_total{channel=\"primary\",kind=\"openai-compatible\",\
             model=\"gpt-4o-mini\",status=\"2xx\",surface=\"chat\"}"
        )
        .await,
        3.0
    );
    assert_eq!(
        gw.metric(
            "tollgate_calls_total{channel=\"none\",kind=\"none\",model=\"other\",\
             status=\"4xx\",surface=\"chat\"}"
        )
        .await,
        1000.0
    );
    // The mock's usage: prompt tokens = words of the input, completion = chunks.
    let completion = gw
        .metric("tollgate_tokens_total{kind=\"completion\",model=\"gpt-4o-mini\"}")
        .await;
    assert!(completion >= 3.0, "{completion}");
    let prompt = gw
        .metric("tollgate_tokens_total{kind=\"prompt\",model=\"gpt-4o-mini\"}")
        .await;
    assert!(prompt >= 9.0, "{prompt}");
    let cost = gw
        .metric("tollgate_cost_units_total{model=\"gpt-4o-mini\"}")
        .await;
    let charged = gw
        .scalar("SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) FROM usage_logs WHERE user_id = $1")
        .await;
    assert_eq!(cost as i64, charged, "the cost counter is what was charged");
    assert_eq!(
        gw.metric("tollgate_call_duration_seconds_count{model=\"gpt-4o-mini\"}")
            .await,
        3.0
    );
    assert_eq!(gw.metric("tollgate_open_streams").await, 0.0);
    assert_eq!(gw.metric("tollgate_usage_queue_depth").await, 0.0);
    assert_eq!(
        gw.metric("tollgate_channel_circuit_open{channel=\"primary\"}")
            .await,
        0.0
    );
    gw.app.stop().await;
}

/// A call beyond the balance is a refusal, counted by reason; a fallback is counted.
async fn refusals_and_fallbacks_are_counted(backend: Backend) {
    let gw = Gw::start(backend, "0.000001", |c, mock| {
        c.channels.insert(
            0,
            super::channel("broken", mock.url("status=503"), &["gpt-4o-mini"], 10),
        );
    })
    .await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "max_tokens": 4000,
                    "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(
        res.status(),
        402,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert_eq!(
        gw.metric("tollgate_refusals_total{reason=\"insufficient_balance\"}")
            .await,
        1.0
    );
    super::credit(&gw.app, gw.user_id, "5").await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "max_tokens": 5,
                    "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        gw.metric("tollgate_fallbacks_total{model=\"gpt-4o-mini\"}")
            .await,
        1.0
    );
    assert_eq!(
        gw.metric(
            "tollgate_calls_total{channel=\"primary\",kind=\"openai-compatible\",\
             model=\"gpt-4o-mini\",status=\"2xx\",surface=\"chat\"}"
        )
        .await,
        1.0
    );
    gw.app.stop().await;
}

crate::both_backends!(
    calls_and_tokens_are_counted_with_bounded_labels,
    refusals_and_fallbacks_are_counted,
);
