//! Money under concurrency: bursts that never overdraw, shared top-ups, two instances on one
//! balance, a key's spend cap.

use super::*;
use crate::both_backends;

both_backends!(
    concurrent_spends_never_overdraw_the_balance,
    a_burst_on_an_idle_account_shares_its_top_ups,
    a_burst_resuming_after_a_pause_starts_from_its_last_rate,
    a_key_spend_cap_is_enforced_like_the_balance,
);

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
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::Mysql] {
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
    let spent: i64 = sqlx::query_scalar(
        &gw.app
            .svc
            .db
            .sql("SELECT spent FROM api_keys WHERE id = $1"),
    )
    .bind(capped["id"].as_i64().expect("id"))
    .fetch_one(gw.app.svc.db.pool())
    .await
    .expect("spent");
    assert_eq!(spent, 300);
    gw.stop().await;
}
