use crate::both_backends;
use crate::common::*;
use serde_json::Value;

both_backends!(
    health_and_metrics_answer,
    readyz_turns_503_when_the_database_is_gone,
    pages_render_with_the_right_status,
    pages_serialize_the_data_they_show_once,
    oversized_bodies_are_refused
);

/// Checks that every line is Prometheus text exposition: a comment, or `name{labels} value`.
fn assert_prometheus_text(text: &str) {
    assert!(!text.is_empty());
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            let mut words = rest.split_whitespace();
            let kind = words.next().expect("comment kind");
            assert!(kind == "HELP" || kind == "TYPE", "bad comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let name = series.split('{').next().expect("name");
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .enumerate()
                    .all(|(i, c)| c.is_ascii_alphabetic()
                        || c == '_'
                        || c == ':'
                        || (i > 0 && c.is_ascii_digit())),
            "bad metric name in {line}"
        );
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels in {line}"
            );
            for pair in labels[1..labels.len() - 1]
                .split("\",")
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label {pair} in {line}"));
                assert!(
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!v.contains('\n'));
            }
        }
    }
}

async fn health_and_metrics_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::bare_client();
    let health = client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("x-request-id").is_some());
    let ready = client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
    let _ = client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .expect("404");

    let res = client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = res.text().await.expect("text");
    assert_prometheus_text(&text);
    assert!(
        text.contains(
            r#"tollgate_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"tollgate_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("tollgate_http_request_duration_seconds_bucket"));
    assert!(text.contains(r#"tollgate_db_pool_connections{state="idle"}"#));
    assert!(text.contains("tollgate_build_info{"));
    assert!(
        !text.contains("/no/such/page"),
        "raw paths must not become labels"
    );
    app.stop().await;
}

async fn readyz_turns_503_when_the_database_is_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::bare_client();
    assert_eq!(
        client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        200
    );
    match backend {
        Backend::Sqlite => {
            let file = app.storage.dir.join("tollgate.db");
            std::fs::remove_file(&file).expect("remove the database file");
        }
        Backend::Mysql | Backend::Postgres => {
            let name = app.storage.pg_name.clone().expect("database name");
            drop_database(backend, &name).await.expect("drop");
        }
    }
    let res = client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["failing"], "database");
    if backend == Backend::Sqlite {
        // Background work keeps using the database; it must not recreate the file empty.
        tokio::time::sleep(service::state::CATALOG_POLL + std::time::Duration::from_millis(500))
            .await;
        assert!(
            !app.storage.dir.join("tollgate.db").exists(),
            "the database file was recreated"
        );
        let res = client.get(app.url("/readyz")).send().await.expect("readyz");
        assert_eq!(res.status(), 503);
    }
    // Liveness is not readiness: the process still answers.
    assert_eq!(
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    app.stop().await;
}

async fn pages_render_with_the_right_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::bare_client();
    let login = client
        .get(app.url("/login"))
        .send()
        .await
        .expect("login page");
    assert_eq!(login.status(), 200);
    let html = login.text().await.expect("html");
    assert!(html.contains("Sign in to Tollgate"), "{html}");
    assert!(
        html.contains("/pkg/tollgate"),
        "hydration scripts are linked"
    );

    // Signed-out visitors are sent to the login page by a real redirect.
    let home = client
        .get(app.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("home");
    assert_eq!(home.status(), 302);
    assert_eq!(home.headers()["location"], "/login");

    let missing = client
        .get(app.url("/definitely/not/here"))
        .send()
        .await
        .expect("404 page");
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .expect("html")
            .contains("There is no page here.")
    );
    app.stop().await;
}

/// The resources a server-rendered page hands to the browser, in the order of their ids:
/// `(id, value)` from the first `__RESOLVED_RESOURCES=[…]` chunk and the later
/// `__RESOLVED_RESOURCES[id] = …` ones.
fn resolved_resources(html: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    if let Some(start) = html.find("__RESOLVED_RESOURCES=[") {
        let list = &html[start + "__RESOLVED_RESOURCES=[".len()..];
        let list = &list[..list.find("];").expect("end of the first chunk")];
        // `12: "…",` entries; the values are JSON strings (quotes inside escaped).
        let mut rest = list;
        while let Some(colon) = rest.find(": \"") {
            let id = rest[..colon].trim().trim_start_matches(',').trim();
            let value = &rest[colon + 2..];
            let end = string_end(value);
            out.push((id.parse().expect("resource id"), value[..end].to_string()));
            rest = &value[end..];
        }
    }
    let mut rest = html;
    while let Some(at) = rest.find("__RESOLVED_RESOURCES[") {
        let tail = &rest[at + "__RESOLVED_RESOURCES[".len()..];
        let close = tail.find(']').expect("]");
        let value = &tail[close..];
        let value = &value[value.find('"').expect("value")..];
        let end = string_end(value);
        out.push((
            tail[..close].parse().expect("resource id"),
            value[..end].to_string(),
        ));
        rest = &value[end..];
    }
    out.sort();
    out
}

/// The length of the JSON string literal at the start of `s` (both quotes included).
fn string_end(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 1;
    while bytes[i] != b'"' {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    i + 1
}

/// A page builds its data once per request: the browser hydrates each resource from the
/// value the server serialized under the same id, so a page that the server built twice (its
/// data created again inside a re-run view) would hand out values from a discarded copy (an
/// `internal` error once that copy's request context is gone) beside markup from the kept
/// one: the browser's view differs from the server's and hydration fails. Every page, signed
/// in, many times over: always the same resources under the same ids, none an error.
async fn pages_serialize_the_data_they_show_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_user("hyde", "hyde-password", "admin").await;
    let client = TestApp::client();
    assert_eq!(
        app.login(&client, "hyde", "hyde-password").await.status(),
        200
    );
    let user_page = format!("/admin/users/{id}");
    let pages = [
        "/",
        "/keys",
        "/logs",
        "/billing",
        "/pricing",
        "/status",
        "/docs",
        "/account",
        "/admin",
        "/admin/users",
        &user_page,
        "/admin/keys",
        "/admin/redeem",
        "/admin/prices",
        "/admin/channels",
        "/admin/mappings",
        "/admin/audit",
        "/admin/jobs",
        "/admin/calls",
    ];
    for page in pages {
        let mut first: Option<Vec<(u64, String)>> = None;
        for round in 0..12 {
            let res = client.get(app.url(page)).send().await.expect("page");
            assert_eq!(res.status(), 200, "{page}");
            let html = res.text().await.expect("html");
            let data = resolved_resources(&html);
            assert!(!data.is_empty(), "{page}: no serialized resources");
            for (id, value) in &data {
                assert!(
                    !value.starts_with(r#""{\"Err\""#),
                    "{page}, round {round}: resource {id} is an error: {value}"
                );
            }
            let ids: Vec<u64> = data.iter().map(|(id, _)| *id).collect();
            match &first {
                None => first = Some(data),
                Some(f) => assert_eq!(
                    f.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
                    ids,
                    "{page}, round {round}: the page serialized other resources than before"
                ),
            }
        }
    }
    app.stop().await;
}

async fn oversized_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.server.max_body_bytes = 4096).await;
    let client = TestApp::bare_client();
    // A refused body is left unread, so the server closes that connection: the answer must say
    // so, or the client's next request on the same pool may go down the closing connection.
    for round in 0..10 {
        let too_large = client
            .post(app.url("/api/admin/users"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"username":"big","password":"{}"}}"#,
                "x".repeat(10_000)
            ));
        let wrong_token = client
            .post(app.url("/api/admin/users"))
            .bearer_auth("not-the-admin-token")
            .json(&serde_json::json!({"username": "x", "password": "y".repeat(1000)}));
        for (req, status) in [(too_large, 413), (wrong_token, 401)] {
            let res = req.send().await.expect("refused request");
            assert_eq!(res.status(), status, "round {round}");
            assert_eq!(
                res.headers().get("connection").map(|v| v.as_bytes()),
                Some(&b"close"[..]),
                "round {round}: {status} before the body was read"
            );
        }
        let next = client
            .get(app.url("/api/admin/users"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request after the refusals, round {round}: {e}"));
        assert_eq!(next.status(), 200, "round {round}");
    }
    app.stop().await;
}
