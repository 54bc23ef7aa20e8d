//! Reading money and usage back: call logs (numbered and keyset pages, filters, two users kept
//! apart), hourly aggregates that equal the raw rows, the ledger, the billing endpoints chat
//! clients read, the price table and the models list.

use super::*;
use crate::both_backends;

both_backends!(
    usage_reads_are_exact_and_private,
    billing_endpoints_add_up_for_chat_clients,
    only_callable_models_are_listed_and_priced,
    bad_read_parameters_are_refused_naming_the_field,
    read_quotas_refuse_a_polling_key,
    calls_export_as_csv_streamed_whole_and_private,
    status_reports_each_models_success_and_latency,
    the_call_log_page_is_drawn_from_its_query,
);

fn chat(extra: Value) -> Value {
    let mut body = json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hello there world" }] });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

async fn get_json(url: String, key: &str) -> (u16, Value) {
    let res = TestApp::bare_client()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("get");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json"))
}

async fn call(app: &TestApp, key: &str, path: &str, body: Value) -> u16 {
    let res = TestApp::bare_client()
        .post(app.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("call");
    let status = res.status().as_u16();
    let _ = res.bytes().await;
    status
}

async fn rows_of(app: &TestApp, user: i64) -> i64 {
    sqlx::query_scalar::<_, i64>(
        &app.svc
            .db
            .sql("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1"),
    )
    .bind(user)
    .fetch_one(app.svc.db.pool())
    .await
    .expect("count")
}

type Sums = Vec<(i64, i64, i64, String, i64, i64, i64, i64, i64, i64)>;

async fn sums(app: &TestApp, sql: &str) -> Sums {
    sqlx::query_as(&app.svc.db.sql(sql))
        .fetch_all(app.svc.db.pool())
        .await
        .expect(sql)
}

/// A mixed load from two users (plain calls, streams with and without upstream usage, a cut
/// stream, refused calls, embeddings, two keys): the aggregates equal the raw rows; each user's
/// reads hold only their rows; pages and filters add up.
async fn usage_reads_are_exact_and_private(backend: Backend) {
    let gw = Gw::start(backend, "10", |_, _| {}).await;
    let app = &gw.app;
    let key2 = create_key(app, json!({ "user_id": gw.user_id, "name": "second" })).await;
    let key2_id = key2["id"].as_i64().expect("id");
    let key2 = key2["key"].as_str().expect("key").to_string();
    let bob = app.create_user("bob", "bob-password", "user").await;
    credit(app, bob, "5").await;
    let bob_key = create_key(app, json!({ "user_id": bob, "name": "bob" })).await["key"]
        .as_str()
        .expect("key")
        .to_string();

    let mut expect = 0;
    for body in [
        chat(json!({})),
        chat(json!({})),
        chat(json!({ "stream": true, "stream_options": { "include_usage": true } })),
        chat(json!({ "stream": true, "mock": { "omit_usage": true } })),
        chat(json!({ "stream": true, "mock": { "cut_after": 2, "chunks": 5 } })),
        chat(json!({ "mock": { "status": 400 } })),
        chat(json!({ "mock": { "status": 400 } })),
    ] {
        call(app, &gw.key, "/v1/chat/completions", body).await;
        expect += 1;
    }
    assert_eq!(
        call(
            app,
            &gw.key,
            "/v1/embeddings",
            json!({ "model": "text-embedding-3-small", "input": "one two" })
        )
        .await,
        200
    );
    expect += 1;
    for _ in 0..2 {
        assert_eq!(
            call(app, &key2, "/v1/chat/completions", chat(json!({}))).await,
            200
        );
        expect += 1;
    }
    for _ in 0..3 {
        assert_eq!(
            call(app, &bob_key, "/v1/chat/completions", chat(json!({}))).await,
            200
        );
    }
    gw.settled(expect).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows_of(app, bob).await < 3 {
        assert!(Instant::now() < deadline, "bob's rows");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The aggregates are the raw rows, summed.
    let raw = sums(
        app,
        "SELECT user_id, created_at - created_at % 3600000 AS hour, COALESCE(key_id, 0) AS key_id, model, \
         COUNT(*), CAST(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(prompt_tokens) AS BIGINT), \
         CAST(SUM(completion_tokens) AS BIGINT), CAST(SUM(cached_tokens) AS BIGINT), CAST(SUM(cost) AS BIGINT) \
         FROM usage_logs GROUP BY user_id, created_at - created_at % 3600000, COALESCE(key_id, 0), model \
         ORDER BY 1, 2, 3, 4",
    )
    .await;
    let agg = sums(
        app,
        "SELECT user_id, hour, key_id, model, requests, failures, prompt_tokens, completion_tokens, \
         cached_tokens, cost FROM usage_hourly ORDER BY 1, 2, 3, 4",
    )
    .await;
    assert_eq!(agg, raw);
    assert!(
        raw.iter().any(|r| r.5 == 2),
        "the refused calls are counted as failures"
    );
    let sources: Vec<String> = sqlx::query_scalar(
        &app.svc
            .db
            .sql("SELECT DISTINCT usage_source FROM usage_logs"),
    )
    .fetch_all(app.svc.db.pool())
    .await
    .expect("sources");
    for s in ["upstream", "estimated", "partial"] {
        assert!(sources.iter().any(|x| x == s), "{s} in {sources:?}");
    }

    // `/api/logs`: only the key owner's calls, newest first, in pages that add up.
    let logs = |q: &str, key: &str| {
        let (url, key) = (app.url(&format!("/api/logs?{q}")), key.to_string());
        async move { get_json(url, &key).await }
    };
    let (status, all) = logs("page_size=100", &gw.key).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["meta"]["total"], expect);
    let data = all["data"].as_array().expect("data");
    assert_eq!(data.len() as i64, expect);
    assert!(data.iter().all(|r| r["user_id"] == gw.user_id));
    let times: Vec<i64> = data
        .iter()
        .map(|r| r["created_at"].as_i64().expect("t"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let (_, p1) = logs("page=1&page_size=4", &gw.key).await;
    let (_, p3) = logs("page=3&page_size=4", &gw.key).await;
    assert_eq!(
        p1["meta"],
        json!({ "current_page": 1, "page_size": 4, "total": expect, "total_pages": 3 })
    );
    assert_eq!(p1["data"][0], data[0]);
    assert_eq!(p3["data"].as_array().expect("data").len(), 2);
    assert_eq!(p3["data"][1], data[9]);
    for (q, n) in [
        ("model=text-embedding-3-small", 1),
        ("status=error", 2),
        ("status=400", 2),
        ("status=success", expect - 2),
        (&format!("key_id={key2_id}"), 2),
        ("from=0", expect),
        (&format!("to={}", times[times.len() - 1] / 1000), 0),
        (&format!("from={}", times[0] / 1000 + 3600), 0),
        (
            &format!(
                "from={}&to={}",
                times[times.len() - 1] / 1000,
                times[0] / 1000 + 1
            ),
            expect,
        ),
    ] {
        let (status, page) = logs(q, &gw.key).await;
        assert_eq!(status, 200, "{q}: {page}");
        assert_eq!(page["meta"]["total"], n, "{q}");
        let rows = page["data"].as_array().expect("data").len() as i64;
        assert_eq!(rows, n.min(20), "{q}");
    }
    let (_, bobs) = logs("", &bob_key).await;
    assert_eq!(bobs["meta"]["total"], 3);
    // The billing endpoints of bob's key count bob's calls only.
    let bob_cost: i64 = sqlx::query_scalar(
        &app.svc
            .db
            .sql("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_logs WHERE user_id = $1"),
    )
    .bind(bob)
    .fetch_one(app.svc.db.pool())
    .await
    .expect("cost");
    let (_, usage) = get_json(app.url("/v1/dashboard/billing/usage"), &bob_key).await;
    assert!(
        (usage["total_usage"].as_f64().expect("cents") - bob_cost as f64 / 1e4).abs() < 1e-9,
        "{usage}"
    );
    let (_, credits) = get_json(app.url("/v1/credits"), &bob_key).await;
    assert!(
        (credits["total_used"].as_f64().expect("usd") - bob_cost as f64 / 1e6).abs() < 1e-9,
        "{credits}"
    );
    assert!(
        bobs["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|r| r["user_id"] == bob)
    );

    // Administrators: everyone's calls in keyset pages, or one user's; any user's ledger.
    let admin_get = |path: String| async move {
        let res = TestApp::bare_client()
            .get(app.url(&path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("admin get");
        assert_eq!(res.status(), 200, "{path}");
        res.json::<Value>().await.expect("json")
    };
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = admin_get(format!("/api/admin/logs?limit=4&cursor={cursor}")).await;
        ids.extend(
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|r| r["id"].as_i64().expect("id")),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        (ids.len(), unique.len()),
        (expect as usize + 3, expect as usize + 3)
    );
    let only_bob = admin_get(format!("/api/admin/logs?user_id={bob}")).await;
    assert_eq!(only_bob["data"].as_array().expect("data").len(), 3);
    let ledger = admin_get(format!("/api/admin/users/{bob}/ledger")).await;
    let entries = ledger["data"].as_array().expect("data");
    assert!(entries.iter().all(|e| e["user_id"] == bob));
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "adjustment" && e["amount"] == "5.00"),
        "{ledger}"
    );
    assert!(entries.iter().any(|e| e["kind"] == "charge"), "{ledger}");

    // The console's server functions read the signed-in user's own rows.
    let alice = TestApp::client();
    assert_eq!(
        app.login(&alice, "alice", "alice-password").await.status(),
        200
    );
    let sfn = |name: &str, form: &[(&str, &str)]| {
        alice
            .post(app.url(&format!("/_sfn/me/{name}")))
            .form(form)
            .send()
    };
    // The call-log page, drawn for a client-side visit from the page's query string: alice's
    // calls only, whatever user the URL names.
    let logs = |query: String| async move {
        let res = sfn("logs", &[("query", &query)]).await.expect("logs");
        assert_eq!(res.status(), 200, "{query}");
        let html: Value = res.json().await.expect("json");
        html.as_str().expect("html").to_string()
    };
    let rows = |html: &str| html.matches("data-testid=\"call-row\"").count() as i64;
    assert_eq!(rows(&logs(String::new()).await), expect);
    assert_eq!(rows(&logs(format!("?user_id={bob}")).await), expect);
    assert_eq!(rows(&logs("status=error".into()).await), 2);
    assert_eq!(rows(&logs(format!("key_id={key2_id}")).await), 2);
    let ledger: Value = sfn("ledger", &[("query[limit]", "100")])
        .await
        .expect("ledger")
        .json()
        .await
        .expect("json");
    let entries = ledger["data"].as_array().expect("data");
    assert!(!entries.is_empty() && entries.iter().all(|e| e["user_id"] == gw.user_id));

    // `/api/usage`: the key owner's days from the hourly aggregates, by model or by key, each
    // day's cost exact; bob's key reads bob's days only.
    let usage = |q: &str, key: &str| {
        let (url, key) = (app.url(&format!("/api/usage?{q}")), key.to_string());
        async move { get_json(url, &key).await }
    };
    let points = |v: &Value| v.as_array().expect("points").clone();
    let total = |v: &Value, field: &str| -> u64 {
        points(v)
            .iter()
            .map(|p| p[field].as_u64().expect("n"))
            .sum()
    };
    let cost = |v: &Value| -> i64 {
        points(v)
            .iter()
            .map(|p| {
                types::Credits::parse_usd(p["cost"].as_str().expect("usd"))
                    .expect("cost")
                    .units()
            })
            .sum()
    };
    let spent = |user: i64| async move {
        sqlx::query_scalar::<_, i64>(
            &app.svc
                .db
                .sql("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_logs WHERE user_id = $1"),
        )
        .bind(user)
        .fetch_one(app.svc.db.pool())
        .await
        .expect("cost")
    };
    let (status, by_model) = usage("by=model", &gw.key).await;
    assert_eq!(status, 200, "{by_model}");
    assert_eq!(total(&by_model, "requests") as i64, expect, "{by_model}");
    assert_eq!(total(&by_model, "failures"), 2, "{by_model}");
    assert_eq!(cost(&by_model), spent(gw.user_id).await, "{by_model}");
    assert!(
        points(&by_model)
            .iter()
            .all(|p| p["day"].as_str().is_some_and(|d| d.len() == 10) && p["model"].is_string()),
        "{by_model}"
    );
    let (_, default) = usage("", &gw.key).await;
    assert_eq!(default, by_model, "by model is the default");
    let (_, by_key) = usage("by=key", &gw.key).await;
    assert!(
        points(&by_key)
            .iter()
            .any(|p| p["key_id"] == key2_id && p["requests"] == 2),
        "{by_key}"
    );
    let (_, bobs) = usage("", &bob_key).await;
    assert_eq!(total(&bobs, "requests"), 3, "{bobs}");
    assert_eq!(cost(&bobs), bob_cost, "{bobs}");
    // The range and the day boundary are the query's: an explicit range of today (UTC) holds
    // every call, a range in the past none, and bad values are refused naming the field.
    let today = types::date::format_day(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs() as i64
            / 86_400,
    );
    let (_, ranged) = usage(
        &format!("from={today}&to={today}&utc_offset_minutes=0"),
        &gw.key,
    )
    .await;
    assert_eq!(total(&ranged, "requests") as i64, expect, "{ranged}");
    assert!(
        points(&ranged).iter().all(|p| p["day"] == today.as_str()),
        "{ranged}"
    );
    let (_, past) = usage("from=2020-01-01&to=2020-01-31", &gw.key).await;
    assert_eq!(past, json!([]));
    // A range in the future is empty too, at the largest offset.
    let (_, shifted) = usage(
        "utc_offset_minutes=840&to=2100-01-01&from=2099-01-01",
        &gw.key,
    )
    .await;
    assert_eq!(shifted, json!([]));
    for (q, field) in [
        ("utc_offset_minutes=30", "utc_offset_minutes"),
        ("utc_offset_minutes=900", "utc_offset_minutes"),
        ("from=2026-02-30", "from"),
        ("by=colour", "by"),
        ("from=2020-01-01&to=2026-01-01", "to"),
        ("from=2026-01-02&to=2026-01-01", "to"),
        ("colour=red", ""),
    ] {
        let (status, body) = usage(q, &gw.key).await;
        assert_eq!(status, 400, "{q}: {body}");
        if !field.is_empty() {
            assert_eq!(body["error"]["param"], field, "{q}: {body}");
        }
    }
    let res = TestApp::bare_client()
        .get(app.url("/api/usage"))
        .send()
        .await
        .expect("usage");
    assert_eq!(res.status(), 401, "a key is required");
    gw.stop().await;
}

/// `hard_limit_usd - total_usage / 100` is what remains (the balance, or a capped key's
/// remaining cap when lower), over a lifetime and over a window; `/v1/credits` agrees; dates
/// are checked.
async fn billing_endpoints_add_up_for_chat_clients(backend: Backend) {
    let gw = Gw::start(backend, "3", |_, _| {}).await;
    let app = &gw.app;
    for _ in 0..3 {
        assert_eq!(
            call(app, &gw.key, "/v1/chat/completions", chat(json!({}))).await,
            200
        );
    }
    gw.settled(3).await;
    let balance = gw.balance().await as f64 / 1e6;
    let today = types::date::format_day(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs() as i64
            / 86_400,
    );
    let tomorrow = types::date::format_day(types::date::parse_day(&today).expect("day") + 1);
    let window = format!("start_date={today}&end_date={tomorrow}");
    for q in ["", window.as_str()] {
        let (s, sub) = get_json(
            app.url(&format!("/v1/dashboard/billing/subscription?{q}")),
            &gw.key,
        )
        .await;
        assert_eq!(s, 200, "{sub}");
        let (s, usage) = get_json(
            app.url(&format!("/v1/dashboard/billing/usage?{q}")),
            &gw.key,
        )
        .await;
        assert_eq!(s, 200, "{usage}");
        assert_eq!(sub["object"], "billing_subscription");
        assert_eq!(sub["access_until"], 0);
        let remaining = sub["hard_limit_usd"].as_f64().expect("limit")
            - usage["total_usage"].as_f64().expect("usage") / 100.0;
        assert!(
            (remaining - balance).abs() < 1e-9,
            "{remaining} vs {balance} ({q})"
        );
        assert!(usage["total_usage"].as_f64().expect("usage") > 0.0);
        if !q.is_empty() {
            let days = usage["daily_costs"].as_array().expect("days");
            assert_eq!(days.len(), 1, "{usage}");
            assert_eq!(days[0]["line_items"][0]["name"], "gpt-4o-mini");
            let cost: f64 = days[0]["line_items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["cost"].as_f64().expect("cost"))
                .sum();
            assert!((cost - usage["total_usage"].as_f64().expect("usage")).abs() < 1e-9);
        }
    }
    let (_, credits) = get_json(app.url("/v1/credits"), &gw.key).await;
    assert_eq!(credits["object"], "credit_summary");
    assert!((credits["total_available"].as_f64().expect("n") - balance).abs() < 1e-9);
    assert!(
        (credits["total_granted"].as_f64().expect("n")
            - credits["total_used"].as_f64().expect("n")
            - balance)
            .abs()
            < 1e-9
    );

    // A capped key that expires: what remains is its cap, less what it spent.
    let expires_ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as i64)
        + 86_400_000;
    let capped = create_key(app, json!({ "user_id": gw.user_id, "name": "capped", "spend_cap": "0.001", "expires_at": expires_ms })).await;
    let capped = capped["key"].as_str().expect("key").to_string();
    assert_eq!(
        call(app, &capped, "/v1/chat/completions", json!({ "model": "flat", "messages": [{ "role": "user", "content": "x" }], "max_tokens": 1 })).await,
        200
    );
    gw.settled(4).await;
    let (_, sub) = get_json(app.url("/v1/dashboard/billing/subscription"), &capped).await;
    let (_, usage) = get_json(app.url("/v1/dashboard/billing/usage"), &capped).await;
    let remaining = sub["hard_limit_usd"].as_f64().expect("limit")
        - usage["total_usage"].as_f64().expect("usage") / 100.0;
    assert!((remaining - 0.0009).abs() < 1e-9, "{sub} {usage}");
    assert_eq!(sub["access_until"], expires_ms / 1000);

    for (q, field) in [
        ("start_date=2026-13-01&end_date=2027-01-01", "start_date"),
        ("start_date=2026-01-01&end_date=2026-02-30", "end_date"),
        ("start_date=2026-01-01", "end_date"),
        ("end_date=2026-01-01", "start_date"),
        ("start_date=2026-02-01&end_date=2026-01-01", "end_date"),
        ("start_date=2020-01-01&end_date=2026-01-01", "end_date"),
    ] {
        for path in [
            "/v1/dashboard/billing/usage",
            "/v1/dashboard/billing/subscription",
        ] {
            let (s, err) = get_json(app.url(&format!("{path}?{q}")), &gw.key).await;
            assert_eq!(s, 400, "{path}?{q}");
            assert_eq!(err["error"]["param"], field, "{path}?{q}: {err}");
        }
    }
    let (s, _) = get_json(app.url("/v1/dashboard/billing/usage?colour=red"), &gw.key).await;
    assert_eq!(s, 400);
    let (s, _) = get_json(app.url("/v1/dashboard/billing/usage"), "sk-wrong").await;
    assert_eq!(s, 401);
    gw.stop().await;
}

/// `/v1/models` and `/api/pricing` list only what can be served: routed and priced (by its own
/// name or an upstream name it maps to), and allowed to the key.
async fn only_callable_models_are_listed_and_priced(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, mock| {
        c.channels[0].models.push("unpriced".into());
        c.model_mapping
            .insert("alias".into(), vec!["gpt-4o-mini".into()]);
        let _ = mock;
    })
    .await;
    let app = &gw.app;
    let (_, models) = get_json(app.url("/v1/models"), &gw.key).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        vec!["alias", "flat", "gpt-4o-mini", "text-embedding-3-small"]
    );
    let (s, _) = get_json(app.url("/v1/models/unpriced"), &gw.key).await;
    assert_eq!(s, 404);
    let limited = create_key(
        app,
        json!({ "user_id": gw.user_id, "name": "l", "allowed_models": ["flat", "unpriced"] }),
    )
    .await;
    let (_, models) = get_json(app.url("/v1/models"), limited["key"].as_str().expect("key")).await;
    assert_eq!(models["data"].as_array().expect("data").len(), 1);
    assert_eq!(models["data"][0]["id"], "flat");

    let public: Value = reqwest::get(app.url("/api/pricing"))
        .await
        .expect("pricing")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (public["group"].as_str(), public["multiplier"].as_str()),
        (Some("default"), Some("1"))
    );
    let priced: Vec<&str> = public["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["model"].as_str().expect("m"))
        .collect();
    assert_eq!(
        priced,
        vec!["alias", "flat", "gpt-4o-mini", "text-embedding-3-small"]
    );
    let mini = &public["data"][2];
    assert_eq!(
        (
            mini["input_per_1m"].as_str(),
            mini["output_per_1m"].as_str()
        ),
        (Some("0.15"), Some("0.60"))
    );
    let (s, _) = get_json(app.url("/api/pricing"), "sk-wrong").await;
    assert_eq!(s, 401, "a key, when presented, must be valid");

    let about: Value = reqwest::get(app.url("/api/about"))
        .await
        .expect("about")
        .json()
        .await
        .expect("json");
    assert_eq!(about["name"], "Tollgate");
    assert_eq!(about["version"], env!("CARGO_PKG_VERSION"));
    assert!(about["build"].as_str().is_some_and(|b| !b.is_empty()));
    assert!(about["uptime_seconds"].is_u64());
    assert_eq!(about["docs"]["openapi"], "/api/openapi.json");
    let (s, err) = get_json(app.url("/api/nothing-here"), &gw.key).await;
    assert_eq!(s, 404);
    assert!(err["error"]["message"].is_string());
    gw.stop().await;
}

/// Bad paging, filters and cursors: a 400 in OpenAI's shape naming the field.
async fn bad_read_parameters_are_refused_naming_the_field(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    for (q, field) in [
        ("page=0", "page"),
        ("page=x", "page"),
        ("page_size=101", "page_size"),
        ("page_size=0", "page_size"),
        ("from=abc", "from"),
        ("to=-5", "to"),
        ("from=100&to=50", "to"),
        ("status=maybe", "status"),
        ("status=999", "status"),
        ("key_id=k", "key_id"),
    ] {
        let (s, err) = get_json(gw.app.url(&format!("/api/logs?{q}")), &gw.key).await;
        assert_eq!(s, 400, "{q}");
        assert_eq!(err["error"]["param"], field, "{q}: {err}");
        assert_eq!(err["error"]["type"], "invalid_request_error");
    }
    let (s, err) = get_json(gw.app.url("/api/logs?colour=red"), &gw.key).await;
    assert_eq!(s, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("message")
            .contains("colour")
    );
    for (path, field) in [
        ("/api/admin/logs?cursor=12", "cursor"),
        ("/api/admin/logs?cursor=a.b", "cursor"),
        ("/api/admin/logs?limit=0", "limit"),
        ("/api/admin/logs?user_id=x", "user_id"),
        ("/api/admin/users/1/ledger?cursor=-1", "cursor"),
    ] {
        let (s, err) = get_json(gw.app.url(path), ADMIN_TOKEN).await;
        assert_eq!(s, 400, "{path}");
        assert_eq!(err["error"]["param"], field, "{path}: {err}");
    }
    let (s, _) = get_json(gw.app.url("/api/admin/users/abc/ledger"), ADMIN_TOKEN).await;
    assert_eq!(s, 400);
    let (s, _) = get_json(gw.app.url("/api/admin/users/999999/ledger"), ADMIN_TOKEN).await;
    assert_eq!(s, 404);
    let (s, _) = get_json(gw.app.url("/api/logs"), "sk-nope").await;
    assert_eq!(s, 401);
    gw.stop().await;
}

/// Billing reads and log reads each have a quota per key per minute (shared through Redis on
/// PostgreSQL): past it, 429 with `Retry-After`; another key keeps its own.
async fn read_quotas_refuse_a_polling_key(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, _| {
        c.limits.billing_query_per_minute = 3;
        c.limits.log_query_per_minute = 2;
    })
    .await;
    let app = &gw.app;
    for path in [
        "/v1/credits",
        "/v1/dashboard/billing/subscription",
        "/v1/dashboard/billing/usage",
    ] {
        let (s, _) = get_json(app.url(path), &gw.key).await;
        assert_eq!(s, 200, "{path}");
    }
    let res = TestApp::bare_client()
        .get(app.url("/v1/credits"))
        .bearer_auth(&gw.key)
        .send()
        .await
        .expect("credits");
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry), "{retry}");
    // The log quota is its own, shared by the call log and the daily usage.
    assert_eq!(get_json(app.url("/api/logs"), &gw.key).await.0, 200);
    assert_eq!(get_json(app.url("/api/usage"), &gw.key).await.0, 200);
    for path in ["/api/logs", "/api/usage"] {
        let (s, err) = get_json(app.url(path), &gw.key).await;
        assert_eq!(s, 429, "{path}");
        assert_eq!(err["error"]["type"], "rate_limit_error");
    }
    // Another key is not affected.
    let other = create_key(app, json!({ "user_id": gw.user_id, "name": "other" })).await;
    let other = other["key"].as_str().expect("key");
    assert_eq!(get_json(app.url("/v1/credits"), other).await.0, 200);
    assert_eq!(get_json(app.url("/api/logs"), other).await.0, 200);
    assert_eq!(get_json(app.url("/api/usage"), other).await.0, 200);
    gw.stop().await;
}

/// Inserts `n` calls of `user` straight into the log, one a second back from `start_ms`, the
/// last with `model`.
async fn seed_calls(app: &TestApp, user: i64, n: i64, start_ms: i64, model: &str) {
    let db = &app.svc.db;
    let rows: Vec<i64> = (1..=n).collect();
    for chunk in rows.chunks(500) {
        let sql = format!(
            "INSERT INTO usage_logs (request_id, user_id, model, prompt_tokens, completion_tokens, \
             cost, status, created_at) VALUES {}",
            db.placeholders(chunk.len(), 8, 0)
        );
        let mut q = sqlx::query(&sql);
        for &i in chunk {
            q = q
                .bind(format!("seed-{i}"))
                .bind(user)
                .bind(if i == n { model } else { "gpt-4o-mini" })
                .bind(i)
                .bind(2 * i)
                .bind(i)
                .bind(if i % 10 == 0 { 502_i64 } else { 200 })
                .bind(start_ms - i * 1000);
        }
        q.execute(db.pool()).await.expect("seed calls");
    }
}

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas, doubled
/// quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// The console's export: the whole filtered range in several chunks, newest first, exact money,
/// only the user's own rows, client text quoted and defused; bad filters and no session refused
/// before any byte; administrators export anyone's.
async fn calls_export_as_csv_streamed_whole_and_private(backend: Backend) {
    // Three exports a minute: the quota an export counts against (bad filters do not count).
    let gw = Gw::start(backend, "10", |c, _| c.limits.log_query_per_minute = 3).await;
    let app = &gw.app;
    assert_eq!(
        call(app, &gw.key, "/v1/chat/completions", chat(json!({}))).await,
        200
    );
    gw.settled(1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows_of(app, gw.user_id).await < 1 {
        assert!(Instant::now() < deadline, "the call's row");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hostile = "=HYPERLINK(\"http://x\"),\nb";
    let start = (service::now_ms() - 60_000) / 1000 * 1000;
    seed_calls(app, gw.user_id, 2_500, start, hostile).await;
    let bob = app.create_user("bob", "bob-password", "user").await;
    seed_calls(app, bob, 30, start, "bob-model").await;

    let client = TestApp::bare_client();
    let (cookie, _) =
        session_cookie(&app.login(&client, "alice", "alice-password").await).expect("session");
    let get = |query: &str| {
        client
            .get(app.url(&format!("/api/me/logs.csv{query}")))
            .header("cookie", format!("tollgate_session={cookie}"))
            .send()
    };

    let res = get("").await.expect("export");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment; filename=\"tollgate-calls-")
    );
    let rows = parse_csv(&res.text().await.expect("body"));
    let header = &rows[0];
    assert_eq!(header[0], "id");
    assert_eq!(
        rows.len(),
        1 + 2_501,
        "the header, the real call and every seeded row"
    );
    assert!(rows[1..].iter().all(|r| r.len() == header.len()));
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (user_col, cost_col, model_col, time_col) = (
        col("user_id"),
        col("cost_usd"),
        col("model"),
        col("time_utc"),
    );
    assert!(
        rows[1..]
            .iter()
            .all(|r| r[user_col] == gw.user_id.to_string())
    );
    // Newest first: the real call, then the seeds from `start` back.
    assert!(
        rows[1][col("request_id")].len() > 5 && !rows[1][col("request_id")].starts_with("seed-")
    );
    let times: Vec<&String> = rows[1..].iter().map(|r| &r[time_col]).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    // Exact money: seed i costs i units (USD 0.000001 each).
    let seeded: i64 = rows[2..]
        .iter()
        .map(|r| {
            types::Credits::parse_usd(&r[cost_col])
                .expect("usd")
                .units()
        })
        .sum();
    assert_eq!(seeded, 2_500 * 2_501 / 2);
    let last = rows.last().expect("row");
    assert_eq!(
        last[model_col],
        format!("'{hostile}"),
        "quoted, defused, whole"
    );

    // Filters: the failures only, and a time range.
    let rows = parse_csv(
        &get("?status=error")
            .await
            .expect("export")
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(rows.len(), 1 + 250);
    assert!(rows[1..].iter().all(|r| r[col("status")] == "502"));
    let (from, to) = (start / 1000 - 100, start / 1000 - 10);
    let rows = parse_csv(
        &get(&format!("?from={from}&to={to}&model=gpt-4o-mini"))
            .await
            .expect("export")
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(rows.len(), 1 + 90, "seeds 11 to 100");

    // Refused before any byte: bad filters, paging fields, another user's rows, no session.
    for (query, param) in [
        ("?status=maybe", "status"),
        ("?from=x", "from"),
        ("?limit=5", "limit"),
        ("?cursor=1.1", "cursor"),
        (&format!("?user_id={bob}"), "user_id"),
    ] {
        let res = get(query).await.expect("export");
        assert_eq!(res.status(), 400, "{query}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"]["param"], param, "{query}");
    }
    let res = client
        .get(app.url("/api/me/logs.csv"))
        .send()
        .await
        .expect("anon");
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sign in"))
    );

    // Administrators export one user's rows, or everyone's.
    let admin = |query: String| {
        TestApp::bare_client()
            .get(app.url(&format!("/api/admin/logs.csv{query}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let rows = parse_csv(
        &admin(format!("?user_id={bob}"))
            .await
            .expect("export")
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(rows.len(), 1 + 30);
    assert!(rows[1..].iter().all(|r| r[user_col] == bob.to_string()));
    let rows = parse_csv(
        &admin(String::new())
            .await
            .expect("export")
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(rows.len(), 1 + 2_501 + 30);
    let res = client
        .get(app.url("/api/admin/logs.csv"))
        .header("cookie", format!("tollgate_session={cookie}"))
        .send()
        .await
        .expect("user at admin export");
    assert_eq!(res.status(), 403);
    // The user's fourth export this minute is refused; the administrators' did not count.
    let res = get("").await.expect("export");
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    gw.stop().await;
}

/// The status page's figures: per public model, calls that reached the routing (client errors
/// left out), failures on the upstream side, latency of the answered ones; the last hour sets
/// the state. Public, and the same list of models as the public prices.
async fn status_reports_each_models_success_and_latency(backend: Backend) {
    let gw = Gw::start(backend, "10", |_, _| {}).await;
    let app = &gw.app;
    let mut expect = 0;
    for body in [
        chat(json!({})),
        chat(json!({})),
        chat(json!({ "stream": true })),
        chat(json!({ "mock": { "status": 400 } })),
        chat(json!({ "mock": { "status": 400 } })),
        chat(json!({ "mock": { "status": 500 } })),
    ] {
        call(app, &gw.key, "/v1/chat/completions", body).await;
        expect += 1;
    }
    gw.settled(expect).await;

    let url = app.url("/api/status");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let res = TestApp::bare_client()
            .get(&url)
            .send()
            .await
            .expect("status");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        let seen = body["models"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["model"] == "gpt-4o-mini"))
            .map(|m| m["hour"]["requests"].as_u64().unwrap_or(0));
        if seen == Some(4) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "status never counted the calls: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // One model of three is down: the service is degraded, not unhealthy.
    assert_eq!(status["healthy"], true);
    assert_eq!(status["degraded"], json!(["models"]), "{status}");
    let models: Vec<&str> = status["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| m["model"].as_str().expect("model"))
        .collect();
    let pricing: Value = TestApp::bare_client()
        .get(app.url("/api/pricing"))
        .send()
        .await
        .expect("pricing")
        .json()
        .await
        .expect("json");
    let priced: Vec<&str> = pricing["data"]
        .as_array()
        .expect("prices")
        .iter()
        .map(|m| m["model"].as_str().expect("model"))
        .collect();
    assert_eq!(models, priced, "the public models");
    let mini = status["models"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["model"] == "gpt-4o-mini"))
        .expect("gpt-4o-mini");
    assert_eq!(mini["hour"]["failures"], 1, "{mini}");
    assert_eq!(mini["state"], "down", "3 of 4 is below 90%");
    assert_eq!(mini["day"]["requests"], 4);
    assert!(mini["hour"]["avg_latency_ms"].is_u64(), "{mini}");
    assert!(
        mini["hour"]["avg_ttft_ms"].is_u64(),
        "the stream's first token: {mini}"
    );
    let hours = mini["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[23]["requests"], 4);
    assert!(hours[..23].iter().all(|h| h["requests"] == 0));
    let embed = status["models"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["model"] == "text-embedding-3-small"))
        .expect("embeddings");
    assert_eq!(embed["state"], "idle");
    assert_eq!(embed["hour"]["avg_latency_ms"], Value::Null);

    // A bad key is refused, not taken for a visitor.
    let (code, _) = get_json(url.clone(), "sk-not-a-key").await;
    assert_eq!(code, 401);
    gw.stop().await;
}

/// The call-log page is drawn by the server from its URL: 50 calls a page and a link to the
/// older ones that keeps the filters, the filters drawn as they are set, names as text, a bad
/// filter shown under the form that can mend it, only the user's own calls; an administrator's
/// page filters by user.
async fn the_call_log_page_is_drawn_from_its_query(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.create_user("alice", "alice-password", "user").await;
    let bob = app.create_user("bob", "bob-password", "user").await;
    app.create_user("root", "root-password", "admin").await;
    let hostile = "<img src=x onerror=alert(1)>";
    let start = service::now_ms() / 1000 * 1000;
    // Alice's oldest call (the 60th) has the hostile model; every tenth failed.
    seed_calls(&app, alice, 60, start, hostile).await;
    seed_calls(&app, bob, 5, start, "bob-model").await;
    // Alice's newest call came over Messages to an Anthropic channel, with reasoning and 1-hour
    // cache writes: its details say so.
    sqlx::query(&app.svc.db.sql(
        "UPDATE usage_logs SET reasoning_tokens = 7, cache_write_1h_tokens = 3, \
         surface = 'messages', upstream_kind = 'anthropic' \
         WHERE user_id = $1 AND request_id = 'seed-1'",
    ))
    .bind(alice)
    .execute(app.svc.db.pool())
    .await
    .expect("detail");
    let client = TestApp::client();
    assert_eq!(
        app.login(&client, "alice", "alice-password").await.status(),
        200
    );
    let page = |path: String| {
        let (client, app) = (&client, &app);
        async move {
            let res = client.get(app.url(&path)).send().await.expect("page");
            assert_eq!(res.status(), 200, "{path}");
            res.text().await.expect("html")
        }
    };
    let rows = |html: &str| html.matches("data-testid=\"call-row\"").count();
    // The target of the link marked `testid` (unescaped).
    let href_of = |html: &str, testid: &str| -> String {
        let at = html
            .find(&format!("data-testid=\"{testid}\""))
            .unwrap_or_else(|| panic!("no {testid}: {html}"));
        let start = html[..at].rfind("href=\"").expect("href") + 6;
        html[start..]
            .split('"')
            .next()
            .expect("value")
            .replace("&amp;", "&")
    };

    let first = page("/logs".into()).await;
    assert_eq!(rows(&first), 50);
    assert_eq!(
        first.matches("data-testid=\"call-details\" hidden").count(),
        50
    );
    assert!(!first.contains("bob-model"));
    assert!(
        first.contains("cache writes (1 h) 3 · reasoning 7"),
        "the call's token breakdown: {first}"
    );
    assert!(first.contains("<dd>messages</dd>"), "the route called");
    assert!(first.contains("<dd>anthropic</dd>"), "the upstream kind");
    assert_eq!(
        first.matches("data-testid=\"call-breakdown\">—<").count(),
        49,
        "a call without a breakdown shows a dash"
    );
    let older = href_of(&first, "older-calls");
    assert!(older.starts_with("/logs?cursor="), "{older}");
    let second = page(older).await;
    assert_eq!(rows(&second), 10);
    assert!(!second.contains("data-testid=\"older-calls\""));
    assert!(
        second.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{second}"
    );
    assert!(!second.contains("<img src=x"), "{second}");

    // Filters: kept in the form, in the link to older calls and in the export.
    let day = types::date::format_day((start - 120_000).div_euclid(86_400_000));
    let filtered = page(format!("/logs?status=error&model=gpt-4o-mini&from={day}")).await;
    assert_eq!(rows(&filtered), 5);
    assert!(filtered.contains("value=\"gpt-4o-mini\""), "{filtered}");
    assert!(
        filtered.contains("<option value=\"error\" selected"),
        "{filtered}"
    );
    let export = href_of(&filtered, "export-csv");
    let from = types::date::parse_day(&day).expect("day") * 86_400;
    assert_eq!(
        export,
        format!("/api/me/logs.csv?model=gpt-4o-mini&status=error&from={from}")
    );
    let paged = page("/logs?status=success&cursor=".into()).await;
    assert_eq!(rows(&paged), 50);
    assert!(href_of(&paged, "older-calls").starts_with("/logs?status=success&cursor="));
    // Another user's calls are not in reach of a user's URL.
    let other = page(format!("/logs?user_id={bob}&model=bob-model")).await;
    assert_eq!(rows(&other), 0);
    assert!(other.contains("data-testid=\"no-calls\""));
    // A bad filter: the form, and the error naming the field.
    let bad = page("/logs?status=sometimes".into()).await;
    assert!(bad.contains("data-testid=\"filters\""), "{bad}");
    assert!(bad.contains("data-testid=\"error\""), "{bad}");
    assert!(bad.contains("status"), "{bad}");
    assert_eq!(rows(&bad), 0);
    // The page's server function is for administrators only on the admin side.
    let refused = client
        .post(app.url("/_sfn/admin/logs"))
        .form(&[("query", "")])
        .send()
        .await
        .expect("admin logs");
    assert_eq!(refused.status(), 403);

    let admin = TestApp::client();
    assert_eq!(
        app.login(&admin, "root", "root-password").await.status(),
        200
    );
    let res = admin
        .get(app.url(&format!("/admin/calls?user_id={bob}")))
        .send()
        .await
        .expect("admin page");
    assert_eq!(res.status(), 200);
    let html = res.text().await.expect("html");
    assert_eq!(rows(&html), 5);
    assert!(
        html.contains(&format!("<option value=\"{bob}\" selected")),
        "{html}"
    );
    assert_eq!(
        href_of(&html, "export-csv"),
        format!("/api/admin/logs.csv?user_id={bob}")
    );
    let everyone = admin
        .get(app.url("/admin/calls"))
        .send()
        .await
        .expect("admin page")
        .text()
        .await
        .expect("html");
    assert_eq!(rows(&everyone), 50);
    assert!(everyone.contains("bob-model"));
    app.stop().await;
}
