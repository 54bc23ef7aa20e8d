//! Usage rows: every field kept, a bad row set apart, a database outage waited out.

use super::*;
use crate::both_backends;

both_backends!(
    usage_rows_keep_every_field_and_a_clean_stop_loses_none,
    a_refused_usage_row_does_not_take_its_batch_with_it,
    the_dashboard_draws_untrusted_names_as_text,
);

/// The routes a usage row names.
const SURFACES: [&str; 5] = ["chat", "completions", "embeddings", "messages", "responses"];

/// Usage rows written in batches (more than one, with awkward text and every optional field
/// both set and empty) come back from the database field for field, after a clean stop.
async fn usage_rows_keep_every_field_and_a_clean_stop_loses_none(backend: Backend) {
    use service::usage::UsageRecord;
    let app = TestApp::spawn(backend).await;
    let sources = service::usage::UsageSource::ALL;
    let rows: Vec<UsageRecord> = (0..300u64)
        .map(|n| {
            let full = n % 2 == 0;
            UsageRecord {
                request_id: format!("req-{n}"),
                user_id: 7_000 + (n % 3) as i64,
                key_id: full.then_some(n as i64),
                key_prefix: full.then(|| format!("sk-{n:04}")),
                model: format!("m\"odel\\ 模型 {n}\n\u{1F600}'"),
                served_model: full.then(|| "upstream/ä".to_string()),
                channel_id: full.then_some(3),
                attempts: (n % 4) as u32,
                stream: !full,
                prompt_tokens: if n == 1 { i64::MAX as u64 } else { n * 11 },
                completion_tokens: n * 13,
                cached_tokens: n % 5,
                detail: types::TokenDetail {
                    cache_write_5m: n % 7,
                    cache_write_1h: if n == 3 { i64::MAX as u64 } else { n % 11 },
                    reasoning: n % 13,
                    image_input: n % 17,
                    image_output: n % 19,
                    audio_input: n % 23,
                    audio_output: n % 29,
                },
                surface: SURFACES[(n % 5) as usize],
                upstream_kind: full.then_some(types::ChannelKind::Anthropic),
                cost: if n == 2 {
                    i64::MAX
                } else {
                    n as i64 * 1_000_003
                },
                price_version: full.then_some(n as i64 + 1),
                usage_source: sources[(n % 4) as usize],
                status: if full { 200 } else { 502 },
                error_class: (!full).then_some(if n % 3 == 0 {
                    service::usage::ErrorClass::UpstreamCut
                } else {
                    service::usage::ErrorClass::Failed(types::ErrorKind::BadGateway)
                }),
                latency_ms: n * 17,
                ttft_ms: full.then_some(n),
                client_ip: full.then(|| "2001:db8::1".to_string()),
                created_at: 1_790_000_000_000 + n as i64,
            }
        })
        .collect();
    for r in &rows {
        app.svc.usage.record(r.clone());
    }
    let storage = app.shutdown().await;
    let back = stored_usage(&storage).await;
    assert_eq!(back.len(), rows.len(), "every queued row is written");
    for (got, want) in back.iter().zip(&rows) {
        assert_eq!(got, want);
    }
    storage.destroy().await;
}

/// Every usage row in a stopped instance's database, oldest first, read back into records.
async fn stored_usage(storage: &Storage) -> Vec<service::usage::UsageRecord> {
    use service::usage::UsageRecord;
    use sqlx::Row as _;
    let db = service::db::Db::connect(&storage.config().database)
        .await
        .expect("reopen");
    let stored = sqlx::query(&db.sql("SELECT * FROM usage_logs ORDER BY created_at, id"))
        .fetch_all(db.pool())
        .await
        .expect("usage rows");
    let text = |r: &sqlx::any::AnyRow, c: &str| r.try_get::<Option<String>, _>(c).expect(c);
    let int = |r: &sqlx::any::AnyRow, c: &str| r.try_get::<Option<i64>, _>(c).expect(c);
    let num = |r: &sqlx::any::AnyRow, c: &str| int(r, c).expect(c);
    let back = stored
        .iter()
        .map(|r| UsageRecord {
            request_id: text(r, "request_id").expect("request_id"),
            user_id: num(r, "user_id"),
            key_id: int(r, "key_id"),
            key_prefix: text(r, "key_prefix"),
            model: text(r, "model").expect("model"),
            served_model: text(r, "served_model"),
            channel_id: int(r, "channel_id"),
            attempts: num(r, "attempts") as u32,
            stream: num(r, "stream") == 1,
            prompt_tokens: num(r, "prompt_tokens") as u64,
            completion_tokens: num(r, "completion_tokens") as u64,
            cached_tokens: num(r, "cached_tokens") as u64,
            detail: types::TokenDetail {
                cache_write_5m: num(r, "cache_write_5m_tokens") as u64,
                cache_write_1h: num(r, "cache_write_1h_tokens") as u64,
                reasoning: num(r, "reasoning_tokens") as u64,
                image_input: num(r, "image_input_tokens") as u64,
                image_output: num(r, "image_output_tokens") as u64,
                audio_input: num(r, "audio_input_tokens") as u64,
                audio_output: num(r, "audio_output_tokens") as u64,
            },
            surface: {
                let s = text(r, "surface").expect("surface");
                SURFACES
                    .into_iter()
                    .find(|k| *k == s)
                    .expect("a surface written")
            },
            upstream_kind: text(r, "upstream_kind")
                .map(|k| types::ChannelKind::parse(&k).expect("a kind written")),
            cost: num(r, "cost"),
            price_version: int(r, "price_version"),
            usage_source: service::usage::UsageSource::parse(
                &text(r, "usage_source").expect("usage_source"),
            )
            .expect("a known usage source"),
            status: num(r, "status") as u16,
            error_class: text(r, "error_class")
                .map(|c| service::usage::ErrorClass::parse(&c).expect("a known error class")),
            latency_ms: num(r, "latency_ms") as u64,
            ttft_ms: int(r, "ttft_ms").map(|v| v as u64),
            client_ip: text(r, "client_ip"),
            created_at: num(r, "created_at"),
        })
        .collect();
    db.close().await;
    back
}

/// A plain usage row with the given number in its request id and time.
fn usage_row(n: i64) -> service::usage::UsageRecord {
    service::usage::UsageRecord {
        request_id: format!("req-{n}"),
        user_id: 1,
        model: "gpt-4o-mini".into(),
        surface: "chat",
        usage_source: service::usage::UsageSource::Upstream,
        status: 200,
        created_at: 1_790_000_000_000 + n,
        ..Default::default()
    }
}

fn request_ids(rows: &[service::usage::UsageRecord]) -> Vec<String> {
    rows.iter().map(|r| r.request_id.clone()).collect()
}

/// A row the database refuses (here: one that a rule the test adds to the table refuses, as a
/// constraint would) is set apart from its batch and dropped alone, counted; a NUL in a model
/// name is stored as U+FFFD instead of failing the batch (PostgreSQL's text cannot hold it).
async fn a_refused_usage_row_does_not_take_its_batch_with_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dropped = app.svc.metrics.usage_rows_dropped.clone();
    let rule = match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON usage_logs WHEN NEW.model = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poison row'); END"
        }
        Backend::Postgres | Backend::Mysql => {
            "ALTER TABLE usage_logs ADD CONSTRAINT refuse_poison CHECK (model <> 'poison')"
        }
    };
    sqlx::query(&app.svc.db.sql(rule))
        .execute(app.svc.db.pool())
        .await
        .expect(rule);
    for n in 0..50 {
        let mut r = usage_row(n);
        if n == 7 {
            r.model = "gpt\0mini".into();
        }
        if n == 31 {
            r.model = "poison".into();
        }
        app.svc.usage.record(r);
    }
    let storage = app.shutdown().await;
    let back = stored_usage(&storage).await;
    let want: Vec<String> = (0..50)
        .filter(|n| *n != 31)
        .map(|n| format!("req-{n}"))
        .collect();
    assert_eq!(
        request_ids(&back),
        want,
        "all but the refused row are written"
    );
    assert_eq!(back[7].model, "gpt\u{FFFD}mini");
    assert_eq!(dropped.get(), 1, "the refused row is counted");
    storage.destroy().await;
}

/// The database goes away for longer than any fixed number of retries would cover (connections
/// refused, the open ones killed): the rows queued meanwhile wait and are written when it comes
/// back. The queue is small here, so the rows beyond it and its overflow are dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_rows_wait_out_a_database_outage() {
    use sqlx::Connection as _;
    let app = TestApp::spawn_with(Backend::Postgres, |c| c.gateway.usage_queue = 50).await;
    let name = app.storage.pg_name.clone().expect("a PostgreSQL database");
    let dropped = app.svc.metrics.usage_rows_dropped.clone();
    for n in 0..100 {
        app.svc.usage.record(usage_row(n));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (written,): (i64,) = sqlx::query_as(&app.svc.db.sql("SELECT COUNT(*) FROM usage_logs"))
            .fetch_one(app.svc.db.pool())
            .await
            .expect("count");
        if written == 100 {
            break;
        }
        assert!(Instant::now() < deadline, "{written} of 100 rows written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut admin = sqlx::PgConnection::connect(&pg_admin_url())
        .await
        .expect("admin connection");
    for sql in [
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.expect(&sql);
    }
    // The writer takes this row alone and keeps failing to write it.
    app.svc.usage.record(usage_row(100));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // 50 fill the queue, 50 wait beyond it, 100 are dropped.
    for n in 101..301 {
        app.svc.usage.record(usage_row(n));
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .expect("allow connections");
    let storage = app.shutdown().await;
    let back = stored_usage(&storage).await;
    let want: Vec<String> = (0..201).map(|n| format!("req-{n}")).collect();
    assert_eq!(request_ids(&back), want, "every kept row is written, once");
    assert_eq!(
        dropped.get(),
        100,
        "the rows beyond the queue and its overflow"
    );
    storage.destroy().await;
}

/// The dashboard's chart and tables are drawn as HTML by the server: a key's name and a model's
/// name (both chosen by users or upstreams) reach the page as text, never as markup.
async fn the_dashboard_draws_untrusted_names_as_text(backend: Backend) {
    use service::usage::{ErrorClass, UsageRecord, UsageSource};
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_user("mallory", "mallory-password", "user").await;
    let key_name = "<img src=x onerror=alert(1)>&\"";
    let key = create_key(&app, json!({ "user_id": user_id, "name": key_name })).await;
    let model = "<svg onload=alert(2)>";
    for status in [200, 502] {
        app.svc.usage.record(UsageRecord {
            request_id: format!("req-{status}"),
            user_id,
            key_id: key["id"].as_i64(),
            key_prefix: key["prefix"].as_str().map(str::to_string),
            model: model.into(),
            served_model: None,
            channel_id: None,
            attempts: 1,
            stream: false,
            prompt_tokens: 10,
            completion_tokens: 20,
            cached_tokens: 0,
            detail: types::TokenDetail::default(),
            surface: "chat",
            upstream_kind: None,
            cost: 1_500,
            price_version: None,
            usage_source: UsageSource::Upstream,
            status,
            error_class: (status != 200)
                .then_some(ErrorClass::Failed(types::ErrorKind::BadGateway)),
            latency_ms: 5,
            ttft_ms: None,
            client_ip: None,
            created_at: service::now_ms(),
        });
    }
    let client = TestApp::client();
    assert_eq!(
        app.login(&client, "mallory", "mallory-password")
            .await
            .status(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let html = loop {
        let html = client
            .get(app.url("/"))
            .send()
            .await
            .expect("dashboard")
            .text()
            .await
            .expect("html");
        if html.contains("data-testid=\"recent-errors\"") && html.contains("data-testid=\"by-key\"")
        {
            break html;
        }
        assert!(Instant::now() < deadline, "the usage never showed: {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Both ranges of the chart, the 7-day one hidden until the switch shows it.
    assert!(html.contains("<div data-range=\"7\" hidden>"), "{html}");
    assert!(html.contains("<div data-range=\"30\">"), "{html}");
    assert_eq!(html.matches("data-testid=\"usage-chart\"").count(), 2);
    // The names as text: in the chart's tooltips, the legend, the breakdowns, the errors.
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains("<svg onload"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;&amp;"),
        "{html}"
    );
    assert!(
        html.matches("&lt;svg onload=alert(2)&gt;").count() >= 4,
        "{html}"
    );
    app.stop().await;
}
