//! Revocation across instances: with Redis, a change on one instance reaches every other
//! instance's key cache within a second (not the cache's 5 s).

use super::*;

async fn models_status(base: &str, key: &str) -> u16 {
    TestApp::bare_client()
        .get(format!("{base}/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .expect("models")
        .status()
        .as_u16()
}

/// How long until `base` refuses `key` (401), polling every 20 ms for at most 6 s.
async fn refused_within(base: &str, key: &str) -> Duration {
    answers_within(base, key, 401).await
}

/// How long until `base` answers `key` with `status`, polling every 20 ms for at most 6 s.
async fn answers_within(base: &str, key: &str, status: u16) -> Duration {
    let start = Instant::now();
    while models_status(base, key).await != status {
        assert!(start.elapsed() < Duration::from_secs(6), "never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

async fn admin_post(app: &TestApp, path: &str, body: Value) {
    let res = app.admin(Method::POST, path, Some(body)).await;
    assert_eq!(res.status(), 200, "{path}");
}

/// A key disabled on instance A, and a user disabled on A, are refused on instance B within a
/// second, although B had them cached; on A at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_instance_within_a_second() {
    let gw = Gw::start(Backend::Postgres, "1", |_, _| {}).await;
    let a = &gw.app;
    let b = TestApp::spawn_on(a.storage.clone(), |c| base_config(c, &gw.mock)).await;
    let key_id =
        sqlx::query_scalar::<_, i64>(&a.svc.db.sql("SELECT id FROM api_keys WHERE user_id = $1"))
            .bind(gw.user_id)
            .fetch_one(a.svc.db.pool())
            .await
            .expect("key id");
    // Both instances have the key cached.
    assert_eq!(models_status(&a.base, &gw.key).await, 200);
    assert_eq!(models_status(&b.base, &gw.key).await, 200);
    admin_post(
        a,
        &format!("/api/admin/keys/{key_id}/status"),
        json!({ "status": "disabled" }),
    )
    .await;
    assert_eq!(models_status(&a.base, &gw.key).await, 401, "at once on A");
    let took = refused_within(&b.base, &gw.key).await;
    assert!(
        took < Duration::from_secs(1),
        "B refused the key after {took:?}"
    );

    // A key whose IP allowlist is changed on A (PATCH): B refuses it within a second too.
    let third = create_key(a, json!({ "user_id": gw.user_id, "name": "third" })).await;
    let (third_id, third) = (
        third["id"].as_i64().expect("id"),
        third["key"].as_str().expect("key").to_string(),
    );
    assert_eq!(models_status(&b.base, &third).await, 200);
    let path = format!("/api/admin/keys/{third_id}");
    let res = (a)
        .admin(
            Method::PATCH,
            &path,
            Some(json!({ "allowed_ips": ["10.9.9.9"] })),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(models_status(&a.base, &third).await, 403, "at once on A");
    let took = answers_within(&b.base, &third, 403).await;
    assert!(
        took < Duration::from_secs(1),
        "B applied the new allowlist after {took:?}"
    );

    // A second key of the same user; then the user is disabled on A.
    let other = create_key(a, json!({ "user_id": gw.user_id, "name": "other" })).await["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(models_status(&a.base, &other).await, 200);
    assert_eq!(models_status(&b.base, &other).await, 200);
    admin_post(
        a,
        &format!("/api/admin/users/{}/status", gw.user_id),
        json!({ "status": "disabled" }),
    )
    .await;
    assert_eq!(models_status(&a.base, &other).await, 401, "at once on A");
    let took = refused_within(&b.base, &other).await;
    assert!(
        took < Duration::from_secs(1),
        "B refused the user's key after {took:?}"
    );
    b.shutdown().await;
    gw.stop().await;
}
