use crate::both_backends;
use crate::common::*;
use serde_json::{Value, json};

both_backends!(
    admin_actions_are_audited_with_before_and_after,
    a_channel_test_tells_what_the_upstream_did_and_moves_its_health,
    admin_api_creates_and_reads_users,
    admin_api_names_the_field_of_bad_input,
    every_admin_route_refuses_plain_users_and_visitors,
);

/// Every `/api/admin` route (a method and a path of each) and every admin server function:
/// 403 for a signed-in plain user, 401 for a signed-out visitor, and nothing changes.
async fn every_admin_route_refuses_plain_users_and_visitors(backend: Backend) {
    use reqwest::Method;
    let app = TestApp::spawn(backend).await;
    let uid = app.create_user("plain", "plain-password", "user").await;
    let user = TestApp::client();
    assert_eq!(
        app.login(&user, "plain", "plain-password").await.status(),
        200
    );
    let visitor = TestApp::client();
    let routes: Vec<(Method, String)> = vec![
        (Method::GET, "/api/admin/users".into()),
        (Method::POST, "/api/admin/users".into()),
        (Method::GET, format!("/api/admin/users/{uid}")),
        (Method::POST, format!("/api/admin/users/{uid}/status")),
        (Method::POST, format!("/api/admin/users/{uid}/balance")),
        (Method::POST, format!("/api/admin/users/{uid}/password")),
        (Method::DELETE, format!("/api/admin/users/{uid}")),
        (Method::GET, "/api/admin/keys".into()),
        (Method::POST, "/api/admin/keys".into()),
        (Method::DELETE, "/api/admin/keys/1".into()),
        (Method::POST, "/api/admin/keys/1/status".into()),
        (Method::GET, "/api/admin/channels".into()),
        (Method::POST, "/api/admin/channels".into()),
        (Method::PUT, "/api/admin/channels/1".into()),
        (Method::DELETE, "/api/admin/channels/1".into()),
        (Method::GET, "/api/admin/model-mappings".into()),
        (Method::PUT, "/api/admin/model-mappings/m".into()),
        (Method::DELETE, "/api/admin/model-mappings/m".into()),
        (Method::GET, "/api/admin/prices".into()),
        (Method::GET, "/api/admin/prices/m".into()),
        (Method::PUT, "/api/admin/prices/m".into()),
        (Method::DELETE, "/api/admin/prices/m".into()),
        (Method::PATCH, format!("/api/admin/users/{uid}")),
        (Method::GET, format!("/api/admin/users/{uid}/ledger")),
        (Method::GET, "/api/admin/groups".into()),
        (Method::PUT, "/api/admin/groups/gold".into()),
        (Method::DELETE, "/api/admin/groups/gold".into()),
        (Method::GET, "/api/admin/logs".into()),
        (Method::GET, "/api/admin/redeem-codes".into()),
        (Method::POST, "/api/admin/redeem-codes".into()),
        (Method::POST, "/api/admin/redeem-codes/1/void".into()),
        (Method::GET, "/api/admin/redeem-batches".into()),
        (Method::POST, "/api/admin/redeem-batches/1/void".into()),
        (Method::GET, "/api/admin/audit".into()),
        (Method::POST, "/api/admin/channels/1/test".into()),
        (Method::GET, "/api/admin/channels/health".into()),
        (Method::GET, "/api/admin/jobs".into()),
        (Method::GET, "/api/admin/jobs/cleanup/runs".into()),
        (Method::POST, "/api/admin/jobs/cleanup/run".into()),
        (Method::GET, "/api/admin/archives".into()),
        (Method::GET, "/api/admin/archives/2026-01-01".into()),
        (Method::GET, "/api/admin/profile?seconds=1".into()),
        (Method::GET, "/api/admin/alerts".into()),
        (Method::PUT, "/api/admin/alerts".into()),
    ];
    let body = json!({ "username": "x", "password": "x-password", "role": "admin",
                       "status": "disabled", "amount": "5", "reason": "r", "user_id": uid,
                       "name": "n", "base_url": "http://127.0.0.1:1/v1", "targets": ["m"],
                       "input_per_1m": "1", "output_per_1m": "1", "multiplier": "2",
                       "group": "gold", "count": 1, "value": "1" });
    for (who, client, want) in [("plain user", &user, 403), ("visitor", &visitor, 401)] {
        for (method, path) in &routes {
            let res = client
                .request(method.clone(), app.url(path))
                .json(&body)
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), want, "{who}: {method} {path}");
            let err: Value = res.json().await.expect("json");
            assert!(
                err["error"]["message"].is_string(),
                "{who}: {method} {path}"
            );
        }
        let uid_text = uid.to_string();
        let server_fns: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("admin/users", vec![]),
            (
                "admin/create_user",
                vec![
                    ("username", "y"),
                    ("password", "y-password"),
                    ("role", "admin"),
                ],
            ),
            (
                "admin/set_user_status",
                vec![("id", "1"), ("status", "disabled")],
            ),
            (
                "admin/update_user",
                vec![
                    ("id", uid_text.as_str()),
                    ("role", "admin"),
                    ("group", "gold"),
                ],
            ),
            (
                "admin/adjust_balance",
                vec![
                    ("user_id", uid_text.as_str()),
                    ("amount", "5"),
                    ("reason", "r"),
                ],
            ),
            ("admin/keys", vec![]),
            (
                "admin/reset_password",
                vec![("id", uid_text.as_str()), ("password", "")],
            ),
            ("admin/delete_user", vec![("id", uid_text.as_str())]),
            ("admin/delete_price", vec![("model", "m")]),
            ("admin/delete_group", vec![("name", "gold")]),
            (
                "admin/key_status",
                vec![("id", "1"), ("status", "disabled")],
            ),
            ("admin/delete_key", vec![("id", "1")]),
            (
                "admin/create_batch",
                vec![
                    ("count", "1"),
                    ("value", "1"),
                    ("expires_on", ""),
                    ("label", ""),
                ],
            ),
            ("admin/batches", vec![]),
            ("admin/codes", vec![("batch", "1")]),
            ("admin/void_batch", vec![("id", "1")]),
            ("admin/void_code", vec![("id", "1")]),
            ("admin/prices", vec![]),
            (
                "admin/set_price",
                vec![
                    ("model", "m"),
                    ("input_per_1m", "1"),
                    ("output_per_1m", "1"),
                    ("cached_input_per_1m", ""),
                    ("per_request", ""),
                ],
            ),
            (
                "admin/set_group",
                vec![("name", "gold"), ("multiplier", "2")],
            ),
            ("admin/audit", vec![("action", ""), ("actor", "")]),
            ("admin/channels", vec![]),
            ("admin/jobs", vec![]),
            ("admin/run_job", vec![("name", "cleanup")]),
            (
                "admin/save_channel",
                vec![
                    ("name", "c"),
                    ("kind", "openai-compatible"),
                    ("base_url", "http://127.0.0.1:1/v1"),
                    ("api_key", ""),
                    ("models", "m"),
                    ("priority", ""),
                    ("weight", ""),
                    ("first_byte_timeout_ms", ""),
                    ("answer_timeout_ms", ""),
                    ("connect_timeout_ms", ""),
                    ("idle_timeout_ms", ""),
                    ("enabled", "on"),
                ],
            ),
            (
                "admin/toggle_channel",
                vec![("id", "1"), ("enabled", "false")],
            ),
            ("admin/delete_channel", vec![("id", "1")]),
            ("admin/test_channel", vec![("id", "1"), ("model", "")]),
            ("admin/mappings", vec![]),
            ("admin/set_mapping", vec![("model", "m"), ("targets", "a")]),
            ("admin/add_target", vec![("model", "m"), ("target", "a")]),
            ("admin/delete_mapping", vec![("model", "m")]),
            ("admin/logs", vec![("query", "")]),
            ("admin/overview", vec![]),
            ("admin/alerts", vec![]),
            (
                "admin/set_alerts",
                vec![
                    ("webhook_url", ""),
                    ("webhook_secret", ""),
                    ("channels", "on"),
                ],
            ),
            ("admin/user", vec![("id", "1")]),
            ("admin/price_history", vec![("model", "m")]),
            (
                "admin/key_limits",
                vec![("id", "1"), ("spend_cap", ""), ("rpm", "1"), ("tpm", "")],
            ),
        ];
        // Every admin server function the app registers is in the list above.
        let registered: std::collections::BTreeSet<String> =
            leptos::server_fn::axum::server_fn_paths()
                .map(|(path, _)| path.to_string())
                .filter(|p| p.starts_with("/_sfn/admin/"))
                .collect();
        let listed: std::collections::BTreeSet<String> = server_fns
            .iter()
            .map(|(name, _)| format!("/_sfn/{name}"))
            .collect();
        assert_eq!(registered, listed, "every admin server function is checked");
        for (name, form) in &server_fns {
            let res = client
                .post(app.url(&format!("/_sfn/{name}")))
                .form(form)
                .send()
                .await
                .expect("server function");
            assert_eq!(res.status(), want, "{who}: server function {name}");
        }
    }
    // Nothing changed: one administrator, active, and the plain user as created.
    let users: Value = TestApp::bare_client()
        .get(app.url("/api/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("users")
        .json()
        .await
        .expect("json");
    let users = users.as_array().expect("a list");
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(users.iter().all(|u| u["status"] == "active"), "{users:?}");
    assert_eq!(
        users.iter().filter(|u| u["role"] == "admin").count(),
        1,
        "{users:?}"
    );
    let audited: i64 = sqlx::query_scalar(&app.svc.db.sql("SELECT COUNT(*) FROM audit_log"))
        .fetch_one(app.svc.db.pool())
        .await
        .expect("count");
    assert_eq!(audited, 1, "only the creation of the plain user is audited");
    for table in [
        "redeem_batches",
        "group_multipliers",
        "api_keys",
        "model_mappings",
    ] {
        let n: i64 = sqlx::query_scalar(&app.svc.db.sql(&format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(app.svc.db.pool())
            .await
            .expect("count");
        assert_eq!(n, 0, "nothing written to {table}");
    }
    app.stop().await;
}

async fn admin_api_creates_and_reads_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::bare_client();
    let res = client
        .post(app.url("/api/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "username": "Frank", "password": "frank-password", "role": "user" }))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.expect("json");
    let id = created["id"].as_i64().expect("id");
    assert_eq!(
        created["username"], "frank",
        "usernames are stored lowercase"
    );
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());

    let got: Value = client
        .get(app.url(&format!("/api/admin/users/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(got["balance"], "0.00");
    assert_eq!(got["status"], "active");

    let hash: String = sqlx::query_scalar(
        &app.svc
            .db
            .sql("SELECT password_hash FROM users WHERE id = $1"),
    )
    .bind(id)
    .fetch_one(app.svc.db.pool())
    .await
    .expect("row");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    let dup = client
        .post(app.url("/api/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "username": "frank", "password": "another-password" }))
        .send()
        .await
        .expect("dup");
    assert_eq!(dup.status(), 409);

    let list: Vec<Value> = client
        .get(app.url("/api/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list.iter().filter_map(|u| u["username"].as_str()).collect();
    assert_eq!(names, ["admin", "frank"]);

    let missing = client
        .get(app.url("/api/admin/users/999999"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

async fn admin_api_names_the_field_of_bad_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::bare_client();
    let post = |body: Value| {
        client
            .post(app.url("/api/admin/users"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let res = post(json!({ "username": "x", "password": "long-enough-pw" }))
        .await
        .expect("post");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["param"], "username");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let res = post(json!({ "username": "grace", "password": "short" }))
        .await
        .expect("post");
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"]["param"],
        "password"
    );

    let res = post(json!({ "username": "grace", "password": "long-enough-pw", "role": "root" }))
        .await
        .expect("post");
    assert_eq!(res.status(), 400);
    assert!(res.text().await.expect("text").contains("role"));

    let res = client
        .post(app.url("/api/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json error body");
    assert!(body["error"]["message"].as_str().is_some());

    let res = client
        .post(app.url("/api/admin/users/1/status"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "status": "disabled" }))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 400, "the last administrator stays enabled");

    // Rejections by the framework itself answer in the same JSON shape, with the right status.
    for (method, path, status) in [
        (reqwest::Method::GET, "/api/admin/users/not-a-number", 400),
        (reqwest::Method::GET, "/api/admin/users?limit=many", 400),
        (reqwest::Method::DELETE, "/api/admin/users", 405),
        (reqwest::Method::GET, "/api/no/such/route", 404),
    ] {
        let res = client
            .request(method, app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), status, "{path}");
        assert!(res.headers().get("x-request-id").is_some());
        let body: Value = res
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: not JSON: {e}"));
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
        assert!(
            body["error"]["request_id"].as_str().is_some(),
            "{path}: {body}"
        );
    }

    // Names with a NUL or a line break, and channel addresses or keys an HTTP request cannot
    // carry, are refused with the field named: nothing is stored, and nothing fails later.
    let uid = app.create_user("heidi", "heidi-password", "user").await;
    let balance = format!("/api/admin/users/{uid}/balance");
    let (post, put) = (reqwest::Method::POST, reqwest::Method::PUT);
    let channel = |extra: Value| {
        let mut c = json!({ "name": "c", "base_url": "http://upstream.test/v1" });
        for (k, v) in extra.as_object().expect("an object") {
            c[k] = v.clone();
        }
        c
    };
    for (method, path, body, field) in [
        (
            &post,
            "/api/admin/keys",
            json!({ "user_id": uid, "name": "a\u{0}b" }),
            "name",
        ),
        (
            &post,
            "/api/admin/channels",
            channel(json!({ "base_url": "http://exa mple/v1" })),
            "base_url",
        ),
        (
            &post,
            "/api/admin/channels",
            channel(json!({ "base_url": "upstream.test/v1" })),
            "base_url",
        ),
        (
            &post,
            "/api/admin/channels",
            channel(json!({ "api_key": "k\r\nx-injected: 1" })),
            "api_key",
        ),
        (
            &post,
            "/api/admin/channels",
            channel(json!({ "name": "c\nd" })),
            "name",
        ),
        (
            &post,
            "/api/admin/channels",
            channel(json!({ "models": ["m\u{0}"] })),
            "models",
        ),
        (
            &put,
            "/api/admin/model-mappings/m",
            json!({ "targets": ["a\u{0}"] }),
            "targets",
        ),
        (
            &post,
            balance.as_str(),
            json!({ "amount": "1", "reason": "a\u{0}" }),
            "reason",
        ),
    ] {
        let res = client
            .request(method.clone(), app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 400, "{path} {body}");
        let answer: Value = res.json().await.expect("json");
        assert_eq!(answer["error"]["param"], field, "{path} {body}: {answer}");
    }
    let channels: Vec<Value> = client
        .get(app.url("/api/admin/channels"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("channels")
        .json()
        .await
        .expect("json");
    assert!(channels.is_empty(), "nothing was stored: {channels:?}");
    app.stop().await;
}

/// Every administrator's action through the REST API lands in the audit log, with the actor,
/// the target and the thing before and after, and no secret; the log filters and pages.
async fn admin_actions_are_audited_with_before_and_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = TestApp::client();
    assert_eq!(
        app.login(&admin, "admin", ADMIN_PASSWORD).await.status(),
        200
    );
    let token = TestApp::bare_client();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        token
            .request(method, app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    use reqwest::Method;
    let uid = app.create_user("judy", "judy-password", "user").await;
    let res = call(
        Method::PATCH,
        &format!("/api/admin/users/{uid}"),
        json!({ "group": "gold" }),
    )
    .await
    .expect("patch");
    assert_eq!(res.status(), 200);
    let res = call(
        Method::POST,
        &format!("/api/admin/users/{uid}/balance"),
        json!({ "amount": "7.25", "reason": "welcome" }),
    )
    .await
    .expect("adjust");
    assert_eq!(res.status(), 200);
    let res = call(
        Method::PUT,
        "/api/admin/prices/audit-model",
        json!({ "input_per_1m": "1", "output_per_1m": "2" }),
    )
    .await
    .expect("price");
    assert_eq!(res.status(), 200);
    let res = call(
        Method::PUT,
        "/api/admin/prices/audit-model",
        json!({ "input_per_1m": "3", "output_per_1m": "4" }),
    )
    .await
    .expect("price");
    assert_eq!(res.status(), 200);
    let key: Value = call(
        Method::POST,
        "/api/admin/keys",
        json!({ "user_id": uid, "name": "k1" }),
    )
    .await
    .expect("key")
    .json()
    .await
    .expect("json");
    let secret = key["key"].as_str().expect("secret").to_string();
    let kid = key["id"].as_i64().expect("id");
    let res = call(
        Method::POST,
        &format!("/api/admin/keys/{kid}/status"),
        json!({ "status": "disabled" }),
    )
    .await
    .expect("status");
    assert_eq!(res.status(), 200);
    let batch: Value = call(
        Method::POST,
        "/api/admin/redeem-codes",
        json!({ "count": 2, "value": "1" }),
    )
    .await
    .expect("codes")
    .json()
    .await
    .expect("json");
    let code = batch["codes"][0].as_str().expect("code").to_string();
    // The console (a session) is recorded under the administrator's name.
    let res = admin
        .post(app.url("/_sfn/admin/set_group"))
        .form(&[("name", "gold"), ("multiplier", "1.5")])
        .send()
        .await
        .expect("sfn");
    assert_eq!(res.status(), 200);

    let page: Value = admin
        .get(app.url("/api/admin/audit"))
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    let entries = page["data"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        [
            "group.set",
            "redeem_batch.create",
            "key.status",
            "key.create",
            "price.set",
            "price.set",
            "balance.adjust",
            "user.update",
            "user.create"
        ],
        "newest first"
    );
    assert_eq!(entries[0]["actor"], "admin");
    assert!(entries[0]["actor_id"].is_i64());
    assert_eq!(entries[1]["actor"], "admin-token");
    assert!(entries[1]["actor_id"].is_null());
    let adjust = &entries[6];
    assert_eq!(adjust["target"], format!("user:{uid}"));
    let before: Value =
        serde_json::from_str(adjust["before"].as_str().expect("before")).expect("json");
    let after: Value =
        serde_json::from_str(adjust["after"].as_str().expect("after")).expect("json");
    assert_eq!(before["balance"], "0.00");
    assert_eq!(after["balance"], "7.25");
    assert_eq!(after["reason"], "welcome");
    // A price's second version shows the first as its before.
    let second: Value =
        serde_json::from_str(entries[4]["after"].as_str().expect("after")).expect("json");
    let first: Value =
        serde_json::from_str(entries[4]["before"].as_str().expect("before")).expect("json");
    assert_eq!(
        (
            first["input_per_1m"].as_str(),
            second["input_per_1m"].as_str()
        ),
        (Some("1.00"), Some("3.00"))
    );
    assert!(
        entries[5]["before"].is_null(),
        "the first price has no before"
    );
    let status_after: Value =
        serde_json::from_str(entries[2]["after"].as_str().expect("after")).expect("json");
    assert_eq!(status_after["status"], "disabled");
    // No secret in the log: neither the key nor the codes.
    let text = page.to_string();
    assert!(!text.contains(&secret), "the key's secret is not recorded");
    assert!(!text.contains(&code), "a code is not recorded");

    // Filters: a kind, an exact action, an actor; paging.
    let kind: Value = admin
        .get(app.url("/api/admin/audit?action=price"))
        .send()
        .await
        .expect("a")
        .json()
        .await
        .expect("json");
    assert_eq!(kind["data"].as_array().map(Vec::len), Some(2));
    // A kind with an underscore (a LIKE wildcard) matches as written.
    let batches: Value = admin
        .get(app.url("/api/admin/audit?action=redeem_batch"))
        .send()
        .await
        .expect("a")
        .json()
        .await
        .expect("json");
    assert_eq!(batches["data"].as_array().map(Vec::len), Some(1));
    let exact: Value = admin
        .get(app.url("/api/admin/audit?action=key.create"))
        .send()
        .await
        .expect("a")
        .json()
        .await
        .expect("json");
    assert_eq!(exact["data"].as_array().map(Vec::len), Some(1));
    let by: Value = admin
        .get(app.url("/api/admin/audit?actor=admin"))
        .send()
        .await
        .expect("a")
        .json()
        .await
        .expect("json");
    assert_eq!(by["data"].as_array().map(Vec::len), Some(1));
    let first_page: Value = admin
        .get(app.url("/api/admin/audit?limit=4"))
        .send()
        .await
        .expect("a")
        .json()
        .await
        .expect("json");
    assert_eq!(first_page["data"].as_array().map(Vec::len), Some(4));
    let cursor = first_page["next_cursor"].as_str().expect("a next page");
    let rest: Value = admin
        .get(app.url(&format!("/api/admin/audit?limit=10&cursor={cursor}")))
        .send()
        .await
        .expect("a")
        .json()
        .await
        .expect("json");
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(5));
    assert!(rest["next_cursor"].is_null());
    let bad = admin
        .get(app.url("/api/admin/audit?limit=0"))
        .send()
        .await
        .expect("a");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["param"], "limit");
    // A user's own key, disabled by themselves, is not an admin action.
    let user = TestApp::client();
    assert_eq!(
        app.login(&user, "judy", "judy-password").await.status(),
        200
    );
    let own: Value = user
        .post(app.url("/_sfn/me/create_key"))
        .form(&[
            ("name", "mine"),
            ("expires_on", ""),
            ("ips", ""),
            ("spend_cap", ""),
            ("rpm", ""),
            ("tpm", ""),
        ])
        .send()
        .await
        .expect("own")
        .json()
        .await
        .expect("json");
    assert!(own["key"].is_string(), "{own}");
    let n: i64 = sqlx::query_scalar(&app.svc.db.sql("SELECT COUNT(*) FROM audit_log"))
        .fetch_one(app.svc.db.pool())
        .await
        .expect("count");
    assert_eq!(n, 9);
    app.stop().await;
}

/// `POST /api/admin/channels/{id}/test` sends a tiny live request and tells what happened (the
/// upstream's error text when it failed, never its key); it counts toward the channel's health,
/// whose circuit opens after the failure threshold and closes on a success.
async fn a_channel_test_tells_what_the_upstream_did_and_moves_its_health(backend: Backend) {
    use crate::mock::Mock;
    let mock = Mock::start();
    let app = TestApp::spawn_with(backend, |c| c.gateway.failure_threshold = 2).await;
    let client = TestApp::bare_client();
    let create = |name: &str, url: String, models: Value| {
        client
            .post(app.url("/api/admin/channels"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "name": name, "base_url": url, "models": models, "api_key": "sk-upstream-never-shown" }))
            .send()
    };
    let good: Value = create("good", mock.url(""), json!(["mock-a"]))
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let bad: Value = create("bad", mock.url("status=503"), json!(["mock-b"]))
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let empty: Value = create("empty", mock.url(""), json!([]))
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let test = |id: i64, query: &str| {
        client
            .post(app.url(&format!("/api/admin/channels/{id}/test{query}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let health = || async {
        let list: Value = client
            .get(app.url("/api/admin/channels/health"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("health")
            .json()
            .await
            .expect("json");
        list
    };
    let gid = good["id"].as_i64().expect("id");
    let bid = bad["id"].as_i64().expect("id");

    let r: Value = test(gid, "")
        .await
        .expect("test")
        .json()
        .await
        .expect("json");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["model"], "mock-a");
    assert!(r["error"].is_null());
    let seen = mock.requests().await;
    let last = seen.last().expect("the mock saw the test");
    assert_eq!(last["model"], "mock-a");

    let r: Value = test(bid, "")
        .await
        .expect("test")
        .json()
        .await
        .expect("json");
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["status"], 503);
    assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
    assert!(!r.to_string().contains("sk-upstream-never-shown"));
    let h = health().await;
    let of = |id: i64| {
        h.as_array()
            .expect("list")
            .iter()
            .find(|x| x["channel_id"] == id)
            .cloned()
            .expect("channel")
    };
    assert_eq!(
        (of(gid)["requests"].as_u64(), of(gid)["failures"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        (of(bid)["requests"].as_u64(), of(bid)["failures"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        of(bid)["cooldown_ms"],
        0,
        "one failure: the circuit stays closed"
    );
    // A second failure opens the circuit (threshold 2).
    test(bid, "").await.expect("test");
    let h = health().await;
    let bad_now = h
        .as_array()
        .expect("list")
        .iter()
        .find(|x| x["channel_id"] == bid)
        .cloned()
        .expect("channel");
    assert_eq!(bad_now["failures_in_a_row"], 2);
    assert!(
        bad_now["cooldown_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{bad_now}"
    );
    // A model named in the query is asked instead; a channel with none needs one.
    let r: Value = test(gid, "?model=other-model")
        .await
        .expect("test")
        .json()
        .await
        .expect("json");
    assert_eq!(r["model"], "other-model");
    let none = test(empty["id"].as_i64().expect("id"), "")
        .await
        .expect("test");
    assert_eq!(none.status(), 400);
    let body: Value = none.json().await.expect("json");
    assert_eq!(body["error"]["param"], "model");
    let missing = test(999_999, "").await.expect("test");
    assert_eq!(missing.status(), 404);
    // Plain users and visitors are refused (the route is in the refusal test's list too).
    let anon = TestApp::bare_client()
        .post(app.url(&format!("/api/admin/channels/{gid}/test")))
        .send()
        .await
        .expect("anon");
    assert_eq!(anon.status(), 401);
    app.stop().await;
}
