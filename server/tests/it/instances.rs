//! Per-key limits shared by two OS processes of the real binary on one PostgreSQL and one
//! Redis, and Redis failing under them (killed, then stalled): calls keep flowing on each
//! instance's share of the limit, the degraded gauge says so, and both recover by themselves.

use crate::common::*;
use crate::faults::{OwnRedis, Proc, funded_user, pricey_call};
use crate::mock::Mock;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn limited_key(base: &str, user_id: i64, limits: Value) -> String {
    let mut body = json!({ "user_id": user_id, "name": "limited" });
    body.as_object_mut()
        .expect("object")
        .extend(limits.as_object().expect("object").clone());
    let res = TestApp::bare_client()
        .post(format!("{base}/api/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("create key");
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.expect("json")["key"]
        .as_str()
        .expect("key")
        .to_string()
}

/// One call: its status, `x-ratelimit-remaining-requests` if sent, and how long it took.
async fn call(p: &Proc, key: &str, body: &Value) -> (u16, Option<u64>, Duration) {
    let start = Instant::now();
    let res = p.chat(key, body).send().await.expect("call");
    let remaining = res
        .headers()
        .get("x-ratelimit-remaining-requests")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let status = res.status().as_u16();
    let _ = res.bytes().await;
    (status, remaining, start.elapsed())
}

/// `tollgate_ratelimit_degraded` on `p`.
async fn degraded(p: &Proc) -> bool {
    let text = reqwest::get(p.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("tollgate_ratelimit_degraded "))
        .expect("the degraded gauge")
        == "1"
}

async fn wait_degraded(p: &Proc, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while degraded(p).await != want {
        assert!(Instant::now() < deadline, "degraded never became {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn call_body(completion: u64) -> Value {
    let mut body = pricey_call();
    body["max_tokens"] = json!(20);
    body["mock"] = json!({ "chunks": completion });
    body
}

/// 200 calls alternating between two processes on a key of 60 requests per minute: exactly
/// 60 pass (slices never overshoot), the rest are 429 with `Retry-After`, and each process's
/// `x-ratelimit-remaining-requests` counts down. Then a key of 600 tokens per minute, whose
/// calls really use 11 tokens each: what passes never uses more than the limit plus one call's
/// estimate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_holds_across_two_processes_on_one_redis() {
    let storage = Storage::new(Backend::Postgres).await;
    let mock = Mock::start();
    let redis = redis_url();
    let a = Proc::start_custom(&storage, &mock, "", "warn", Some(&redis), "");
    let b = Proc::start_custom(&storage, &mock, "", "warn", Some(&redis), "");
    let (user, _) = funded_user(&a.base, 100_000_000).await;
    let rpm_key = limited_key(&a.base, user, json!({ "rpm": 60 })).await;
    let mut passed = 0;
    let mut last = [u64::MAX, u64::MAX];
    for i in 0..200 {
        let p = if i % 2 == 0 { &a } else { &b };
        let (status, remaining, _) = call(p, &rpm_key, &call_body(2)).await;
        let remaining = remaining.expect("x-ratelimit-remaining-requests on every answer");
        assert!(remaining <= last[i % 2], "counts down on each process");
        last[i % 2] = remaining;
        match status {
            200 => passed += 1,
            429 => {}
            s => panic!("call {i}: status {s}"),
        }
    }
    assert_eq!(passed, 60, "exactly the limit passed across both processes");
    assert_eq!(last, [0, 0]);
    let res = TestApp::bare_client()
        .post(b.url("/v1/chat/completions"))
        .bearer_auth(&rpm_key)
        .json(&call_body(2))
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry));

    let tpm_key = limited_key(&a.base, user, json!({ "tpm": 600 })).await;
    let mut passed = 0u64;
    for i in 0..120 {
        let p = if i % 2 == 0 { &a } else { &b };
        match call(p, &tpm_key, &call_body(10)).await.0 {
            200 => passed += 1,
            429 => {}
            s => panic!("call {i}: status {s}"),
        }
    }
    // Each call uses 1 prompt + 10 completion tokens and reserves about 50.
    assert!(
        passed * 11 <= 600 + 50,
        "{passed} calls of 11 tokens passed a limit of 600"
    );
    assert!(
        passed >= 40,
        "only {passed} calls passed: too much left stranded in slices"
    );
    a.stop();
    b.stop();
    storage.destroy().await;
}

/// Two processes on a Redis of the test's own. Redis is killed mid-load: no call fails, none
/// waits long, each process admits its share (10 of a key's 20 per minute), the degraded gauge
/// is 1 and the warning is logged at most once a second. Redis returns: the gauge goes back to
/// 0 by itself. Then Redis stalls (SIGSTOP), then refuses every write (out of memory): the
/// same, and back after SIGCONT and after memory is allowed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_failing_under_load_costs_nothing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut redis = OwnRedis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let storage = Storage::new(Backend::Postgres).await;
    let mock = Mock::start();
    let a = Proc::start_custom(&storage, &mock, "", "warn", Some(&url), "");
    let b = Proc::start_custom(&storage, &mock, "", "warn", Some(&url), "");
    let (user, _) = funded_user(&a.base, 100_000_000).await;
    let busy = limited_key(
        &a.base,
        user,
        json!({ "rpm": 1_000_000, "tpm": 100_000_000 }),
    )
    .await;
    let small = limited_key(&a.base, user, json!({ "rpm": 20 })).await;
    for i in 0..20 {
        let p = if i % 2 == 0 { &a } else { &b };
        assert_eq!(call(p, &busy, &call_body(2)).await.0, 200);
    }
    assert!(!degraded(&a).await && !degraded(&b).await);
    // Both have announced themselves (every 2 s), so each knows its share is half.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Refusing: every write answered with an error (no memory left for it).
    let max_memory = |bytes: &str| {
        let mut conn = redis::Client::open(url.as_str())
            .expect("url")
            .get_connection()
            .expect("connect");
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(bytes)
            .query::<()>(&mut conn)
            .expect("config set");
    };
    for outage in ["killed", "stalled", "refusing"] {
        match outage {
            "killed" => redis.kill(),
            "stalled" => redis.signal("STOP"),
            _ => max_memory("1"),
        }
        let until = Instant::now() + Duration::from_secs(3);
        let mut slowest = Duration::ZERO;
        let mut calls = 0;
        while Instant::now() < until {
            for p in [&a, &b] {
                let (status, _, took) = call(p, &busy, &call_body(2)).await;
                assert_eq!(status, 200, "redis {outage}: a call failed");
                slowest = slowest.max(took);
                calls += 1;
            }
        }
        assert!(calls > 20, "redis {outage}: only {calls} calls in 3 s");
        assert!(
            slowest < Duration::from_secs(1),
            "redis {outage}: a call took {slowest:?}"
        );
        wait_degraded(&a, true).await;
        wait_degraded(&b, true).await;
        if outage == "killed" {
            // Each process admits its share of the small key's 20, counted in memory.
            let mut passed = [0, 0];
            for i in 0..40 {
                let (status, _, _) =
                    call(if i % 2 == 0 { &a } else { &b }, &small, &call_body(2)).await;
                match status {
                    200 => passed[i % 2] += 1,
                    429 => {}
                    s => panic!("status {s}"),
                }
            }
            assert_eq!(passed, [10, 10], "each process its half of the limit");
            redis = OwnRedis::start(port);
        } else if outage == "stalled" {
            redis.signal("CONT");
        } else {
            max_memory("0");
        }
        wait_degraded(&a, false).await;
        wait_degraded(&b, false).await;
        assert_eq!(call(&a, &busy, &call_body(2)).await.0, 200);
    }
    for p in [&a, &b] {
        let warnings = p
            .output()
            .lines()
            .filter(|l| l.contains("rate limits counted locally"))
            .count();
        // Three outages of a few seconds each, one line a second at most.
        assert!((1..=24).contains(&warnings), "{warnings} warnings logged");
    }
    a.stop();
    b.stop();
    storage.destroy().await;
}
