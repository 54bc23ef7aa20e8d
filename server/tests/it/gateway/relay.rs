//! The relay itself: answers passed on and charged, fallback across channels, errors that cost
//! nothing, bad requests, embeddings and models, secrets, catalog changes, the overhead metric.

use super::*;
use crate::both_backends;

both_backends!(
    chat_is_relayed_and_charged_exactly,
    fallback_serves_from_the_next_channel_and_charges_once,
    client_errors_are_not_retried_and_cost_nothing,
    all_channels_down_is_503_and_costs_nothing,
    bad_requests_get_openai_shaped_errors,
    embeddings_and_models_are_served,
    key_secrets_appear_nowhere_after_creation,
    the_overhead_metric_leaves_out_the_upstream_wait,
);

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

async fn fallback_serves_from_the_next_channel_and_charges_once(backend: Backend) {
    // A closed port: the connection is refused, nothing is sent, the next channel is safe.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    for (directives, label) in [
        ("status=503", "503"),
        ("status=429,retry_after=30", "429"),
        ("", "unreachable"),
    ] {
        let gw = Gw::start(backend, "1", |c, mock| {
            let url = match label {
                "unreachable" => format!("http://{closed}/v1"),
                _ => mock.url(directives),
            };
            c.channels.push(channel("bad", url, &["gpt-4o-mini"], 10));
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
        let prefixes: Vec<&str> = reqs.iter().filter_map(|r| r["prefix"].as_str()).collect();
        match label {
            "unreachable" => assert_eq!(prefixes, [""], "the good one only"),
            _ => assert_eq!(
                prefixes,
                [directives, ""],
                "{label}: first the bad channel, then the good one"
            ),
        }
        let outcome = if label == "unreachable" {
            "unreachable"
        } else {
            "failed"
        };
        assert_eq!(
            gw.metric(&format!(
                "tollgate_upstream_attempts_total{{channel=\"bad\",outcome=\"{outcome}\"}}"
            ))
            .await,
            1.0,
            "{label}"
        );
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
    let (model, status): (String, i64) = sqlx::query_as(
        &gw.app
            .svc
            .db
            .sql("SELECT model, status FROM usage_logs ORDER BY id DESC LIMIT 1"),
    )
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
    let ids = gw.model_ids().await;
    assert!(
        ["gpt-4o-mini", "smart", "flat"]
            .iter()
            .all(|m| ids.iter().any(|id| id == m)),
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
        let rows = sqlx::query(&gw.app.svc.db.sql(&format!("SELECT * FROM {table}")))
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
