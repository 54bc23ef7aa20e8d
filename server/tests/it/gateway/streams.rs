//! Streams: relayed event by event, usage hidden unless asked, estimated when missing, and
//! charged once however they end (complete, cut, left by the client, ended by the drain).

use super::*;
use crate::both_backends;

both_backends!(
    streams_are_relayed_and_usage_is_hidden_unless_asked,
    omitted_usage_is_estimated,
    a_cut_stream_ends_with_an_error_and_is_charged_partially,
    a_client_disconnect_cancels_the_upstream_and_charges_once,
    a_stream_ended_by_the_drain_deadline_is_charged_before_the_last_report,
);

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
    let (cost, source, class): (i64, String, Option<String>) = sqlx::query_as(
        &db.sql("SELECT cost, usage_source, error_class FROM usage_logs WHERE user_id = $1"),
    )
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
        &db.sql("SELECT balance, reserved, (SELECT COUNT(*) FROM credit_grants WHERE user_id = $1 AND status = 'open') \
         FROM users WHERE id = $2"),
    )
    .bind(user_id)
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

/// The console's pages and server functions are compressed for a browser that accepts it
/// (brotli or gzip, `Vary: accept-encoding`); `/v1` and `/api` answers never are, so a stream's
/// events reach the client as they come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_answers_are_compressed_and_gateway_answers_are_not() {
    use std::io::Read as _;
    let gw = Gw::start(Backend::Sqlite, "1", |_, _| {}).await;
    let client = TestApp::bare_client();
    let get = |path: &str, encoding: &str| {
        let mut req = client.get(gw.app.url(path));
        if !encoding.is_empty() {
            req = req.header("accept-encoding", encoding);
        }
        req.send()
    };
    let encoding = |res: &reqwest::Response| {
        res.headers()
            .get("content-encoding")
            .map(|v| v.to_str().expect("ascii").to_string())
    };
    let gunzip = |bytes: &[u8]| {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .expect("gzip");
        text
    };

    let plain = get("/pricing", "").await.expect("page");
    assert_eq!(encoding(&plain), None);
    let plain = plain.text().await.expect("html");
    assert!(plain.contains("gpt-4o-mini"), "{plain}");
    let res = get("/pricing", "br").await.expect("page");
    assert_eq!(encoding(&res).as_deref(), Some("br"));
    assert!(
        res.headers()["vary"]
            .to_str()
            .expect("ascii")
            .contains("accept-encoding")
    );
    let res = get("/pricing", "gzip").await.expect("page");
    assert_eq!(encoding(&res).as_deref(), Some("gzip"));
    let bytes = res.bytes().await.expect("body");
    let page = gunzip(&bytes);
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("gpt-4o-mini"),
        "{page}"
    );
    assert!(
        bytes.len() * 2 < page.len(),
        "{} compressed of {}",
        bytes.len(),
        page.len()
    );
    let res = client
        .post(gw.app.url("/_sfn/pricing"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("sfn");
    assert_eq!(res.status(), 200);
    assert_eq!(encoding(&res).as_deref(), Some("gzip"));
    let prices: Value =
        serde_json::from_str(&gunzip(&res.bytes().await.expect("body"))).expect("json");
    assert!(prices.to_string().contains("gpt-4o-mini"), "{prices}");

    for path in ["/api/pricing", "/v1/models", "/api/openapi.json"] {
        let res = client
            .get(gw.app.url(path))
            .bearer_auth(&gw.key)
            .header("accept-encoding", "gzip, br")
            .send()
            .await
            .expect("api");
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(encoding(&res), None, "{path}");
    }
    let res = TestApp::bare_client()
        .post(gw.app.url("/v1/chat/completions"))
        .bearer_auth(&gw.key)
        .header("accept-encoding", "gzip, br")
        .json(&json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true }))
        .send()
        .await
        .expect("stream");
    assert_eq!(res.status(), 200);
    assert_eq!(encoding(&res), None);
    let events = sse_payloads(res).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    gw.stop().await;
}
