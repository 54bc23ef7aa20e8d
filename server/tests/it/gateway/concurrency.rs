//! A key's calls in flight (`max_concurrent`): counted in the process without Redis, shared by
//! every instance through Redis, freed when a call ends and when an instance dies holding them.

use super::*;
use crate::both_backends;
use crate::faults::{Proc, funded_user};

both_backends!(a_keys_calls_in_flight_are_limited,);

/// A stream that lasts about two seconds, held open after its first bytes.
async fn open_stream(
    url: String,
    key: &str,
) -> Result<
    impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin,
    (u16, Value, Option<String>),
> {
    let res = TestApp::bare_client()
        .post(url)
        .bearer_auth(key)
        .json(
            &json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true, "max_tokens": 50,
                       "mock": { "chunks": 40, "chunk_delay_ms": 50 } }),
        )
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    if status != 200 {
        let retry = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        return Err((status, res.json().await.expect("json"), retry));
    }
    let mut body = Box::pin(res.bytes_stream());
    body.next().await.expect("a chunk").expect("bytes");
    Ok(body)
}

/// Two calls at once for a key of `max_concurrent: 2`: the third is refused with 429
/// `concurrency_limit_exceeded` and `Retry-After`, nothing charged; when one ends, a call is
/// admitted again; the key's own limit cleared, the default (none) applies.
async fn a_keys_calls_in_flight_are_limited(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let key = create_key(
        &gw.app,
        json!({ "user_id": gw.user_id, "name": "two", "max_concurrent": 2 }),
    )
    .await;
    let (id, secret) = (
        key["id"].as_i64().expect("id"),
        key["key"].as_str().expect("key").to_string(),
    );
    assert_eq!(key["max_concurrent"], 2);
    let url = gw.app.url("/v1/chat/completions");
    let first = open_stream(url.clone(), &secret).await.expect("first");
    let second = open_stream(url.clone(), &secret).await.expect("second");
    let Err((status, err, retry)) = open_stream(url.clone(), &secret).await else {
        panic!("a third call in flight was admitted");
    };
    assert_eq!(status, 429);
    assert_eq!(err["error"]["code"], "concurrency_limit_exceeded", "{err}");
    assert_eq!(err["error"]["type"], "rate_limit_error");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(
        gw.mock.requests().await.len(),
        2,
        "the refused call went nowhere"
    );
    // Another key of the same user has its own count.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": hello() }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let _ = res.bytes().await;
    // One call ends (its client leaves): its place is free again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let third = loop {
        match open_stream(url.clone(), &secret).await {
            Ok(s) => break s,
            Err((429, _, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    drop((second, third));
    // Cleared: the default, which sets none.
    let path = format!("/api/admin/keys/{id}");
    let res = (gw.app)
        .admin(
            Method::PATCH,
            &path,
            Some(json!({ "max_concurrent": null })),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.expect("json")["max_concurrent"],
        Value::Null
    );
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(open_stream(url.clone(), &secret).await.expect("unlimited"));
    }
    drop(open);
    // Bad input is named.
    for bad in [json!(0), json!(-1), json!("x")] {
        let path = format!("/api/admin/keys/{id}");
        let res = (gw.app)
            .admin(Method::PATCH, &path, Some(json!({ "max_concurrent": bad })))
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    let rows = gw.quiet_rows().await;
    gw.settled(rows).await;
    assert!(
        gw.scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND status = 429 AND error_class = 'rate_limit_exceeded' AND cost = 0")
            .await
            >= 1,
        "each refusal left its row, free"
    );
    assert_eq!(
        gw.scalar(
            "SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND status = 429 AND cost <> 0"
        )
        .await,
        0
    );
    gw.stop().await;
}

/// Two gateway processes on one Redis, every key limited to 4 calls at once by default: 40 slow
/// streams spread over both never have more than 4 open at the upstream. Then one process is
/// killed holding two slots: the other admits only two more until the lease frees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_are_shared_by_instances_and_freed_when_one_dies() {
    let storage = Storage::new(Backend::Postgres).await;
    let mock = Mock::start();
    let billing = "report_interval_ms: 100, idle_close_ms: 500, sweep_after_seconds: 2";
    let limits = "limits: { default_max_concurrent: 4, concurrency_lease_seconds: 3 }\n";
    let redis = crate::common::redis_url();
    let mut a = Proc::start_custom(&storage, &mock, billing, "warn", Some(&redis), limits);
    let b = Proc::start_custom(&storage, &mock, billing, "warn", Some(&redis), limits);
    let (_, key) = funded_user(&a.base, 10_000_000).await;
    let slow = json!({ "model": "pricey", "messages": hello(), "stream": true, "max_tokens": 50,
                       "mock": { "chunks": 20, "chunk_delay_ms": 50 } });
    let client = TestApp::bare_client();
    let calls = (0..40).map(|i| {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let req = client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&slow);
        async move {
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            let _ = res.bytes().await;
            status
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(served >= 4, "{statuses:?}");
    let (_, peak) = mock.peak().await;
    assert!(peak <= 4, "{peak} streams open at once at the upstream");
    // A holds two slots, B one more: B admits one, not two.
    let long = json!({ "model": "pricey", "messages": hello(), "stream": true, "max_tokens": 50,
                       "mock": { "chunks": 40, "chunk_delay_ms": 250 } });
    let open = |base: String| {
        let req = client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&long);
        async move {
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            let mut body = Box::pin(res.bytes_stream());
            if status == 200 {
                body.next().await.expect("a chunk").expect("bytes");
            }
            (status, body)
        }
    };
    let held_a = vec![open(a.base.clone()).await, open(a.base.clone()).await];
    assert!(held_a.iter().all(|(s, _)| *s == 200));
    let held_b = vec![open(b.base.clone()).await, open(b.base.clone()).await];
    assert!(held_b.iter().all(|(s, _)| *s == 200));
    assert_eq!(open(b.base.clone()).await.0, 429, "4 in flight across both");
    a.kill();
    drop(held_a);
    // A's two slots are A's until their lease ends (3 s after A last renewed them).
    let killed = Instant::now();
    let mut refused = 0;
    let freed = loop {
        let (status, body) = open(b.base.clone()).await;
        if status == 200 {
            break body;
        }
        refused += 1;
        assert!(
            killed.elapsed() < Duration::from_secs(8),
            "A's slots were never freed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        refused > 0,
        "a killed instance's slots are held until their lease ends"
    );
    drop((freed, held_b));
    b.stop();
    storage.destroy().await;
}
