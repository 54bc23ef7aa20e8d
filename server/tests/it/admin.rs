use crate::both_backends;
use crate::common::*;
use serde_json::{Value, json};

both_backends!(
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
        for (name, form) in [
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
        ] {
            let res = client
                .post(app.url(&format!("/_sfn/{name}")))
                .form(&form)
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
    for table in ["redeem_batches", "group_multipliers"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
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

    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
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
