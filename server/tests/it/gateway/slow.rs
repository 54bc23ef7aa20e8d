//! Slow answers are not failures: a non-stream call waits for its channel's answer timeout, not
//! a stream's first-byte timeout; a long answer that keeps coming is never cut by a deadline on
//! the whole; and a request an upstream took is not sent to another channel (it may be
//! generating, and billing, already) unless the operator asks for it.

use super::*;
use crate::both_backends;

both_backends!(
    a_slow_answer_is_waited_for_and_paid_once,
    a_request_the_upstream_took_is_sent_again_only_when_asked,
    a_long_answer_that_keeps_coming_is_read_whole,
);

/// The primary channel answers after `directives`, with a stream's first byte due in 300 ms;
/// a backup channel for the same model comes after it.
fn slow_primary(c: &mut Config, mock: &Mock, directives: &str) {
    c.channels[0] = channel("primary", mock.url(directives), &["gpt-4o-mini"], 0);
    c.channels[0].first_byte_timeout_ms = 300;
    c.channels
        .push(channel("backup", mock.url(""), &["gpt-4o-mini"], -1));
}

async fn attempts_of_last_call(gw: &Gw) -> i64 {
    gw.scalar("SELECT attempts FROM usage_logs WHERE user_id = $1 ORDER BY id DESC LIMIT 1")
        .await
}

async fn a_slow_answer_is_waited_for_and_paid_once(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| slow_primary(c, m, "delay_ms=1500")).await;
    // Not streamed: the answer comes when it is whole, after 1.5 s, within the answer timeout.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello() }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let prefixes: Vec<Value> = gw
        .mock
        .requests()
        .await
        .iter()
        .map(|r| r["prefix"].clone())
        .collect();
    assert_eq!(prefixes, [json!("delay_ms=1500")], "one upstream call");
    gw.settled(1).await;
    assert_eq!(gw.balance().await, 1_000_000 - HELLO_COST, "paid once");
    assert_eq!(attempts_of_last_call(&gw).await, 1);

    // Streamed: no first byte in 300 ms is a timeout, and the upstream that took the request is
    // not doubled by the backup.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 504);
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"]["code"], "gateway_timeout", "{err}");
    assert_eq!(
        gw.mock.requests().await.len(),
        2,
        "the backup was not called"
    );
    gw.settled(2).await;
    assert_eq!(gw.balance().await, 1_000_000 - HELLO_COST, "nothing more");
    assert_eq!(attempts_of_last_call(&gw).await, 1);
    assert_eq!(
        gw.metric(r#"tollgate_upstream_attempts_total{channel="primary",outcome="timeout"}"#)
            .await,
        1.0
    );
    gw.stop().await;
}

async fn a_request_the_upstream_took_is_sent_again_only_when_asked(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        slow_primary(c, m, "delay_ms=1500");
        c.gateway.retry_after_send = true;
    })
    .await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let _ = res.bytes().await;
    let prefixes: Vec<Value> = gw
        .mock
        .requests()
        .await
        .iter()
        .map(|r| r["prefix"].clone())
        .collect();
    assert_eq!(
        prefixes,
        [json!("delay_ms=1500"), json!("")],
        "then the backup"
    );
    gw.settled(1).await;
    assert_eq!(gw.balance().await, 1_000_000 - HELLO_COST, "paid once");
    assert_eq!(attempts_of_last_call(&gw).await, 2);
    gw.stop().await;
}

/// The idle timeout is between pieces, not on the whole; the answer timeout is to its beginning.
async fn a_long_answer_that_keeps_coming_is_read_whole(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        // (model, directives, idle timeout, answer timeout), each on a channel of its own.
        for (model, directives, idle, answer) in [
            ("trickling", "trickle_ms=300", 500, 5_000),
            ("silent", "trickle_ms=1500", 500, 5_000),
            ("impatient", "delay_ms=1500", 5_000, 300),
        ] {
            let mut ch = channel(model, m.url(directives), &[model], 0);
            (ch.idle_timeout_ms, ch.answer_timeout_ms) = (idle, answer);
            c.channels.push(ch);
            c.pricing.insert(
                model.into(),
                PriceConfig {
                    input_per_1m: "0.15".into(),
                    output_per_1m: "0.60".into(),
                    cached_input_per_1m: None,
                    per_request: None,
                    ..Default::default()
                },
            );
        }
    })
    .await;
    // Four pieces 300 ms apart: 900 ms in all, longer than the idle timeout, never idle as long.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "trickling", "messages": hello() }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
    gw.settled(1).await;
    assert_eq!(gw.balance().await, 1_000_000 - HELLO_COST);
    // Silent for 1.5 s between pieces: the answer stopped, and costs nothing.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "silent", "messages": hello() }),
        )
        .await;
    assert_eq!(res.status(), 504);
    gw.settled(2).await;
    assert_eq!(gw.balance().await, 1_000_000 - HELLO_COST);
    // An answer that does not begin within the channel's answer timeout is a timeout.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "impatient", "messages": hello() }),
        )
        .await;
    assert_eq!(res.status(), 504);
    gw.settled(3).await;
    assert_eq!(gw.balance().await, 1_000_000 - HELLO_COST);
    gw.stop().await;
}

/// The issue's case, with the shipped defaults: a non-stream answer that comes after 90 s (past
/// a stream's 60 s first-byte timeout and the 120 s budget's share of it) is served by its one
/// upstream call and paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_after_ninety_seconds_is_served_once() {
    let gw = Gw::start(Backend::Sqlite, "1", |c, m| {
        let defaults: ChannelConfig = serde_json::from_value(json!({
            "name": "primary", "base_url": m.url("delay_ms=90000"), "models": ["gpt-4o-mini"] }))
        .expect("a channel");
        c.channels = vec![defaults, channel("backup", m.url(""), &["gpt-4o-mini"], -1)];
        c.gateway = Default::default();
    })
    .await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello() }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(gw.mock.requests().await.len(), 1, "one upstream call");
    gw.settled(1).await;
    assert_eq!(gw.balance().await, 1_000_000 - HELLO_COST, "paid once");
    gw.stop().await;
}
