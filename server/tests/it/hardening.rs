//! Bad input and hostile clients: concurrent password guesses, JSON nested to exhaust a parser,
//! amounts past 64 bits, channel addresses that are not what they seem, upstream redirects,
//! framing and sniffing, and what the usage log says of calls that failed.

use crate::both_backends;
use crate::common::*;
use crate::gateway::Gw;
use serde_json::{Value, json};

both_backends!(
    concurrent_wrong_passwords_cannot_pass_the_throttle,
    deeply_nested_requests_are_refused_before_any_upstream,
    a_credit_past_the_largest_balance_is_refused_with_the_field_named,
    an_upstream_redirect_is_a_502_that_names_its_status,
    failed_calls_are_logged_with_their_attempts_and_channel,
    a_stream_closed_right_after_done_is_complete,
    disabling_a_user_stops_their_keys_at_once,
    unknown_keys_are_cheap,
);

/// Keys that do not exist cannot load the database: the same bad key again is answered from
/// the cache, and a client IP that sends more than `auth.max_invalid_keys_per_ip` of them is
/// refused with 429 before any lookup until its window ends.
async fn unknown_keys_are_cheap(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, _| {
        c.auth.max_invalid_keys_per_ip = 5;
        c.auth.invalid_key_window_seconds = 8;
    })
    .await;
    // The gateway's own key, used once: cached from now on.
    let ok = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let call = |key: String| {
        let url = gw.app.url("/v1/models");
        async move {
            let res = TestApp::bare_client()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("request");
            let retry = res.headers().get("retry-after").cloned();
            let body: Value = res.json().await.unwrap_or_default();
            (body["error"]["code"].as_str().map(str::to_string), retry)
        }
    };
    let lookups = || gw.metric(r#"tollgate_key_lookups_total{result="unknown"}"#);
    // One bad key twenty times: one lookup.
    for _ in 0..20 {
        let (code, _) = call("sk-the-same-bad-key".into()).await;
        assert_eq!(code.as_deref(), Some("unauthorized"));
    }
    assert_eq!(lookups().await, 1.0);
    // Distinct bad keys: four more are looked up (five in the window), then 429 without one.
    let mut codes = Vec::new();
    for i in 0..30 {
        let (code, retry) = call(format!("sk-random-{i}")).await;
        if code.as_deref() == Some("rate_limit_exceeded") {
            assert!(retry.is_some(), "Retry-After");
        }
        codes.push(code.unwrap_or_default());
    }
    assert!(codes[..4].iter().all(|c| c == "unauthorized"), "{codes:?}");
    assert!(
        codes[5..].iter().all(|c| c == "rate_limit_exceeded"),
        "{codes:?}"
    );
    assert_eq!(lookups().await, 5.0, "no lookup past the limit");
    // A real key still works from that address, also once it has left the cache (after its
    // 5 s): a key found lately is looked up despite the block.
    tokio::time::sleep(std::time::Duration::from_millis(5_200)).await;
    let found = || gw.metric(r#"tollgate_key_lookups_total{result="found"}"#);
    let before = found().await;
    let ok = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(found().await, before + 1.0, "looked up again, and found");
    // Still in the window: a key never found is refused unseen. Once the window (8 s from the
    // first bad key) ends, the address is looked up again.
    let (code, _) = call("sk-in-the-window".into()).await;
    assert_eq!(code.as_deref(), Some("rate_limit_exceeded"));
    tokio::time::sleep(std::time::Duration::from_millis(3_200)).await;
    let (code, _) = call("sk-after-the-window".into()).await;
    assert_eq!(code.as_deref(), Some("unauthorized"));
    assert_eq!(lookups().await, 6.0);
    gw.stop().await;
}

/// Fifty wrong passwords at once for one account: each attempt is counted before its password
/// is checked, so no more than the limit are checked at all.
async fn concurrent_wrong_passwords_cannot_pass_the_throttle(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.auth.max_failures_per_account = 5;
        // 100 limiter calls at once on a loaded test machine: a Redis answer past the default
        // 250 ms bound is a 503, which is not what this test is about.
        c.redis.timeout_ms = 5_000;
    })
    .await;
    let answers = futures_util::future::join_all((0..50).map(|_| async {
        app.login(&TestApp::client(), "admin", "wrong")
            .await
            .status()
    }))
    .await;
    let checked = answers.iter().filter(|s| s.as_u16() == 401).count();
    let throttled = answers.iter().filter(|s| s.as_u16() == 429).count();
    assert_eq!((checked, throttled), (5, 45), "{answers:?}");
    app.stop().await;
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// `messages` nested 10,000 arrays deep is refused with a 400 naming the body, and never reaches
/// an upstream (which might choke on it, cooling the channel down for every tenant); 100 levels
/// pass.
async fn deeply_nested_requests_are_refused_before_any_upstream(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    for depth in [10_000, 129] {
        let body = format!(
            r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"hi","x":{}}}]}}"#,
            nested(depth)
        );
        let res = TestApp::bare_client()
            .post(gw.app.url("/v1/chat/completions"))
            .bearer_auth(&gw.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 400, "depth {depth}");
        let err: Value = res.json().await.expect("json");
        assert_eq!(err["error"]["param"], "body", "{err}");
    }
    // A string full of brackets is not nesting.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini",
                    "messages": [{ "role": "user", "content": "[".repeat(500) }],
                    "x": serde_json::from_str::<Value>(&nested(100)).expect("json") }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        gw.mock.requests().await.len(),
        1,
        "only the valid call went upstream"
    );
    gw.stop().await;
}

/// A credit that would take the balance past 64 bits is a 400 on `amount`, and the balance
/// stays as it was.
async fn a_credit_past_the_largest_balance_is_refused_with_the_field_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let uid = app.create_user("rich", "rich-password", "user").await;
    let client = TestApp::bare_client();
    let credit = |amount: &'static str| {
        client
            .post(app.url(&format!("/api/admin/users/{uid}/balance")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "amount": amount, "reason": "big" }))
            .send()
    };
    assert_eq!(credit("9000000000000").await.expect("first").status(), 200);
    let res = credit("9000000000000").await.expect("second");
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"]["param"], "amount", "{err}");
    let user: Value = client
        .get(app.url(&format!("/api/admin/users/{uid}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("user")
        .json()
        .await
        .expect("json");
    assert_eq!(user["balance"], "9000000000000.00", "{user}");
    app.stop().await;
}

/// An upstream that redirects (never followed) is the upstream's fault: a 502 whose message
/// names its status, not a 400 with an empty message.
async fn an_upstream_redirect_is_a_502_that_names_its_status(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, mock| {
        c.channels[0].base_url = mock.url("status=302")
    })
    .await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(res.status(), 502);
    let err: Value = res.json().await.expect("json");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("302"), "{err}");
    gw.stop().await;
}

/// A call whose upstream failed is logged with the attempts it made and the last channel and
/// model it tried, not as if no upstream had been called.
async fn failed_calls_are_logged_with_their_attempts_and_channel(backend: Backend) {
    let gw = Gw::start(backend, "1", |c, mock| {
        let second = crate::gateway::channel("second", mock.url("status=503"), &["gpt-4o-mini"], 0);
        c.channels[0].base_url = mock.url("status=500");
        c.channels[0].priority = 1;
        c.channels.push(second);
    })
    .await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(res.status(), 503);
    gw.app.svc.credit.flush(false).await.expect("flush");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let row: (i64, Option<i64>, Option<String>, String, i64) = loop {
        let row = sqlx::query_as(
            &gw.app.svc.db.sql("SELECT attempts, channel_id, served_model, model, status FROM usage_logs WHERE user_id = $1"),
        )
        .bind(gw.user_id)
        .fetch_optional(gw.app.svc.db.pool())
        .await
        .expect("row");
        if let Some(r) = row {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "no usage row");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let second: i64 = sqlx::query_scalar(
        &gw.app
            .svc
            .db
            .sql("SELECT id FROM channels WHERE name = 'second'"),
    )
    .fetch_one(gw.app.svc.db.pool())
    .await
    .expect("channel");
    assert_eq!(
        row,
        (
            2,
            Some(second),
            Some("gpt-4o-mini".into()),
            "gpt-4o-mini".into(),
            503
        )
    );
    gw.stop().await;
}

/// A client that reads a stream to `[DONE]` and hangs up at once got the whole answer: the
/// call is logged complete, not cancelled.
async fn a_stream_closed_right_after_done_is_complete(backend: Backend) {
    use futures_util::StreamExt as _;
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    for _ in 0..5 {
        let res = gw
            .post(
                "/v1/chat/completions",
                json!({ "model": "gpt-4o-mini", "stream": true,
                        "messages": [{ "role": "user", "content": "hi" }] }),
            )
            .await;
        let mut body = res.bytes_stream();
        let mut seen = Vec::new();
        while let Some(chunk) = body.next().await {
            seen.extend_from_slice(&chunk.expect("bytes"));
            if seen.windows(6).any(|w| w == b"[DONE]") {
                break;
            }
        }
        drop(body);
    }
    gw.settled(5).await;
    let cancelled: i64 = sqlx::query_scalar(
        &gw.app
            .svc
            .db
            .sql("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND error_class IS NOT NULL"),
    )
    .bind(gw.user_id)
    .fetch_one(gw.app.svc.db.pool())
    .await
    .expect("count");
    assert_eq!(cancelled, 0);
    gw.stop().await;
}

/// A user disabled while their key sits in the cache: the key is refused at once, as invalid
/// (401), not as a call short of money.
async fn disabling_a_user_stops_their_keys_at_once(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let call = json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] });
    assert_eq!(
        gw.post("/v1/chat/completions", call.clone()).await.status(),
        200
    );
    let res = TestApp::bare_client()
        .post(
            gw.app
                .url(&format!("/api/admin/users/{}/status", gw.user_id)),
        )
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "status": "disabled" }))
        .send()
        .await
        .expect("disable");
    assert_eq!(res.status(), 200);
    assert_eq!(gw.post("/v1/chat/completions", call).await.status(), 401);
    gw.stop().await;
}

/// Channel addresses: a URL must name its host (`http://` and `http:///x` do not), and cloud
/// metadata addresses are refused unless `gateway.allow_metadata_upstreams` says otherwise;
/// local upstreams stay allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_addresses_need_a_host_and_are_never_metadata_endpoints() {
    for allow in [false, true] {
        let app = TestApp::spawn_with(Backend::Sqlite, |c| {
            c.gateway.allow_metadata_upstreams = allow;
        })
        .await;
        let post = |name: &str, base_url: &str| {
            TestApp::bare_client()
                .post(app.url("/api/admin/channels"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({ "name": name, "base_url": base_url, "models": ["m"] }))
                .send()
        };
        for (i, url) in ["http://", "http:///nohost", "https://?x", "http://@/v1"]
            .iter()
            .enumerate()
        {
            let res = post(&format!("bad{i}"), url).await.expect("post");
            assert_eq!(res.status(), 400, "{url}");
            let err: Value = res.json().await.expect("json");
            assert_eq!(err["error"]["param"], "base_url", "{url}");
        }
        for (i, url) in [
            "http://169.254.169.254/latest",
            "http://[fd00:ec2::254]/v1",
            "http://metadata.google.internal/v1",
        ]
        .iter()
        .enumerate()
        {
            let res = post(&format!("meta{i}"), url).await.expect("post");
            let want = if allow { 201 } else { 400 };
            assert_eq!(res.status(), want, "{url} with allow = {allow}");
        }
        let res = post("local", "http://127.0.0.1:11434/v1")
            .await
            .expect("post");
        assert_eq!(res.status(), 201, "a local upstream (Ollama, vLLM)");
        app.stop().await;
    }
    // The config is checked the same way at startup.
    let mut c = service::config::Config::default();
    c.channels.push(crate::gateway::channel(
        "meta",
        "http://169.254.169.254/v1".into(),
        &["m"],
        0,
    ));
    let e = c.validate().expect_err("a metadata channel in the config");
    assert_eq!(e.key, "channels[0].base_url");
}

/// Every console page carries a nonce-based Content-Security-Policy whose nonce is the one on
/// the page's scripts, and no answer may be framed or sniffed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_a_nonce_policy_and_no_answer_is_framed_or_sniffed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client = TestApp::bare_client();
    let res = client.get(app.url("/login")).send().await.expect("page");
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("object-src 'none'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a nonce in script-src")
        .to_string();
    assert!(nonce.len() >= 16, "{nonce}");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let html = res.text().await.expect("html");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the scripts carry the nonce"
    );
    // A second page gets a nonce of its own.
    let again = client.get(app.url("/login")).send().await.expect("page");
    let csp2 = again.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(!csp2.contains(&nonce));
    let api = client.get(app.url("/v1/models")).send().await.expect("api");
    assert_eq!(api.status(), 401);
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    app.stop().await;
}

/// The limits hyper applies before the router, as the README states them: a request head past
/// about 400 KB is a 431 and a path past 64 KB a 414; the server stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_the_documented_statuses() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client = TestApp::bare_client();
    let res = client
        .get(app.url("/v1/models"))
        .header("x-big", "a".repeat(1 << 20))
        .send()
        .await
        .expect("big header");
    assert_eq!(res.status(), 431);
    // A client library refuses such a URI itself: written by hand.
    let status = {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = app.base.trim_start_matches("http://").to_string();
        let mut tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let head = format!(
            "GET /v1/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
            "p".repeat(100 * 1024)
        );
        tcp.write_all(head.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert!(status.starts_with("HTTP/1.1 414"), "{status}");
    let res = client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status(), 200);
    app.stop().await;
}

/// The console's files as a release build leaves them (names hashed, listed in `hash.txt`,
/// `.br` and `.gz` beside them): pages link the hashed names, browsers get the compressed
/// variant they accept, hashed files are cached for a year and the rest revalidated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_assets_are_hashed_precompressed_and_cached() {
    let site = std::env::temp_dir().join(format!(
        "tollgate-site-{}-{}",
        std::process::id(),
        service::now_ms()
    ));
    let pkg = site.join("pkg");
    std::fs::create_dir_all(&pkg).expect("site dir");
    for (name, body) in [
        ("pkg/tollgate.1FA5DjZEbvGsAlVrFpEIDg.js", "plain js"),
        ("pkg/tollgate.1FA5DjZEbvGsAlVrFpEIDg.js.br", "brotli js"),
        ("pkg/tollgate.1FA5DjZEbvGsAlVrFpEIDg.js.gz", "gzip js"),
        ("pkg/tollgate.I519j66FK4YD6QUXzfA_0A.wasm", "wasm"),
        ("pkg/tollgate.pU3OLvBrpiiJjSCtEOGoug.css", "body{}"),
        ("pkg/chunk_9.gVakaudV2N1pJPReBRGWrg.wasm", "chunk"),
        ("pkg/tollgate.js", "an unhashed file"),
        ("favicon.ico", "icon"),
        (
            "hash.txt",
            "js: 1FA5DjZEbvGsAlVrFpEIDg\nwasm: I519j66FK4YD6QUXzfA_0A\ncss: pU3OLvBrpiiJjSCtEOGoug\n",
        ),
    ] {
        std::fs::write(site.join(name), body).expect("site file");
    }
    let root = site.clone();
    let app = TestApp::spawn_with(Backend::Sqlite, move |c| c.server.site_root = root).await;
    let client = TestApp::bare_client();

    let html = client
        .get(app.url("/login"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    for name in [
        "tollgate.1FA5DjZEbvGsAlVrFpEIDg.js",
        "tollgate.I519j66FK4YD6QUXzfA_0A.wasm",
        "tollgate.pU3OLvBrpiiJjSCtEOGoug.css",
    ] {
        assert!(
            html.contains(&format!("/pkg/{name}")),
            "{name} linked: {html}"
        );
    }

    let get = |path: &'static str, encoding: &'static str| {
        let mut req = client.get(app.url(path));
        if !encoding.is_empty() {
            req = req.header("accept-encoding", encoding);
        }
        req.send()
    };
    for (encoding, served, body) in [
        ("br, gzip", Some("br"), "brotli js"),
        ("gzip", Some("gzip"), "gzip js"),
        ("", None, "plain js"),
    ] {
        let res = get("/pkg/tollgate.1FA5DjZEbvGsAlVrFpEIDg.js", encoding)
            .await
            .expect("js");
        assert_eq!(res.status(), 200, "{encoding}");
        assert_eq!(
            res.headers()
                .get("content-encoding")
                .map(|v| v.to_str().expect("ascii")),
            served,
            "{encoding}"
        );
        assert_eq!(
            res.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(res.headers()["vary"], "accept-encoding", "{encoding}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .contains("javascript")
        );
        assert_eq!(res.text().await.expect("body"), body);
    }
    let res = get("/pkg/tollgate.I519j66FK4YD6QUXzfA_0A.wasm", "")
        .await
        .expect("wasm");
    assert_eq!(res.headers()["content-type"], "application/wasm");
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let res = get("/pkg/chunk_9.gVakaudV2N1pJPReBRGWrg.wasm", "")
        .await
        .expect("chunk");
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    for path in ["/favicon.ico", "/pkg/tollgate.js"] {
        let res = get(path, "").await.expect("file");
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-cache", "{path}");
    }
    let res = get("/favicon.ico", "").await.expect("icon");
    assert!(res.headers().contains_key("last-modified"));
    // No such file: the console's 404 page, not a file listing.
    let res = get("/pkg/tollgate.css", "").await.expect("missing");
    assert_eq!(res.status(), 404);
    assert!(res.text().await.expect("html").contains("<html"));
    let res = get("/pkg/", "").await.expect("dir");
    assert_eq!(res.status(), 404);
    app.stop().await;
    std::fs::remove_dir_all(&site).expect("cleanup");
}
