//! The gateway core end to end: the real server, the mock upstream as a separate process, real
//! SQLite/PostgreSQL (+ Redis). Assertions cover the HTTP answers and the money in the database.

use crate::both_backends;
use crate::common::*;
use crate::mock::Mock;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use service::config::{ChannelConfig, Config, PriceConfig};
use service::secret::SecretString;
use std::time::{Duration, Instant};

both_backends!(
    chat_is_relayed_and_charged_exactly,
    streams_are_relayed_and_usage_is_hidden_unless_asked,
    omitted_usage_is_estimated,
    a_cut_stream_ends_with_an_error_and_is_charged_partially,
    a_client_disconnect_cancels_the_upstream_and_charges_once,
    a_stream_ended_by_the_drain_deadline_is_charged_before_the_last_report,
    fallback_serves_from_the_next_channel_and_charges_once,
    client_errors_are_not_retried_and_cost_nothing,
    all_channels_down_is_503_and_costs_nothing,
    concurrent_spends_never_overdraw_the_balance,
    a_burst_on_an_idle_account_shares_its_top_ups,
    a_burst_resuming_after_a_pause_starts_from_its_last_rate,
    a_key_spend_cap_is_enforced_like_the_balance,
    bad_requests_get_openai_shaped_errors,
    embeddings_and_models_are_served,
    key_secrets_appear_nowhere_after_creation,
    usage_rows_keep_every_field_and_a_clean_stop_loses_none,
    a_refused_usage_row_does_not_take_its_batch_with_it,
    the_overhead_metric_leaves_out_the_upstream_wait,
);

pub fn channel(name: &str, base_url: String, models: &[&str], priority: i64) -> ChannelConfig {
    ChannelConfig {
        name: name.into(),
        base_url,
        api_key: Some(SecretString::new("upstream-secret-key")),
        models: models.iter().map(|m| m.to_string()).collect(),
        priority,
        weight: 1,
        connect_timeout_ms: 2_000,
        first_byte_timeout_ms: 5_000,
        idle_timeout_ms: 5_000,
        enabled: true,
    }
}

fn price(input: &str, output: &str, per_request: Option<&str>) -> PriceConfig {
    PriceConfig {
        input_per_1m: input.into(),
        output_per_1m: output.into(),
        cached_input_per_1m: None,
        per_request: per_request.map(str::to_string),
    }
}

pub struct Gw {
    pub app: TestApp,
    pub mock: Mock,
    pub key: String,
    pub user_id: i64,
}

/// Fast reporting, one mock channel serving three priced models.
pub fn base_config(c: &mut Config, mock: &Mock) {
    c.billing.report_interval_ms = 50;
    c.billing.idle_close_ms = 100;
    c.billing.sweep_after_seconds = 2;
    c.channels = vec![channel(
        "primary",
        mock.url(""),
        &["gpt-4o-mini", "text-embedding-3-small", "flat"],
        0,
    )];
    c.pricing
        .insert("gpt-4o-mini".into(), price("0.15", "0.60", None));
    c.pricing
        .insert("text-embedding-3-small".into(), price("0.02", "0", None));
    c.pricing
        .insert("flat".into(), price("0", "0", Some("0.0001")));
}

pub async fn credit(app: &TestApp, user_id: i64, usd: &str) {
    let res = TestApp::bare_client()
        .post(app.url(&format!("/api/admin/users/{user_id}/balance")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "amount": usd, "reason": "test credit" }))
        .send()
        .await
        .expect("credit");
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

pub async fn create_key(app: &TestApp, body: Value) -> Value {
    let res = TestApp::bare_client()
        .post(app.url("/api/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("create key");
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    res.json().await.expect("json")
}

impl Gw {
    pub async fn start(
        backend: Backend,
        balance_usd: &str,
        tweak: impl FnOnce(&mut Config, &Mock),
    ) -> Gw {
        let mock = Mock::start();
        let app = TestApp::spawn_with(backend, |c| {
            base_config(c, &mock);
            tweak(c, &mock);
        })
        .await;
        let user_id = app.create_user("alice", "alice-password", "user").await;
        credit(&app, user_id, balance_usd).await;
        let key = create_key(&app, json!({ "user_id": user_id, "name": "test" })).await["key"]
            .as_str()
            .expect("key")
            .to_string();
        Gw {
            app,
            mock,
            key,
            user_id,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        TestApp::bare_client()
            .post(self.app.url(path))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(self.user_id)
            .fetch_one(self.app.svc.db.pool())
            .await
            .expect(sql)
    }

    /// A metric's value from `/metrics`: the line that starts with `series` (name and labels).
    pub async fn metric(&self, series: &str) -> f64 {
        let metrics = reqwest::get(self.app.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in the metrics"))
            .parse()
            .expect("a number")
    }

    /// `tollgate_credit_waits_total`: requests that waited for a top-up from the database.
    pub async fn credit_waits(&self) -> u64 {
        self.metric("tollgate_credit_waits_total").await as u64
    }

    pub async fn balance(&self) -> i64 {
        self.scalar("SELECT balance FROM users WHERE id = $1").await
    }

    /// Waits until every grant is closed and `usage_rows` usage rows are written, then checks
    /// the money invariants: balance = Σ ledger.amount, reserved = Σ ledger.hold = 0.
    pub async fn settled(&self, usage_rows: i64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let open = self
                .scalar("SELECT COUNT(*) FROM credit_grants WHERE user_id = $1 AND status = 'open'")
                .await;
            let rows = self
                .scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1")
                .await;
            if open == 0 && rows >= usage_rows {
                assert_eq!(rows, usage_rows, "usage rows");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not settled: {open} open grants, {rows} usage rows"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let balance = self.balance().await;
        let sum = self
            .scalar(
                "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger WHERE user_id = $1",
            )
            .await;
        let holds = self
            .scalar("SELECT CAST(COALESCE(SUM(hold), 0) AS BIGINT) FROM ledger WHERE user_id = $1")
            .await;
        let reserved = self
            .scalar("SELECT reserved FROM users WHERE id = $1")
            .await;
        assert_eq!(balance, sum, "balance = sum of the ledger");
        assert_eq!((reserved, holds), (0, 0), "no money left held");
        assert!(balance >= 0);
    }

    pub async fn last_usage(&self) -> (i64, String, Option<String>, i64, i64) {
        sqlx::query_as("SELECT cost, usage_source, error_class, prompt_tokens, completion_tokens FROM usage_logs WHERE user_id = $1 ORDER BY id DESC LIMIT 1")
            .bind(self.user_id)
            .fetch_one(self.app.svc.db.pool())
            .await
            .expect("usage row")
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }

    /// A 10-second stream (200 chunks, 50 ms apart), open, with its first chunk read.
    pub async fn long_stream(
        &self,
    ) -> impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin + use<> {
        let res = self
            .post(
                "/v1/chat/completions",
                json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true,
                        "mock": { "chunks": 200, "chunk_delay_ms": 50 } }),
            )
            .await;
        assert_eq!(res.status(), 200);
        let mut body = Box::pin(res.bytes_stream());
        let first = body.next().await.expect("a chunk").expect("bytes");
        assert!(!first.is_empty());
        body
    }
}

fn hello() -> Value {
    json!([{ "role": "user", "content": "hello there world" }])
}

/// Prompt 3 tokens × $0.15/1M + completion 6 × $0.60/1M = 4.05 units, charged as 5.
const HELLO_COST: i64 = 5;

async fn chat_is_relayed_and_charged_exactly(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "max_tokens": 50 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    assert_eq!(body["usage"]["completion_tokens"], 6);
    gw.settled(1).await;
    assert_eq!(gw.balance().await, 1_000_000 - HELLO_COST);
    let (cost, source, class, prompt, completion) = gw.last_usage().await;
    assert_eq!(
        (cost, source.as_str(), class, prompt, completion),
        (HELLO_COST, "upstream", None, 3, 6)
    );
    let version = gw
        .scalar("SELECT price_version FROM usage_logs WHERE user_id = $1")
        .await;
    assert_eq!(version, 1);
    let upstream = gw.mock.requests().await;
    assert_eq!(upstream.len(), 1);
    assert_eq!(upstream[0]["authorization"], "Bearer upstream-secret-key");
    assert_eq!(
        upstream[0]["body"]["max_tokens"], 50,
        "the body passes through unchanged"
    );
    gw.stop().await;
}

async fn sse_payloads(res: reqwest::Response) -> Vec<String> {
    let text = res.text().await.expect("stream");
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

async fn streams_are_relayed_and_usage_is_hidden_unless_asked(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/event-stream")
    );
    let events = sse_payloads(res).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).expect("json"))
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from the mock upstream.");
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "usage not asked for, not shown"
    );
    assert!(chunks.iter().all(|c| c["model"] == "gpt-4o-mini"));
    let upstream = gw.mock.requests().await;
    assert_eq!(
        upstream[0]["include_usage"], true,
        "the gateway always asks the upstream for usage"
    );

    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true, "stream_options": { "include_usage": true } }),
        )
        .await;
    let events = sse_payloads(res).await;
    let usage: Vec<Value> = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str::<Value>(e).expect("json"))
        .filter(|c| c.get("usage").is_some())
        .collect();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0]["usage"]["completion_tokens"], 6);
    gw.settled(2).await;
    assert_eq!(gw.balance().await, 1_000_000 - 2 * HELLO_COST);
    gw.stop().await;
}

async fn omitted_usage_is_estimated(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    for stream in [false, true] {
        let res = gw
            .post(
                "/v1/chat/completions",
                json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": stream, "mock": { "omit_usage": true } }),
            )
            .await;
        assert_eq!(res.status(), 200);
        let _ = res.text().await.expect("body");
        gw.settled(if stream { 2 } else { 1 }).await;
        let (cost, source, _, prompt, completion) = gw.last_usage().await;
        assert_eq!(source, "estimated");
        assert!(prompt > 0 && completion > 0, "{prompt} {completion}");
        assert!(cost > 0, "an upstream without usage is not free");
    }
    gw.stop().await;
}

async fn a_cut_stream_ends_with_an_error_and_is_charged_partially(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true, "mock": { "cut_after": 2 } }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let events = sse_payloads(res).await;
    assert!(
        !events.iter().any(|e| e == "[DONE]"),
        "never a fake [DONE]: {events:?}"
    );
    let last: Value = serde_json::from_str(events.last().expect("events")).expect("json");
    assert_eq!(last["error"]["type"], "server_error");
    gw.settled(1).await;
    let (cost, source, class, _, completion) = gw.last_usage().await;
    assert_eq!(source, "partial");
    assert_eq!(class.as_deref(), Some("upstream_cut"));
    assert_eq!(completion, 2, "the two chunks generated before the cut");
    assert!(cost > 0);
    assert_eq!(gw.balance().await, 1_000_000 - cost);
    gw.stop().await;
}

async fn a_client_disconnect_cancels_the_upstream_and_charges_once(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let body = gw.long_stream().await;
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reqs = gw.mock.requests().await;
        if reqs[0]["outcome"] == "cancelled" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream was not cancelled: {}",
            reqs[0]["outcome"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.settled(1).await;
    let (cost, source, class, _, completion) = gw.last_usage().await;
    assert_eq!(class.as_deref(), Some("client_cancelled"));
    assert_eq!(source, "partial");
    assert!(
        completion < 200,
        "only what was generated before the cancel: {completion}"
    );
    assert!(cost > 0);
    assert_eq!(gw.balance().await, 1_000_000 - cost, "charged once");
    gw.stop().await;
}

/// A stream still open at the drain deadline is ended by the server; its tokens are counted off
/// the runtime, and the last credit report and usage write wait for that settlement.
async fn a_stream_ended_by_the_drain_deadline_is_charged_before_the_last_report(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, _| c.server.drain_seconds = 1).await;
    let mut body = gw.long_stream().await;
    let reader = tokio::spawn(async move {
        let mut text = Vec::new();
        while let Some(Ok(b)) = body.next().await {
            text.extend_from_slice(&b);
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let Gw {
        app,
        mock: _upstream,
        user_id,
        ..
    } = gw;
    let storage = app.shutdown().await;
    let tail = reader.await.expect("reader");
    assert!(
        tail.contains("the gateway is shutting down") && !tail.contains("[DONE]"),
        "the stream ends with an error event, never [DONE]: {tail}"
    );
    let db = service::db::Db::connect(&storage.config().database)
        .await
        .expect("db");
    let (cost, source, class): (i64, String, Option<String>) =
        sqlx::query_as("SELECT cost, usage_source, error_class FROM usage_logs WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(db.pool())
            .await
            .expect("the usage row was written before the process stopped");
    assert_eq!(
        (source.as_str(), class.as_deref()),
        ("partial", Some("server_shutdown"))
    );
    assert!(cost > 0);
    let (balance, reserved, open): (i64, i64, i64) = sqlx::query_as(
        "SELECT balance, reserved, (SELECT COUNT(*) FROM credit_grants WHERE user_id = $1 AND status = 'open') \
         FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_one(db.pool())
    .await
    .expect("user");
    assert_eq!(
        (balance, reserved, open),
        (1_000_000 - cost, 0, 0),
        "charged once, nothing held, no grant open"
    );
    db.close().await;
    storage.destroy().await;
}

async fn fallback_serves_from_the_next_channel_and_charges_once(backend: Backend) {
    for (directives, label) in [
        ("status=503", "503"),
        ("status=429,retry_after=30", "429"),
        ("delay_ms=3000", "timeout"),
    ] {
        let gw = Gw::start(backend, "1", |c, mock| {
            let mut bad = channel("bad", mock.url(directives), &["gpt-4o-mini"], 10);
            bad.first_byte_timeout_ms = 300;
            c.channels.push(bad);
        })
        .await;
        let res = gw
            .post(
                "/v1/chat/completions",
                json!({ "model": "gpt-4o-mini", "messages": hello() }),
            )
            .await;
        assert_eq!(res.status(), 200, "{label}");
        let reqs = gw.mock.requests().await;
        assert_eq!(
            reqs.len(),
            2,
            "{label}: first the bad channel, then the good one"
        );
        assert_eq!(reqs[0]["prefix"], directives);
        assert_eq!(reqs[1]["prefix"], "");
        gw.settled(1).await;
        assert_eq!(
            gw.balance().await,
            1_000_000 - HELLO_COST,
            "{label}: one charge"
        );
        assert_eq!(
            gw.scalar("SELECT attempts FROM usage_logs WHERE user_id = $1")
                .await,
            2
        );
        if label == "429" {
            // Retry-After cools the channel down: the next request goes straight to the good one.
            let res = gw
                .post(
                    "/v1/chat/completions",
                    json!({ "model": "gpt-4o-mini", "messages": hello() }),
                )
                .await;
            assert_eq!(res.status(), 200);
            assert_eq!(gw.mock.requests().await.len(), 3);
        }
        gw.stop().await;
    }
}

async fn client_errors_are_not_retried_and_cost_nothing(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, mock| {
        c.channels.push(channel(
            "picky",
            mock.url("status=400"),
            &["gpt-4o-mini"],
            10,
        ));
    })
    .await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello() }),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(gw.mock.requests().await.len(), 1, "400 is never retried");
    gw.settled(1).await;
    assert_eq!(gw.balance().await, 1_000_000);
    gw.stop().await;
}

async fn all_channels_down_is_503_and_costs_nothing(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, mock| {
        c.channels = vec![
            channel("a", mock.url("status=503"), &["gpt-4o-mini"], 1),
            channel("b", mock.url("status=502"), &["gpt-4o-mini"], 0),
        ];
    })
    .await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["type"], "server_error");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no upstream host reaches the client: {body}"
    );
    gw.settled(1).await;
    assert_eq!(gw.balance().await, 1_000_000);
    let (model, status): (String, i64) =
        sqlx::query_as("SELECT model, status FROM usage_logs ORDER BY id DESC LIMIT 1")
            .fetch_one(gw.app.svc.db.pool())
            .await
            .expect("the failure's usage row");
    assert_eq!(
        (model.as_str(), status),
        ("gpt-4o-mini", 503),
        "the failure is logged with the model asked for"
    );
    gw.stop().await;
}

/// `n` simultaneous requests of exactly 100 units each ("flat"), spread over `urls`; their statuses.
async fn flat_burst(urls: &[String], key: &str, n: usize) -> Vec<u16> {
    let client = TestApp::bare_client();
    let calls = (0..n).map(|i| {
        let client = client.clone();
        let url = format!("{}/v1/chat/completions", urls[i % urls.len()]);
        async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&json!({ "model": "flat", "messages": [{ "role": "user", "content": "x" }], "max_tokens": 1 }))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    });
    futures_util::future::join_all(calls).await
}

/// 50 simultaneous requests of exactly 100 units each against a balance of 1000.
async fn fifty_against_a_thousand(urls: &[String], key: &str) -> (usize, usize) {
    let statuses = flat_burst(urls, key, 50).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    (ok, refused)
}

async fn concurrent_spends_never_overdraw_the_balance(backend: Backend) {
    let gw = Gw::start(backend, "0.001", |_, _| {}).await;
    let (ok, refused) = fifty_against_a_thousand(std::slice::from_ref(&gw.app.base), &gw.key).await;
    assert_eq!((ok, refused), (10, 40));
    gw.settled(50).await;
    assert_eq!(gw.balance().await, 0);
    gw.stop().await;
}

/// A burst on an idle account: the requests that find the grant short queue for one top-up
/// that covers them all, instead of one database round trip each (which made the first second
/// of a burst wait in line for the database).
async fn a_burst_on_an_idle_account_shares_its_top_ups(backend: Backend) {
    const BURST: usize = 64;
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let statuses = flat_burst(std::slice::from_ref(&gw.app.base), &gw.key, BURST).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    gw.settled(BURST as i64).await;
    let top_ups = gw
        .scalar("SELECT COUNT(*) FROM ledger WHERE user_id = $1 AND kind = 'grant'")
        .await;
    // Each request costs exactly its reservation, so without sharing every one of them needs a
    // top-up of its own.
    assert!(
        top_ups <= BURST as i64 / 4,
        "{top_ups} top-ups for a burst of {BURST}"
    );
    assert_eq!(gw.balance().await, 1_000_000 - 100 * BURST as i64);
    // The account had no grant, so at least its first request waited for the database; the
    // metric counts such waits (and a request waits at most once).
    let waits = gw.credit_waits().await;
    assert!((1..=BURST as u64).contains(&waits), "{waits} waits");
    gw.stop().await;
}

/// An account whose grant closed for idleness keeps its last rate for a while: when its load
/// resumes, the first top-up covers about a second of that rate, so only the request that found
/// no grant waits for the database (before, the rate was forgotten and the resumed load waited
/// again and again while its rate was measured anew).
async fn a_burst_resuming_after_a_pause_starts_from_its_last_rate(backend: Backend) {
    const BEFORE: i64 = 20;
    const AFTER: i64 = 10;
    // Requests in a row do not leave the grant idle for 500 ms, even on a loaded machine.
    let gw = Gw::start(backend, "1", |c, _| c.billing.idle_close_ms = 500).await;
    let base = std::slice::from_ref(&gw.app.base);
    for _ in 0..BEFORE {
        assert_eq!(flat_burst(base, &gw.key, 1).await, [200]);
    }
    gw.settled(BEFORE).await;
    // Longer than the two seconds after which the measured rate lapses. The last active
    // second saw at least half of the 20 requests (they take well under 2 s), and after the
    // pause 10 more come: the first top-up covers them all.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let before = gw.credit_waits().await;
    for _ in 0..AFTER {
        assert_eq!(flat_burst(base, &gw.key, 1).await, [200]);
    }
    assert_eq!(gw.credit_waits().await - before, 1, "waits after the pause");
    gw.settled(BEFORE + AFTER).await;
    assert_eq!(gw.balance().await, 1_000_000 - 100 * (BEFORE + AFTER));
    gw.stop().await;
}

/// The same, with two gateway processes sharing one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_a_database_never_overdraw() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let gw = Gw::start(backend, "0.001", |_, _| {}).await;
        let mock_url = gw.mock.url("");
        let other = TestApp::spawn_on(gw.app.storage.clone(), |c| {
            c.billing.report_interval_ms = 50;
            c.billing.idle_close_ms = 100;
            c.channels = vec![channel("primary", mock_url, &["flat"], 0)];
            c.pricing
                .insert("flat".into(), price("0", "0", Some("0.0001")));
        })
        .await;
        let (ok, refused) =
            fifty_against_a_thousand(&[gw.app.base.clone(), other.base.clone()], &gw.key).await;
        assert_eq!((ok, refused), (10, 40), "{backend:?}");
        other.shutdown().await;
        gw.settled(50).await;
        assert_eq!(gw.balance().await, 0);
        gw.stop().await;
    }
}

async fn a_key_spend_cap_is_enforced_like_the_balance(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let capped = create_key(
        &gw.app,
        json!({ "user_id": gw.user_id, "name": "capped", "spend_cap": "0.0003" }),
    )
    .await;
    let secret = capped["key"].as_str().expect("key");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = TestApp::bare_client()
            .post(gw.app.url("/v1/chat/completions"))
            .bearer_auth(secret)
            .json(&json!({ "model": "flat", "messages": hello(), "max_tokens": 1 }))
            .send()
            .await
            .expect("request");
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 402, 402]);
    gw.settled(5).await;
    assert_eq!(gw.balance().await, 1_000_000 - 300);
    let spent: i64 = sqlx::query_scalar("SELECT spent FROM api_keys WHERE id = $1")
        .bind(capped["id"].as_i64().expect("id"))
        .fetch_one(gw.app.svc.db.pool())
        .await
        .expect("spent");
    assert_eq!(spent, 300);
    gw.stop().await;
}

async fn bad_requests_get_openai_shaped_errors(backend: Backend) {
    let gw = Gw::start(backend, "0.000001", |c, _| {
        c.server.max_body_bytes = 64 * 1024
    })
    .await;
    let client = TestApp::bare_client();
    let url = gw.app.url("/v1/chat/completions");
    let check = |status: u16, code: &'static str, param: Option<&'static str>| {
        move |res: (u16, Value)| {
            assert_eq!(res.0, status, "{}", res.1);
            assert_eq!(res.1["error"]["code"], code, "{}", res.1);
            assert!(
                res.1["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
            if let Some(p) = param {
                assert_eq!(res.1["error"]["param"], p, "{}", res.1);
            }
        }
    };
    let send = |req: reqwest::RequestBuilder| async move {
        let res = req.send().await.expect("request");
        (
            res.status().as_u16(),
            res.json::<Value>().await.expect("json error"),
        )
    };
    check(401, "unauthorized", None)(
        send(client.post(&url).bearer_auth("sk-wrong").json(&json!({}))).await,
    );
    check(401, "unauthorized", None)(send(client.post(&url).json(&json!({}))).await);
    check(400, "invalid_request", Some("body"))(
        send(
            client
                .post(&url)
                .bearer_auth(&gw.key)
                .header("content-type", "application/json")
                .body("{nope"),
        )
        .await,
    );
    check(400, "invalid_request", Some("max_tokens"))(
        send(
            client
                .post(&url)
                .bearer_auth(&gw.key)
                .json(&json!({"model": "gpt-4o-mini", "messages": hello(), "max_tokens": -1})),
        )
        .await,
    );
    check(400, "invalid_request", Some("stream"))(
        send(
            client
                .post(&url)
                .bearer_auth(&gw.key)
                .json(&json!({"model": "gpt-4o-mini", "messages": hello(), "stream": "yes"})),
        )
        .await,
    );
    check(400, "invalid_request", Some("messages"))(
        send(
            client
                .post(&url)
                .bearer_auth(&gw.key)
                .json(&json!({"model": "gpt-4o-mini"})),
        )
        .await,
    );
    check(404, "model_not_found", Some("model"))(
        send(
            client
                .post(&url)
                .bearer_auth(&gw.key)
                .json(&json!({"model": "no-such-model", "messages": hello()})),
        )
        .await,
    );
    check(402, "insufficient_quota", None)(
        send(
            client
                .post(&url)
                .bearer_auth(&gw.key)
                .json(&json!({"model": "gpt-4o-mini", "messages": hello()})),
        )
        .await,
    );
    let big = "x".repeat(100 * 1024);
    check(413, "payload_too_large", None)(
        send(
            client
                .post(&url)
                .bearer_auth(&gw.key)
                .header("content-type", "application/json")
                .body(big),
        )
        .await,
    );
    check(404, "not_found", None)(
        send(
            client
                .get(gw.app.url("/v1/no-such-endpoint"))
                .bearer_auth(&gw.key),
        )
        .await,
    );
    let res = client
        .get(&url)
        .bearer_auth(&gw.key)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 405);
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"]["type"],
        "invalid_request_error"
    );
    let limited = create_key(&gw.app, json!({"user_id": gw.user_id, "name": "limited", "allowed_models": ["flat"], "allowed_ips": ["10.9.9.9"]})).await;
    let secret = limited["key"].as_str().expect("key");
    check(403, "forbidden", None)(
        send(
            client
                .post(&url)
                .bearer_auth(secret)
                .json(&json!({"model": "gpt-4o-mini", "messages": hello()})),
        )
        .await,
    );
    let id = create_key(&gw.app, json!({"user_id": gw.user_id, "name": "soon-off"})).await;
    let (kid, ksecret) = (
        id["id"].as_i64().expect("id"),
        id["key"].as_str().expect("key").to_string(),
    );
    let res = client
        .post(gw.app.url(&format!("/api/admin/keys/{kid}/status")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .expect("disable");
    assert_eq!(res.status(), 200);
    check(401, "unauthorized", None)(
        send(client.get(gw.app.url("/v1/models")).bearer_auth(&ksecret)).await,
    );
    // The failures are logged and cost nothing.
    gw.settled(6).await;
    assert_eq!(gw.balance().await, 1);
    gw.stop().await;
}

async fn embeddings_and_models_are_served(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, _| {
        c.model_mapping.insert(
            "smart".into(),
            vec!["missing-upstream".into(), "gpt-4o-mini".into()],
        );
        c.pricing
            .insert("smart".into(), price("0.15", "0.60", None));
    })
    .await;
    let res = gw
        .post(
            "/v1/embeddings",
            json!({ "model": "text-embedding-3-small", "input": "one two three four" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["data"][0]["embedding"].as_array().map(Vec::len),
        Some(8)
    );
    assert_eq!(body["usage"]["prompt_tokens"], 4);

    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "smart", "messages": hello() }),
        )
        .await;
    assert_eq!(res.status(), 200, "mapped through the fallback list");
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["model"], "smart",
        "the client sees the name it asked for"
    );
    let reqs = gw.mock.requests().await;
    assert_eq!(
        reqs.last().expect("request")["model"],
        "gpt-4o-mini",
        "the upstream sees its own name"
    );

    let client = TestApp::bare_client();
    let list: Value = client
        .get(gw.app.url("/v1/models"))
        .bearer_auth(&gw.key)
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"gpt-4o-mini") && ids.contains(&"smart") && ids.contains(&"flat"),
        "{ids:?}"
    );
    let one = client
        .get(gw.app.url("/v1/models/smart"))
        .bearer_auth(&gw.key)
        .send()
        .await
        .expect("model");
    assert_eq!(one.status(), 200);
    let limited = create_key(
        &gw.app,
        json!({"user_id": gw.user_id, "name": "one-model", "allowed_models": ["flat"]}),
    )
    .await;
    let secret = limited["key"].as_str().expect("key");
    let list: Value = client
        .get(gw.app.url("/v1/models"))
        .bearer_auth(secret)
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    let hidden = client
        .get(gw.app.url("/v1/models/smart"))
        .bearer_auth(secret)
        .send()
        .await
        .expect("model");
    assert_eq!(hidden.status(), 404);
    gw.settled(2).await;
    gw.stop().await;
}

/// Collects everything the server logs (this test runs in its own process under nextest).
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

async fn key_secrets_appear_nowhere_after_creation(backend: Backend) {
    let logs = Capture::default();
    let installed = tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_ansi(false)
        .with_writer(logs.clone())
        .try_init();
    assert!(
        installed.is_ok(),
        "the log capture must be the process's subscriber"
    );
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello() }),
        )
        .await;
    assert_eq!(res.status(), 200);
    gw.settled(1).await;
    let secret = gw.key.clone();
    assert!(
        secret.starts_with("sk-") && secret.len() >= 3 + 22,
        "≥128 bits of base62"
    );
    // Every text column of every table.
    let tables = [
        "users",
        "sessions",
        "api_keys",
        "channels",
        "model_mappings",
        "prices",
        "ledger",
        "credit_grants",
        "usage_logs",
        "instances",
    ];
    for table in tables {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(gw.app.svc.db.pool())
            .await
            .expect("rows");
        for row in rows {
            use sqlx::Row as _;
            for i in 0..row.len() {
                if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                    assert!(
                        !text.contains(&secret[3..]),
                        "the key secret is stored in {table}"
                    );
                }
            }
        }
    }
    let listing = TestApp::bare_client()
        .get(gw.app.url("/api/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("keys");
    let text = listing.text().await.expect("text");
    assert!(
        !text.contains(&secret[3..]) && text.contains("sk-"),
        "{text}"
    );
    let channels = TestApp::bare_client()
        .get(gw.app.url("/api/admin/channels"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("channels");
    let text = channels.text().await.expect("text");
    assert!(
        !text.contains("upstream-secret-key") && text.contains("has_api_key"),
        "{text}"
    );
    gw.stop().await;
    let logged = String::from_utf8(logs.0.lock().expect("capture").clone()).expect("utf-8");
    assert!(
        logged.contains("API key created"),
        "the capture saw the server's logs"
    );
    assert!(
        !logged.contains(&secret[3..]),
        "the key secret is in the logs"
    );
    assert!(
        !logged.contains("upstream-secret-key"),
        "the upstream key is in the logs"
    );
    assert!(
        !logged.contains(ADMIN_TOKEN) && !logged.contains(ADMIN_PASSWORD),
        "an admin secret is in the logs"
    );
}

/// An administrator's change on one instance reaches the others without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_changes_reach_other_instances() {
    let gw = Gw::start(Backend::Postgres, "1", |_, _| {}).await;
    let mock_url = gw.mock.url("");
    let other = TestApp::spawn_on(gw.app.storage.clone(), |c| {
        base_config(c, &Mock::with_base(&mock_url))
    })
    .await;
    let res = TestApp::bare_client()
        .put(gw.app.url("/api/admin/model-mappings/house-model"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "targets": ["gpt-4o-mini"] }))
        .send()
        .await
        .expect("mapping");
    assert_eq!(res.status(), 200);
    let res = TestApp::bare_client()
        .put(gw.app.url("/api/admin/prices/house-model"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "input_per_1m": "1", "output_per_1m": "2" }))
        .send()
        .await
        .expect("price");
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = 0;
    loop {
        let res = TestApp::bare_client()
            .post(other.url("/v1/chat/completions"))
            .bearer_auth(&gw.key)
            .json(&json!({ "model": "house-model", "messages": hello() }))
            .send()
            .await
            .expect("chat");
        if res.status() == 200 {
            break;
        }
        refused += 1;
        assert!(
            Instant::now() < deadline,
            "the other instance never saw the new model: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    other.shutdown().await;
    gw.settled(refused + 1).await;
    gw.stop().await;
}

/// Usage rows written in batches (more than one, with awkward text and every optional field
/// both set and empty) come back from the database field for field, after a clean stop.
async fn usage_rows_keep_every_field_and_a_clean_stop_loses_none(backend: Backend) {
    use service::usage::UsageRecord;
    let app = TestApp::spawn(backend).await;
    let sources = ["upstream", "estimated", "partial", "none"];
    let rows: Vec<UsageRecord> = (0..300u64)
        .map(|n| {
            let full = n % 2 == 0;
            UsageRecord {
                request_id: format!("req-{n}"),
                user_id: 7_000 + (n % 3) as i64,
                key_id: full.then_some(n as i64),
                key_prefix: full.then(|| format!("sk-{n:04}")),
                model: format!("m\"odel\\ 模型 {n}\n\u{1F600}'"),
                served_model: full.then(|| "upstream/ä".to_string()),
                channel_id: full.then_some(3),
                attempts: (n % 4) as u32,
                stream: !full,
                prompt_tokens: if n == 1 { i64::MAX as u64 } else { n * 11 },
                completion_tokens: n * 13,
                cached_tokens: n % 5,
                cost: if n == 2 {
                    i64::MAX
                } else {
                    n as i64 * 1_000_003
                },
                price_version: full.then_some(n as i64 + 1),
                usage_source: sources[(n % 4) as usize],
                status: if full { 200 } else { 502 },
                error_class: (!full).then(|| "upstream_error".to_string()),
                latency_ms: n * 17,
                ttft_ms: full.then_some(n),
                client_ip: full.then(|| "2001:db8::1".to_string()),
                created_at: 1_790_000_000_000 + n as i64,
            }
        })
        .collect();
    for r in &rows {
        app.svc.usage.record(r.clone());
    }
    let storage = app.shutdown().await;
    let back = stored_usage(&storage).await;
    assert_eq!(back.len(), rows.len(), "every queued row is written");
    for (got, want) in back.iter().zip(&rows) {
        assert_eq!(got, want);
    }
    storage.destroy().await;
}

/// Every usage row in a stopped instance's database, oldest first, read back into records.
async fn stored_usage(storage: &Storage) -> Vec<service::usage::UsageRecord> {
    use service::usage::UsageRecord;
    use sqlx::Row as _;
    let db = service::db::Db::connect(&storage.config().database)
        .await
        .expect("reopen");
    let stored = sqlx::query("SELECT * FROM usage_logs ORDER BY created_at, id")
        .fetch_all(db.pool())
        .await
        .expect("usage rows");
    let text = |r: &sqlx::any::AnyRow, c: &str| r.try_get::<Option<String>, _>(c).expect(c);
    let int = |r: &sqlx::any::AnyRow, c: &str| r.try_get::<Option<i64>, _>(c).expect(c);
    let num = |r: &sqlx::any::AnyRow, c: &str| int(r, c).expect(c);
    let back = stored
        .iter()
        .map(|r| UsageRecord {
            request_id: text(r, "request_id").expect("request_id"),
            user_id: num(r, "user_id"),
            key_id: int(r, "key_id"),
            key_prefix: text(r, "key_prefix"),
            model: text(r, "model").expect("model"),
            served_model: text(r, "served_model"),
            channel_id: int(r, "channel_id"),
            attempts: num(r, "attempts") as u32,
            stream: num(r, "stream") == 1,
            prompt_tokens: num(r, "prompt_tokens") as u64,
            completion_tokens: num(r, "completion_tokens") as u64,
            cached_tokens: num(r, "cached_tokens") as u64,
            cost: num(r, "cost"),
            price_version: int(r, "price_version"),
            usage_source: ["upstream", "estimated", "partial", "none"]
                .into_iter()
                .find(|s| Some(s.to_string()) == text(r, "usage_source"))
                .expect("a known usage source"),
            status: num(r, "status") as u16,
            error_class: text(r, "error_class"),
            latency_ms: num(r, "latency_ms") as u64,
            ttft_ms: int(r, "ttft_ms").map(|v| v as u64),
            client_ip: text(r, "client_ip"),
            created_at: num(r, "created_at"),
        })
        .collect();
    db.close().await;
    back
}

/// A plain usage row with the given number in its request id and time.
fn usage_row(n: i64) -> service::usage::UsageRecord {
    service::usage::UsageRecord {
        request_id: format!("req-{n}"),
        user_id: 1,
        model: "gpt-4o-mini".into(),
        usage_source: "upstream",
        status: 200,
        created_at: 1_790_000_000_000 + n,
        ..Default::default()
    }
}

fn request_ids(rows: &[service::usage::UsageRecord]) -> Vec<String> {
    rows.iter().map(|r| r.request_id.clone()).collect()
}

/// A row the database refuses (here: a usage source its CHECK does not allow) is set apart from
/// its batch and dropped alone, counted; a NUL in a model name is stored as U+FFFD instead of
/// failing the batch (PostgreSQL's text cannot hold it).
async fn a_refused_usage_row_does_not_take_its_batch_with_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dropped = app.svc.metrics.usage_rows_dropped.clone();
    for n in 0..50 {
        let mut r = usage_row(n);
        if n == 7 {
            r.model = "gpt\0mini".into();
        }
        if n == 31 {
            r.usage_source = "bogus";
        }
        app.svc.usage.record(r);
    }
    let storage = app.shutdown().await;
    let back = stored_usage(&storage).await;
    let want: Vec<String> = (0..50)
        .filter(|n| *n != 31)
        .map(|n| format!("req-{n}"))
        .collect();
    assert_eq!(
        request_ids(&back),
        want,
        "all but the refused row are written"
    );
    assert_eq!(back[7].model, "gpt\u{FFFD}mini");
    assert_eq!(dropped.get(), 1, "the refused row is counted");
    storage.destroy().await;
}

/// The database goes away for longer than any fixed number of retries would cover (connections
/// refused, the open ones killed): the rows queued meanwhile wait and are written when it comes
/// back. The queue is small here, so the rows beyond it and its overflow are dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_rows_wait_out_a_database_outage() {
    use sqlx::Connection as _;
    let app = TestApp::spawn_with(Backend::Postgres, |c| c.gateway.usage_queue = 50).await;
    let name = app.storage.pg_name.clone().expect("a PostgreSQL database");
    let dropped = app.svc.metrics.usage_rows_dropped.clone();
    for n in 0..100 {
        app.svc.usage.record(usage_row(n));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (written,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_logs")
            .fetch_one(app.svc.db.pool())
            .await
            .expect("count");
        if written == 100 {
            break;
        }
        assert!(Instant::now() < deadline, "{written} of 100 rows written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut admin = sqlx::PgConnection::connect(&pg_admin_url())
        .await
        .expect("admin connection");
    for sql in [
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.expect(&sql);
    }
    // The writer takes this row alone and keeps failing to write it.
    app.svc.usage.record(usage_row(100));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // 50 fill the queue, 50 wait beyond it, 100 are dropped.
    for n in 101..301 {
        app.svc.usage.record(usage_row(n));
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .expect("allow connections");
    let storage = app.shutdown().await;
    let back = stored_usage(&storage).await;
    let want: Vec<String> = (0..201).map(|n| format!("req-{n}")).collect();
    assert_eq!(request_ids(&back), want, "every kept row is written, once");
    assert_eq!(
        dropped.get(),
        100,
        "the rows beyond the queue and its overflow"
    );
    storage.destroy().await;
}

/// The overhead histogram holds what the gateway adds, not what it waits for: a call and a
/// stream whose upstream holds its headers 300 ms each take longer than that, and add little.
async fn the_overhead_metric_leaves_out_the_upstream_wait(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    for stream in [false, true] {
        let res = gw
            .post(
                "/v1/chat/completions",
                json!({ "model": "gpt-4o-mini", "messages": hello(), "max_tokens": 50,
                        "stream": stream, "mock": { "delay_ms": 300 } }),
            )
            .await;
        assert_eq!(res.status(), 200);
        res.bytes().await.expect("body");
    }
    let route = r#"{route="/v1/chat/completions"}"#;
    let count = gw
        .metric(&format!("tollgate_gateway_overhead_seconds_count{route}"))
        .await;
    let overhead = gw
        .metric(&format!("tollgate_gateway_overhead_seconds_sum{route}"))
        .await;
    let total = gw
        .metric(r#"tollgate_http_request_duration_seconds_sum{method="POST",route="/v1/chat/completions"}"#)
        .await;
    assert_eq!(count, 2.0, "one observation per served request");
    assert!(total >= 0.6, "the two requests took {total} s in all");
    assert!(
        overhead > 0.0 && overhead < 0.3,
        "overhead {overhead} s: the upstream's 0.6 s must not be in it"
    );
    gw.settled(2).await;
    gw.stop().await;
}
