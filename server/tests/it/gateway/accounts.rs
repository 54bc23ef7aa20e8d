//! Accounts as an administrator keeps them: a password reset ends the user's sessions and
//! never reaches the audit log; a deleted user's keys stop at once while their ledger and calls
//! stay and still add up; the admin list of keys comes in keyset pages.

use super::*;
use crate::both_backends;

both_backends!(
    a_reset_password_ends_every_session_and_is_never_logged,
    a_deleted_user_stops_at_once_and_their_money_still_adds_up,
    the_admin_keys_list_is_paged_and_filtered,
);

/// The status of a signed-in user's export of their own calls (200, or 401 once signed out).
async fn session_status(app: &TestApp, client: &reqwest::Client) -> u16 {
    client
        .get(app.url("/api/me/logs.csv"))
        .send()
        .await
        .expect("logs")
        .status()
        .as_u16()
}

async fn a_reset_password_ends_every_session_and_is_never_logged(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let app = &gw.app;
    let id = gw.user_id;
    let phone = TestApp::client();
    let laptop = TestApp::client();
    for c in [&phone, &laptop] {
        assert_eq!(app.login(c, "alice", "alice-password").await.status(), 200);
        assert_eq!(session_status(app, c).await, 200);
    }

    let path = format!("/api/admin/users/{id}/password");
    let res = app
        .admin(
            Method::POST,
            &path,
            Some(json!({ "password": "chosen-by-admin" })),
        )
        .await;
    assert_eq!(res.status(), 200);
    let reset: Value = res.json().await.expect("json");
    assert_eq!(reset["generated_password"], Value::Null);
    assert_eq!(reset["sessions_ended"], 2);
    for c in [&phone, &laptop] {
        assert_eq!(session_status(app, c).await, 401, "the session ended");
    }
    let fresh = TestApp::client();
    assert_eq!(
        app.login(&fresh, "alice", "alice-password").await.status(),
        401
    );
    assert_eq!(
        app.login(&fresh, "alice", "chosen-by-admin").await.status(),
        200
    );

    // None given: one is made and shown this once.
    let res = app.admin(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(res.status(), 200);
    let reset: Value = res.json().await.expect("json");
    let made = reset["generated_password"]
        .as_str()
        .expect("a password")
        .to_string();
    assert_eq!(made.len(), 20);
    assert_eq!(reset["sessions_ended"], 1);
    assert_eq!(session_status(app, &fresh).await, 401);
    assert_eq!(app.login(&fresh, "alice", &made).await.status(), 200);

    // Bad input names its field; nothing changes.
    for (body, field) in [
        (json!({ "password": "short" }), "password"),
        (json!({ "password": "long-enough", "extra": 1 }), ""),
    ] {
        let res = app.admin(Method::POST, &path, Some(body)).await;
        assert_eq!(res.status(), 400);
        let err: Value = res.json().await.expect("json");
        if !field.is_empty() {
            assert_eq!(err["error"]["param"], field, "{err}");
        }
    }
    let res = app
        .admin(
            Method::POST,
            "/api/admin/users/999999/password",
            Some(json!({})),
        )
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(session_status(app, &fresh).await, 200, "still signed in");

    let audit: Value = app
        .admin(
            Method::GET,
            "/api/admin/audit?action=user.password_reset",
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    let entries = audit["data"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(entries[0]["target"], format!("user:{id}"));
    let text = audit.to_string();
    assert!(
        !text.contains("chosen-by-admin") && !text.contains(&made),
        "{text}"
    );
    gw.stop().await;
}

async fn a_deleted_user_stops_at_once_and_their_money_still_adds_up(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let app = &gw.app;
    let id = gw.user_id;
    let body = json!({ "model": "gpt-4o-mini", "messages": hello() });
    assert_eq!(
        gw.post("/v1/chat/completions", body.clone()).await.status(),
        200
    );
    gw.settled(1).await;
    let balance = gw.balance().await;
    let session = TestApp::client();
    assert_eq!(
        app.login(&session, "alice", "alice-password")
            .await
            .status(),
        200
    );
    assert_eq!(session_status(app, &session).await, 200);

    // Nobody deletes the last active administrator (the admin token acts for no user).
    let users: Vec<Value> = app
        .admin(Method::GET, "/api/admin/users", None)
        .await
        .json()
        .await
        .expect("json");
    let admin_id = users
        .iter()
        .find(|u| u["username"] == "admin")
        .and_then(|u| u["id"].as_i64())
        .expect("admin");
    let res = app
        .admin(
            Method::DELETE,
            &format!("/api/admin/users/{admin_id}"),
            None,
        )
        .await;
    assert_eq!(res.status(), 400);
    // An administrator does not delete themselves either.
    let boss_id = app.create_user("boss", "boss-password", "admin").await;
    let boss = TestApp::client();
    assert_eq!(
        app.login(&boss, "boss", "boss-password").await.status(),
        200
    );
    let res = boss
        .delete(app.url(&format!("/api/admin/users/{boss_id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 400);

    let path = format!("/api/admin/users/{id}");
    let res = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(res.status(), 200);
    let gone: Value = res.json().await.expect("json");
    assert!(gone["deleted_at"].as_i64().is_some(), "{gone}");
    assert_eq!(gone["status"], "disabled");

    // At once: the key, the session and the password.
    let res = gw.post("/v1/chat/completions", body).await;
    assert_eq!(res.status(), 401);
    assert_eq!(session_status(app, &session).await, 401);
    let again = TestApp::client();
    let res = app.login(&again, "alice", "alice-password").await;
    assert_eq!(
        res.status(),
        401,
        "a deleted account answers as an unknown one"
    );
    let keys: Value = app
        .admin(Method::GET, &format!("/api/admin/keys?user_id={id}"), None)
        .await
        .json()
        .await
        .expect("json");
    let keys = keys["data"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert!(keys.iter().all(|k| k["status"] == "disabled"), "{keys:?}");

    // The money stays, and still adds up.
    assert_eq!(gw.balance().await, balance);
    assert_eq!(
        gw.scalar("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger WHERE user_id = $1")
            .await,
        balance
    );
    assert_eq!(
        gw.scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1")
            .await,
        1
    );

    // The name is not given again, and the account takes no further change.
    let res = app
        .admin(
            Method::POST,
            "/api/admin/users",
            Some(json!({ "username": "alice", "password": "another-password" })),
        )
        .await;
    assert_eq!(res.status(), 409);
    for (method, p, body) in [
        (Method::DELETE, path.clone(), None),
        (
            Method::POST,
            format!("{path}/status"),
            Some(json!({ "status": "active" })),
        ),
        (Method::POST, format!("{path}/password"), Some(json!({}))),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({ "group": "gold" })),
        ),
    ] {
        let res = app.admin(method.clone(), &p, body).await;
        assert_eq!(res.status(), 409, "{method} {p}");
    }
    let res = app
        .admin(
            Method::POST,
            "/api/admin/keys",
            Some(json!({ "user_id": id, "name": "late" })),
        )
        .await;
    assert_eq!(res.status(), 400, "no key for a deleted user");
    let audit: Value = app
        .admin(Method::GET, "/api/admin/audit?action=user.delete", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(audit["data"][0]["target"], format!("user:{id}"));
    gw.stop().await;
}

async fn the_admin_keys_list_is_paged_and_filtered(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let app = &gw.app;
    let other = app.create_user("bob", "bob-password", "user").await;
    let own = app
        .admin(
            Method::GET,
            &format!("/api/admin/keys?user_id={}", gw.user_id),
            None,
        )
        .await
        .json::<Value>()
        .await
        .expect("json");
    let test_key = own["data"][0]["id"].as_i64().expect("the gateway's key");
    let soon = service::now_ms() + 2 * 86_400_000;
    let later = service::now_ms() + 30 * 86_400_000;
    let mut made = vec![];
    for (user, name, expires) in [
        (gw.user_id, "a", None),
        (other, "b", Some(soon)),
        (gw.user_id, "c", Some(later)),
        (other, "d", None),
        (gw.user_id, "e", None),
    ] {
        let k = create_key(
            app,
            json!({ "user_id": user, "name": name, "expires_at": expires }),
        )
        .await;
        made.push(k["id"].as_i64().expect("id"));
    }
    let disabled = made[3];
    let res = app
        .admin(
            Method::POST,
            &format!("/api/admin/keys/{disabled}/status"),
            Some(json!({ "status": "disabled" })),
        )
        .await;
    assert_eq!(res.status(), 200);

    let page = |q: String| async move {
        let res = app
            .admin(Method::GET, &format!("/api/admin/keys?{q}"), None)
            .await;
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.expect("json"))
    };
    let ids = |v: &Value| -> Vec<i64> {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|k| k["id"].as_i64().expect("id"))
            .collect()
    };
    // Every key (the gateway's own "test" key too), newest first, two at a time.
    let mut all = vec![];
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let (status, body) = page(format!("limit=2&cursor={cursor}")).await;
        assert_eq!(status, 200, "{body}");
        let got = ids(&body);
        assert!(got.len() <= 2);
        all.extend(got);
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut want = made.clone();
    want.push(test_key);
    want.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(all, want, "each key once, newest first");

    let (_, body) = page(format!("user_id={other}")).await;
    assert_eq!(ids(&body), [made[3], made[1]]);
    let (_, body) = page("status=disabled".into()).await;
    assert_eq!(ids(&body), [disabled]);
    let (_, body) = page("status=expiring".into()).await;
    assert_eq!(ids(&body), [made[1]], "within 7 days, not 30");
    let (_, body) = page(format!("status=active&user_id={}", gw.user_id)).await;
    assert_eq!(ids(&body), [made[4], made[2], made[0], test_key]);
    for (q, param) in [
        ("status=lost", "status"),
        ("cursor=abc", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
    ] {
        let (status, body) = page(q.into()).await;
        assert_eq!(status, 400, "{q}");
        assert_eq!(body["error"]["param"], param, "{q}: {body}");
    }
    gw.stop().await;
}

/// `/api/admin/profile` in a build with the profiler (as `make test` builds the tests): the
/// flamegraph of a second of calls, one profile at a time, its bounds checked.
#[cfg(feature = "profile")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profiler_draws_the_calls_it_samples() {
    let gw = Gw::start(Backend::Sqlite, "1", |_, _| {}).await;
    let app = &gw.app;
    let load = {
        let (url, key) = (app.url("/v1/chat/completions"), gw.key.clone());
        tokio::spawn(async move {
            let client = TestApp::bare_client();
            let body = json!({ "model": "gpt-4o-mini", "messages": hello() });
            for _ in 0..400 {
                let _ = client.post(&url).bearer_auth(&key).json(&body).send().await;
            }
        })
    };
    let first = app.admin(
        Method::GET,
        "/api/admin/profile?seconds=2&frequency=997",
        None,
    );
    let second = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.admin(Method::GET, "/api/admin/profile?seconds=1", None)
            .await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(second.status(), 409, "one profile at a time");
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "image/svg+xml");
    let svg = first.text().await.expect("svg");
    assert!(svg.contains("<svg"), "{}", &svg[..svg.len().min(200)]);
    // The calls it sampled are in it, by the names of the gateway's own functions.
    assert!(svg.contains("service::"), "no frame of the gateway's code");
    load.abort();
    profile_bounds(app).await;
    gw.stop().await;
}

/// Without the profiler in the build, the route says so.
#[cfg(not(feature = "profile"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profiler_is_absent_from_a_build_without_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app
        .admin(Method::GET, "/api/admin/profile?seconds=1", None)
        .await;
    assert_eq!(res.status(), 404);
    let err: Value = res.json().await.expect("json");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("make profile")),
        "{err}"
    );
    profile_bounds(&app).await;
    app.stop().await;
}

/// Bad bounds are refused before anything is sampled, naming the field.
async fn profile_bounds(app: &TestApp) {
    for (q, param) in [
        ("seconds=0", "seconds"),
        ("seconds=121", "seconds"),
        ("frequency=0", "frequency"),
        ("frequency=1001", "frequency"),
    ] {
        let res = app
            .admin(Method::GET, &format!("/api/admin/profile?{q}"), None)
            .await;
        assert_eq!(res.status(), 400, "{q}");
        let err: Value = res.json().await.expect("json");
        assert_eq!(err["error"]["param"], param, "{q}");
    }
}
