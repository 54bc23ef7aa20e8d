//! Per-key limits on one instance: requests and tokens per minute (from the key, its user's
//! group, or the default), reserved and settled tokens, the `x-ratelimit-*` headers, 429 with
//! `Retry-After`, and a key's limits changed through the admin API applying at once. SQLite
//! counts in the process; PostgreSQL runs with Redis, so the same checks cover the shared
//! windows. Two processes sharing one Redis, and Redis failing, are in `faults.rs`.

use super::*;
use crate::both_backends;

both_backends!(
    requests_per_minute_are_enforced_with_openai_headers,
    tokens_are_reserved_and_settled_to_the_real_count,
    limits_come_from_the_key_the_group_or_the_default,
);

/// A call of the mock: 1 prompt token ("hi"), `completion` tokens out.
fn call(max_tokens: u64, completion: u64) -> Value {
    json!({ "model": "gpt-4o-mini", "max_tokens": max_tokens,
            "messages": [{ "role": "user", "content": "hi" }],
            "mock": { "chunks": completion } })
}

async fn post_with(gw: &Gw, key: &str, body: &Value) -> reqwest::Response {
    TestApp::bare_client()
        .post(gw.app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request")
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_string())
}

fn num(res: &reqwest::Response, name: &str) -> u64 {
    header(res, name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .parse()
        .expect("a number")
}

/// `59.87s`, `1m0s`, `20ms` → seconds.
fn reset_secs(text: &str) -> f64 {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse::<f64>().expect("ms") / 1000.0;
    }
    let (m, s) = match text.split_once('m') {
        Some((m, s)) => (m.parse::<f64>().expect("minutes"), s),
        None => (0.0, text),
    };
    m * 60.0
        + s.strip_suffix('s')
            .expect("s")
            .parse::<f64>()
            .expect("seconds")
}

/// The gateway user's key called `name`, as the admin API lists it.
async fn key_named(gw: &Gw, name: &str) -> Value {
    let listed: Value = TestApp::bare_client()
        .get(
            gw.app
                .url(&format!("/api/admin/keys?user_id={}", gw.user_id)),
        )
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    listed["data"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no key {name}: {listed}"))
        .clone()
}

async fn key_with(gw: &Gw, limits: Value) -> (i64, String) {
    let mut body = json!({ "user_id": gw.user_id, "name": "limited" });
    body.as_object_mut()
        .expect("object")
        .extend(limits.as_object().expect("object").clone());
    let k = create_key(&gw.app, body).await;
    (
        k["id"].as_i64().expect("id"),
        k["key"].as_str().expect("key").to_string(),
    )
}

async fn patch_key(gw: &Gw, id: i64, body: Value) -> reqwest::Response {
    let path = format!("/api/admin/keys/{id}");
    gw.app.admin(Method::PATCH, &path, Some(body)).await
}

/// A key of 3 requests per minute: three calls pass, counting down in the headers; the fourth
/// is 429 in OpenAI's shape with `Retry-After` and the same headers; another key is not
/// affected; a key without limits sends no `x-ratelimit-*` headers.
async fn requests_per_minute_are_enforced_with_openai_headers(backend: Backend) {
    let gw = Gw::start(backend, "10", |_, _| {}).await;
    let (id, key) = key_with(&gw, json!({ "rpm": 3 })).await;
    for left in [2, 1, 0] {
        let res = post_with(&gw, &key, &call(5, 2)).await;
        assert_eq!(res.status(), 200);
        assert_eq!(num(&res, "x-ratelimit-limit-requests"), 3);
        assert_eq!(num(&res, "x-ratelimit-remaining-requests"), left);
        let reset = reset_secs(&header(&res, "x-ratelimit-reset-requests").expect("reset"));
        assert!(reset > 50.0 && reset <= 60.0, "reset {reset}");
        assert!(header(&res, "x-ratelimit-limit-tokens").is_none(), "no TPM");
    }
    let res = post_with(&gw, &key, &call(5, 2)).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = header(&res, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((50..=60).contains(&retry), "retry after {retry}");
    assert_eq!(num(&res, "x-ratelimit-remaining-requests"), 0);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    // The refused call reached no upstream and cost nothing.
    assert_eq!(gw.mock.requests().await.len(), 3);

    // Other keys have their own windows; an unlimited key has no headers.
    let (_, other) = key_with(&gw, json!({ "rpm": 3 })).await;
    let res = post_with(&gw, &other, &call(5, 2)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(num(&res, "x-ratelimit-remaining-requests"), 2);
    let res = gw.post("/v1/chat/completions", call(5, 2)).await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "x-ratelimit-limit-requests").is_none());

    // /v1/models tells the limits without spending them.
    let res = TestApp::bare_client()
        .get(gw.app.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("models");
    assert_eq!(res.status(), 200);
    assert_eq!(num(&res, "x-ratelimit-remaining-requests"), 0);

    // Raised through the admin API: applies to the next call at once.
    let res = patch_key(&gw, id, json!({ "rpm": 5 })).await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.expect("json");
    assert_eq!(view["rpm"], 5);
    let res = post_with(&gw, &key, &call(5, 2)).await;
    assert_eq!(res.status(), 200, "3 of 5 used");
    assert_eq!(num(&res, "x-ratelimit-limit-requests"), 5);
    gw.stop().await;
}

/// A key of 1000 tokens per minute. A call reserves its estimate (a quarter of its bytes
/// plus `max_tokens`) while it runs, so a second large call is refused meanwhile; once settled
/// to its real count (1 prompt + 10 completion tokens) the rest is free again. A call that can
/// never fit is a 400 naming `max_tokens`.
async fn tokens_are_reserved_and_settled_to_the_real_count(backend: Backend) {
    let gw = Gw::start(backend, "10", |_, _| {}).await;
    let (_, key) = key_with(&gw, json!({ "tpm": 1000 })).await;
    let mut slow = call(600, 10);
    slow["mock"]["delay_ms"] = json!(700);
    let first = {
        let (gw_url, key, slow) = (gw.app.url("/v1/chat/completions"), key.clone(), slow);
        tokio::spawn(async move {
            TestApp::bare_client()
                .post(gw_url)
                .bearer_auth(key)
                .json(&slow)
                .send()
                .await
                .expect("slow call")
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = post_with(&gw, &key, &call(600, 10)).await;
    assert_eq!(res.status(), 429, "600 + 600 reserved > 1000");
    assert!(header(&res, "retry-after").is_some());
    let res = first.await.expect("task");
    assert_eq!(res.status(), 200);
    assert_eq!(num(&res, "x-ratelimit-limit-tokens"), 1000);
    assert_eq!(
        num(&res, "x-ratelimit-remaining-tokens"),
        1000 - 11,
        "settled to the real count"
    );
    let res = post_with(&gw, &key, &call(600, 10)).await;
    assert_eq!(res.status(), 200, "fits once the first settled");
    assert_eq!(num(&res, "x-ratelimit-remaining-tokens"), 1000 - 22);

    let res = post_with(&gw, &key, &call(5000, 10)).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["param"], "max_tokens", "{body}");

    // A streamed call is settled too (usage from the upstream's last event).
    let mut stream = call(100, 10);
    stream["stream"] = json!(true);
    stream["stream_options"] = json!({ "include_usage": true });
    let res = post_with(&gw, &key, &stream).await;
    assert_eq!(res.status(), 200);
    let _ = res.bytes().await.expect("stream");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = TestApp::bare_client()
            .get(gw.app.url("/v1/models"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("models");
        if num(&res, "x-ratelimit-remaining-tokens") == 1000 - 33 {
            break;
        }
        assert!(Instant::now() < deadline, "the stream was not settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.stop().await;
}

/// A key without limits of its own takes its user's group's (`limits.groups`), else
/// `limits.default_*`; clearing a key's own limit (`null`) hands it back to them.
async fn limits_come_from_the_key_the_group_or_the_default(backend: Backend) {
    let gw = Gw::start(backend, "10", |c, _| {
        c.limits.default_rpm = Some(2);
        c.limits.default_tpm = Some(100_000);
        c.limits.groups.insert(
            "vip".into(),
            service::config::GroupLimits {
                rpm: Some(4),
                tpm: None,
                max_concurrent: None,
            },
        );
    })
    .await;
    let res = gw.post("/v1/chat/completions", call(5, 2)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(num(&res, "x-ratelimit-limit-requests"), 2, "the default");
    assert_eq!(num(&res, "x-ratelimit-limit-tokens"), 100_000);
    assert_eq!(
        gw.post("/v1/chat/completions", call(5, 2)).await.status(),
        200
    );
    assert_eq!(
        gw.post("/v1/chat/completions", call(5, 2)).await.status(),
        429
    );

    gw.set_group("vip").await;
    let res = gw.post("/v1/chat/completions", call(5, 2)).await;
    assert_eq!(res.status(), 200, "the group's 4 (2 used)");
    assert_eq!(num(&res, "x-ratelimit-limit-requests"), 4);
    assert_eq!(
        num(&res, "x-ratelimit-limit-tokens"),
        100_000,
        "default TPM"
    );

    let (id, key) = key_with(&gw, json!({ "rpm": 1, "tpm": 50 })).await;
    let res = post_with(&gw, &key, &call(5, 2)).await;
    assert_eq!(num(&res, "x-ratelimit-limit-requests"), 1, "the key's own");
    assert_eq!(num(&res, "x-ratelimit-limit-tokens"), 50);
    assert_eq!(post_with(&gw, &key, &call(5, 2)).await.status(), 429);
    let res = patch_key(&gw, id, json!({ "rpm": null })).await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.expect("json");
    assert_eq!(view["rpm"], Value::Null);
    assert_eq!(view["tpm"], 50, "left out: unchanged");
    let res = post_with(&gw, &key, &call(5, 2)).await;
    assert_eq!(res.status(), 200, "back to the group's 4");
    assert_eq!(num(&res, "x-ratelimit-limit-requests"), 4);

    // Bad patches name their field; an empty one changes nothing.
    for (body, param) in [
        (json!({ "rpm": 0 }), "rpm"),
        (json!({ "tpm": -5 }), "tpm"),
        (json!({ "allowed_ips": ["300.1.1.1"] }), "allowed_ips"),
        (json!({ "spend_cap": "-1" }), "spend_cap"),
        (json!({ "allowed_models": [" "] }), "allowed_models"),
        (json!({}), "body"),
    ] {
        let res = patch_key(&gw, id, body.clone()).await;
        assert_eq!(res.status(), 400, "{body}");
        let err: Value = res.json().await.expect("json");
        assert_eq!(err["error"]["param"], param, "{body}: {err}");
    }
    assert_eq!(
        patch_key(&gw, id, json!({ "bogus": 1 })).await.status(),
        400
    );
    assert_eq!(
        patch_key(&gw, 999_999, json!({ "rpm": 3 })).await.status(),
        404
    );
    gw.stop().await;
}

/// Models, IPs and the spend cap changed through the admin API bind the very next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_patch_applies_to_the_next_call() {
    let gw = Gw::start(Backend::Sqlite, "10", |_, _| {}).await;
    let (id, key) = key_with(&gw, json!({})).await;
    assert_eq!(post_with(&gw, &key, &call(5, 2)).await.status(), 200);
    let res = patch_key(
        &gw,
        id,
        json!({ "allowed_models": ["flat"], "name": "renamed" }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.expect("json");
    assert_eq!(view["name"], "renamed");
    assert_eq!(post_with(&gw, &key, &call(5, 2)).await.status(), 403);
    patch_key(&gw, id, json!({ "allowed_models": [] })).await;
    assert_eq!(post_with(&gw, &key, &call(5, 2)).await.status(), 200);
    patch_key(&gw, id, json!({ "allowed_ips": ["10.9.9.0/24"] })).await;
    assert_eq!(post_with(&gw, &key, &call(5, 2)).await.status(), 403);
    let res = patch_key(
        &gw,
        id,
        json!({ "allowed_ips": ["127.0.0.1"], "spend_cap": "0" }),
    )
    .await;
    let view: Value = res.json().await.expect("json");
    assert_eq!(view["allowed_ips"], json!(["127.0.0.1/32"]));
    assert_eq!(
        post_with(&gw, &key, &call(5, 2)).await.status(),
        402,
        "a cap of 0 covers nothing"
    );
    patch_key(&gw, id, json!({ "spend_cap": null, "expires_at": 1 })).await;
    assert_eq!(
        post_with(&gw, &key, &call(5, 2)).await.status(),
        401,
        "expired"
    );
    gw.stop().await;
}

/// The console's key functions act only on the signed-in user's own keys: a key is created for
/// them alone, with limits no higher than their account's, another user's key is "not found"
/// to them, and nobody signed out gets anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_key_functions_touch_only_your_own_keys() {
    let gw = Gw::start(Backend::Sqlite, "10", |c, _| {
        c.limits.default_rpm = Some(10);
    })
    .await;
    let bob = gw.app.create_user("bob", "bob-password", "user").await;
    credit(&gw.app, bob, "1").await;
    let (bobs_key, bobs_secret, bobs_prefix) = {
        let k = create_key(&gw.app, json!({ "user_id": bob, "name": "bob's" })).await;
        (
            k["id"].as_i64().expect("id"),
            k["key"].as_str().expect("key").to_string(),
            k["prefix"].as_str().expect("prefix").to_string(),
        )
    };
    let alice = TestApp::client();
    let res = gw.app.login(&alice, "alice", "alice-password").await;
    assert!(res.status().is_success(), "{}", res.status());
    let sfn = |name: &str, form: Vec<(&'static str, String)>| {
        let req = alice.post(gw.app.url(&format!("/_sfn/{name}"))).form(&form);
        async move { req.send().await.expect("server function") }
    };
    let form = |rpm: &str| {
        vec![
            ("name", "console".to_string()),
            ("expires_on", "2099-12-31".to_string()),
            ("models[]", "gpt-4o-mini".to_string()),
            ("models[]", "flat".to_string()),
            ("ips", "127.0.0.1\n10.0.0.0/8".to_string()),
            ("spend_cap", "2.5".to_string()),
            ("rpm", rpm.to_string()),
            ("tpm", String::new()),
        ]
    };
    let res = sfn("me/create_key", form("11")).await;
    assert_eq!(res.status(), 400, "above the account's 10 RPM");
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["param"], "rpm", "{err}");
    let res = sfn("me/create_key", form("5")).await;
    assert_eq!(res.status(), 200);
    // The answer: the key's name and its secret, once; the key as the form said.
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["name"], "console", "{answer}");
    let created = key_named(&gw, "console").await;
    assert_eq!(created["rpm"], 5);
    assert_eq!(
        created["user_id"], gw.user_id,
        "for alice, whatever she sends"
    );
    assert_eq!(created["allowed_models"], json!(["gpt-4o-mini", "flat"]));
    assert_eq!(
        created["allowed_ips"],
        json!(["127.0.0.1/32", "10.0.0.0/8"])
    );
    assert_eq!(created["spend_cap"], "2.50");
    assert_eq!(
        created["expires_at"], 4_102_444_800_000_i64,
        "the end of that day"
    );
    let secret = answer["key"].as_str().expect("secret").to_string();
    assert_eq!(created["prefix"], format!("{}…", &secret[..9]));
    assert_eq!(
        post_with(&gw, &secret, &call(5, 2)).await.status(),
        200,
        "the new key works"
    );
    let res = sfn("me/create_key", vec![("name", String::new())]).await;
    assert_eq!(res.status(), 400, "fields left out");

    // The keys page, drawn: alice's two keys (the gateway's test key and the new one).
    let mine: Value = sfn("me/keys", vec![]).await.json().await.expect("json");
    let mine = mine.as_str().expect("html");
    assert_eq!(mine.matches("data-testid=\"key-row\"").count(), 2, "{mine}");
    assert!(mine.contains(created["prefix"].as_str().expect("prefix")));
    assert!(!mine.contains(&bobs_prefix), "bob's key is not listed");
    assert!(mine.contains("Jan 1, 2100, 00:00"), "the expiry: {mine}");
    assert!(mine.contains("5 RPM"), "{mine}");
    for (name, form) in [
        (
            "me/set_key_status",
            vec![("id", bobs_key.to_string()), ("active", "false".into())],
        ),
        ("me/delete_key", vec![("id", bobs_key.to_string())]),
    ] {
        assert_eq!(sfn(name, form).await.status(), 404, "{name} on bob's key");
    }
    assert_eq!(
        post_with(&gw, &bobs_secret, &call(5, 2)).await.status(),
        200,
        "bob's key untouched"
    );
    let visitor = TestApp::client();
    for name in ["me/keys", "me/key_form"] {
        let res = visitor
            .post(gw.app.url(&format!("/_sfn/{name}")))
            .send()
            .await
            .expect("sfn");
        assert_eq!(res.status(), 401, "{name}");
    }
    // The creation form offers the models alice may call, each a box to tick.
    let form: Value = sfn("me/key_form", vec![]).await.json().await.expect("json");
    let form = form.as_str().expect("html");
    let offered: Vec<&str> = form
        .split("<input type=\"checkbox\" name=\"models[]\" value=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(
        offered,
        ["flat", "gpt-4o-mini", "text-embedding-3-small"],
        "{form}"
    );
    assert!(form.contains("action=\"/_sfn/me/create_key\""), "{form}");
    assert!(!form.contains("data-testid=\"new-key\""), "{form}");

    // Without JavaScript the browser posts the form itself and is sent back to the page: the
    // secret comes along once, in a cookie only `/keys` receives, and the page shows it and
    // removes the cookie.
    let res = alice
        .post(gw.app.url("/_sfn/me/create_key"))
        .header("accept", "text/html,application/xhtml+xml")
        .header("referer", gw.app.url("/keys"))
        .form(&[
            ("name", "no script"),
            ("expires_on", ""),
            ("models[]", "flat"),
            ("ips", ""),
            ("spend_cap", ""),
            ("rpm", ""),
            ("tpm", ""),
        ])
        .send()
        .await
        .expect("form post");
    assert!(res.status().is_redirection(), "{}", res.status());
    let back = res.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(back.starts_with(&gw.app.url("/keys")), "{back}");
    let set = res.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        set.starts_with("tollgate_new_key=sk-")
            && set.contains("Path=/keys")
            && set.contains("HttpOnly")
            && set.contains("Max-Age=60"),
        "{set}"
    );
    let secret = set["tollgate_new_key=".len()..]
        .split(';')
        .next()
        .expect("value")
        .to_string();
    let page = alice.get(gw.app.url("/keys")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let cleared = page.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        cleared.starts_with("tollgate_new_key=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let html = page.text().await.expect("html");
    assert!(
        html.contains("data-testid=\"new-key-secret\"") && html.contains(&secret),
        "the secret, once: {html}"
    );
    let again = alice.get(gw.app.url("/keys")).send().await.expect("page");
    assert!(
        !again.text().await.expect("html").contains(&secret),
        "not twice"
    );
    let mut flat = call(5, 2);
    flat["model"] = json!("flat");
    assert_eq!(
        post_with(&gw, &secret, &flat).await.status(),
        200,
        "the key works"
    );
    assert_eq!(
        post_with(&gw, &secret, &call(5, 2)).await.status(),
        403,
        "for the ticked model only"
    );
    let made = key_named(&gw, "no script").await;
    assert_eq!(made["allowed_models"], json!(["flat"]), "the ticked box");
    // The page shows a secret only when it is one of alice's own keys: not bob's, nor a made-up
    // one that begins as hers does.
    let bare = TestApp::bare_client();
    let login = gw.app.login(&bare, "alice", "alice-password").await;
    let session = login.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let made_up = format!("{}{}", &secret[..9], "A".repeat(secret.len() - 9));
    for (planted, shown) in [(&secret, true), (&bobs_secret, false), (&made_up, false)] {
        let form: Value = bare
            .post(gw.app.url("/_sfn/me/key_form"))
            .header("cookie", format!("{session}; tollgate_new_key={planted}"))
            .send()
            .await
            .expect("form")
            .json()
            .await
            .expect("json");
        assert_eq!(
            form.as_str().expect("html").contains(planted.as_str()),
            shown,
            "{form}"
        );
    }
    gw.stop().await;
}
