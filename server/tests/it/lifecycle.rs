//! What the admin API and time do to keys, channels, mappings, prices and sessions, and what a
//! drain does to readiness and to a call in flight: behaviour that exists, each with a check
//! that fails without it.

use crate::both_backends;
use crate::common::*;
use crate::gateway::{Gw, create_key};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

both_backends!(
    a_key_past_its_expiry_is_refused,
    allowed_ips_admit_only_the_listed_addresses,
    allowed_models_refuse_a_call_for_another_model,
    a_deleted_key_is_refused_at_once,
    deleting_a_mapping_or_a_price_stops_serving_it,
    a_price_change_is_a_new_version_that_charges_from_then_on,
    sessions_end_when_idle_or_old_and_are_purged,
    a_call_inside_the_drain_window_finishes_and_readiness_says_draining,
);

fn chat(model: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] })
}

async fn call(gw: &Gw, key: &str, path: &str, body: &Value) -> reqwest::Response {
    TestApp::bare_client()
        .post(gw.app.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("call")
}

fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    TestApp::bare_client()
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN)
}

async fn a_key_past_its_expiry_is_refused(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let expires = service::now_ms() + 1_500;
    let key = create_key(
        &gw.app,
        json!({ "user_id": gw.user_id, "name": "short", "expires_at": expires }),
    )
    .await["key"]
        .as_str()
        .expect("key")
        .to_string();
    let body = chat("gpt-4o-mini");
    assert_eq!(
        call(&gw, &key, "/v1/chat/completions", &body)
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let res = call(&gw, &key, "/v1/chat/completions", &body).await;
    assert_eq!(res.status(), 401);
    let err: Value = res.json().await.expect("json");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{err}"
    );
    gw.stop().await;
}

/// A key with an IP allowlist: the listed network passes, another is refused; behind a trusted
/// load balancer (`server.trust_forwarded_for`) the first `X-Forwarded-For` hop is the client.
async fn allowed_ips_admit_only_the_listed_addresses(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, _| c.server.trust_forwarded_for = true).await;
    let key_for = |nets: &'static [&'static str]| {
        let gw = &gw;
        async move {
            create_key(
                &gw.app,
                json!({ "user_id": gw.user_id, "name": "ip", "allowed_ips": nets }),
            )
            .await["key"]
                .as_str()
                .expect("key")
                .to_string()
        }
    };
    let local = key_for(&["127.0.0.1/32"]).await;
    let office = key_for(&["10.0.0.0/8"]).await;
    let body = chat("gpt-4o-mini");
    let send = |key: String, forwarded: Option<&'static str>| {
        let mut req = TestApp::bare_client()
            .post(gw.app.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body);
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        async move { req.send().await.expect("call").status().as_u16() }
    };
    assert_eq!(send(local.clone(), None).await, 200);
    assert_eq!(send(office.clone(), None).await, 403);
    assert_eq!(send(office.clone(), Some("10.1.2.3, 192.0.2.1")).await, 200);
    assert_eq!(send(local, Some("10.1.2.3")).await, 403);
    gw.stop().await;
}

async fn allowed_models_refuse_a_call_for_another_model(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let key = create_key(
        &gw.app,
        json!({ "user_id": gw.user_id, "name": "embed-only",
                "allowed_models": ["text-embedding-3-small"] }),
    )
    .await["key"]
        .as_str()
        .expect("key")
        .to_string();
    let res = call(&gw, &key, "/v1/chat/completions", &chat("gpt-4o-mini")).await;
    assert_eq!(res.status(), 403);
    let res = call(
        &gw,
        &key,
        "/v1/embeddings",
        &json!({ "model": "text-embedding-3-small", "input": "hi" }),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        gw.mock.requests().await.len(),
        1,
        "the refused call went nowhere"
    );
    gw.stop().await;
}

async fn a_deleted_key_is_refused_at_once(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let created = create_key(&gw.app, json!({ "user_id": gw.user_id, "name": "gone" })).await;
    let key = created["key"].as_str().expect("key");
    let id = created["id"].as_i64().expect("id");
    let body = chat("gpt-4o-mini");
    assert_eq!(
        call(&gw, key, "/v1/chat/completions", &body).await.status(),
        200
    );
    let res = admin(
        &gw.app,
        reqwest::Method::DELETE,
        &format!("/api/admin/keys/{id}"),
    )
    .send()
    .await
    .expect("delete");
    assert_eq!(res.status(), 204);
    assert_eq!(
        call(&gw, key, "/v1/chat/completions", &body).await.status(),
        401
    );
    gw.stop().await;
}

async fn deleting_a_mapping_or_a_price_stops_serving_it(backend: Backend) {
    use reqwest::Method;
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let res = admin(&gw.app, Method::PUT, "/api/admin/model-mappings/alias")
        .json(&json!({ "targets": ["gpt-4o-mini"] }))
        .send()
        .await
        .expect("mapping");
    assert_eq!(res.status(), 200);
    assert_eq!(
        call(&gw, &gw.key, "/v1/chat/completions", &chat("alias"))
            .await
            .status(),
        200
    );
    let res = admin(&gw.app, Method::DELETE, "/api/admin/model-mappings/alias")
        .send()
        .await
        .expect("delete mapping");
    assert_eq!(res.status(), 204);
    assert_eq!(
        call(&gw, &gw.key, "/v1/chat/completions", &chat("alias"))
            .await
            .status(),
        404
    );
    let res = admin(&gw.app, Method::DELETE, "/api/admin/prices/gpt-4o-mini")
        .send()
        .await
        .expect("delete price");
    assert_eq!(res.status(), 204);
    let res = call(&gw, &gw.key, "/v1/chat/completions", &chat("gpt-4o-mini")).await;
    assert_eq!(res.status(), 403, "a model without a price is not served");
    assert_eq!(gw.mock.requests().await.len(), 1);
    gw.stop().await;
}

async fn a_price_change_is_a_new_version_that_charges_from_then_on(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let put = |input: &'static str| {
        admin(
            &gw.app,
            reqwest::Method::PUT,
            "/api/admin/prices/gpt-4o-mini",
        )
        .json(&json!({ "input_per_1m": input, "output_per_1m": "0.60" }))
        .send()
    };
    let same: Value = put("0.15").await.expect("same").json().await.expect("json");
    assert_eq!(same["version"], 1, "the same price keeps its version");
    let changed: Value = put("150")
        .await
        .expect("change")
        .json()
        .await
        .expect("json");
    assert_eq!(changed["version"], 2);
    assert_eq!(
        call(&gw, &gw.key, "/v1/chat/completions", &chat("gpt-4o-mini"))
            .await
            .status(),
        200
    );
    gw.settled(1).await;
    let (version, cost): (i64, i64) = sqlx::query_as(
        &gw.app
            .svc
            .db
            .sql("SELECT price_version, cost FROM usage_logs WHERE user_id = $1"),
    )
    .bind(gw.user_id)
    .fetch_one(gw.app.svc.db.pool())
    .await
    .expect("row");
    // One prompt token ("hi") at $150/1M = 150 units, plus one output token ... at $0.60/1M.
    assert_eq!(version, 2);
    assert!(cost >= 150, "charged at the new price: {cost}");

    // The history: both versions, newest first, only the new one charged.
    let history: Value = admin(
        &gw.app,
        reqwest::Method::GET,
        "/api/admin/prices/gpt-4o-mini",
    )
    .send()
    .await
    .expect("history")
    .json()
    .await
    .expect("json");
    let versions: Vec<(i64, &str, bool)> = history
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().expect("version"),
                v["input_per_1m"].as_str().expect("usd"),
                v["active"].as_bool().expect("active"),
            )
        })
        .collect();
    assert_eq!(versions, [(2, "150.00", true), (1, "0.15", false)]);
    assert!(
        history[0]["created_at"].as_i64().expect("ms")
            >= history[1]["created_at"].as_i64().expect("ms")
    );
    let res = admin(
        &gw.app,
        reqwest::Method::GET,
        "/api/admin/prices/never-priced",
    )
    .send()
    .await
    .expect("none");
    assert_eq!(res.status(), 404);
    gw.stop().await;
}

/// A session unused for longer than the idle timeout, or older than the absolute one, no longer
/// signs anyone in; the housekeeping purge removes expired sessions.
async fn sessions_end_when_idle_or_old_and_are_purged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = app.svc.db.pool().clone();
    let idle_ms = i64::try_from(app.svc.config.session.idle_timeout_minutes * 60_000).expect("ms");
    let signed_in = |client: reqwest::Client| {
        let url = app.url("/api/admin/users");
        async move {
            client
                .get(url)
                .send()
                .await
                .expect("users")
                .status()
                .as_u16()
        }
    };
    for (what, sql) in [
        (
            "idle",
            "UPDATE sessions SET last_seen_at = last_seen_at - $1",
        ),
        ("old", "UPDATE sessions SET expires_at = $1"),
    ] {
        let client = TestApp::client();
        assert_eq!(
            app.login(&client, "admin", ADMIN_PASSWORD).await.status(),
            200
        );
        assert_eq!(signed_in(client.clone()).await, 200, "{what}");
        let arg = if what == "idle" {
            idle_ms + 60_000
        } else {
            service::now_ms() - 1
        };
        sqlx::query(&app.svc.db.sql(sql))
            .bind(arg)
            .execute(&db)
            .await
            .expect(sql);
        assert_eq!(signed_in(client).await, 401, "{what} session");
    }
    let client = TestApp::client();
    assert_eq!(
        app.login(&client, "admin", ADMIN_PASSWORD).await.status(),
        200
    );
    sqlx::query(&app.svc.db.sql("UPDATE sessions SET expires_at = $1"))
        .bind(service::now_ms() - 1)
        .execute(&db)
        .await
        .expect("expire");
    let purged = service::accounts::purge_expired_sessions(&app.svc)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(left, 0);
    app.stop().await;
}

/// A drain refuses readiness at once, and a call already in flight finishes inside the drain
/// window: answered, charged and logged before the instance stops.
async fn a_call_inside_the_drain_window_finishes_and_readiness_says_draining(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let client = TestApp::bare_client();
    assert_eq!(
        client
            .get(gw.app.url("/readyz"))
            .send()
            .await
            .expect("ready")
            .status(),
        200
    );
    let slow = {
        let url = gw.app.url("/v1/chat/completions");
        let key = gw.key.clone();
        tokio::spawn(async move {
            TestApp::bare_client()
                .post(url)
                .bearer_auth(key)
                .json(
                    &json!({ "model": "gpt-4o-mini", "mock": { "delay_ms": 1_000 },
                               "messages": [{ "role": "user", "content": "hi" }] }),
                )
                .send()
                .await
                .expect("slow call")
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.app.svc.shutdown.trigger();
    let ready = client
        .get(gw.app.url("/readyz"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 503, "draining");
    let user = gw.user_id;
    let started = Instant::now();
    let storage = gw.app.shutdown().await;
    assert_eq!(
        slow.await.expect("task"),
        200,
        "the call in flight finished"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "within the drain window"
    );
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&storage.db_url).await.expect("pool");
    let dialect = service::db::Backend::of_url(&storage.db_url).expect("backend");
    let (rows, charged): (i64, i64) = sqlx::query_as(&dialect.sql(
        "SELECT COUNT(*), CAST(COALESCE(SUM(cost), 0) AS BIGINT) FROM usage_logs WHERE user_id = $1",
    ))
    .bind(user)
    .fetch_one(&pool)
    .await
    .expect("rows");
    assert_eq!(rows, 1);
    let spent: i64 = sqlx::query_scalar(&dialect.sql(
        "SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) FROM ledger WHERE user_id = $1 AND kind = 'charge'",
    ))
    .bind(user)
    .fetch_one(&pool)
    .await
    .expect("charges");
    assert!(charged > 0, "the call was charged");
    assert_eq!(spent, charged, "logged and charged before the stop");
    pool.close().await;
    storage.destroy().await;
}

/// A channel written through the admin API on one instance serves on another (within the
/// catalog poll), and disabling or deleting it there stops it there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_written_on_one_instance_route_calls_on_another() {
    use reqwest::Method;
    let gw = Gw::start(Backend::Postgres, "1", |_, _| {}).await;
    let other = TestApp::spawn_on(gw.app.storage.clone(), |c| {
        crate::gateway::base_config(c, &gw.mock);
        c.channels.clear();
    })
    .await;
    let res = admin(&gw.app, Method::PUT, "/api/admin/prices/fresh")
        .json(&json!({ "input_per_1m": "0.15", "output_per_1m": "0.60" }))
        .send()
        .await
        .expect("price");
    assert_eq!(res.status(), 200);
    let res = admin(&gw.app, Method::POST, "/api/admin/channels")
        .json(&json!({ "name": "fresh", "base_url": gw.mock.url(""), "models": ["fresh"] }))
        .send()
        .await
        .expect("channel");
    assert_eq!(res.status(), 201);
    let channel: Value = res.json().await.expect("json");
    let id = channel["id"].as_i64().expect("id");
    assert_eq!(channel["has_api_key"], false, "{channel}");
    let on_other = |want: u16| {
        let url = other.url("/v1/chat/completions");
        let key = gw.key.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(8);
            loop {
                let got = TestApp::bare_client()
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&chat("fresh"))
                    .send()
                    .await
                    .expect("call")
                    .status()
                    .as_u16();
                if got == want {
                    return;
                }
                assert!(Instant::now() < deadline, "wanted {want}, still {got}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    on_other(200).await;
    let res = admin(&gw.app, Method::PUT, &format!("/api/admin/channels/{id}"))
        .json(
            &json!({ "name": "fresh", "base_url": gw.mock.url(""), "models": ["fresh"],
                       "enabled": false }),
        )
        .send()
        .await
        .expect("disable");
    assert_eq!(res.status(), 200);
    on_other(404).await;
    let res = admin(&gw.app, Method::PUT, &format!("/api/admin/channels/{id}"))
        .json(&json!({ "name": "fresh", "base_url": gw.mock.url(""), "models": ["fresh"] }))
        .send()
        .await
        .expect("enable");
    assert_eq!(res.status(), 200);
    on_other(200).await;
    let res = admin(
        &gw.app,
        Method::DELETE,
        &format!("/api/admin/channels/{id}"),
    )
    .send()
    .await
    .expect("delete");
    assert_eq!(res.status(), 204);
    on_other(404).await;
    other.shutdown().await;
    gw.stop().await;
}
