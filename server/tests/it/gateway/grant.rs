//! No call is served beyond what its grant covers: a bound the balance cannot cover is lowered
//! to what it covers (and the answer says so), and an upstream that ignores the bound it is sent
//! is ended at it (a stream) or charged only for it (an answer).

use super::agents::{AGENT, CLAUDE};
use super::codex::{CODEX, codex};
use super::*;
use crate::both_backends;

both_backends!(
    fifty_unbounded_calls_on_a_balance_for_five_are_served_within_it,
    a_bound_the_balance_cannot_cover_is_lowered_on_every_surface,
    an_upstream_past_its_bound_is_ended_there_on_every_surface,
);

const LOWERED: &str = "x-tollgate-max-tokens-lowered";

/// A channel that ignores the bound it is sent (400 tokens whatever it is asked), serving the
/// model `wild` at one unit per output token and nothing for input; 100 tokens reserved for a
/// call that names no bound, lowered down to 10.
fn wild(c: &mut Config, m: &Mock) {
    c.billing.default_max_tokens = 100;
    c.billing.min_lowered_max_tokens = 10;
    c.channels.push(channel(
        "ignorer",
        m.url("ignore_bound=1,chunks=400"),
        &["wild"],
        0,
    ));
    c.pricing.insert("wild".into(), price("0", "1", None));
}

/// One call of the burst: its status, the lowered bound it was told of, and for a stream the
/// pieces of text it received (a token each) and its last finish reason.
async fn unbounded(gw: &Gw, stream: bool) -> (u16, Option<u64>, usize, Option<String>) {
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "wild", "messages": hello(), "stream": stream }),
        )
        .await;
    let status = res.status().as_u16();
    let lowered = res
        .headers()
        .get(LOWERED)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    if status != 200 || !stream {
        let _ = res.bytes().await;
        return (status, lowered, 0, None);
    }
    let text = res.text().await.expect("stream");
    let mut words = 0;
    let mut finish = None;
    let mut done = false;
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(data).expect("a chunk");
        if chunk["choices"][0]["delta"]["content"].is_string() {
            words += 1; // the mock's pieces are a token each
        }
        if let Some(f) = chunk["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    assert!(done, "the stream ends as a stream does: {text}");
    (status, lowered, words, finish)
}

/// Measured on main before this: 50 concurrent calls without `max_tokens` on a balance worth
/// 10,000 output tokens were served 20,000, and the rest went uncollected. Here the balance
/// covers five calls and a half: five are served their 100 tokens, one is lowered to the 50 that
/// are left, the rest are refused; the upstream's excess is never charged nor collected.
async fn fifty_unbounded_calls_on_a_balance_for_five_are_served_within_it(backend: Backend) {
    let gw = Gw::start(backend, "0.00055", wild).await;
    let calls = (0..50).map(|i| unbounded(&gw, i % 2 == 0));
    let results = futures_util::future::join_all(calls).await;
    let served: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    let refused = results.iter().filter(|r| r.0 == 402).count();
    assert_eq!((served.len(), refused), (6, 44), "{results:?}");
    let lowered: Vec<u64> = served.iter().filter_map(|r| r.1).collect();
    assert_eq!(lowered, [50], "one call lowered to what was left");
    for (_, bound, pieces, finish) in served.iter().filter(|r| r.3.is_some()) {
        let bound = bound.unwrap_or(100) as usize;
        assert_eq!(finish.as_deref(), Some("length"), "ended at the bound");
        // An eighth over the bound for tokenizers that differ, and the last step between two
        // counts (see the README).
        assert!(
            (bound..=bound + bound / 8 + 10).contains(pieces),
            "{pieces} tokens for a bound of {bound}"
        );
    }
    // Every call went upstream with the bound it paid for.
    let up = gw.mock.requests().await;
    let mut sent: Vec<u64> = up
        .iter()
        .map(|r| r["body"]["max_tokens"].as_u64().expect("a bound"))
        .collect();
    sent.sort_unstable();
    assert_eq!(sent, [50, 100, 100, 100, 100, 100]);
    gw.settled(50).await;
    assert_eq!(gw.balance().await, 0, "the whole balance, and no more");
    assert_eq!(
        gw.scalar("SELECT CAST(SUM(completion_tokens) AS BIGINT) FROM usage_logs WHERE user_id = $1 AND error_class = 'upstream_over_bound'")
            .await,
        550,
        "charged for the bounds"
    );
    assert_eq!(
        gw.metric("tollgate_credit_uncollected_units_total").await,
        0.0
    );
    assert_eq!(
        gw.metric("tollgate_upstream_bound_ignored_total{channel=\"ignorer\"}")
            .await,
        6.0
    );
    gw.stop().await;
}

/// The same on each route: the bound is lowered to what the balance covers, sent upstream in the
/// route's field, and named in the answer's header; below `billing.min_lowered_max_tokens` the
/// call is refused as before.
async fn a_bound_the_balance_cannot_cover_is_lowered_on_every_surface(backend: Backend) {
    let gw = Gw::start(backend, "0.01", |c, m| codex(c, m, "")).await;
    let cases = [
        (
            "/v1/messages",
            json!({ "model": CLAUDE, "max_tokens": 100_000, "messages": [{ "role": "user", "content": "hi" }] }),
            "max_tokens",
        ),
        (
            "/v1/messages",
            json!({ "model": AGENT, "max_tokens": 100_000, "messages": [{ "role": "user", "content": "hi" }], "stream": true }),
            "max_tokens",
        ),
        (
            "/v1/responses",
            json!({ "model": CODEX, "max_output_tokens": 100_000, "input": "hi" }),
            "max_output_tokens",
        ),
        (
            "/v1/chat/completions",
            json!({ "model": AGENT, "max_tokens": 100_000, "messages": hello() }),
            "max_tokens",
        ),
    ];
    for (i, (path, body, field)) in cases.into_iter().enumerate() {
        let res = if path == "/v1/messages" {
            gw.messages(path, body.clone()).await
        } else {
            gw.post(path, body.clone()).await
        };
        assert_eq!(res.status(), 200, "{path} {body}");
        let lowered: u64 = res
            .headers()
            .get(LOWERED)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or_else(|| panic!("{path}: lowered"));
        assert!((256..100_000).contains(&lowered), "{path}: {lowered}");
        let _ = res.bytes().await;
        let up = gw.mock.requests().await;
        assert_eq!(up.len(), i + 1);
        assert_eq!(up[i]["body"][field], lowered, "{path}: {}", up[i]["body"]);
    }
    // A call whose own bound is covered is not lowered.
    let res = gw
        .messages(
            "/v1/messages",
            json!({ "model": CLAUDE, "max_tokens": 50, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get(LOWERED).is_none());
    let _ = res.bytes().await;
    gw.settled(5).await;
    gw.stop().await;

    // 1,000 units cover fewer than 256 of Claude's output tokens (15 units each): refused.
    let gw = Gw::start(backend, "0.001", |c, m| codex(c, m, "")).await;
    let res = gw
        .messages(
            "/v1/messages",
            json!({ "model": CLAUDE, "max_tokens": 1000, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(res.status(), 402);
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"]["type"], "billing_error");
    assert!(gw.mock.requests().await.is_empty());
    gw.settled(1).await;
    assert_eq!(gw.balance().await, 1000);
    gw.stop().await;
}

/// Streams of every route from upstreams of every protocol that ignore the bound (400 tokens for
/// 20 asked): each ends at the bound in its own protocol's terms, charged for the bound.
async fn an_upstream_past_its_bound_is_ended_there_on_every_surface(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, m| {
        one_of_each_kind(
            c,
            m,
            "wild",
            "ignore_bound=1,chunks=400",
            price("0", "1", None),
        );
    })
    .await;
    let ask = json!([{ "role": "user", "content": "hi" }]);
    let cases = [
        ("/v1/messages", "wild-claude", "message_stop"),
        ("/v1/messages", "wild-chat", "message_stop"),
        ("/v1/responses", "wild-gpt", "response.incomplete"),
        ("/v1/responses", "wild-chat", "response.incomplete"),
        ("/v1/chat/completions", "wild-chat", "[DONE]"),
    ];
    for (path, model, last) in cases {
        let body = match path {
            "/v1/messages" => {
                json!({ "model": model, "max_tokens": 20, "messages": ask, "stream": true })
            }
            "/v1/responses" => {
                json!({ "model": model, "max_output_tokens": 20, "input": "hi", "stream": true })
            }
            _ => json!({ "model": model, "max_tokens": 20, "messages": ask, "stream": true }),
        };
        let res = if path == "/v1/messages" {
            gw.messages(path, body).await
        } else {
            gw.post(path, body).await
        };
        assert_eq!(res.status(), 200, "{path} {model}");
        let text = res.text().await.expect("stream");
        let events: Vec<&str> = text
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .collect();
        let end = events.last().expect("events");
        assert!(end.contains(last), "{path} {model}: {end}");
        match last {
            "message_stop" => {
                let delta = events[events.len() - 2];
                assert!(
                    delta.contains("\"stop_reason\":\"max_tokens\""),
                    "{model}: {delta}"
                );
            }
            "response.incomplete" => {
                assert!(end.contains("max_output_tokens"), "{model}: {end}");
            }
            _ => {
                let finish = events[events.len() - 2];
                assert!(finish.contains("\"finish_reason\":\"length\""), "{finish}");
            }
        }
        // The bound and at most an eighth more reached the client (by the gateway's count; the
        // mock's pieces are about a token each, one to an event).
        let pieces = events
            .iter()
            .filter(|e| {
                [
                    "\"text_delta\"",
                    "response.output_text.delta",
                    "\"content\":\"",
                ]
                .iter()
                .any(|m| e.contains(m))
                    && !e.contains("\"content\":\"\"")
            })
            .count();
        assert!(
            (20..=30).contains(&pieces),
            "{path} {model}: {pieces} pieces"
        );
    }
    // And answers past their bound are cut to it, and charged for it.
    let res = gw
        .messages(
            "/v1/messages",
            json!({ "model": "wild-claude", "max_tokens": 20, "messages": ask }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["stop_reason"], "max_tokens", "{answer}");
    let words = answer["content"][0]["text"]
        .as_str()
        .expect("text")
        .split_whitespace()
        .count();
    assert!((14..=20).contains(&words), "{words} words: {answer}");
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "wild-chat", "max_tokens": 20, "messages": ask }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["choices"][0]["finish_reason"], "length", "{answer}");
    gw.settled(7).await;
    assert_eq!(
        gw.scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND error_class = 'upstream_over_bound' AND completion_tokens = 20 AND cost = 20")
            .await,
        7
    );
    assert_eq!(gw.balance().await, 1_000_000 - 7 * 20);
    assert_eq!(
        gw.metric("tollgate_credit_uncollected_units_total").await,
        0.0
    );
    gw.stop().await;
}

/// The same burst spread over two instances sharing one PostgreSQL database: each lowers or
/// refuses by what the database and its own grant still hold, and together they serve no more
/// than the balance, with nothing uncollected on either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_serve_unbounded_calls_within_the_balance() {
    let gw = Gw::start(Backend::Postgres, "0.00055", wild).await;
    let mock = gw.mock.url("ignore_bound=1,chunks=400");
    let other = TestApp::spawn_on(gw.app.storage.clone(), |c| {
        c.billing.report_interval_ms = 50;
        c.billing.idle_close_ms = 100;
        c.billing.default_max_tokens = 100;
        c.billing.min_lowered_max_tokens = 10;
        c.channels = vec![channel("ignorer", mock, &["wild"], 0)];
        c.pricing.insert("wild".into(), price("0", "1", None));
    })
    .await;
    let client = TestApp::bare_client();
    let calls = (0..50).map(|i| {
        let url = if i % 2 == 0 {
            gw.app.url("/v1/chat/completions")
        } else {
            other.url("/v1/chat/completions")
        };
        let req = client
            .post(url)
            .bearer_auth(&gw.key)
            .json(&json!({ "model": "wild", "messages": hello(), "stream": i % 4 < 2 }));
        async move {
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            let _ = res.bytes().await;
            status
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 402),
        "{statuses:?}"
    );
    let served = statuses.iter().filter(|s| **s == 200).count() as i64;
    assert!(served >= 1, "{statuses:?}");
    for r in gw.mock.requests().await {
        let sent = r["body"]["max_tokens"].as_u64().expect("a bound");
        assert!((10..=100).contains(&sent), "{sent}");
    }
    other.shutdown().await;
    gw.settled(50).await;
    let charged = gw
        .scalar("SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) FROM usage_logs WHERE user_id = $1")
        .await;
    assert_eq!(charged + gw.balance().await, 550);
    assert_eq!(
        gw.scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND cost > 0 AND cost > completion_tokens")
            .await,
        0,
        "each charged for its bound at most"
    );
    assert_eq!(
        gw.metric("tollgate_credit_uncollected_units_total").await,
        0.0
    );
    gw.stop().await;
}
