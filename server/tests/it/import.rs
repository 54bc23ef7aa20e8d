//! `tollgate import`: a one-api / new-api database on each engine (built as their ORM builds
//! it), imported into Tollgate on each engine; its users sign in with their old passwords,
//! their keys and codes keep working, and the books agree with the ledger.

use crate::both_backends;
use crate::common::*;
use crate::mock::Mock;
use serde_json::{Value, json};
use service::import::{Count, Options, Report};
use sqlx::Connection as _;

const K_FREE: &str = "AaaaBbbbCcccDdddEeeeFfffGgggHhhhIiiiJjjjKkkkLlll";
const K_CAPPED: &str = "MmmmNnnnOoooPpppQqqqRrrrSsssTtttUuuuVvvvWwwwXxxx";
const K_BOB: &str = "YyyyZzzz0000111122223333444455556666777788889999";
const K_ORPHAN: &str = "orphanorphanorphanorphanorphanorphanorphanorphan";
const K_BAD_IPS: &str = "badipsbadipsbadipsbadipsbadipsbadipsbadipsbadips";
/// A source key that is already a Tollgate key of another user (the administrator).
const K_TAKEN: &str = "takentakentakentakentakentakentakentakentakentak";
const CODE: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const USED: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const EMPTY: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

/// A one-api (`new_api` false) or new-api database on `engine`, filled with rows that cover
/// every mapping and the bad inputs; its URL and, on a server, the database's name.
async fn source(
    engine: Engine,
    new_api: bool,
    dir: &std::path::Path,
    mock_root: &str,
) -> (String, Option<String>) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (pk, int, text, boolean, q, t, f, time) = match engine {
        Engine::Sqlite => (
            "integer PRIMARY KEY AUTOINCREMENT",
            "integer",
            "text",
            "numeric",
            '"',
            "1",
            "0",
            "datetime",
        ),
        Engine::Postgres => (
            "bigserial PRIMARY KEY",
            "bigint",
            "text",
            "boolean",
            '"',
            "true",
            "false",
            "timestamptz",
        ),
        Engine::Mysql => (
            "bigint AUTO_INCREMENT PRIMARY KEY",
            "bigint",
            "longtext",
            "tinyint(1)",
            '`',
            "1",
            "0",
            "datetime(3)",
        ),
    };
    let key = format!("{q}key{q}");
    let group = format!("{q}group{q}");
    let deleted = if new_api {
        format!(", deleted_at {time} NULL")
    } else {
        String::new()
    };
    let token_extra = if new_api {
        format!(
            "model_limits_enabled {boolean} DEFAULT {f}, model_limits {text}, allow_ips {text}, {group} {text}"
        )
    } else {
        format!("models {text}, subnet {text}")
    };
    let mut sql = vec![
        format!(
            "CREATE TABLE users (id {pk}, username varchar(191) UNIQUE, password {text} NOT NULL, display_name varchar(191), role {int} DEFAULT 1, status {int} DEFAULT 1, email varchar(191), github_id varchar(191), access_token char(32), quota {int} DEFAULT 0, used_quota {int} DEFAULT 0, request_count {int} DEFAULT 0, {group} varchar(32) DEFAULT 'default', aff_code varchar(32), inviter_id {int}{deleted})"
        ),
        format!(
            "CREATE TABLE tokens (id {pk}, user_id {int}, {key} varchar(128) UNIQUE, status {int} DEFAULT 1, name varchar(191), created_time {int}, accessed_time {int}, expired_time {int} DEFAULT -1, remain_quota {int} DEFAULT 0, unlimited_quota {boolean} DEFAULT {f}, used_quota {int} DEFAULT 0, {token_extra}{deleted})"
        ),
        format!(
            "CREATE TABLE channels (id {pk}, type {int} DEFAULT 0, {key} {text}, status {int} DEFAULT 1, name varchar(191), weight {int} DEFAULT 0, created_time {int}, test_time {int}, response_time {int}, base_url varchar(191) DEFAULT '', other {text}, balance double precision, balance_updated_time {int}, models {text}, {group} varchar(32) DEFAULT 'default', used_quota {int} DEFAULT 0, model_mapping varchar(1024) DEFAULT '', priority {int} DEFAULT 0, config {text})"
        ),
        format!("CREATE TABLE options ({key} varchar(191) PRIMARY KEY, value {text})"),
        format!(
            "CREATE TABLE redemptions (id {pk}, user_id {int}, {key} char(32) UNIQUE, status {int} DEFAULT 1, name varchar(191), quota {int} DEFAULT 100, created_time {int}, redeemed_time {int}{})",
            if new_api {
                format!(", expired_time {int} DEFAULT 0{deleted}")
            } else {
                String::new()
            }
        ),
        // As their ORM writes it: one row per group × model × channel (new-api adds weight
        // and tag).
        format!(
            "CREATE TABLE abilities ({group} varchar(64) NOT NULL, model varchar(191) NOT NULL, channel_id {int} NOT NULL, enabled {boolean}, priority {int} DEFAULT 0{}, PRIMARY KEY ({group}, model, channel_id))",
            if new_api {
                ", weight {int} DEFAULT 0, tag varchar(191)".replace("{int}", int)
            } else {
                String::new()
            }
        ),
        format!(
            "CREATE TABLE logs (id {pk}, user_id {int}, created_at {int}, type {int}, content {text}, username varchar(191) DEFAULT '', token_name varchar(191) DEFAULT '', model_name varchar(191) DEFAULT '', quota {int} DEFAULT 0, prompt_tokens {int} DEFAULT 0, completion_tokens {int} DEFAULT 0, channel_id {int}, request_id varchar(64) DEFAULT '', elapsed_time {int} DEFAULT 0, is_stream {boolean} DEFAULT {f})"
        ),
    ];
    let hash = |p: &str| bcrypt::hash(p, 4).expect("bcrypt");
    let users = [
        (
            1,
            "root",
            hash("root-password"),
            100,
            1,
            1_000_000,
            "default",
            "",
        ),
        (
            2,
            "alice",
            hash("alice-password"),
            1,
            1,
            500_000,
            "vip",
            "alice@example.com",
        ),
        (3, "Alice", hash("other-password"), 1, 1, 7, "default", ""),
        (
            4,
            "bob",
            hash("bob-password"),
            1,
            2,
            0,
            "default",
            "not an address",
        ),
        (5, "x", hash("x-password"), 1, 1, 0, "default", ""),
        (6, "carol", hash("carol-password"), 1, 1, 3, "default", ""),
    ];
    for (id, name, h, role, status, quota, g, email) in &users {
        sql.push(format!("INSERT INTO users (id, username, password, role, status, quota, {group}, email) VALUES ({id}, '{name}', '{h}', {role}, {status}, {quota}, '{g}', '{email}')"));
    }
    if new_api {
        sql.push("UPDATE users SET deleted_at = '2026-01-01 00:00:00' WHERE id = 6".into());
    }
    let now = service::now_ms() / 1000;
    // (id, user, key, status, name, expired, remain, unlimited, models, ips)
    let tokens = [
        (1, 2, K_FREE, 1, "free", -1, 0, t, "", ""),
        (
            2,
            2,
            K_CAPPED,
            1,
            "capped",
            now + 86_400,
            250_000,
            f,
            "gpt-4o-mini",
            "127.0.0.1",
        ),
        (3, 4, K_BOB, 2, "bobs", -1, 0, t, "", ""),
        (4, 5, K_ORPHAN, 1, "orphan", -1, 0, t, "", ""),
        (5, 2, K_BAD_IPS, 1, "bad ips", -1, 0, t, "", "not-an-ip"),
        (6, 2, K_TAKEN, 1, "taken", -1, 0, t, "", ""),
    ];
    for (id, user, k, status, name, exp, remain, unl, models, ips) in tokens {
        let (cols, vals) = if new_api {
            (
                "model_limits_enabled, model_limits, allow_ips",
                format!(
                    "{}, '{models}', '{ips}'",
                    if models.is_empty() { f } else { t }
                ),
            )
        } else {
            ("models, subnet", format!("'{models}', '{ips}'"))
        };
        sql.push(format!("INSERT INTO tokens (id, user_id, {key}, status, name, expired_time, remain_quota, unlimited_quota, {cols}) VALUES ({id}, {user}, '{k}', {status}, '{name}', {exp}, {remain}, {unl}, {vals})"));
    }
    sql.push(format!("INSERT INTO channels (id, type, {key}, status, name, weight, base_url, models, model_mapping, priority, {group}) VALUES (1, 1, 'upstream-secret-key', 1, 'openai', 2, '{mock_root}', 'gpt-4o-mini,dall-e-3', '{{\"alias-mini\": \"gpt-4o-mini\"}}', 5, 'default,vip')"));
    // The abilities as written from the channels' groups × models, but for two rows edited by
    // hand: vip may call gpt-4o on channel 1 there (not one of its models), and default may
    // not call dall-e-3 there.
    for (g, m, ch) in [
        ("default", "gpt-4o-mini", 1),
        ("vip", "gpt-4o-mini", 1),
        ("vip", "dall-e-3", 1),
        ("vip", "gpt-4o", 1),
        ("default", "ernie", 2),
    ] {
        sql.push(format!("INSERT INTO abilities ({group}, model, channel_id, enabled, priority) VALUES ('{g}', '{m}', {ch}, {t}, 0)"));
    }
    sql.push(format!("INSERT INTO channels (id, type, {key}, status, name, base_url, models) VALUES (2, 15, 'k', 1, 'baidu', 'https://aip.baidubce.com', 'ernie')"));
    sql.push(format!("INSERT INTO channels (id, type, {key}, status, name, base_url, models) VALUES (3, 8, 'k', 1, 'custom', '', 'm')"));
    for (k, v) in [
        (
            "ModelRatio",
            r#"{"gpt-4o-mini": 0.075, "tiny": 0.00000003}"#,
        ),
        ("CompletionRatio", r#"{"gpt-4o-mini": 4}"#),
        ("ModelPrice", r#"{"dall-e-3": 0.04}"#),
        ("GroupRatio", r#"{"default": 1, "vip": 0.8}"#),
        ("Theme", "dark"),
    ] {
        sql.push(format!(
            "INSERT INTO options ({key}, value) VALUES ('{k}', '{v}')"
        ));
    }
    for (id, k, status, quota) in [
        (1, CODE, 1, 500_000),
        (2, USED, 3, 500_000),
        (3, EMPTY, 1, 0),
    ] {
        sql.push(format!("INSERT INTO redemptions (id, {key}, status, name, quota) VALUES ({id}, '{k}', {status}, 'promo', {quota})"));
    }
    for (id, at, ty) in [
        (1, now - 3_600, 2),
        (2, now - 3_500, 1),
        (3, now - 100 * 86_400, 2),
    ] {
        sql.push(format!("INSERT INTO logs (id, user_id, created_at, type, model_name, quota, prompt_tokens, completion_tokens, channel_id, elapsed_time, is_stream) VALUES ({id}, 2, {at}, {ty}, 'gpt-4o-mini', 1000, 10, 20, 1, 300, {t})"));
    }
    match engine {
        Engine::Sqlite => {
            let path = dir.join(format!("one-api-{id}.db"));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
            for s in &sql {
                sqlx::query(s).execute(&mut conn).await.expect(s);
            }
            conn.close().await.expect("close");
            (format!("sqlite://{}", path.display()), None)
        }
        Engine::Postgres => {
            let name = format!("oneapi_{id}");
            let url = create_database(Backend::Postgres, &name).await;
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("pg");
            for s in &sql {
                sqlx::query(s).execute(&mut conn).await.expect(s);
            }
            (url, Some(name))
        }
        Engine::Mysql => {
            let name = format!("oneapi_{id}");
            // Case-sensitive names (the helper's byte-wise collation), so that two users may
            // differ only in case, as on the other engines.
            let url = create_database(Backend::Mysql, &name).await;
            let mut conn = sqlx::MySqlConnection::connect(&url).await.expect("mysql");
            for s in &sql {
                sqlx::query(s).execute(&mut conn).await.expect(s);
            }
            (url, Some(name))
        }
    }
}

async fn drop_source(engine: Engine, name: Option<String>) {
    let Some(name) = name else { return };
    let backend = match engine {
        Engine::Postgres => Backend::Postgres,
        Engine::Mysql => Backend::Mysql,
        Engine::Sqlite => return,
    };
    drop_database(backend, &name)
        .await
        .expect("drop the source");
}

fn chat_body(model: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] })
}

fn count(r: &Report, table: &str) -> Count {
    r.tables.get(table).copied().unwrap_or_default()
}

fn c(read: u64, imported: u64, matched: u64, skipped: u64) -> Count {
    Count {
        read,
        imported,
        matched,
        skipped,
    }
}

async fn one_api_and_new_api_databases_move_in_with_every_key_working(backend: Backend) {
    for (engine, new_api) in [
        (Engine::Sqlite, true),
        (Engine::Postgres, false),
        (Engine::Mysql, true),
    ] {
        imports_from(backend, engine, new_api).await;
    }
}

async fn imports_from(backend: Backend, engine: Engine, new_api: bool) {
    let mock = Mock::start();
    let app = TestApp::spawn(backend).await;
    let root = mock.url("").trim_end_matches("/v1").to_string();
    let (from, drop) = source(engine, new_api, &app.storage.dir, &root).await;
    let db = &app.svc.db;
    let at = format!("{engine:?} into {backend:?}");
    let scalar = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(&db.sql(sql))
            .fetch_one(db.pool())
            .await
            .expect(sql)
    };

    // The administrator already has a key whose secret is one of the source's.
    let taken = hex::encode(service::keys::digest(&format!("sk-{K_TAKEN}")));
    sqlx::query(&db.sql(
        "INSERT INTO api_keys (user_id, name, key_hash, prefix, created_at) \
         SELECT id, 'mine', $1, 'sk-take', 0 FROM users WHERE username = 'admin'",
    ))
    .bind(&taken)
    .execute(db.pool())
    .await
    .expect("the administrator's key");

    // A dry run reports all of it and writes nothing.
    let opts = Options {
        from: from.clone(),
        dry_run: true,
        logs_days: Some(30),
    };
    let dry = service::import::run(db, &opts).await.expect("dry run");
    assert_eq!(
        count(&dry, "users").imported,
        if new_api { 3 } else { 4 },
        "{at}: {dry}"
    );
    assert_eq!(
        scalar("SELECT COUNT(*) FROM users WHERE username = 'alice'").await,
        0,
        "{at}"
    );
    assert_eq!(scalar("SELECT COUNT(*) FROM api_keys").await, 1, "{at}");

    let opts = Options {
        dry_run: false,
        ..opts
    };
    let report = service::import::run(db, &opts).await.expect("import");
    let text = report.to_string();
    assert_eq!(
        report.flavor,
        if new_api { "new-api" } else { "one-api" },
        "{at}"
    );
    let users = if new_api {
        c(6, 3, 0, 3)
    } else {
        c(6, 4, 0, 2)
    };
    assert_eq!(count(&report, "users"), users, "{at}: {text}");
    assert_eq!(count(&report, "keys"), c(6, 4, 0, 2), "{at}: {text}");
    assert_eq!(count(&report, "channels"), c(3, 2, 0, 1), "{at}: {text}");
    assert_eq!(count(&report, "prices"), c(3, 3, 0, 0), "{at}: {text}");
    assert_eq!(count(&report, "groups"), c(2, 2, 0, 0), "{at}: {text}");
    assert_eq!(
        count(&report, "redeem codes"),
        c(3, 1, 0, 2),
        "{at}: {text}"
    );
    assert_eq!(count(&report, "call logs"), c(1, 1, 0, 0), "{at}: {text}");
    for line in [
        "users: Alice (id 3): the same name as an earlier user",
        "users: \"x\" (id 5): not a username Tollgate takes",
        "keys: key 4: its user was not imported",
        "keys: key 6: already a Tollgate key of another user",
        "channels: custom (id 3): no base URL",
        "redeem codes: code 3: no value",
    ] {
        assert!(text.contains(line), "{at}: {line} in\n{text}");
    }
    if new_api {
        assert!(
            text.contains("users: carol (id 6): deleted in the source"),
            "{at}: {text}"
        );
    }
    for line in [
        "channels: baidu: type 15 is not one Tollgate serves; imported disabled",
        "channels: openai: 2 of its abilities differ from its groups × models (vip/gpt-4o served there, not here; default/dall-e-3 not served there, served here); carried as its groups × models",
        "keys: key 3 (bobs): status 2 (not enabled) imported disabled",
        "keys: key 5: no allowlist entry could be read; imported disabled",
        "prices: tiny: ModelRatio 3e-8 does not convert exactly; rounded up to 1 units",
        "users: bob: e-mail \"not an address\" is not an address, left out",
    ] {
        assert!(text.contains(line), "{at}: {line} in\n{text}");
    }
    // Exact conversions: ratio 0.075 = $0.15 per 1M input, ×4 output; $0.04 a call; vip ×0.8.
    let price: (i64, i64, i64, i64) = sqlx::query_as(&db.sql(
        "SELECT input_per_1m, output_per_1m, cached_input_per_1m, per_request FROM prices WHERE model = 'gpt-4o-mini' AND active = 1",
    ))
    .fetch_one(db.pool())
    .await
    .expect("price");
    assert_eq!(price, (150_000, 600_000, 150_000, 0), "{at}");
    assert_eq!(
        scalar("SELECT per_request FROM prices WHERE model = 'dall-e-3'").await,
        40_000,
        "{at}"
    );
    assert_eq!(
        scalar("SELECT multiplier_milli FROM group_multipliers WHERE user_group = 'vip'").await,
        800,
        "{at}"
    );
    assert_eq!(
        scalar("SELECT enabled FROM channels WHERE name = 'baidu'").await,
        0,
        "{at}"
    );
    assert_eq!(
        scalar("SELECT weight FROM channels WHERE name = 'openai'").await,
        2,
        "{at}"
    );
    let groups: service::db::Text =
        sqlx::query_scalar(&db.sql("SELECT user_groups FROM channels WHERE name = 'openai'"))
            .fetch_one(db.pool())
            .await
            .expect("groups");
    assert_eq!(
        groups.0, r#"["default","vip"]"#,
        "{at}: its groups, carried"
    );
    assert!(
        !text.contains("channels: baidu: 1 of its abilities"),
        "{at}: {text}"
    );
    // The balance: 500,000 quota = $1 = 1,000,000 units, and the ledger explains it.
    assert_eq!(
        scalar("SELECT balance FROM users WHERE username = 'alice'").await,
        1_000_000,
        "{at}"
    );
    assert_eq!(scalar("SELECT COUNT(*) FROM users u WHERE u.balance <> (SELECT COALESCE(SUM(l.amount), 0) FROM ledger l WHERE l.user_id = u.id)").await, 0, "{at}");
    assert_eq!(
        scalar("SELECT COUNT(*) FROM ledger l JOIN users u ON u.id = l.user_id WHERE u.username = 'alice' AND l.kind = 'import' AND l.amount = 1000000 AND l.reference = 'import:user:alice'").await,
        1,
        "{at}: the balance came in as an import, not a credit"
    );
    assert_eq!(
        scalar("SELECT COUNT(*) FROM usage_logs WHERE request_id = 'import-1' AND cost = 2000")
            .await,
        1,
        "{at}"
    );
    assert_eq!(
        scalar("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_hourly").await,
        2000,
        "{at}"
    );

    // Run again: everything is matched, nothing added.
    let again = service::import::run(db, &opts).await.expect("again");
    let users = if new_api {
        c(6, 0, 3, 3)
    } else {
        c(6, 0, 4, 2)
    };
    assert_eq!(count(&again, "users"), users, "{at}: {again}");
    assert_eq!(count(&again, "keys"), c(6, 0, 4, 2), "{at}: {again}");
    assert_eq!(
        scalar("SELECT COUNT(*) FROM api_keys k JOIN users u ON u.id = k.user_id WHERE u.username = 'admin' AND k.name = 'mine'").await,
        1,
        "{at}: the administrator's key stays theirs"
    );
    assert_eq!(count(&again, "channels"), c(3, 0, 2, 1), "{at}: {again}");
    assert_eq!(count(&again, "prices"), c(3, 0, 3, 0), "{at}: {again}");
    assert_eq!(
        count(&again, "redeem codes"),
        c(3, 0, 1, 2),
        "{at}: {again}"
    );
    assert_eq!(count(&again, "call logs"), c(1, 0, 1, 0), "{at}: {again}");
    assert_eq!(
        scalar("SELECT COUNT(*) FROM users").await,
        if new_api { 4 } else { 5 },
        "{at}"
    );

    // The old password signs in, and is stored as argon2id from then on.
    service::catalog::reload(&app.svc).await.expect("reload");
    let client = TestApp::client();
    assert_eq!(
        app.login(&client, "alice", "alice-password").await.status(),
        200,
        "{at}"
    );
    let hash: String =
        sqlx::query_scalar(&db.sql("SELECT password_hash FROM users WHERE username = 'alice'"))
            .fetch_one(db.pool())
            .await
            .expect("hash");
    assert!(hash.starts_with("$argon2id$"), "{at}: {hash}");
    assert_eq!(
        app.login(&TestApp::client(), "alice", "alice-password")
            .await
            .status(),
        200,
        "{at}"
    );
    assert_eq!(
        app.login(&TestApp::client(), "alice", "wrong-password")
            .await
            .status(),
        401,
        "{at}"
    );
    assert_eq!(
        app.login(&TestApp::client(), "bob", "bob-password")
            .await
            .status(),
        403,
        "{at}"
    );

    // The same sk-… keys keep working; the capped one keeps its models and its cap.
    let call = |key: String, model: &'static str| {
        let url = app.url("/v1/chat/completions");
        async move {
            TestApp::bare_client()
                .post(url)
                .bearer_auth(key)
                .json(&chat_body(model))
                .send()
                .await
                .expect("call")
        }
    };
    let res = call(format!("sk-{K_FREE}"), "gpt-4o-mini").await;
    assert_eq!(
        res.status(),
        200,
        "{at}: {}",
        res.text().await.unwrap_or_default()
    );
    let res = call(format!("sk-{K_CAPPED}"), "gpt-4o-mini").await;
    assert_eq!(res.status(), 200, "{at}");
    assert_eq!(
        call(format!("sk-{K_CAPPED}"), "dall-e-3").await.status(),
        403,
        "{at}: a model the key may not use"
    );
    assert_eq!(
        call(format!("sk-{K_BOB}"), "gpt-4o-mini").await.status(),
        401,
        "{at}"
    );
    assert_eq!(
        call(format!("sk-{K_BAD_IPS}"), "gpt-4o-mini")
            .await
            .status(),
        401,
        "{at}"
    );
    let cap: i64 = scalar("SELECT spend_cap FROM api_keys WHERE name = 'capped'").await;
    assert_eq!(cap, 500_000, "{at}: 250,000 quota left = 500,000 units");

    // The unused code redeems once, typed in capitals.
    let redeem = |code: String| {
        let url = app.url("/api/redeem");
        async move {
            TestApp::bare_client()
                .post(url)
                .bearer_auth(format!("sk-{K_FREE}"))
                .json(&json!({ "code": code }))
                .send()
                .await
                .expect("redeem")
        }
    };
    let res = redeem(CODE.to_ascii_uppercase()).await;
    assert_eq!(res.status(), 200, "{at}");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["amount"], "1.00", "{at}: {body}");
    assert_eq!(redeem(CODE.into()).await.status(), 400, "{at}: only once");
    assert_eq!(
        redeem(USED.into()).await.status(),
        400,
        "{at}: a used code stays used"
    );

    // Books: every balance is its ledger's sum once the calls settled.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let open = scalar("SELECT COUNT(*) FROM credit_grants WHERE status = 'open'").await;
        if open == 0 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(scalar("SELECT COUNT(*) FROM users u WHERE u.balance <> (SELECT COALESCE(SUM(l.amount), 0) FROM ledger l WHERE l.user_id = u.id)").await, 0, "{at}");
    assert!(
        scalar("SELECT balance FROM users WHERE username = 'alice'").await > 1_000_000,
        "{at}"
    );
    app.stop().await;
    drop_source(engine, drop).await;
}

/// Not a one-api database, a version whose columns differ, a URL that is not one: each is
/// refused with what is wrong, and Tollgate's database is left as it was.
async fn a_source_that_is_not_one_api_is_refused_and_nothing_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.svc.db;
    let users = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
            .fetch_one(db.pool())
            .await
            .expect("users")
    };
    let before = users().await;
    let path = app.storage.dir.join("other.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
    sqlx::query("CREATE TABLE notes (id integer)")
        .execute(&mut conn)
        .await
        .expect("t");
    let from = format!("sqlite://{}", path.display());
    let run = |from: String| async move {
        service::import::run(
            db,
            &Options {
                from,
                ..Options::default()
            },
        )
        .await
        .map(|_| ())
        .expect_err("refused")
        .to_string()
    };
    assert!(
        run(from.clone())
            .await
            .contains("not a one-api/new-api database: it has no users table")
    );
    sqlx::query("CREATE TABLE users (id integer, username text)")
        .execute(&mut conn)
        .await
        .expect("t");
    let e = run(from.clone()).await;
    assert!(e.contains("a one-api/new-api version this import does not know: users has no password, role, status, quota, group"), "{e}");
    assert!(run("redis://127.0.0.1".into()).await.contains("--from"));
    assert!(
        run(format!(
            "sqlite://{}",
            app.storage.dir.join("missing.db").display()
        ))
        .await
        .contains("no such file")
    );
    assert!(
        !app.storage.dir.join("missing.db").exists(),
        "the source is never created"
    );
    assert_eq!(users().await, before);
    app.stop().await;
}

both_backends!(
    one_api_and_new_api_databases_move_in_with_every_key_working,
    a_source_that_is_not_one_api_is_refused_and_nothing_changes,
);
