use crate::both_backends;
use crate::common::*;
use serde_json::Value;

both_backends!(
    login_succeeds_with_a_hardened_session_cookie,
    wrong_password_and_unknown_user_get_the_same_answer,
    repeated_failures_are_throttled_per_account,
    repeated_failures_are_throttled_per_client_ip,
    logout_invalidates_the_session,
    login_rotates_the_session_id,
    disabling_a_user_ends_their_sessions,
    users_get_403_on_admin_routes_and_admin_server_functions,
    cross_site_posts_are_refused,
    registration_is_off_unless_configured,
    forms_posted_without_javascript_go_back_to_their_page,
);

async fn login_succeeds_with_a_hardened_session_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::client();
    let res = app.login(&client, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let (token, raw) = session_cookie(&res).expect("session cookie set");
    assert_eq!(token.len(), 64);
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(raw.contains(flag), "cookie lacks {flag}: {raw}");
    }
    assert!(
        !raw.contains("Secure"),
        "plain http must not set Secure: {raw}"
    );
    let user: Value = res.json().await.expect("json");
    assert_eq!(user["username"], "admin");
    assert_eq!(user["role"], "admin");
    assert!(user.get("password_hash").is_none());

    let me: Value = client
        .post(app.url("/_sfn/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["username"], "admin");
    assert_eq!(me["balance"], "0.00");

    // The session row stores a digest, never the token.
    let stored: Vec<String> = sqlx::query_scalar(&app.svc.db.sql("SELECT id FROM sessions"))
        .fetch_all(app.svc.db.pool())
        .await
        .expect("sessions");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token);
    app.stop().await;

    // Behind https, the cookie is Secure.
    let app = TestApp::spawn_with(backend, |c| {
        c.server.public_url = "https://gw.example.com".into()
    })
    .await;
    let res = app.login(&TestApp::client(), "admin", ADMIN_PASSWORD).await;
    let (_, raw) = session_cookie(&res).expect("cookie");
    assert!(raw.contains("; Secure"), "{raw}");
    app.stop().await;
}

async fn wrong_password_and_unknown_user_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::client();
    let wrong = app.login(&client, "admin", "not-the-password").await;
    assert_eq!(wrong.status(), 401);
    assert!(session_cookie(&wrong).is_none());
    let wrong: Value = wrong.json().await.expect("json");
    let unknown = app.login(&client, "nobody-here", "not-the-password").await;
    assert_eq!(unknown.status(), 401);
    let unknown: Value = unknown.json().await.expect("json");
    assert_eq!(wrong["message"], unknown["message"]);
    assert_eq!(wrong["kind"], "unauthorized");
    assert!(
        wrong["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{wrong}"
    );
    let me: Value = client
        .post(app.url("/_sfn/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert!(me.is_null());
    app.stop().await;
}

async fn repeated_failures_are_throttled_per_account(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.auth.max_failures_per_account = 3).await;
    let client = TestApp::client();
    for _ in 0..3 {
        assert_eq!(
            app.login(&client, "admin", "wrong-password").await.status(),
            401
        );
    }
    // Now even the right password is refused until the window ends.
    let res = app.login(&client, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(session_cookie(&res).is_none());
    // Another account is not affected by this one's failures.
    app.create_user("carol", "carol-password", "user").await;
    assert_eq!(
        app.login(&client, "carol", "carol-password").await.status(),
        200
    );
    app.stop().await;
}

async fn repeated_failures_are_throttled_per_client_ip(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.auth.max_failures_per_ip = 4).await;
    let client = TestApp::client();
    for i in 0..4 {
        assert_eq!(
            app.login(&client, &format!("guess{i}"), "wrong-password")
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        app.login(&client, "admin", ADMIN_PASSWORD).await.status(),
        429
    );
    app.stop().await;
}

async fn logout_invalidates_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::bare_client();
    let res = app.login(&client, "admin", ADMIN_PASSWORD).await;
    let (token, _) = session_cookie(&res).expect("cookie");
    let cookie = format!("tollgate_session={token}");
    let admin = client
        .get(app.url("/api/admin/users"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("users");
    assert_eq!(admin.status(), 200);

    let out = client
        .post(app.url("/_sfn/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 200);
    let (cleared, raw) = session_cookie(&out).expect("logout clears the cookie");
    assert!(cleared.is_empty() && raw.contains("Max-Age=0"), "{raw}");

    // The old cookie no longer opens anything.
    let again = client
        .get(app.url("/api/admin/users"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("users");
    assert_eq!(again.status(), 401);
    let me: Value = client
        .post(app.url("/_sfn/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert!(me.is_null());
    let n: i64 = sqlx::query_scalar(&app.svc.db.sql("SELECT COUNT(*) FROM sessions"))
        .fetch_one(app.svc.db.pool())
        .await
        .expect("count");
    assert_eq!(n, 0);
    app.stop().await;
}

async fn login_rotates_the_session_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::bare_client();
    let (first, _) =
        session_cookie(&app.login(&client, "admin", ADMIN_PASSWORD).await).expect("cookie");
    let second_res = client
        .post(app.url("/_sfn/login"))
        .header("cookie", format!("tollgate_session={first}"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("login");
    let (second, _) = session_cookie(&second_res).expect("cookie");
    assert_ne!(first, second);
    let old = client
        .get(app.url("/api/admin/users"))
        .header("cookie", format!("tollgate_session={first}"))
        .send()
        .await
        .expect("users");
    assert_eq!(old.status(), 401, "the session presented at login must end");
    let new = client
        .get(app.url("/api/admin/users"))
        .header("cookie", format!("tollgate_session={second}"))
        .send()
        .await
        .expect("users");
    assert_eq!(new.status(), 200);
    app.stop().await;
}

async fn disabling_a_user_ends_their_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_user("dave", "dave-password", "user").await;
    let client = TestApp::client();
    assert_eq!(
        app.login(&client, "dave", "dave-password").await.status(),
        200
    );
    let res = TestApp::bare_client()
        .post(app.url(&format!("/api/admin/users/{id}/status")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "status": "disabled" }))
        .send()
        .await
        .expect("disable");
    assert_eq!(res.status(), 200);
    let me: Value = client
        .post(app.url("/_sfn/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert!(me.is_null(), "{me}");
    let res = app.login(&client, "dave", "dave-password").await;
    assert_eq!(res.status(), 403);
    app.stop().await;
}

async fn users_get_403_on_admin_routes_and_admin_server_functions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("erin", "erin-password", "user").await;
    let client = TestApp::client();
    assert_eq!(
        app.login(&client, "erin", "erin-password").await.status(),
        200
    );

    let rest = client
        .get(app.url("/api/admin/users"))
        .send()
        .await
        .expect("rest");
    assert_eq!(rest.status(), 403);
    let body: Value = rest.json().await.expect("json");
    assert_eq!(body["error"]["type"], "permission_error");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    let create = client
        .post(app.url("/api/admin/users"))
        .json(&serde_json::json!({ "username": "mallory", "password": "mallory-password", "role": "admin" }))
        .send()
        .await
        .expect("rest");
    assert_eq!(create.status(), 403);

    let sfn = client
        .post(app.url("/_sfn/admin/users"))
        .send()
        .await
        .expect("sfn");
    assert_eq!(sfn.status(), 403);
    let sfn = client
        .post(app.url("/_sfn/admin/create_user"))
        .form(&[
            ("username", "mallory"),
            ("password", "mallory-password"),
            ("role", "admin"),
        ])
        .send()
        .await
        .expect("sfn");
    assert_eq!(sfn.status(), 403);
    let n: i64 = sqlx::query_scalar(
        &app.svc
            .db
            .sql("SELECT COUNT(*) FROM users WHERE username = 'mallory'"),
    )
    .fetch_one(app.svc.db.pool())
    .await
    .expect("count");
    assert_eq!(n, 0, "a refused admin action must not happen");

    // Without any credentials: 401, not 403.
    let anon = TestApp::bare_client()
        .get(app.url("/api/admin/users"))
        .send()
        .await
        .expect("anon");
    assert_eq!(anon.status(), 401);
    let anon = TestApp::bare_client()
        .post(app.url("/_sfn/admin/users"))
        .send()
        .await
        .expect("anon");
    assert_eq!(anon.status(), 401);
    let bad_token = TestApp::bare_client()
        .get(app.url("/api/admin/users"))
        .bearer_auth("nope")
        .send()
        .await
        .expect("token");
    assert_eq!(bad_token.status(), 401);
    app.stop().await;
}

async fn cross_site_posts_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::client();
    assert_eq!(
        app.login(&client, "admin", ADMIN_PASSWORD).await.status(),
        200
    );

    let evil = client
        .post(app.url("/_sfn/admin/create_user"))
        .header("origin", "https://evil.example")
        .form(&[
            ("username", "planted"),
            ("password", "planted-password"),
            ("role", "admin"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(evil.status(), 403);
    let fetch_site = client
        .post(app.url("/_sfn/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("post");
    assert_eq!(fetch_site.status(), 403);
    let rest = client
        .post(app.url("/api/admin/users"))
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({ "username": "planted", "password": "planted-password", "role": "admin" }))
        .send()
        .await
        .expect("post");
    assert_eq!(rest.status(), 403);
    let n: i64 = sqlx::query_scalar(
        &app.svc
            .db
            .sql("SELECT COUNT(*) FROM users WHERE username = 'planted'"),
    )
    .fetch_one(app.svc.db.pool())
    .await
    .expect("count");
    assert_eq!(n, 0);

    // The same request from our own origin goes through.
    let same = client
        .post(app.url("/_sfn/admin/create_user"))
        .header("origin", app.base.clone())
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("username", "planted"),
            ("password", "planted-password"),
            ("role", "user"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(same.status(), 200);
    app.stop().await;
}

/// A form the browser posts itself (no JavaScript) asks for HTML; the answer is the way back to
/// the form's page, with the error in its query when the call failed, never the error's JSON.
async fn forms_posted_without_javascript_go_back_to_their_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::client();
    let page = format!("{}/login?next=%2Fkeys", app.base);
    let post = |password: &'static str| {
        client
            .post(app.url("/_sfn/login"))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .header("referer", &page)
            .header("sec-fetch-site", "same-origin")
            .form(&[("username", "admin"), ("password", password)])
            .send()
    };
    let refused = post("not-the-password").await.expect("post");
    assert!(refused.status().is_redirection(), "{}", refused.status());
    assert!(session_cookie(&refused).is_none());
    let to = refused.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(
        to.starts_with(&page) && to.contains("__path=") && to.contains("__err="),
        "{to}"
    );
    // That page, rendered on the server, shows the error where the form shows its errors.
    let html = client
        .get(&to)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("invalid username or password"), "{html}");

    let signed_in = post(ADMIN_PASSWORD).await.expect("post");
    assert!(
        signed_in.status().is_redirection(),
        "{}",
        signed_in.status()
    );
    assert!(session_cookie(&signed_in).is_some());
    assert_eq!(signed_in.headers()["location"], page.as_str());
    // A form call from the console's own code asks for JSON and keeps the error's status.
    let json = app
        .login(&TestApp::client(), "admin", "not-the-password")
        .await;
    assert_eq!(json.status(), 401);
    app.stop().await;
}

async fn registration_is_off_unless_configured(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::client();
    let res = client
        .post(app.url("/_sfn/register"))
        .form(&[("username", "newbie"), ("password", "newbie-password")])
        .send()
        .await
        .expect("register");
    assert_eq!(res.status(), 403);
    app.stop().await;

    let app = TestApp::spawn_with(backend, |c| c.auth.allow_registration = true).await;
    let res = client
        .post(app.url("/_sfn/register"))
        .form(&[("username", "newbie"), ("password", "newbie-password")])
        .send()
        .await
        .expect("register");
    assert_eq!(res.status(), 200);
    let user: Value = res.json().await.expect("json");
    assert_eq!(user["role"], "user");
    let me: Value = client
        .post(app.url("/_sfn/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["username"], "newbie");
    app.stop().await;
}

/// Two instances on one PostgreSQL database and one Redis: sessions and throttling are shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_sessions_and_throttling_through_postgres_and_redis() {
    let a = TestApp::spawn_with(Backend::Postgres, |c| c.auth.max_failures_per_account = 2).await;
    let b = TestApp::spawn_on(a.storage.clone(), |c| c.auth.max_failures_per_account = 2).await;
    let client = TestApp::bare_client();
    let (token, _) =
        session_cookie(&a.login(&client, "admin", ADMIN_PASSWORD).await).expect("cookie");
    let on_b = client
        .get(b.url("/api/admin/users"))
        .header("cookie", format!("tollgate_session={token}"))
        .send()
        .await
        .expect("users");
    assert_eq!(
        on_b.status(),
        200,
        "a session made on one instance works on another"
    );

    assert_eq!(a.login(&client, "admin", "wrong-1").await.status(), 401);
    assert_eq!(b.login(&client, "admin", "wrong-2").await.status(), 401);
    assert_eq!(
        a.login(&client, "admin", ADMIN_PASSWORD).await.status(),
        429,
        "failures on both count together"
    );
    b.shutdown().await;
    a.stop().await;
}

/// The account page's functions: the current password is required (the field is named when
/// wrong), a change ends the user's other sessions but not this one, and "sign out everywhere"
/// ends them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_ends_the_other_sessions() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_user("carol", "carol-password", "user").await;
    let (here, there) = (TestApp::client(), TestApp::client());
    for c in [&here, &there] {
        assert!(
            app.login(c, "carol", "carol-password")
                .await
                .status()
                .is_success()
        );
    }
    let me = |c: &reqwest::Client| {
        let req = c.post(app.url("/_sfn/me"));
        async move {
            req.send()
                .await
                .expect("me")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let change = |current: &str, new: &str| {
        let req = here
            .post(app.url("/_sfn/me/password"))
            .form(&[("current_password", current), ("new_password", new)]);
        async move { req.send().await.expect("change") }
    };
    let res = change("not-my-password", "carol-new-password").await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.expect("json")["param"],
        "current_password"
    );
    let res = change("carol-password", "short").await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.expect("json")["param"],
        "new_password"
    );
    assert_eq!(me(&there).await["username"], "carol", "nothing changed yet");
    assert_eq!(
        change("carol-password", "carol-new-password")
            .await
            .status(),
        200
    );
    assert_eq!(me(&here).await["username"], "carol", "this session stays");
    assert!(me(&there).await.is_null(), "the other session ended");
    assert_eq!(
        app.login(&TestApp::client(), "carol", "carol-password")
            .await
            .status(),
        401
    );
    let third = TestApp::client();
    assert!(
        app.login(&third, "carol", "carol-new-password")
            .await
            .status()
            .is_success()
    );

    let res = here
        .post(app.url("/_sfn/me/sign_out_everywhere"))
        .send()
        .await
        .expect("everywhere");
    assert_eq!(res.status(), 200);
    assert!(me(&here).await.is_null());
    assert!(me(&third).await.is_null());
    let visitor = TestApp::client();
    let form = [
        ("current_password", "x"),
        ("new_password", "carol-newer-password"),
    ];
    for name in ["me/password", "me/sign_out_everywhere"] {
        let res = visitor
            .post(app.url(&format!("/_sfn/{name}")))
            .form(&form[..if name == "me/password" { 2 } else { 0 }])
            .send()
            .await
            .expect("sfn");
        assert_eq!(res.status(), 401, "{name}");
    }
    app.stop().await;
}
