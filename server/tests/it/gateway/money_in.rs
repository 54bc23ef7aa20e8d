//! Money in: redeem codes (created in batches, credited exactly once under any concurrency and
//! across instances, idempotent, throttled, never stored or logged as text), group multipliers
//! and price versions.

use super::*;
use crate::both_backends;

both_backends!(
    a_code_credits_exactly_once_whatever_the_concurrency,
    redeem_codes_are_listed_voided_and_validated,
    a_replayed_redeem_returns_its_first_answer,
    wrong_codes_are_throttled_per_user,
    failed_redeems_are_throttled_per_ip_across_instances,
    a_group_multiplier_prices_the_next_request,
    a_usage_row_keeps_the_price_version_it_was_charged_at,
    a_code_text_is_never_stored_or_logged,
);

async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = TestApp::bare_client()
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("admin request")
}

/// Creates a batch; returns its JSON (`batch` and `codes`).
async fn batch(app: &TestApp, body: Value) -> Value {
    let res = admin(
        app,
        reqwest::Method::POST,
        "/api/admin/redeem-codes",
        Some(body),
    )
    .await;
    created(res).await
}

async fn redeem(base: &str, key: &str, code: &str, idem: Option<&str>) -> reqwest::Response {
    let mut req = TestApp::bare_client()
        .post(format!("{base}/api/redeem"))
        .bearer_auth(key)
        .json(&json!({ "code": code }));
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.expect("redeem")
}

async fn check(base: &str, key: &str, code: &str) -> reqwest::Response {
    TestApp::bare_client()
        .get(format!("{base}/api/redeem"))
        .query(&[("code", code)])
        .bearer_auth(key)
        .send()
        .await
        .expect("check")
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&app.svc.db.sql(sql))
        .fetch_one(app.svc.db.pool())
        .await
        .expect(sql)
}

async fn user_with_key(app: &TestApp, name: &str) -> (i64, String) {
    let id = app.create_user(name, "some-password", "user").await;
    let key = create_key(app, json!({ "user_id": id, "name": "k" })).await["key"]
        .as_str()
        .expect("key")
        .to_string();
    (id, key)
}

/// 64 concurrent redeems of one code by 8 users, spread over two instances on one database:
/// exactly one credit, to the one user who got 200; every other answer is the same 400.
async fn a_code_credits_exactly_once_whatever_the_concurrency(backend: Backend) {
    let lenient = |c: &mut Config| {
        c.redeem.max_failures_per_ip = 10_000;
        c.redeem.max_failures_per_user = 10_000;
    };
    let a = TestApp::spawn_with(backend, lenient).await;
    let b = TestApp::spawn_on(a.storage.clone(), lenient).await;
    let mut users = Vec::new();
    for n in 0..8 {
        users.push(user_with_key(&a, &format!("user{n}")).await);
    }
    let created = batch(&a, json!({ "count": 3, "value": "2.5", "batch": "launch" })).await;
    let code = created["codes"][0].as_str().expect("code").to_string();
    assert_eq!(created["batch"]["label"], "launch");
    let listed: Value = admin(&a, reqwest::Method::GET, "/api/admin/redeem-batches", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"][0]["label"], "launch");
    assert_eq!(listed["data"][0]["value"], "2.50");
    let calls = (0..64).map(|i| {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (uid, key) = users[i % users.len()].clone();
        let code = code.clone();
        async move {
            let res = redeem(&base, &key, &code, None).await;
            let status = res.status().as_u16();
            let body: Value = res.json().await.expect("json");
            (uid, status, body)
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let winners: Vec<_> = answers.iter().filter(|(_, s, _)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one redeem succeeds");
    for (_, status, body) in answers.iter().filter(|(_, s, _)| *s != 200) {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(body["error"]["param"], "code", "{body}");
    }
    let (winner, _, body) = winners[0];
    assert_eq!(body["amount"], "2.50");
    assert_eq!(body["balance"], "2.50");
    assert_eq!(
        scalar(
            &a,
            "SELECT COUNT(*) FROM ledger WHERE kind = 'credit' AND reference LIKE 'redeem:%'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &a,
            &format!("SELECT balance FROM users WHERE id = {winner}")
        )
        .await,
        2_500_000
    );
    assert_eq!(
        scalar(
            &a,
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM users"
        )
        .await,
        2_500_000,
        "nobody else was credited"
    );
    b.shutdown().await;
    a.stop().await;
}

/// The admin's view of codes and batches: statuses, who used a code, never the code; voiding one
/// code and a batch's unused codes; and every malformed input refused naming its field, with
/// nothing written.
async fn redeem_codes_are_listed_voided_and_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (uid, key) = user_with_key(&app, "carol").await;
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
        + 2;
    let short = batch(
        &app,
        json!({ "count": 2, "value": "1", "expires_at": soon }),
    )
    .await;
    let long = batch(&app, json!({ "count": 4, "value": "0.000001" })).await;
    let codes: Vec<String> = long["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    assert_eq!(codes.len(), 4);
    assert!(
        codes.iter().all(|c| c.starts_with("RC-") && c.len() == 37),
        "{codes:?}"
    );
    let long_id = long["batch"]["id"].as_i64().expect("id");

    // Redeem one (typed in lower case without dashes), void one, then the batch's rest.
    let typed = codes[0].to_lowercase().replace('-', "");
    assert_eq!(redeem(&app.base, &key, &typed, None).await.status(), 200);
    let listed: Value = admin(
        &app,
        Method::GET,
        &format!("/api/admin/redeem-codes?batch={long_id}"),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    let rows = listed["data"].as_array().expect("data");
    assert_eq!(rows.len(), 4);
    let used: Vec<_> = rows.iter().filter(|r| r["status"] == "used").collect();
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["used_by"], uid);
    assert_eq!(used[0]["used_by_name"], "carol");
    assert_eq!(used[0]["prefix"], format!("{}…", &codes[0][..7]));
    let text = listed.to_string();
    for c in &codes {
        assert!(!text.contains(&c[3..]), "a listing never shows a code");
    }
    let unused_id = rows
        .iter()
        .find(|r| r["status"] == "unused")
        .expect("an unused code")["id"]
        .as_i64()
        .expect("id");
    let used_id = used[0]["id"].as_i64().expect("id");
    assert_eq!(
        admin(
            &app,
            Method::POST,
            &format!("/api/admin/redeem-codes/{unused_id}/void"),
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        admin(
            &app,
            Method::POST,
            &format!("/api/admin/redeem-codes/{used_id}/void"),
            None
        )
        .await
        .status(),
        409
    );
    assert_eq!(
        admin(
            &app,
            Method::POST,
            "/api/admin/redeem-codes/999999/void",
            None
        )
        .await
        .status(),
        404
    );
    let voided: Value = admin(
        &app,
        Method::POST,
        &format!("/api/admin/redeem-batches/{long_id}/void"),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(voided["voided"], 2);
    for c in &codes[1..] {
        assert_eq!(
            redeem(&app.base, &key, c, None).await.status(),
            400,
            "a voided code"
        );
    }

    // The short batch expires.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let expired = short["codes"][0].as_str().expect("code");
    let res = redeem(&app.base, &key, expired, None).await;
    assert_eq!(res.status(), 400);
    let batches: Value = admin(&app, Method::GET, "/api/admin/redeem-batches", None)
        .await
        .json()
        .await
        .expect("json");
    let b = &batches["data"];
    assert_eq!(b[0]["id"], long_id, "newest first");
    assert_eq!(
        (
            b[0]["used"].as_i64(),
            b[0]["voided"].as_i64(),
            b[0]["unused"].as_i64()
        ),
        (Some(1), Some(3), Some(0))
    );
    assert_eq!(
        (b[1]["expired"].as_i64(), b[1]["unused"].as_i64()),
        (Some(2), Some(0))
    );
    let expired_list: Value = admin(
        &app,
        Method::GET,
        "/api/admin/redeem-codes?status=expired",
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(expired_list["data"].as_array().expect("data").len(), 2);
    // Paging: one code per page, following the cursor.
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let page: Value = admin(
            &app,
            Method::GET,
            &format!("/api/admin/redeem-codes?limit=1&cursor={cursor}"),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
        seen += page["data"].as_array().expect("data").len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, 6);

    // Bad input: a 400 naming the field, nothing written.
    let before = scalar(&app, "SELECT COUNT(*) FROM redeem_codes").await;
    for (body, field) in [
        (json!({ "count": 0, "value": "1" }), "count"),
        (json!({ "count": 10001, "value": "1" }), "count"),
        (json!({ "count": 1, "value": "0" }), "value"),
        (json!({ "count": 1, "value": "-1" }), "value"),
        (json!({ "count": 1, "value": "1.0000001" }), "value"),
        (json!({ "count": 1, "value": "ten" }), "value"),
        (
            json!({ "count": 1, "value": "1", "expires_at": 1000 }),
            "expires_at",
        ),
        (
            json!({ "count": 1, "value": "1", "batch": "a\nb" }),
            "batch",
        ),
    ] {
        let res = admin(
            &app,
            Method::POST,
            "/api/admin/redeem-codes",
            Some(body.clone()),
        )
        .await;
        assert_eq!(res.status(), 400, "{body}");
        let err: Value = res.json().await.expect("json");
        assert_eq!(err["error"]["param"], field, "{body}: {err}");
    }
    let res = admin(
        &app,
        Method::POST,
        "/api/admin/redeem-codes",
        Some(json!({ "count": 1, "value": "1", "colour": "red" })),
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap_or_default().contains("colour"));
    for (path, field) in [
        ("/api/admin/redeem-codes?status=lost", "status"),
        ("/api/admin/redeem-codes?batch=x", "batch"),
        ("/api/admin/redeem-codes?cursor=abc", "cursor"),
        ("/api/admin/redeem-codes?limit=101", "limit"),
    ] {
        let res = admin(&app, Method::GET, path, None).await;
        assert_eq!(res.status(), 400, "{path}");
        let err: Value = res.json().await.expect("json");
        assert_eq!(err["error"]["param"], field, "{path}");
    }
    assert_eq!(
        admin(
            &app,
            Method::GET,
            "/api/admin/redeem-codes?colour=red",
            None
        )
        .await
        .status(),
        400
    );
    for bad in [
        "",
        "RC-1234",
        "not a code at all",
        &format!("{}Z", codes[1]),
    ] {
        let res = redeem(&app.base, &key, bad, None).await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM redeem_codes").await,
        before
    );
    // The largest batch: 10,000 distinct codes in one transaction.
    let big = batch(
        &app,
        json!({ "count": 10000, "value": "0.01", "batch": "bulk" }),
    )
    .await;
    let mut texts: Vec<&str> = big["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code"))
        .collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), 10_000);
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM redeem_codes").await,
        before + 10_000
    );
    app.stop().await;
}

/// `Idempotency-Key`: a replay answers as the first time and credits nothing more; the same key
/// with another code is a 409 (and that code stays unused). A check says the same of an unknown
/// and a used code.
async fn a_replayed_redeem_returns_its_first_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (uid, key) = user_with_key(&app, "dave").await;
    let created = batch(&app, json!({ "count": 2, "value": "3" })).await;
    let (first, second) = (
        created["codes"][0].as_str().expect("code"),
        created["codes"][1].as_str().expect("code"),
    );
    let check_first: Value = check(&app.base, &key, first)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        check_first,
        json!({ "redeemable": true, "value": "3.00", "expires_at": null })
    );

    let once = redeem(&app.base, &key, first, Some("order-17")).await;
    assert_eq!(once.status(), 200);
    let once: Value = once.json().await.expect("json");
    let again = redeem(&app.base, &key, first, Some("order-17")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.expect("json"), once);
    let other = redeem(&app.base, &key, second, Some("order-17")).await;
    assert_eq!(other.status(), 409);
    assert_eq!(
        scalar(&app, &format!("SELECT balance FROM users WHERE id = {uid}")).await,
        3_000_000
    );
    // Without the key, a used code is refused like any other.
    assert_eq!(redeem(&app.base, &key, first, None).await.status(), 400);

    let used: Value = check(&app.base, &key, first)
        .await
        .json()
        .await
        .expect("json");
    let unknown: Value = check(&app.base, &key, "RC-0000-0000-0000-0000-0000-0000-0000")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(used, unknown, "an unknown and a used code look alike");
    assert_eq!(used["redeemable"], false);
    let second_check: Value = check(&app.base, &key, second)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(second_check["redeemable"], true, "the 409 left it unused");
    // The console redeems through its server function, for the signed-in user.
    let console = TestApp::client();
    assert_eq!(
        app.login(&console, "dave", "some-password").await.status(),
        200
    );
    let res = console
        .post(app.url("/_sfn/me/redeem"))
        .form(&[("code", second)])
        .send()
        .await
        .expect("redeem");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        (body["amount"].as_str(), body["balance"].as_str()),
        (Some("3.00"), Some("6.00"))
    );
    let again = console
        .post(app.url("/_sfn/me/redeem"))
        .form(&[("code", second)])
        .send()
        .await
        .expect("redeem");
    assert_eq!(again.status(), 400);
    // Without an API key: 401.
    let res = TestApp::bare_client()
        .post(app.url("/api/redeem"))
        .json(&json!({ "code": second }))
        .send()
        .await
        .expect("redeem");
    assert_eq!(res.status(), 401);
    app.stop().await;
}

/// Wrong codes count against the user: past the limit even a good code is refused with 429 and
/// `Retry-After`; checks count too. (Shared through Redis on PostgreSQL.)
async fn wrong_codes_are_throttled_per_user(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.redeem.max_failures_per_user = 5;
        c.redeem.failure_window_seconds = 60;
    })
    .await;
    let (_, key) = user_with_key(&app, "eve").await;
    let (_, other_key) = user_with_key(&app, "frank").await;
    let created = batch(&app, json!({ "count": 2, "value": "1" })).await;
    let good = created["codes"][0].as_str().expect("code");
    // A good code does not count.
    assert_eq!(check(&app.base, &key, good).await.status(), 200);
    for n in 0..5 {
        let wrong = format!("RC-0000-0000-0000-0000-0000-0000-000{n}");
        let res = if n % 2 == 0 {
            redeem(&app.base, &key, &wrong, None).await
        } else {
            check(&app.base, &key, &wrong).await
        };
        assert!(
            res.status() == 400 || res.status() == 200,
            "{n}: {}",
            res.status()
        );
    }
    let res = redeem(&app.base, &key, good, None).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"]["type"], "rate_limit_error", "{err}");
    // Another user is not throttled by eve's failures.
    assert_eq!(
        redeem(&app.base, &other_key, good, None).await.status(),
        200
    );
    app.stop().await;
}

/// Failures count per client IP whichever user makes them, and (with Redis, on PostgreSQL)
/// whichever instance they reach.
async fn failed_redeems_are_throttled_per_ip_across_instances(backend: Backend) {
    let tweak = |c: &mut Config| {
        c.redeem.max_failures_per_user = 1_000;
        c.redeem.max_failures_per_ip = 4;
    };
    let a = TestApp::spawn_with(backend, tweak).await;
    // Without Redis each instance counts alone: the shared count is PostgreSQL's (with Redis).
    let b = match backend {
        Backend::Postgres | Backend::Mysql => {
            Some(TestApp::spawn_on(a.storage.clone(), tweak).await)
        }
        Backend::Sqlite => None,
    };
    let other = b.as_ref().map_or(a.base.clone(), |b| b.base.clone());
    let created = batch(&a, json!({ "count": 1, "value": "1" })).await;
    let good = created["codes"][0].as_str().expect("code");
    let mut keys = Vec::new();
    for name in ["ivy", "jon", "kim"] {
        keys.push(user_with_key(&a, name).await.1);
    }
    for (n, (base, key)) in [
        (&a.base, &keys[0]),
        (&other, &keys[1]),
        (&a.base, &keys[0]),
        (&other, &keys[1]),
    ]
    .into_iter()
    .enumerate()
    {
        let wrong = format!("RC-1111-1111-1111-1111-1111-1111-111{n}");
        assert_eq!(redeem(base, key, &wrong, None).await.status(), 400, "{n}");
    }
    let res = redeem(&a.base, &keys[2], good, None).await;
    assert_eq!(
        res.status(),
        429,
        "a fifth failure from one address, by anyone"
    );
    assert!(res.headers().contains_key("retry-after"));
    if let Some(b) = b {
        b.shutdown().await;
    }
    a.stop().await;
}

/// An admin moves a user into a group priced at 1.5: the same call costs 1.5 times as much from
/// the next request; removing the multiplier restores the price. Bad values are refused.
async fn a_group_multiplier_prices_the_next_request(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let flat = || json!({ "model": "flat", "messages": [{ "role": "user", "content": "x" }], "max_tokens": 1 });
    assert_eq!(gw.post("/v1/chat/completions", flat()).await.status(), 200);
    gw.settled(1).await;
    assert_eq!(gw.last_usage().await.0, 100);

    let res = admin(
        &gw.app,
        Method::PUT,
        "/api/admin/groups/gold",
        Some(json!({ "multiplier": "1.5" })),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = admin(
        &gw.app,
        Method::PATCH,
        &format!("/api/admin/users/{}", gw.user_id),
        Some(json!({ "group": "gold" })),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.expect("json")["group"], "gold");
    assert_eq!(gw.post("/v1/chat/completions", flat()).await.status(), 200);
    gw.settled(2).await;
    assert_eq!(gw.last_usage().await.0, 150, "charged at 1.5x");
    let pricing: Value = TestApp::bare_client()
        .get(gw.app.url("/api/pricing"))
        .bearer_auth(&gw.key)
        .send()
        .await
        .expect("pricing")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (pricing["group"].as_str(), pricing["multiplier"].as_str()),
        (Some("gold"), Some("1.5"))
    );
    let flat_price = pricing["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|p| p["model"] == "flat")
        .expect("flat priced");
    assert_eq!(flat_price["per_request"], "0.00015");
    let groups: Value = admin(&gw.app, Method::GET, "/api/admin/groups", None)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        groups
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "gold" && g["multiplier"] == "1.5" && g["source"] == "database"),
        "{groups}"
    );

    assert_eq!(
        admin(&gw.app, Method::DELETE, "/api/admin/groups/gold", None)
            .await
            .status(),
        204
    );
    assert_eq!(
        admin(&gw.app, Method::DELETE, "/api/admin/groups/gold", None)
            .await
            .status(),
        404
    );
    assert_eq!(gw.post("/v1/chat/completions", flat()).await.status(), 200);
    gw.settled(3).await;
    assert_eq!(gw.last_usage().await.0, 100, "back to x1");

    for (path, body, field) in [
        (
            "/api/admin/groups/gold",
            json!({ "multiplier": "abc" }),
            "multiplier",
        ),
        (
            "/api/admin/groups/gold",
            json!({ "multiplier": "1.0001" }),
            "multiplier",
        ),
        (
            "/api/admin/groups/gold",
            json!({ "multiplier": "-1" }),
            "multiplier",
        ),
        (
            "/api/admin/groups/gold",
            json!({ "multiplier": "1001" }),
            "multiplier",
        ),
        (
            "/api/admin/groups/bad%20name",
            json!({ "multiplier": "1" }),
            "group",
        ),
    ] {
        let res = admin(&gw.app, Method::PUT, path, Some(body.clone())).await;
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(
            res.json::<Value>().await.expect("json")["error"]["param"],
            field,
            "{body}"
        );
    }
    let user = format!("/api/admin/users/{}", gw.user_id);
    for (body, field) in [
        (json!({ "group": "" }), "group"),
        (json!({ "group": "a b" }), "group"),
        (json!({}), "role"),
    ] {
        let res = admin(&gw.app, Method::PATCH, &user, Some(body.clone())).await;
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(
            res.json::<Value>().await.expect("json")["error"]["param"],
            field,
            "{body}"
        );
    }
    assert_eq!(
        admin(
            &gw.app,
            Method::PATCH,
            &user,
            Some(json!({ "role": "owner" }))
        )
        .await
        .status(),
        400
    );
    assert_eq!(
        admin(
            &gw.app,
            Method::PATCH,
            &user,
            Some(json!({ "colour": "red" }))
        )
        .await
        .status(),
        400
    );
    assert_eq!(
        admin(
            &gw.app,
            Method::PATCH,
            "/api/admin/users/999999",
            Some(json!({ "group": "x" }))
        )
        .await
        .status(),
        404
    );
    // Promote and demote; the last administrator cannot be demoted.
    let res = admin(
        &gw.app,
        Method::PATCH,
        &user,
        Some(json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(res.json::<Value>().await.expect("json")["role"], "admin");
    let res = admin(
        &gw.app,
        Method::PATCH,
        &user,
        Some(json!({ "role": "user" })),
    )
    .await;
    assert_eq!(res.status(), 200);
    let admin_id = scalar(&gw.app, "SELECT id FROM users WHERE username = 'admin'").await;
    let res = admin(
        &gw.app,
        Method::PATCH,
        &format!("/api/admin/users/{admin_id}"),
        Some(json!({ "role": "user" })),
    )
    .await;
    assert_eq!(res.status(), 400);
    gw.stop().await;
}

/// A price change adds a version; each usage row keeps the version it was charged at.
async fn a_usage_row_keeps_the_price_version_it_was_charged_at(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let flat = || json!({ "model": "flat", "messages": [{ "role": "user", "content": "x" }], "max_tokens": 1 });
    assert_eq!(gw.post("/v1/chat/completions", flat()).await.status(), 200);
    let res = admin(
        &gw.app,
        Method::PUT,
        "/api/admin/prices/flat",
        Some(json!({ "input_per_1m": "0", "output_per_1m": "0", "per_request": "0.0003" })),
    )
    .await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert_eq!(gw.post("/v1/chat/completions", flat()).await.status(), 200);
    gw.settled(2).await;
    let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
        &gw.app
            .svc
            .db
            .sql("SELECT cost, price_version FROM usage_logs WHERE user_id = $1 ORDER BY id"),
    )
    .bind(gw.user_id)
    .fetch_all(gw.app.svc.db.pool())
    .await
    .expect("rows");
    assert_eq!(rows, vec![(100, Some(1)), (300, Some(2))]);
    gw.stop().await;
}

/// A real process logging at debug: after a batch is created, checked and redeemed (with an
/// idempotency key), the code's text is in no table (SQLite: not in the file's bytes at all)
/// and in no log line.
async fn a_code_text_is_never_stored_or_logged(backend: Backend) {
    use crate::faults::Proc;
    let storage = Storage::new(backend).await;
    let mock = Mock::start();
    let proc = Proc::start_logging(&storage, &mock, "", "debug");
    let client = TestApp::bare_client();
    let post = |path: &str, body: Value| {
        client
            .post(proc.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let user: Value = post(
        "/api/admin/users",
        json!({ "username": "gina", "password": "gina-password" }),
    )
    .await
    .expect("user")
    .json()
    .await
    .expect("json");
    let key: Value = post(
        "/api/admin/keys",
        json!({ "user_id": user["id"], "name": "k" }),
    )
    .await
    .expect("key")
    .json()
    .await
    .expect("json");
    let key = key["key"].as_str().expect("key").to_string();
    let created: Value = post(
        "/api/admin/redeem-codes",
        json!({ "count": 2, "value": "1" }),
    )
    .await
    .expect("batch")
    .json()
    .await
    .expect("json");
    let codes: Vec<String> = created["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    assert_eq!(check(&proc.base, &key, &codes[0]).await.status(), 200);
    assert_eq!(
        redeem(&proc.base, &key, &codes[0], Some("once"))
            .await
            .status(),
        200
    );
    assert_eq!(
        redeem(&proc.base, &key, &codes[0], None).await.status(),
        400
    );
    let forms = |c: &str| [c.to_string(), c.replace('-', ""), c[3..].replace('-', "")];
    match backend {
        Backend::Sqlite => {
            let file = storage
                .db_url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .expect("path")
                .to_string();
            let mut bytes = Vec::new();
            for f in [file.clone(), format!("{file}-wal")] {
                bytes.extend(std::fs::read(&f).unwrap_or_default());
            }
            assert!(bytes.len() > 4096, "read the database file");
            let text = String::from_utf8_lossy(&bytes);
            for c in &codes {
                for form in forms(c) {
                    assert!(
                        !text.contains(&form),
                        "a code's text is in the database file"
                    );
                }
            }
        }
        Backend::Mysql => {
            use sqlx::Row as _;
            let pool = sqlx::MySqlPool::connect(&storage.db_url)
                .await
                .expect("mysql");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE()",
            )
            .fetch_all(&pool)
            .await
            .expect("tables");
            assert!(tables.iter().any(|t| t == "redeem_codes"));
            for t in tables {
                let rows = sqlx::query(&format!("SELECT * FROM `{t}`"))
                    .fetch_all(&pool)
                    .await
                    .expect("rows");
                let mut all = String::new();
                for r in &rows {
                    for i in 0..r.len() {
                        if let Ok(Some(text)) = r.try_get::<Option<String>, _>(i) {
                            all.push_str(&text);
                        } else if let Ok(Some(bytes)) = r.try_get::<Option<Vec<u8>>, _>(i) {
                            all.push_str(&String::from_utf8_lossy(&bytes));
                        }
                        all.push('\n');
                    }
                }
                for c in &codes {
                    for form in forms(c) {
                        assert!(!all.contains(&form), "a code's text is in table {t}");
                    }
                }
            }
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&storage.db_url).await.expect("pg");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(&pool)
            .await
            .expect("tables");
            assert!(tables.iter().any(|t| t == "redeem_codes"));
            for t in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT CAST(t AS TEXT) FROM \"{t}\" t"))
                        .fetch_all(&pool)
                        .await
                        .expect("rows");
                let all = rows.join("\n");
                for c in &codes {
                    for form in forms(c) {
                        assert!(!all.contains(&form), "a code's text is in table {t}");
                    }
                }
            }
            pool.close().await;
        }
    }
    let log = proc.output();
    assert!(log.contains("redeem code used"), "the redeem was logged");
    for c in &codes {
        for form in forms(c) {
            assert!(!log.contains(&form), "a code's text is in the log");
        }
    }
    proc.stop();
    storage.destroy().await;
}
